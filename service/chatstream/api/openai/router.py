"""The OpenAI routes: each fetches the app's service and hands the request to :class:`OpenAIServing`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...settings import Settings
from ..http import get_service
from .serving import OpenAIServing
from .stream import KEEPALIVE_SEC


def openai_router(settings: Settings | None = None) -> APIRouter:
    """``/v1/chat/completions`` and ``/v1/models`` for the app's service."""
    serving = OpenAIServing(settings.sse_keepalive_sec if settings is not None else KEEPALIVE_SEC)
    router = APIRouter(prefix="/v1", tags=["openai"])

    @router.get("/models", summary="List the served model (OpenAI format)")
    async def list_models(request: Request) -> JSONResponse:
        return serving.list_models(get_service(request))

    @router.get("/models/{model_id:path}", summary="Describe the served model (OpenAI format)")
    async def get_model(request: Request, model_id: str) -> JSONResponse:
        return serving.show_model(get_service(request), model_id)

    @router.post("/chat/completions", summary="Chat completion, streamed (SSE) or not (OpenAI format)")
    async def chat_completions(request: Request) -> Response:
        return await serving.chat_completion(get_service(request), request)

    return router
