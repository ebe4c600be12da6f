"""The app factory: settings → chat service → FastAPI app with every route, middleware and lifespan.

``uvicorn chatstream.app:create_app --factory`` and gunicorn's uvicorn workers call it with no
arguments (settings from ``CHATSTREAM_*``); ``chatstream serve`` passes the settings it parsed.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .api.errors import install_error_handlers
from .api.health import health_router
from .api.http import SERVICE_STATE
from .api.openapi_docs import docs_router
from .api.seed_routes import seed_router, select_names
from .api.web_page import UI_INIT_STATE
from .bootstrap import service_from_settings
from .core.service import ChatService
from .logs import configure_logging
from .middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from .security import add_security_middlewares
from .session import SessionMiddleware
from .settings import Settings
from .version import __version__

logger = logging.getLogger("chatstream")


def get_service_of(app: FastAPI) -> ChatService:
    """The service an app built by :func:`create_app` serves."""
    return getattr(app.state, SERVICE_STATE)


def freeze_startup_heap() -> None:
    """Leave what startup built (modules, model, tokenizer, routes) out of every later GC pass.

    Python's full collection walks every tracked object while holding the GIL: with a model loaded
    that is hundreds of thousands of objects, a stall of the event loop and the engine thread alike
    (measured in docs/engine.md). Those objects live as long as the process, so ``gc.freeze()``
    moves them to the permanent generation; the lifespan unfreezes them at shutdown, so an app
    started and stopped inside a longer process leaks nothing.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, service: ChatService | None = None) -> FastAPI:
    """Build the service; refuses the placeholder session secret where settings say a real one is
    required (:meth:`Settings.check_session_secret`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    settings.check_session_secret()
    if settings.uses_embedded_sqlite:
        settings.ensure_data_dir()
    service = service or service_from_settings(settings)
    app = FastAPI(
        title="chatstream",
        version=__version__,
        lifespan=_lifespan(service, settings),
        root_path=settings.root_path,
        docs_url=None,  # served offline by api/openapi_docs.py
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    setattr(app.state, UI_INIT_STATE, settings.web_ui_params)
    setattr(app.state, SERVICE_STATE, service)
    install_error_handlers(app, all_errors=True)
    _include_routers(app, service, settings)
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


def _lifespan(service: ChatService, settings: Settings):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        freeze_startup_heap()
        limits = service.limits
        logger.info(
            "chatstream %s ready: model=%s slots=%d queue=%d",
            __version__,
            service.engine.model_name,
            limits.max_running,
            limits.max_waiting,
        )
        try:
            yield
        finally:
            drained = await service.shutdown(settings.drain_timeout_sec)
            gc.unfreeze()
            logger.info("chatstream stopped (drained=%s)", drained)

    return lifespan


def _include_routers(app: FastAPI, service: ChatService, settings: Settings) -> None:
    """Probes, the seed's endpoints, the conversations API (stores that keep history) and OpenAI's."""
    from .api.conversations import conversations_router
    from .api.openai import openai_router

    app.include_router(health_router())
    app.include_router(docs_router(app.openapi_url or "/openapi.json", app.title))
    names = select_names({"all": True})
    if not settings.web_ui:
        names.discard("web_ui")
    app.include_router(seed_router(names))
    handler: Any = service.request_handler
    if hasattr(handler, "list_conversations"):
        app.include_router(conversations_router(handler))
    app.include_router(openai_router(settings))


def session_secret(settings: Settings) -> str:
    """The configured secret, or a generated one in place of the public built-in default.

    With the embedded SQLite history (the zero-config start) the generated secret is kept in a file
    beside the database in ``data_dir``, so browser conversations survive a restart as the history
    does; with memory sessions a per-process secret loses nothing. No cookie is ever signed with a
    string that is printed in the source code.
    """
    if not settings.uses_default_secret:
        return settings.session_secret
    if settings.uses_embedded_sqlite:
        path = Path(settings.sqlite_path).with_suffix(".session-secret")
        try:
            return stored_secret(path)
        except OSError as exc:
            logger.warning("could not keep a session secret in %s: %s", path, exc)
    logger.warning("no CHATSTREAM_SESSION_SECRET: signing session cookies with a random per-process key")
    return secrets.token_urlsafe(32)


def stored_secret(path: Path) -> str:
    """The key kept in ``path``, created (mode 0600) on first use.

    The file appears whole or not at all (written aside, then hard-linked into place), so workers
    starting together all end up with the one key that won.
    """
    try:
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
        path.unlink()  # a damaged file: replace it
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)
        logger.warning(
            "no CHATSTREAM_SESSION_SECRET: signing session cookies with a generated key kept in %s", path
        )
    except FileExistsError:
        pass  # another process was first: use its key
    finally:
        draft.unlink()
    return path.read_text().strip()
