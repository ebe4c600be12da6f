"""A streaming response that always notices a client that went away.

Starlette's ``StreamingResponse`` only watches for ``http.disconnect`` on older ASGI spec versions and
relies on a failing ``send`` otherwise, so a request still waiting in the queue (sending nothing)
would never learn that its client left. This response watches ``receive()`` in a second task for the
whole life of the stream and cancels the body iterator at once, which gives the queue place or the
engine slot back before the next step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class DisconnectAwareStreamingResponse(Response):
    """Streams ``body_iterator``; ``on_first_chunk`` runs just before the first body bytes go out."""

    def __init__(
        self,
        body_iterator: AsyncIterator[str | bytes],
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
        on_first_chunk: Callable[[], None] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.body_iterator = body_iterator
        self.status_code = status_code
        self.media_type = media_type
        self.background = background
        self.on_first_chunk = on_first_chunk
        self.on_close = on_close
        self.init_headers(headers)

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        first = True
        async for chunk in self.body_iterator:
            if not isinstance(chunk, bytes | memoryview):
                chunk = chunk.encode(self.charset)
            if first and self.on_first_chunk is not None:
                self.on_first_chunk()
            first = False
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        streamer = asyncio.ensure_future(self._stream(send))
        watcher = asyncio.ensure_future(watch_disconnect())
        try:
            await asyncio.wait({streamer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streamer, watcher):
                if not task.done():
                    task.cancel()
            for task in (streamer, watcher):
                try:
                    await task
                except (asyncio.CancelledError, OSError):
                    pass
                except Exception as exc:  # a send on a closed connection, depending on the server
                    if type(exc).__name__ not in ("ClientDisconnected", "ClientDisconnect"):
                        raise
            if self.body_iterator is not None and hasattr(self.body_iterator, "aclose"):
                await self.body_iterator.aclose()
            if self.on_close is not None:
                # A body iterator closed before it started runs none of its code: let the owner clean up.
                await self.on_close()
        if self.background is not None:
            await self.background()
