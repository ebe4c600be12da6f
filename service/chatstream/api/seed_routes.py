"""The seed's endpoints: chat_stream, clear_context, get_prompt, generation params, feedback, load."""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..errors import ChatStreamError, bad_request
from ..history.base import CONVERSATION_HEADER
from ..resources import resource_usage
from .schemas import FeedbackBody, GenerationParams, validation_error

if TYPE_CHECKING:
    from ..chat_stream import ChatStream

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


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object", code="invalid_body")
    return data


def _conversation_id(request: Request, body: dict[str, Any] | None = None) -> str | None:
    value = request.headers.get(CONVERSATION_HEADER) or (body or {}).get("conversation_id")
    if value is not None and not isinstance(value, str):
        raise bad_request("conversation_id must be a string", param="conversation_id")
    return value


def _web_file(name: str) -> str:
    return resources.files("chatstream.web").joinpath(name).read_text(encoding="utf-8")


# TEMP (web helper): the lead's routes replace this block.
WEB_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
UI_INIT_ELEMENT = '<script type="application/json" id="chatstream-ui-init"></script>'
WEB_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _ui_init_json() -> str:
    raw = os.environ.get("CHATSTREAM_WEB_UI_PARAMS", "")
    if not raw.strip():
        return ""
    return json.dumps(json.loads(raw)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def add_web_ui_routes(router: APIRouter) -> None:
    """The page with its CSP and options, and every .js/.css file of the web package."""

    @router.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        html = _web_file("index.html")
        filled = UI_INIT_ELEMENT.replace("></script>", f">{_ui_init_json()}</script>")
        headers = {"Content-Security-Policy": WEB_CSP}
        return HTMLResponse(html.replace(UI_INIT_ELEMENT, filled), headers=headers)

    root = resources.files("chatstream.web")
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((entry, f"{prefix}{entry.name}/"))
                continue
            media_type = WEB_MEDIA_TYPES.get(os.path.splitext(entry.name)[1])
            if media_type is not None:
                _add_file_route(router, prefix + entry.name, media_type)


def _add_file_route(router: APIRouter, name: str, media_type: str) -> None:
    async def web_file() -> Response:
        return Response(_web_file(name), media_type=media_type, headers={"Content-Security-Policy": WEB_CSP})

    router.add_api_route("/" + name, web_file, methods=["GET"], include_in_schema=False)


def seed_router(chat_stream: ChatStream, names: set[str]) -> APIRouter:
    """An APIRouter with the chosen seed endpoints bound to ``chat_stream``."""
    router = APIRouter()
    handler = chat_stream.request_handler

    if "chat_stream" in names:

        @router.post("/chat_stream", tags=["chat"], summary="Stream a chat reply (the seed's API)")
        async def chat_stream_endpoint(request: Request) -> Response:
            return await chat_stream.handle_chat_stream_request(request)

    if "clear_context" in names:

        @router.post("/clear_context", tags=["chat"])
        async def clear_context(request: Request) -> JSONResponse:
            body = await _json_object(request)
            await handler.clear_context(request, _conversation_id(request, body))
            return JSONResponse({"success": True})

    if "get_prompt" in names:

        @router.get("/get_prompt", tags=["chat"])
        async def get_prompt(request: Request) -> JSONResponse:
            prompt = await handler.get_prompt(request, _conversation_id(request))
            if prompt is None:
                return JSONResponse({"prompt": "", "messages": []})
            messages = prompt.to_messages()
            ids = getattr(prompt, "message_ids", None)
            if ids:  # stores that know each message's id (the SQL history) name them
                said = [m for m in messages if m["role"] != "system"]
                for message, message_id in zip(said, ids, strict=False):
                    message["id"] = message_id
            return JSONResponse({"prompt": prompt.create_prompt(), "messages": messages})

    if "set_generation_params" in names:

        @router.post("/set_generation_params", tags=["chat"])
        async def set_generation_params(request: Request) -> JSONResponse:
            body = await _json_object(request)
            conversation_id = body.pop("conversation_id", None) or _conversation_id(request)
            try:
                params = GenerationParams.model_validate(body)
            except Exception as exc:
                raise validation_error(exc) from None
            values = params.model_dump(exclude_none=True)
            if not values:
                raise bad_request("give at least one of temperature, top_k, top_p")
            current = await handler.set_generation_params(request, values, conversation_id)
            return JSONResponse({"success": True, "generation_params": _effective(chat_stream, current)})

    if "get_generation_params" in names:

        @router.get("/get_generation_params", tags=["chat"])
        async def get_generation_params(request: Request) -> JSONResponse:
            current = await handler.get_generation_params(request, _conversation_id(request))
            return JSONResponse({"generation_params": _effective(chat_stream, current)})

    if "set_feedback" in names:

        @router.post("/set_feedback", tags=["chat"])
        async def set_feedback(request: Request) -> JSONResponse:
            body = await _json_object(request)
            try:
                feedback = FeedbackBody.model_validate(body)
            except Exception as exc:
                raise validation_error(exc) from None
            await handler.set_feedback(
                request,
                feedback.message_id,
                feedback.is_like,
                feedback.form_data,
                feedback.conversation_id or _conversation_id(request),
            )
            return JSONResponse({"success": True})

    if "get_load" in names:

        @router.get("/get_load", tags=["ops"])
        async def get_load() -> JSONResponse:
            return JSONResponse(chat_stream.get_load())

    if "get_resource_usage" in names:

        @router.get("/get_resource_usage", tags=["ops"])
        async def get_resource_usage() -> JSONResponse:
            return JSONResponse(resource_usage())

    if "web_ui" in names:
        add_web_ui_routes(router)

    return router


def _effective(chat_stream: ChatStream, overrides: dict[str, Any]) -> dict[str, Any]:
    keys = ("temperature", "top_k", "top_p")
    return {key: overrides.get(key, chat_stream.params.get(key)) for key in keys}


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


def add_seed_routes(app: FastAPI, chat_stream: ChatStream, opts: dict[str, Any]) -> None:
    install_error_handlers(app)
    app.include_router(seed_router(chat_stream, select_names(opts)))


def install_error_handlers(app: FastAPI) -> None:
    """Render :class:`ChatStreamError` as JSON (idempotent)."""
    if getattr(app.state, "chatstream_error_handlers", False):
        return
    app.state.chatstream_error_handlers = True

    async def on_chatstream_error(request: Request, exc: ChatStreamError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(ChatStreamError, on_chatstream_error)
