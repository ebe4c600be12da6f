"""The seed's endpoints: chat_stream, clear_context, get_prompt, generation params, feedback, load.

Each route fetches the service from ``app.state`` (see :func:`~chatstream.api.http.get_service`) and
is one line; the work is in :mod:`.seed_chat` and :mod:`.seed_handlers`, which ``ChatStream``'s
``handle_*_request`` methods call too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from . import seed_handlers as handlers
from .http import get_service
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


async def chat_stream(request: Request) -> Response:
    return await chat_stream_response(get_service(request), request)


async def clear_context(request: Request) -> Response:
    return await handlers.clear_context_response(get_service(request), request)


async def get_prompt(request: Request) -> Response:
    return await handlers.get_prompt_response(get_service(request), request)


async def set_generation_params(request: Request) -> Response:
    return await handlers.set_generation_params_response(get_service(request), request)


async def get_generation_params(request: Request) -> Response:
    return await handlers.get_generation_params_response(get_service(request), request)


async def set_feedback(request: Request) -> Response:
    return await handlers.set_feedback_response(get_service(request), request)


async def get_load(request: Request) -> Response:
    return handlers.get_load_response(get_service(request))


async def get_resource_usage() -> Response:
    return handlers.resource_usage_response()


async def index(request: Request) -> Response:
    return page_response(getattr(request.app.state, UI_INIT_STATE, None))


async def script(name: str) -> Response:
    return asset_response(f"{name}.js")


async def style(name: str) -> Response:
    return asset_response(f"{name}.css")


async def vendor_asset(name: str) -> Response:
    return asset_response(f"vendor/{name}")


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
