"""The chat page and its assets, served from the installed package (it works offline).

The page's options (the seed's ``ui_init_params``) travel as JSON in a non-executable
``<script type="application/json">`` element, so the Content-Security-Policy can forbid every
inline script.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi.responses import HTMLResponse, Response

from ..errors import ChatStreamError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: where the app keeps the page options (the seed's ``ui_init_params``) that ``/`` renders
UI_INIT_STATE = "chatstream_ui_init_params"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
UI_INIT = re.compile(r'(<script type="application/json" id="chatstream-ui-init">)(.*?)(</script>)', re.S)
ASSET_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?")


@lru_cache(maxsize=64)
def web_file(name: str) -> bytes:
    """A file of the ``chatstream.web`` package; 404 for anything else (no path can climb out)."""
    if not ASSET_NAME.fullmatch(name) or ".." in name:
        raise ChatStreamError(404, "not_found", f"no such asset: {name}")
    path = resources.files("chatstream.web").joinpath(name)
    if not path.is_file():
        raise ChatStreamError(404, "not_found", f"no such asset: {name}")
    return path.read_bytes()


def page_html(ui_init_params: dict[str, Any] | None = None) -> str:
    """``index.html`` with the page options filled in (``<``, ``>``, ``&`` escaped: the JSON can
    neither end the element nor read as markup)."""
    html = web_file("index.html").decode("utf-8")
    options = json.dumps(ui_init_params or {}, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        options = options.replace(char, escaped)
    return UI_INIT.sub(lambda m: m.group(1) + options + m.group(3), html, count=1)


def page_response(ui_init_params: dict[str, Any] | None = None) -> HTMLResponse:
    return HTMLResponse(page_html(ui_init_params), headers=PAGE_HEADERS)


def asset_response(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    return Response(web_file(name), media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
