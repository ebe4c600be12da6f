"""``/chat_stream``, the seed's streaming endpoint: body → turn → text/plain or SSE stream.

The facade's ``handle_chat_stream_request`` and the mounted route both come here, so a user who
mounts the handler on a path of their own gets exactly the route's behaviour.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..core.service import ChatService
from ..core.turn_stream import FinishCallback, TurnStream
from ..errors import ChatStreamError, bad_request
from ..history.base import TurnInput
from ..scheduler import QueueFullError
from .errors import error_response
from .http import ChatStreamingResponse, conversation_id, parse_json_object, parse_model
from .schemas import ChatStreamBody

#: the seed's end-of-chunk marker in the text/plain stream
EOS_MARKER = "<::EOS::>"
TOO_MANY_REQUESTS = "too_many_requests"
EMPTY_BODY = 'request body is empty; send JSON {"user_input": "..."}'
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def rejection_response(service: ChatService) -> Response:
    """The seed's overload answer: 429 + Retry-After, or 200 with the same body by default."""
    service.count_rejected()
    body = {"error": TOO_MANY_REQUESTS, "detail": "all slots and queue places are taken; retry later"}
    if service.limits.too_many_request_as_http_error:
        headers = {"Retry-After": str(service.limits.retry_after_sec)}
        return JSONResponse(body, status_code=429, headers=headers)
    return JSONResponse(body, status_code=200)


def refusal_response(service: ChatService, error: ChatStreamError) -> Response:
    service.count_refused(error)
    return error_response(error)


def parse_chat_body(service: ChatService, raw: Any) -> ChatStreamBody:
    """The validated body; ``user_input`` is required unless ``regenerate`` is true."""
    body = parse_model(ChatStreamBody, parse_json_object(raw, empty=EMPTY_BODY))
    if not body.regenerate:
        if body.user_input is None:
            raise bad_request("user_input is required", param="user_input")
        if not body.user_input.strip():
            raise bad_request("user_input must not be empty", param="user_input")
    limit = service.limits.max_input_chars
    if body.user_input is not None and len(body.user_input) > limit:
        message = f"user_input is longer than {limit} characters"
        raise ChatStreamError(413, "input_too_long", message, param="user_input")
    return body


async def chat_stream_response(
    service: ChatService,
    request: Request,
    request_body: Any = None,
    callback: FinishCallback | None = None,
) -> Response:
    """Queue the request and stream the reply.

    ``request_body`` is an already-read (possibly edited) body, as in the seed's "intercepting the
    request" recipe. The reply is ``text/plain`` where each chunk is the whole reply so far followed
    by ``<::EOS::>``; with ``Accept: text/event-stream`` it is SSE with one JSON event per delta.
    """
    try:
        raw = await request.body() if request_body is None else request_body
        body = parse_chat_body(service, raw)
        turn_input = TurnInput(
            user_input=body.user_input,
            regenerate=body.regenerate,
            conversation_id=conversation_id(request, body.model_dump()),
        )
        stream = await service.open_turn(request, turn_input, callback=callback)
    except QueueFullError:
        return rejection_response(service)
    except ChatStreamError as error:
        return refusal_response(service, error)
    except ClientDisconnect:
        return Response(status_code=499)

    sse = "text/event-stream" in request.headers.get("accept", "")
    return ChatStreamingResponse(
        sse_chunks(stream) if sse else text_chunks(stream),
        headers={**stream.headers, **STREAM_HEADERS},
        media_type="text/event-stream" if sse else "text/plain",
        on_first_chunk=lambda: setattr(stream, "sent_any", True),
        on_close=stream.abandon,
    )


async def text_chunks(stream: TurnStream) -> AsyncIterator[str]:
    """The seed's format: every chunk is the whole reply so far plus the end-of-chunk marker."""
    async for event in stream.events():
        if event.finished and event.error:
            yield json.dumps({"error": "generation_failed", "detail": event.error}) + EOS_MARKER
        elif event.delta or event.finished:
            yield event.text + EOS_MARKER


async def sse_chunks(stream: TurnStream) -> AsyncIterator[str]:
    async for event in stream.events():
        payload: dict[str, Any] = {"delta": event.delta}
        if event.finished:
            payload.update(
                finished=True,
                finish_reason=event.finish_reason,
                text=event.text,
                usage={"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens},
                message_id=stream.message_id,
            )
            if event.error:
                payload["error"] = event.error
        yield f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
