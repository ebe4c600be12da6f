"""What the OpenAI routes do, given the app's :class:`ChatService`: model cards and chat completions.

A request becomes one service turn on the same queue, engine and history as ``/chat_stream``; only
the rendering differs. Overload is always a 429 with ``Retry-After`` (the SDKs retry it), whatever
the seed's ``too_many_request_as_http_error`` says, because OpenAI clients never look for a
200-with-error body.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect, Request

from ...errors import ChatStreamError, bad_request
from ...history.base import TurnInput
from ...scheduler import QueueFullError
from ..http import ChatStreamingResponse, conversation_id, race_disconnect
from .protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ModelCard,
    ModelList,
    error_from,
    finish_reason,
    openai_error,
    parse_request,
    to_turn_messages,
    usage_of,
)
from .stream import KEEPALIVE_SEC, stream_chunks

if TYPE_CHECKING:
    from ...core.service import ChatService
    from ...core.turn_stream import TurnEvent, TurnStream

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
BUSY = "the server is busy: all generation slots and queue places are taken; retry later"


class OpenAIServing:
    """The OpenAI API over a service; one per router (it holds the model card's ``created``)."""

    def __init__(self, keepalive_sec: float = KEEPALIVE_SEC) -> None:
        self.keepalive_sec = keepalive_sec
        self.created = int(time.time())

    # --- models -----------------------------------------------------------------------------------
    def model_card(self, service: ChatService) -> ModelCard:
        return ModelCard(id=service.engine.model_name, created=self.created)

    def list_models(self, service: ChatService) -> JSONResponse:
        return JSONResponse(ModelList(data=[self.model_card(service)]).model_dump())

    def show_model(self, service: ChatService, model_id: str) -> JSONResponse:
        if model_id != service.engine.model_name:
            return openai_error(404, f"model {model_id!r} is not served here", code="model_not_found")
        return JSONResponse(self.model_card(service).model_dump())

    # --- chat completions -------------------------------------------------------------------------
    async def chat_completion(self, service: ChatService, request: Request) -> Response:
        """Admit the request as a turn, then stream it as SSE or answer one ``chat.completion``."""
        try:
            body = parse_request(await request.body())
            stream = await self.open_turn(service, request, body)
        except QueueFullError:
            service.count_rejected()
            retry_after = {"Retry-After": str(service.limits.retry_after_sec)}
            return openai_error(429, BUSY, code="too_many_requests", headers=retry_after)
        except ChatStreamError as error:
            service.count_refused(error)
            return error_from(error)
        except ClientDisconnect:
            return Response(status_code=499)
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        if body.stream:
            return self.stream_response(service, stream, body, completion_id)
        return await self.full_response(service, stream, request, completion_id)

    async def open_turn(
        self, service: ChatService, request: Request, body: ChatCompletionRequest
    ) -> TurnStream:
        """The validated request as a service turn; stored only when a conversation is named."""
        model = service.engine.model_name
        if body.model != model:
            raise bad_request(
                f"model {body.model!r} is not served here; this server serves {model!r}",
                param="model",
                code="model_not_found",
            )
        messages = to_turn_messages(body, service.limits.max_input_chars)
        conversation = conversation_id(request, {"conversation_id": body.conversation_id})
        turn_input = TurnInput(
            user_input=messages[-1]["content"],
            conversation_id=conversation,
            messages=messages,
            persist=conversation is not None,
        )
        return await service.open_turn(
            request, turn_input, overrides=sampling_overrides(service, body), stop=body.stop_list()
        )

    def stream_response(
        self, service: ChatService, stream: TurnStream, body: ChatCompletionRequest, completion_id: str
    ) -> Response:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = stream_chunks(
            stream, completion_id, service.engine.model_name, include_usage, self.keepalive_sec
        )
        return ChatStreamingResponse(
            chunks,
            headers={**stream.headers, **STREAM_HEADERS},
            media_type="text/event-stream",
            on_close=stream.abandon,
        )

    async def full_response(
        self, service: ChatService, stream: TurnStream, request: Request, completion_id: str
    ) -> Response:
        event = await complete(stream, request)
        if event is None:
            return Response(status_code=499)
        if event.error or not event.finished:
            return openai_error(500, event.error or "generation did not finish", code="generation_failed")
        result = ChatCompletion(
            id=completion_id,
            created=int(time.time()),
            model=service.engine.model_name,
            choices=[
                Choice(
                    message=AssistantMessage(content=event.text),
                    finish_reason=finish_reason(event.finish_reason),
                )
            ],
            usage=usage_of(event),
        )
        return JSONResponse(result.model_dump(), headers=dict(stream.headers))


def sampling_overrides(service: ChatService, body: ChatCompletionRequest) -> dict[str, Any]:
    """OpenAI sampling fields onto the engine's: same temperature scale (0 = greedy), capped length."""
    limit = body.max_completion_tokens or body.max_tokens
    return {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "max_new_tokens": min(limit, service.generation.max_new_tokens_cap) if limit else None,
    }


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
