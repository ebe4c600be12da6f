"""Probes and the metrics endpoint: liveness, readiness (drain, database) and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .http import get_service


async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    service = get_service(request)
    checks: dict[str, object] = {"engine": "started" if service.started else "starting"}
    ready = service.started
    if service.draining:
        checks["draining"] = True
        ready = False
    try:
        store = await service.request_handler.check_ready()
    except Exception as exc:
        store = {"ok": False, "error": type(exc).__name__}
    checks["history"] = store
    ready = ready and bool(store.get("ok", False))
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    service = get_service(request)
    if service.metrics is None:
        return JSONResponse({"error": "not_found", "detail": "metrics are disabled"}, status_code=404)
    body, content_type = service.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def health_router() -> APIRouter:
    router = APIRouter(tags=["ops"])
    router.add_api_route("/healthz", healthz, methods=["GET"], summary="Liveness: the process answers")
    router.add_api_route(
        "/readyz", readyz, methods=["GET"], summary="Readiness: started, not draining, store reachable"
    )
    router.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    return router
