"""The HTTP edge's toolkit, shared by the seed routes, the OpenAI routes and the conversations API.

One body parser, one validation-error mapping, one conversation-id resolver, one disconnect race and
one streaming response: each wire format differs in what it renders, not in how it reads a request
or notices a client that left.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..core.service import ChatService
from ..errors import ChatStreamError, bad_request
from ..history.base import CONVERSATION_HEADER

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

#: where the app factory and ``ChatStream.append_apis`` put the service the routes use
SERVICE_STATE = "chatstream_service"


def get_service(request: Request) -> ChatService:
    """The service of the app serving ``request`` (vLLM's entrypoints fetch theirs the same way)."""
    return getattr(request.app.state, SERVICE_STATE)


def parse_json_object(raw: Any, *, empty: str | None = None) -> dict[str, Any]:
    """``raw`` (bytes, str, or an already-decoded value) as a JSON object, else a 400.

    An empty body is ``{}`` unless ``empty`` is given: then it is refused with that message.
    """
    if isinstance(raw, bytes | bytearray | str):
        if not raw:
            if empty is not None:
                raise bad_request(empty, code="invalid_json")
            return {}
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise bad_request("request body must be a JSON object", code="invalid_body")
    return raw


async def read_json_object(request: Request, *, empty: str | None = None) -> dict[str, Any]:
    """The request's body as a JSON object (see :func:`parse_json_object`)."""
    return parse_json_object(await request.body(), empty=empty)


def validation_error(exc: Exception) -> ChatStreamError:
    """A 400 naming the first offending field of a pydantic (or FastAPI request) validation error."""
    errors = getattr(exc, "errors", None)
    first = errors()[0] if callable(errors) and errors() else None
    if first is None:
        return ChatStreamError(400, "invalid_request", str(exc))
    field = ".".join(str(part) for part in first.get("loc", ())) or None
    message = f"{field}: {first.get('msg', 'invalid value')}" if field else str(first.get("msg"))
    return ChatStreamError(400, "invalid_request", message, param=field)


def parse_model(model: type[Model], data: dict[str, Any]) -> Model:
    """Validate ``data`` against a wire model; a failure is a 400 naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def conversation_id(request: Request, body: Mapping[str, Any] | None = None) -> str | None:
    """The conversation a request names: the header first, then the body's ``conversation_id``."""
    value = request.headers.get(CONVERSATION_HEADER) or (body or {}).get("conversation_id")
    if value is not None and not isinstance(value, str):
        raise bad_request("conversation_id must be a string", param="conversation_id")
    return value or None


async def wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def race_disconnect(receive: Receive, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Run ``work`` unless the client leaves first: ``(True, result)`` or ``(False, None)``.

    Starlette cancels neither a plain handler nor a queued stream when its client disconnects, so a
    request waiting for a slot would never learn it; racing ``receive()`` gives the slot back at once.
    """
    worker = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    try:
        await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (worker, watcher):
            if not task.done():
                task.cancel()
        for task in (worker, watcher):
            try:
                await task
            except (asyncio.CancelledError, ClientDisconnect, OSError):
                pass
            except Exception as exc:  # a send on a closed connection, depending on the server
                if task is watcher or type(exc).__name__ not in ("ClientDisconnected", "ClientDisconnect"):
                    raise
    if worker.cancelled():
        return False, None
    return True, worker.result()


class ChatStreamingResponse(StreamingResponse):
    """Starlette's streaming response that always notices a client that went away.

    Starlette only listens for ``http.disconnect`` on old ASGI spec versions and otherwise relies on
    a failing ``send``, which a stream still queued (sending nothing) never makes. This one races
    the body against ``receive()`` on every server, cancels the body iterator at once (the queue
    place or engine slot is back before the next step), runs ``on_first_chunk`` just before the
    first body bytes go out and ``on_close`` at the end (a body iterator closed before it started
    runs none of its own code).
    """

    def __init__(
        self,
        content: AsyncIterator[str | bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        *,
        on_first_chunk: Callable[[], None] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.source = content
        self.on_first_chunk = on_first_chunk
        self.on_close = on_close
        super().__init__(self._announced(content), status_code, headers, media_type, background)

    async def _announced(self, content: AsyncIterator[str | bytes]) -> AsyncIterator[str | bytes]:
        first = True
        async for chunk in content:
            if first and self.on_first_chunk is not None:
                self.on_first_chunk()
            first = False
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await race_disconnect(receive, self.stream_response(send))
        finally:
            await self.body_iterator.aclose()
            if hasattr(self.source, "aclose"):
                await self.source.aclose()
            if self.on_close is not None:
                await self.on_close()
        if self.background is not None:
            await self.background()
