"""The seed's endpoints other than ``/chat_stream``, as functions of (service, request).

Both the mounted routes (:mod:`.seed_routes`) and ``ChatStream.handle_*_request`` call these, so an
endpoint a user mounts on a path of their own answers exactly as the route does. Each renders its
own errors (:func:`answers_errors`): a user's app need not install our exception handlers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..core.service import ChatService
from ..errors import ChatStreamError, bad_request
from ..prompts.base import AbstractChatPrompt
from ..resources import resource_usage
from .errors import error_response
from .http import conversation_id, parse_json_object, parse_model
from .schemas import FeedbackBody, GenerationParams, load_body

PARAM_KEYS = ("temperature", "top_k", "top_p")
#: the names 0.3.0's clients send to ``set_generation_params``
PARAM_ALIASES = {"top_k_value": "top_k", "top_p_value": "top_p"}
FeedbackCallback = Callable[[dict[str, Any]], Awaitable[None] | None]
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Response]])


def answers_errors(handler: Handler) -> Handler:
    """Render a refusal raised inside ``handler`` as the JSON error response the app would send."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ChatStreamError as error:
            return error_response(error)
        except ClientDisconnect:
            return Response(status_code=499)

    return wrapper  # type: ignore[return-value]


async def body_object(request: Request, request_body: Any = None) -> dict[str, Any]:
    """The JSON body: ``request_body`` when the caller already read it (the seed's intercept recipe)."""
    raw = await request.body() if request_body is None else request_body
    return parse_json_object(raw)


def effective_params(service: ChatService, overrides: dict[str, Any]) -> dict[str, Any]:
    return service.generation.effective(overrides, PARAM_KEYS)


def messages_with_ids(prompt: AbstractChatPrompt) -> list[dict[str, Any]]:
    """The conversation's messages; stores that know each message's id (the SQL history) name them."""
    messages: list[dict[str, Any]] = list(prompt.to_messages())
    ids = getattr(prompt, "message_ids", None)
    if ids:
        said = [m for m in messages if m["role"] != "system"]
        for message, message_id in zip(said, ids, strict=False):
            message["id"] = message_id
    return messages


@answers_errors
async def clear_context_response(
    service: ChatService, request: Request, request_body: Any = None
) -> Response:
    body = await body_object(request, request_body)
    await service.request_handler.clear_context(request, conversation_id(request, body))
    return JSONResponse({"success": True})


@answers_errors
async def get_prompt_response(service: ChatService, request: Request) -> Response:
    prompt = await service.request_handler.get_prompt(request, conversation_id(request))
    if prompt is None:
        return JSONResponse({"prompt": "", "messages": []})
    return JSONResponse({"prompt": prompt.create_prompt(), "messages": messages_with_ids(prompt)})


@answers_errors
async def set_generation_params_response(
    service: ChatService, request: Request, request_body: Any = None
) -> Response:
    body = await body_object(request, request_body)
    conversation = conversation_id(request, body)
    body.pop("conversation_id", None)
    for alias, name in PARAM_ALIASES.items():
        if alias in body:
            body.setdefault(name, body.pop(alias))
    values = parse_model(GenerationParams, body).model_dump(exclude_none=True)
    if not values:
        raise bad_request("give at least one of temperature, top_k, top_p")
    current = await service.request_handler.set_generation_params(request, values, conversation)
    return JSONResponse({"success": True, "generation_params": effective_params(service, current)})


@answers_errors
async def get_generation_params_response(service: ChatService, request: Request) -> Response:
    current = await service.request_handler.get_generation_params(request, conversation_id(request))
    return JSONResponse({"generation_params": effective_params(service, current)})


@answers_errors
async def set_feedback_response(
    service: ChatService,
    request: Request,
    request_body: Any = None,
    on_feedback_received: FeedbackCallback | None = None,
) -> Response:
    """Store like/dislike for a generated message; ``on_feedback_received`` (the seed's option) then
    gets what was said about which message, with the prompt and generation params in force."""
    body = await body_object(request, request_body)
    feedback = parse_model(FeedbackBody, body)
    conversation = conversation_id(request, body)
    handler = service.request_handler
    await handler.set_feedback(
        request, feedback.message_id, feedback.is_like, feedback.form_data, conversation
    )
    if on_feedback_received is not None:
        prompt = await handler.get_prompt(request, conversation)
        said = messages_with_ids(prompt) if prompt is not None else []
        target = next((m["content"] for m in said if m.get("id") == feedback.message_id), None)
        overrides = await handler.get_generation_params(request, conversation)
        result = on_feedback_received(
            {
                "is_like": feedback.is_like,
                "form_data": feedback.form_data,
                "prompt": prompt.create_prompt() if prompt is not None else None,
                "target_message_id": feedback.message_id,
                "target_message": target,
                "generation_params": effective_params(service, overrides),
            }
        )
        if inspect.isawaitable(result):
            await result
    return JSONResponse({"success": True})


def get_load_response(service: ChatService) -> Response:
    return JSONResponse(load_body(service.load()))


def resource_usage_response() -> Response:
    return JSONResponse(resource_usage())
