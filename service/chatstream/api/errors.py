"""Every error as JSON ``{"error": code, "detail": message}``: never an HTML page or a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ChatStreamError
from .http import validation_error

logger = logging.getLogger("chatstream")

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_response(error: ChatStreamError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def on_chatstream_error(request: Request, exc: ChatStreamError) -> JSONResponse:
    return error_response(exc)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(validation_error(exc))


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error")
    return JSONResponse({"error": "internal_error", "detail": "unexpected server error"}, status_code=500)


def install_error_handlers(app: FastAPI, *, all_errors: bool = False) -> None:
    """Render :class:`ChatStreamError` as JSON (idempotent); ``all_errors`` adds 404/405, request
    validation and unexpected exceptions — the app factory's choice, not a user's app's."""
    if not getattr(app.state, "chatstream_error_handlers", False):
        app.state.chatstream_error_handlers = True
        app.add_exception_handler(ChatStreamError, on_chatstream_error)
    if all_errors:
        app.add_exception_handler(StarletteHTTPException, on_http_error)
        app.add_exception_handler(RequestValidationError, on_validation_error)
        app.add_exception_handler(Exception, on_unexpected)
