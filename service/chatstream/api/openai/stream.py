"""The streamed answer: OpenAI's SSE chunks for a turn, with keep-alive comments while nothing is due.

Per streamed token the event loop does a queue put and get and one JSON string encoding: the
keep-alive wait is one pump task and one timer task per stream, and content chunks are a template
rendered once per stream from the pydantic chunk model.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ...core.turn_stream import TurnEvent
from ...settings import Settings
from .protocol import ChatCompletionChunk, ChunkChoice, Delta, ErrorDetail, finish_reason, usage_of

if TYPE_CHECKING:
    from ...core.turn_stream import TurnStream

#: seconds without an event after which an SSE comment keeps proxies from closing the stream
KEEPALIVE_SEC: float = Settings.model_fields["sse_keepalive_sec"].default
KEEPALIVE_COMMENT = ": keep-alive\n\n"

_END = object()


def sse(data: str) -> str:
    """One SSE event carrying ``data``."""
    return f"data: {data}\n\n"


async def with_keepalive(
    events: AsyncIterator[TurnEvent], every: float = KEEPALIVE_SEC
) -> AsyncIterator[TurnEvent | None]:
    """Yield events, and ``None`` whenever ``every`` seconds pass without one (e.g. while queued).

    One pump task reads the events into a queue for the whole stream and one timer task adds the
    keep-alive marks: per event that is a queue put and get. (Waiting on each event with a timeout
    costs a task and a timer per token, about a fifth of the server's CPU per streamed chunk.) A
    consumer that fell behind (a slow client) gets the queued deltas as one event.
    """
    loop = asyncio.get_running_loop()
    items: deque[Any] = deque()
    ready = asyncio.Event()
    last = loop.time()

    def put(item: Any) -> None:
        items.append(item)
        ready.set()

    async def pump() -> None:
        nonlocal last
        try:
            async for event in events:
                last = loop.time()
                put(event)
        except Exception as exc:  # handed to the consumer, which raises it
            put(exc)
        put(_END)

    async def beat() -> None:
        nonlocal last
        while True:
            await asyncio.sleep(max(0.0, last + every - loop.time()))
            if loop.time() - last >= every:
                last = loop.time()
                put(None)

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(beat())]
    try:
        while True:
            while not items:
                ready.clear()
                await ready.wait()
            item = items.popleft()
            while _mergeable(item) and items and _mergeable(items[0]):
                item = TurnEvent.merged(item, items.popleft())
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        await _cancel_all(tasks)
        await events.aclose()


def _mergeable(item: Any) -> bool:
    return isinstance(item, TurnEvent) and not item.finished


async def _cancel_all(tasks: list[asyncio.Future[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


def dump_chunk(
    completion_id: str, created: int, model: str, delta: Delta, reason: str | None, include_usage: bool
) -> str:
    """One choice chunk as an SSE event, in the exact shape OpenAI sends."""
    payload = ChatCompletionChunk(
        id=completion_id,
        created=created,
        model=model,
        choices=[ChunkChoice(delta=delta, finish_reason=reason)],
    ).model_dump()
    # OpenAI sends only the keys a delta has ({} in the finish chunk), and usage only on request
    payload["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
    if not include_usage:
        payload.pop("usage")
    return sse(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def content_template(completion_id: str, created: int, model: str, include_usage: bool) -> tuple[str, str]:
    """The SSE text around a content delta's JSON string, rendered once per stream from the schema.

    Every content chunk of a stream differs only in its text, so the chunk model is dumped once
    with a marker and split there; per token only the text is JSON-encoded.
    """
    marker = "\u0000content\u0000"
    text = dump_chunk(completion_id, created, model, Delta(content=marker), None, include_usage)
    prefix, _, suffix = text.partition(json.dumps(marker, ensure_ascii=False))
    return prefix, suffix


async def stream_chunks(
    stream: TurnStream,
    completion_id: str,
    model: str,
    include_usage: bool,
    keepalive_sec: float = KEEPALIVE_SEC,
) -> AsyncIterator[str]:
    """The SSE body: role chunk, content chunks, a finish chunk, the usage chunk, ``[DONE]``.

    An engine failure after the 200 went out is one ``{"error": ...}`` event before ``[DONE]``.
    """
    created = int(time.time())
    prefix, suffix = content_template(completion_id, created, model, include_usage)
    yield dump_chunk(completion_id, created, model, Delta(role="assistant", content=""), None, include_usage)
    async for event in with_keepalive(stream.events(), keepalive_sec):
        if event is None:
            yield KEEPALIVE_COMMENT
            continue
        if event.delta:
            stream.sent_any = True
            yield prefix + json.dumps(event.delta, ensure_ascii=False) + suffix
        if not event.finished:
            continue
        if event.error:
            error = ErrorDetail(message=event.error, type="server_error", code="generation_failed")
            yield sse(json.dumps({"error": error.model_dump()}))
            break
        reason = finish_reason(event.finish_reason)
        yield dump_chunk(completion_id, created, model, Delta(), reason, include_usage)
        if include_usage:
            usage_chunk = ChatCompletionChunk(
                id=completion_id, created=created, model=model, choices=[], usage=usage_of(event)
            )
            yield sse(usage_chunk.model_dump_json())
    yield sse("[DONE]")
