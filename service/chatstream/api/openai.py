"""OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` on the same queue, engine and history.

Every answer, errors included, is in OpenAI's shapes so the official SDKs, LangChain and Open WebUI
work unchanged: errors are ``{"error": {"message", "type", "param", "code"}}``; overload is always a
429 with ``Retry-After`` (the SDKs retry it), whatever the seed's ``too_many_request_as_http_error``
says, because OpenAI clients never look for a 200-with-error body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from ..errors import ChatStreamError, bad_request
from ..history.base import CONVERSATION_HEADER, TurnInput
from ..scheduler import QueueFullError
from ..settings import Settings
from .http import ChatStreamingResponse, get_service, parse_json_object, parse_model, race_disconnect
from .openai_schemas import (
    SUPPORTED_ROLES,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ErrorBody,
    ErrorDetail,
    ModelCard,
    ModelList,
    Usage,
)

if TYPE_CHECKING:
    from ..core.service import ChatService
    from ..core.turn_stream import TurnEvent, TurnStream

#: seconds without an event after which an SSE comment keeps proxies from closing the stream
KEEPALIVE_SEC: float = Settings.model_fields["sse_keepalive_sec"].default

_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def openai_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's format; 4xx are ``invalid_request_error`` unless more specific."""
    kind = _ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    body = ErrorBody(error=ErrorDetail(message=message, type=kind, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _from_chatstream_error(error: ChatStreamError) -> JSONResponse:
    return openai_error(
        error.status, error.message, code=error.code, param=error.param, headers=error.headers
    )


def parse_request(raw: bytes) -> ChatCompletionRequest:
    """Decode and validate the body, refusing what we would otherwise silently get wrong."""
    data = parse_json_object(raw, empty="request body is empty; send a JSON chat completion request")
    body = parse_model(ChatCompletionRequest, data)
    if body.n is not None and body.n > 1:
        raise bad_request("only n=1 is supported", param="n", code="unsupported_parameter")
    for name in ("tools", "functions"):
        if getattr(body, name):
            raise bad_request(
                f"{name} are not supported by this server", param=name, code="unsupported_parameter"
            )
    for name in ("tool_choice", "function_call"):
        value = getattr(body, name)
        if value is not None and value != "none":
            raise bad_request(
                f"{name} is not supported by this server", param=name, code="unsupported_parameter"
            )
    if body.logprobs or body.top_logprobs:
        raise bad_request("logprobs are not supported", param="logprobs", code="unsupported_parameter")
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise bad_request(
            "only response_format type 'text' is supported",
            param="response_format",
            code="unsupported_parameter",
        )
    return body


def message_text(message: ChatMessage, index: int) -> str:
    """A message's content as one string: text parts are joined; other part types are refused."""
    content = message.content
    if content is None:
        raise bad_request(f"messages.{index}.content is required", param=f"messages.{index}.content")
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise bad_request(
                f"messages.{index}.content: only text parts are supported (got {part.type!r})",
                param=f"messages.{index}.content",
            )
        texts.append(part.text)
    return "".join(texts)


def to_turn_messages(body: ChatCompletionRequest, max_chars: int) -> list[dict[str, str]]:
    """Validated ``[{"role", "content"}]`` ending in a user message."""
    messages = []
    for index, message in enumerate(body.messages):
        if message.role not in SUPPORTED_ROLES:
            raise bad_request(
                f"messages.{index}.role {message.role!r} is not supported "
                f"(use one of {', '.join(SUPPORTED_ROLES)})",
                param=f"messages.{index}.role",
            )
        text = message_text(message, index)
        if len(text) > max_chars:
            raise bad_request(
                f"messages.{index}.content is longer than {max_chars} characters",
                param=f"messages.{index}.content",
                code="input_too_long",
            )
        messages.append({"role": message.role, "content": text})
    if messages[-1]["role"] != "user":
        raise bad_request("the last message must have role 'user'", param="messages")
    return messages


def _overrides(service: ChatService, body: ChatCompletionRequest) -> dict[str, Any]:
    """OpenAI sampling fields onto the engine's: same temperature scale (0 = greedy), capped length."""
    limit = body.max_completion_tokens or body.max_tokens
    return {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "max_new_tokens": min(limit, service.generation.max_new_tokens_cap) if limit else None,
    }


def _usage(event: TurnEvent) -> Usage:
    return Usage(
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        total_tokens=event.prompt_tokens + event.completion_tokens,
    )


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _sse(data: str) -> str:
    return f"data: {data}\n\n"


_END = object()


async def _with_keepalive(
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
                item = _merge(item, items.popleft())
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await events.aclose()


def _mergeable(item: Any) -> bool:
    return item is not None and item is not _END and not isinstance(item, Exception) and not item.finished


def _merge(first: TurnEvent, second: TurnEvent) -> TurnEvent:
    return dataclasses.replace(
        first,
        delta=first.delta + second.delta,
        text=second.text,
        prompt_tokens=second.prompt_tokens,
        completion_tokens=second.completion_tokens,
    )


def _content_template(completion_id: str, created: int, model: str, include_usage: bool) -> tuple[str, str]:
    """The SSE text around a content delta's JSON string, rendered once per stream from the schema.

    Every content chunk of a stream differs only in its text, so the chunk model is dumped once
    with a marker and split there; per token only the text is JSON-encoded.
    """
    marker = "\u0000content\u0000"
    text = _dump_chunk(completion_id, created, model, Delta(content=marker), None, include_usage)
    prefix, _, suffix = text.partition(json.dumps(marker, ensure_ascii=False))
    return prefix, suffix


def _dump_chunk(
    completion_id: str, created: int, model: str, delta: Delta, finish_reason: str | None, include_usage: bool
) -> str:
    payload = ChatCompletionChunk(
        id=completion_id,
        created=created,
        model=model,
        choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
    ).model_dump()
    # OpenAI sends only the keys a delta has ({} in the finish chunk), and usage only on request
    payload["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
    if not include_usage:
        payload.pop("usage")
    return _sse(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


async def stream_chunks(
    stream: TurnStream,
    completion_id: str,
    model: str,
    include_usage: bool,
    keepalive_sec: float = KEEPALIVE_SEC,
) -> AsyncIterator[str]:
    """The SSE body: role chunk, content chunks, a finish chunk, the usage chunk, ``[DONE]``."""
    created = int(time.time())
    prefix, suffix = _content_template(completion_id, created, model, include_usage)
    yield _dump_chunk(completion_id, created, model, Delta(role="assistant", content=""), None, include_usage)
    async for event in _with_keepalive(stream.events(), keepalive_sec):
        if event is None:
            yield ": keep-alive\n\n"
            continue
        if event.delta:
            stream.sent_any = True
            yield prefix + json.dumps(event.delta, ensure_ascii=False) + suffix
        if not event.finished:
            continue
        if event.error:
            error = ErrorDetail(message=event.error, type="server_error", code="generation_failed")
            yield _sse(json.dumps({"error": error.model_dump()}))
            break
        reason = _finish_reason(event.finish_reason)
        yield _dump_chunk(completion_id, created, model, Delta(), reason, include_usage)
        if include_usage:
            usage_chunk = ChatCompletionChunk(
                id=completion_id, created=created, model=model, choices=[], usage=_usage(event)
            )
            yield _sse(usage_chunk.model_dump_json())
    yield _sse("[DONE]")


async def complete(stream: TurnStream, request: Request) -> TurnEvent | None:
    """Run the turn to its end; ``None`` when the client left first (generation is then cancelled)."""

    async def run() -> TurnEvent | None:
        last = None
        async for event in stream.events():
            if event.delta:
                stream.sent_any = True
            last = event
        return last

    finished, event = await race_disconnect(request.receive, run())
    return event if finished else None


def openai_router(settings: Settings | None = None) -> APIRouter:
    """``/v1/chat/completions`` and ``/v1/models`` for the app's service."""
    router = APIRouter(prefix="/v1", tags=["openai"])
    started = int(time.time())
    keepalive_sec = settings.sse_keepalive_sec if settings is not None else KEEPALIVE_SEC

    def model_card(request: Request) -> ModelCard:
        return ModelCard(id=get_service(request).engine.model_name, created=started)

    @router.get("/models", summary="List the served model (OpenAI format)")
    async def list_models(request: Request) -> JSONResponse:
        return JSONResponse(ModelList(data=[model_card(request)]).model_dump())

    @router.get("/models/{model_id:path}", summary="Describe the served model (OpenAI format)")
    async def get_model(request: Request, model_id: str) -> JSONResponse:
        if model_id != get_service(request).engine.model_name:
            return openai_error(404, f"model {model_id!r} is not served here", code="model_not_found")
        return JSONResponse(model_card(request).model_dump())

    @router.post("/chat/completions", summary="Chat completion, streamed (SSE) or not (OpenAI format)")
    async def chat_completions(request: Request) -> Response:
        service = get_service(request)
        model = service.engine.model_name
        try:
            body = parse_request(await request.body())
            if body.model != model:
                raise bad_request(
                    f"model {body.model!r} is not served here; this server serves {model!r}",
                    param="model",
                    code="model_not_found",
                )
            messages = to_turn_messages(body, service.limits.max_input_chars)
            conversation_id = request.headers.get(CONVERSATION_HEADER) or body.conversation_id or None
            turn_input = TurnInput(
                user_input=messages[-1]["content"],
                conversation_id=conversation_id,
                messages=messages,
                persist=conversation_id is not None,
            )
            stream = await service.open_turn(
                request, turn_input, overrides=_overrides(service, body), stop=body.stop_list()
            )
        except QueueFullError:
            service.count_rejected()
            return openai_error(
                429,
                "the server is busy: all generation slots and queue places are taken; retry later",
                code="too_many_requests",
                headers={"Retry-After": str(service.limits.retry_after_sec)},
            )
        except ChatStreamError as error:
            service.count_refused(error)
            return _from_chatstream_error(error)
        except ClientDisconnect:
            return Response(status_code=499)

        completion_id = "chatcmpl-" + uuid.uuid4().hex
        headers = dict(stream.headers)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return ChatStreamingResponse(
                stream_chunks(stream, completion_id, model, include_usage, keepalive_sec),
                headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                media_type="text/event-stream",
                on_close=stream.abandon,
            )

        event = await complete(stream, request)
        if event is None:
            return Response(status_code=499)
        if event.error or not event.finished:
            return openai_error(500, event.error or "generation did not finish", code="generation_failed")
        result = ChatCompletion(
            id=completion_id,
            created=int(time.time()),
            model=model,
            choices=[
                Choice(
                    message=AssistantMessage(content=event.text),
                    finish_reason=_finish_reason(event.finish_reason),
                )
            ],
            usage=_usage(event),
        )
        return JSONResponse(result.model_dump(), headers=headers)

    return router
