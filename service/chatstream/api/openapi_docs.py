"""``/docs`` and ``/redoc`` with their assets served from an installed package, so they work offline.

FastAPI's default pages load Swagger UI and ReDoc from a CDN: on a machine without internet access,
or behind a proxy that blocks it, ``/docs`` is a blank page. The ``fastapi-offline`` package ships
the same bundles; these routes serve them from our own origin and send a Content-Security-Policy
that allows only this origin plus the page's one inline start-up script, named by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from ..errors import ChatStreamError

#: where the bundles are served; each name is a file of ``fastapi_offline/static``
ASSET_PREFIX = "/docs/assets"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
#: every path these routes answer (the API-key check leaves them open, like the docs pages)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", *(f"{ASSET_PREFIX}/{name}" for name in ASSETS))
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


@lru_cache(maxsize=len(ASSETS))
def asset_bytes(name: str) -> bytes:
    """A bundle of the installed ``fastapi-offline`` package (404 for any other name)."""
    if name not in ASSETS:
        raise ChatStreamError(404, "not_found", f"no such docs asset: {name}")
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()


def content_security_policy(html: str) -> str:
    """Scripts from this origin plus the page's own inline ones (by hash); ReDoc styles itself inline
    and draws in a worker built from a blob."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode("utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html)})


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """Swagger UI at ``/docs``, its OAuth2 redirect page, ReDoc at ``/redoc`` and their assets."""
    router = APIRouter(include_in_schema=False)

    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return with_policy(
            get_swagger_ui_html(
                openapi_url=base + openapi_url,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{base}{ASSET_PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{ASSET_PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{base}{ASSET_PREFIX}/favicon.png",
                oauth2_redirect_url=base + "/docs/oauth2-redirect",
            )
        )

    @router.get("/docs/oauth2-redirect")
    async def swagger_ui_redirect() -> HTMLResponse:
        return with_policy(get_swagger_ui_oauth2_redirect_html())

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return with_policy(
            get_redoc_html(
                openapi_url=base + openapi_url,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{base}{ASSET_PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{ASSET_PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )

    @router.get(ASSET_PREFIX + "/{name}")
    async def asset(name: str) -> Response:
        return Response(asset_bytes(name), media_type=ASSETS.get(name), headers=ASSET_HEADERS)

    return router
