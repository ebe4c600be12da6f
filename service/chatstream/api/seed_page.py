"""``ChatStream.index`` and ``ChatStream.js``: the chat page and its script for routes users write.

0.3.0's example servers call these as ``index(response, opts=...)`` and ``js(response)`` as well as
``index(request, response, opts)``; the arguments are told apart by type. When the route passes
FastAPI's ``response`` parameter, the page is written into it (headers or cookies the route set on
it stay), as 0.3.0 did; otherwise a new response is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .web_page import asset_response, page_response

PageArgument = Request | Response | Mapping[str, Any] | None


def split_page_args(
    args: tuple[PageArgument, ...], opts: Mapping[str, Any] | None = None
) -> tuple[Request | None, Response | None, Mapping[str, Any]]:
    """``(request, response, opts)`` from positional arguments in any of 0.3.0's call forms."""
    request = response = None
    for arg in args:
        if isinstance(arg, Request):
            request = arg
        elif isinstance(arg, Response):
            response = arg
        elif isinstance(arg, Mapping):
            opts = arg
        elif arg is not None:
            raise TypeError(f"expected a Request, a Response or an options dict, not {type(arg).__name__}")
    return request, response, opts or {}


def fill_response(target: Response | None, source: Response) -> Response:
    """``source`` written into ``target`` (status, body and headers; target's other headers stay)."""
    if target is None:
        return source
    target.status_code = source.status_code
    target.body = source.body
    for name, value in source.headers.items():
        target.headers[name] = value
    return target


def index_response(args: tuple[PageArgument, ...], opts: Mapping[str, Any] | None = None) -> Response:
    """The chat page with ``opts["ui_init_params"]`` (welcomeMessage, style_opts, …) filled in."""
    _, response, options = split_page_args(args, opts)
    ui_init_params = options.get("ui_init_params")
    return fill_response(response, page_response(dict(ui_init_params) if ui_init_params else None))


def script_response(args: tuple[PageArgument, ...]) -> Response:
    """The page's script, ``chatstream.js``."""
    _, response, _ = split_page_args(args)
    return fill_response(response, asset_response("chatstream.js"))
