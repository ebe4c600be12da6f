"""Probes and the metrics endpoint: liveness, readiness (drain, database) and Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from ..chat_stream import ChatStream


def health_router(chat_stream: ChatStream) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", summary="Readiness: started, not draining, store reachable")
    async def readyz() -> JSONResponse:
        checks: dict[str, object] = {"engine": "started" if chat_stream._started else "starting"}
        ready = chat_stream._started
        scheduler = chat_stream.scheduler
        if scheduler is not None and scheduler.draining:
            checks["draining"] = True
            ready = False
        try:
            store = await chat_stream.request_handler.check_ready()
        except Exception as exc:
            store = {"ok": False, "error": type(exc).__name__}
        checks["history"] = store
        ready = ready and bool(store.get("ok", False))
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        if chat_stream.metrics is None:
            return JSONResponse({"error": "not_found", "detail": "metrics are disabled"}, status_code=404)
        body, content_type = chat_stream.metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return router
