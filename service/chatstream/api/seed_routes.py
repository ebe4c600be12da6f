"""The seed's endpoints: chat_stream, clear_context, get_prompt, generation params, feedback, load.

Each route fetches the service from ``app.state`` (see :func:`~chatstream.api.http.get_service`) and
stays a few lines; the work is in the service, the history handler and :mod:`.seed_chat`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..core.service import ChatService
from ..errors import bad_request
from ..resources import resource_usage
from .http import conversation_id, get_service, parse_model, read_json_object
from .schemas import FeedbackBody, GenerationParams, load_body
from .seed_chat import chat_stream_response
from .web_page import UI_INIT_STATE, asset_response, page_response

SEED_API_NAMES = (
    "chat_stream",
    "clear_context",
    "get_prompt",
    "set_generation_params",
    "get_generation_params",
    "set_feedback",
    "get_load",
    "get_resource_usage",
    "web_ui",
)
PARAM_KEYS = ("temperature", "top_k", "top_p")


async def chat_stream(request: Request) -> Response:
    return await chat_stream_response(get_service(request), request)


async def clear_context(request: Request) -> JSONResponse:
    body = await read_json_object(request)
    await get_service(request).request_handler.clear_context(request, conversation_id(request, body))
    return JSONResponse({"success": True})


async def get_prompt(request: Request) -> JSONResponse:
    prompt = await get_service(request).request_handler.get_prompt(request, conversation_id(request))
    if prompt is None:
        return JSONResponse({"prompt": "", "messages": []})
    messages = prompt.to_messages()
    ids = getattr(prompt, "message_ids", None)
    if ids:  # stores that know each message's id (the SQL history) name them
        said = [m for m in messages if m["role"] != "system"]
        for message, message_id in zip(said, ids, strict=False):
            message["id"] = message_id
    return JSONResponse({"prompt": prompt.create_prompt(), "messages": messages})


async def set_generation_params(request: Request) -> JSONResponse:
    service = get_service(request)
    body = await read_json_object(request)
    conversation = conversation_id(request, body)
    body.pop("conversation_id", None)
    values = parse_model(GenerationParams, body).model_dump(exclude_none=True)
    if not values:
        raise bad_request("give at least one of temperature, top_k, top_p")
    current = await service.request_handler.set_generation_params(request, values, conversation)
    return JSONResponse({"success": True, "generation_params": _effective(service, current)})


async def get_generation_params(request: Request) -> JSONResponse:
    service = get_service(request)
    current = await service.request_handler.get_generation_params(request, conversation_id(request))
    return JSONResponse({"generation_params": _effective(service, current)})


async def set_feedback(request: Request) -> JSONResponse:
    body = await read_json_object(request)
    feedback = parse_model(FeedbackBody, body)
    await get_service(request).request_handler.set_feedback(
        request, feedback.message_id, feedback.is_like, feedback.form_data, conversation_id(request, body)
    )
    return JSONResponse({"success": True})


async def get_load(request: Request) -> JSONResponse:
    return JSONResponse(load_body(get_service(request).load()))


async def get_resource_usage() -> JSONResponse:
    return JSONResponse(resource_usage())


async def index(request: Request) -> Response:
    return page_response(getattr(request.app.state, UI_INIT_STATE, None))


async def script(name: str) -> Response:
    return asset_response(f"{name}.js")


async def style(name: str) -> Response:
    return asset_response(f"{name}.css")


async def vendor_asset(name: str) -> Response:
    return asset_response(f"vendor/{name}")


def _effective(service: ChatService, overrides: dict[str, Any]) -> dict[str, Any]:
    return service.generation.effective(overrides, PARAM_KEYS)


OPS = {"tags": ["ops"]}
CHAT = {"summary": "Stream a chat reply (the seed's API)"}
HIDDEN = {"include_in_schema": False}
#: seed API name → its routes: (method, path, endpoint, extra route options)
ROUTES: dict[str, list[tuple[str, str, Any, dict[str, Any]]]] = {
    "chat_stream": [
        ("POST", "/chat_stream", chat_stream, {"summary": "Stream a chat reply (the seed's API)"})
    ],
    "clear_context": [("POST", "/clear_context", clear_context, {})],
    "get_prompt": [("GET", "/get_prompt", get_prompt, {})],
    "set_generation_params": [("POST", "/set_generation_params", set_generation_params, {})],
    "get_generation_params": [("GET", "/get_generation_params", get_generation_params, {})],
    "set_feedback": [("POST", "/set_feedback", set_feedback, {})],
    "get_load": [("GET", "/get_load", get_load, OPS)],
    "get_resource_usage": [("GET", "/get_resource_usage", get_resource_usage, OPS)],
    "web_ui": [
        ("GET", "/", index, HIDDEN),
        ("GET", "/{name}.js", script, HIDDEN),
        ("GET", "/{name}.css", style, HIDDEN),
        ("GET", "/vendor/{name}", vendor_asset, HIDDEN),
    ],
}


def seed_router(names: set[str]) -> APIRouter:
    """An APIRouter with the chosen seed endpoints; they serve the app's service."""
    router = APIRouter()
    for name in SEED_API_NAMES:
        if name not in names:
            continue
        for method, path, endpoint, extra in ROUTES[name]:
            options = {"tags": ["chat"], **extra}
            router.add_api_route(path, endpoint, methods=[method], **options)
    return router


def select_names(opts: dict[str, Any]) -> set[str]:
    """The seed's ``append_apis`` options: all, include or exclude."""
    if opts.get("include"):
        unknown = set(opts["include"]) - set(SEED_API_NAMES)
        if unknown:
            raise ValueError(f"unknown API names: {sorted(unknown)}")
        return set(opts["include"])
    names = set(SEED_API_NAMES)
    if opts.get("exclude"):
        names -= set(opts["exclude"])
    return names
