"""Pure ASGI middlewares (no ``BaseHTTPMiddleware``, which would hide disconnects from streams)."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import request_id_var

access_log = logging.getLogger("chatstream.access")


class RequestContextMiddleware:
    """Give every request an id (``X-Request-Id`` in or a new one), echo it, log one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming and incoming.isprintable() else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if path not in ("/healthz", "/readyz", "/metrics"):
                access_log.info(
                    "%s %s %s %.1fms",
                    scope.get("method"),
                    path,
                    status["code"],
                    (time.perf_counter() - started) * 1000,
                )
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 before the app reads them into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(
                send, 413, {"error": "body_too_large", "detail": f"limit is {self.max_bytes} bytes"}
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_json(
                send, 413, {"error": "body_too_large", "detail": f"limit is {self.max_bytes} bytes"}
            )


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
