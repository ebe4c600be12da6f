"""Access control at the HTTP edge: optional API keys and CORS wiring.

API keys (``CHATSTREAM_API_KEYS``) protect every path that reads or writes conversations or spends
GPU time; probes, metrics, the OpenAPI docs and the static chat page stay open so Kubernetes,
Prometheus and a browser loading the page never need a key. A path is protected unless it is listed
as open (deny by default), so a route added later is protected without anyone remembering to.

The check is a pure ASGI middleware (not ``BaseHTTPMiddleware``, which would hide client disconnects
from streaming responses). Every configured key is compared with :func:`hmac.compare_digest`, all of
them on every request, so the time taken reveals neither which key matched nor how much of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

#: paths that never need a key: probes, metrics, the docs and the chat page's static files
OPEN_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/chatstream.js",
        "/chatstream.css",
        "/favicon.ico",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        # the docs pages' own assets (api/openapi_docs.py serves them from the installed package)
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/redoc.standalone.js",
        "/docs/assets/favicon.png",
    }
)

#: headers a cross-origin page needs to send and to read (conversation ids, request ids)
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "X-ChatStream-Conversation-Id", "X-Request-Id"]
CORS_EXPOSE_HEADERS = [
    "X-ChatStream-Conversation-Id",
    "X-ChatStream-Last-Generated-Message-Id",
    "X-Request-Id",
    "Retry-After",
]


def principal_for_key(key: str) -> str:
    """A stable, non-secret name for a key: ``key-`` + 12 hex digits of its SHA-256.

    Conversations are owned by this name, so rotating a key means its conversations stay with the old
    name; giving two clients the same key makes them one owner.
    """
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def match_key(candidate: str, keys: Iterable[bytes]) -> int:
    """Index of the key equal to ``candidate`` or -1, comparing against every key in constant time."""
    given = candidate.encode("utf-8")
    found = -1
    for index, key in enumerate(keys):
        if hmac.compare_digest(given, key) and found < 0:
            found = index
    return found


def requires_key(path: str) -> bool:
    """Everything except :data:`OPEN_PATHS` (the APIs: /chat_stream, /v1/*, the seed endpoints, …)."""
    return path not in OPEN_PATHS


class ApiKeyMiddleware:
    """Require ``Authorization: Bearer <key>`` on protected paths; name the caller in ``state.principal``.

    Failures are 401 with ``WWW-Authenticate: Bearer``: OpenAI's error shape under ``/v1/`` (so SDKs
    raise ``AuthenticationError``), ``{"error": "unauthorized", "detail": …}`` elsewhere. CORS
    preflights (``OPTIONS``) pass through, since browsers never send credentials on them.
    """

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        key_list = [key for key in keys if key]
        self.keys = [key.encode("utf-8") for key in key_list]
        self.principals = [principal_for_key(key) for key in key_list]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root) :] or "/"
        if not requires_key(path):
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        index = match_key(token, self.keys) if token else -1
        if index < 0:
            reason = "missing" if not token else "invalid"
            await _send_unauthorized(send, path, reason)
            return
        scope.setdefault("state", {})["principal"] = self.principals[index]
        await self.app(scope, receive, send)


def _bearer_token(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
            return ""
    return ""


async def _send_unauthorized(send: Send, path: str, reason: str) -> None:
    message = (
        "an API key is required: send 'Authorization: Bearer <key>'"
        if reason == "missing"
        else "the API key is not valid"
    )
    body: dict[str, Any]
    if path.startswith("/v1/"):
        body = {
            "error": {
                "message": message,
                "type": "authentication_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    else:
        body = {"error": "unauthorized", "detail": message}
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"www-authenticate", b'Bearer realm="chatstream"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def cors_options(origins: list[str]) -> dict[str, Any] | None:
    """Keyword arguments for Starlette's ``CORSMiddleware``, or None when CORS stays off.

    Listed origins may send credentials (the session cookie, ``Authorization``). ``*`` allows any
    origin *without* credentials: Starlette would otherwise echo the caller's origin together with
    ``Access-Control-Allow-Credentials: true``, letting every website read a user's chats.
    """
    cleaned = [origin.strip().rstrip("/") for origin in origins if origin.strip()]
    if not cleaned:
        return None
    wildcard = "*" in cleaned
    if wildcard and len(cleaned) > 1:
        raise ValueError("cors_origins: use either '*' alone or a list of origins, not both")
    return {
        "allow_origins": cleaned,
        "allow_credentials": not wildcard,
        "allow_methods": ["GET", "POST", "DELETE", "OPTIONS"],
        "allow_headers": CORS_ALLOW_HEADERS,
        "expose_headers": CORS_EXPOSE_HEADERS,
        "max_age": 600,
    }


def add_security_middlewares(app: Any, settings: Any) -> None:
    """Add the API-key check, then CORS outside it (preflights and 401s carry CORS headers)."""
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    options = cors_options(settings.cors_origins)
    if options is not None:
        app.add_middleware(CORSMiddleware, **options)
