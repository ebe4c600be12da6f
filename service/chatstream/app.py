"""The app factory: settings → ChatStream → FastAPI app with every route, middleware and lifespan.

``uvicorn chatstream.app:create_app --factory`` and gunicorn's uvicorn workers call it with no
arguments (settings from ``CHATSTREAM_*``); ``chatstream serve`` passes the settings it parsed.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .api.health import health_router
from .api.seed_routes import install_error_handlers, seed_router, select_names
from .chat_stream import ChatStream
from .history.base import RequestHandler
from .history.session import SimpleSessionRequestHandler
from .logs import configure_logging
from .middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from .prompts import (
    AbstractChatPrompt,
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptTogetherRedPajamaINCITEChat,
    ChatTemplatePrompt,
)
from .security import add_security_middlewares
from .session import SessionMiddleware
from .settings import Settings

logger = logging.getLogger("chatstream")

PROMPT_PRESETS: dict[str, type[AbstractChatPrompt]] = {
    "chat_template": ChatTemplatePrompt,
    "redpajama": ChatPromptTogetherRedPajamaINCITEChat,
    "rinna": ChatPromptRinnaJapaneseGPTNeoxInst,
}


def resolve_prompt_class(name: str) -> type[AbstractChatPrompt] | None:
    """'auto' → None (the chat template), a preset name, or 'package.module:ClassName'."""
    if name in ("", "auto"):
        return None
    if name in PROMPT_PRESETS:
        return PROMPT_PRESETS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    raise ValueError(f"unknown prompt class {name!r}")


def make_request_handler(settings: Settings) -> RequestHandler:
    """'memory' → sessions; 'sql'/'auto' → the SQL store (PostgreSQL or the embedded SQLite file)."""
    if settings.history == "memory":
        return SimpleSessionRequestHandler()
    from .history.sql import PostgresRequestHandler

    return PostgresRequestHandler(settings=settings)


def chat_stream_from_settings(
    settings: Settings, request_handler: RequestHandler | None = None
) -> ChatStream:
    model = tokenizer = None
    if not settings.use_mock_response:
        if not settings.model:
            raise ValueError("no model: pass --model DIR_OR_HUB_ID (or --mock to run without one)")
        from .engine.loader import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(
            settings.model,
            tokenizer_id=settings.tokenizer,
            device=settings.device,
            dtype=settings.dtype,
            trust_remote_code=settings.trust_remote_code,
        )
    return ChatStream(
        model=model,
        tokenizer=tokenizer,
        device=settings.device,
        num_of_concurrent_executions=settings.num_of_concurrent_executions,
        max_queue_size=settings.max_queue_size,
        too_many_request_as_http_error=settings.too_many_request_as_http_error,
        use_mock_response=settings.use_mock_response,
        mock_params=settings.mock_params,
        chat_prompt_clazz=resolve_prompt_class(settings.chat_prompt_clazz),
        max_new_tokens=settings.max_new_tokens,
        context_len=settings.context_len,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
        repetition_penalty_method=settings.repetition_penalty_method,
        add_special_tokens=settings.add_special_tokens,
        request_handler=request_handler or make_request_handler(settings),
        kv_cache_tokens=settings.kv_cache_tokens,
        prefill_chunk_tokens=settings.prefill_chunk_tokens,
        max_new_tokens_cap=settings.max_new_tokens_cap,
        max_input_chars=settings.max_input_chars,
        retry_after_sec=settings.retry_after_sec,
        model_name=settings.model_name,
        metrics_enabled=settings.metrics_enabled,
    )


def freeze_startup_heap() -> None:
    """Leave what startup built (modules, model, tokenizer, routes) out of every later GC pass.

    Python's full collection walks every tracked object while holding the GIL: with a model loaded
    that is ~430k objects and ~450 ms on a 2-core VM, a stall of the event loop and the engine thread
    alike (seen as 0.5 s ``/healthz`` outliers while streams ran). Those objects live as long as the
    process, so ``gc.freeze()`` moves them to the permanent generation; the lifespan unfreezes them
    at shutdown, so an app started and stopped inside a longer process leaks nothing.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, chat_stream: ChatStream | None = None) -> FastAPI:
    """Build the service. Refuses the default session secret unless ``dev_mode`` or mock mode."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.uses_default_secret and not (settings.dev_mode or settings.use_mock_response):
        raise ValueError(
            "CHATSTREAM_SESSION_SECRET is the built-in default: set a secret, or pass --dev-mode "
            "(or --mock) to run with it on a development machine"
        )
    chat_stream = chat_stream or chat_stream_from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await chat_stream.start_queue_worker()
        freeze_startup_heap()
        logger.info(
            "chatstream %s ready: model=%s slots=%d queue=%d",
            __version__,
            chat_stream.engine.model_name,
            chat_stream.num_of_concurrent_executions,
            chat_stream.max_queue_size,
        )
        try:
            yield
        finally:
            drained = await chat_stream.shutdown(settings.drain_timeout_sec)
            gc.unfreeze()
            logger.info("chatstream stopped (drained=%s)", drained)

    app = FastAPI(
        title="chatstream",
        version=__version__,
        lifespan=lifespan,
        root_path=settings.root_path,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.chat_stream = chat_stream
    install_error_handlers(app)
    _install_http_error_handlers(app)

    app.include_router(health_router(chat_stream))
    names = set(select_names({"all": True}))
    if not settings.web_ui:
        names.discard("web_ui")
    app.include_router(seed_router(chat_stream, names))
    _include_optional_routers(app, chat_stream, settings)

    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        cookie_name=settings.session_cookie_name,
        max_age=settings.session_max_age_sec,
        secure=settings.session_cookie_secure,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    add_security_middlewares(app, settings)  # API keys inside CORS: preflights and 401s get CORS headers
    app.add_middleware(RequestContextMiddleware)
    return app


def session_secret(settings: Settings) -> str:
    """The configured secret, or a generated one in place of the public built-in default.

    With the embedded SQLite history (the zero-config start) the generated secret is kept in a file
    beside the database, so browser conversations survive a restart as the history does; with memory
    sessions a per-process secret loses nothing. No cookie is ever signed with a string that is
    printed in the source code.
    """
    if not settings.uses_default_secret:
        return settings.session_secret
    if settings.history != "memory" and not settings.database_url:
        path = Path(settings.sqlite_path).expanduser().resolve().with_suffix(".session-secret")
        try:
            return _stored_secret(path)
        except OSError as exc:
            logger.warning("could not keep a session secret in %s: %s", path, exc)
    logger.warning("no CHATSTREAM_SESSION_SECRET: signing session cookies with a random per-process key")
    return secrets.token_urlsafe(32)


def _stored_secret(path: Path) -> str:
    if path.exists():
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    logger.warning(
        "no CHATSTREAM_SESSION_SECRET: signing session cookies with a generated key kept in %s", path
    )
    return value


def _include_optional_routers(app: FastAPI, chat_stream: ChatStream, settings: Settings) -> None:
    """Routers that other modules contribute (OpenAI API, conversations) when present."""
    handler: Any = chat_stream.request_handler
    if hasattr(handler, "list_conversations"):
        from .api.conversations import conversations_router

        app.include_router(conversations_router(handler))
    try:
        from .api.openai import openai_router
    except ImportError:
        return
    app.include_router(openai_router(chat_stream, settings))


def _install_http_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error": code, "detail": message}``, never an HTML page or a bare 500."""

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"error": "invalid_request", "detail": f"{field}: {first.get('msg', 'invalid')}", "param": field},
            status_code=400,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return JSONResponse({"error": "internal_error", "detail": "unexpected server error"}, status_code=500)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
