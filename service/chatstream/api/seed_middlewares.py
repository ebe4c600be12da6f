"""``ChatStream.append_middlewares``: the session middleware (and, when asked, CORS) a seed app needs.

0.3.0's options: ``{"fast_session": {"secret_key", "store", "same_site", "http_only", "secure"},
"develop_mode": bool, "cors": {"allow_origins": [...]}}``. The session is
:class:`~chatstream.session.SessionMiddleware` (fastsession's interface, pure ASGI). Two choices
differ from 0.3.0, on purpose:

- a missing secret, or one of the placeholders printed in 0.3.0's docs, is replaced by a random key
  for this process (sessions live in this process's memory, so nothing is lost); a cookie is never
  signed with a string anyone can read;
- CORS is added only when ``cors`` is given, and ``"*"`` then allows any origin without credentials
  (:func:`~chatstream.security.cors_options`): 0.3.0 echoed every origin with credentials allowed.
  The cookie's ``Secure`` flag is off unless ``fast_session.secure`` is true, so a plain-HTTP
  development server keeps its sessions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from ..security import cors_options
from ..session import MemoryStore, SessionMiddleware
from ..settings import DEFAULT_SESSION_SECRET

logger = logging.getLogger("chatstream")

#: secrets that appear in 0.3.0's documentation and examples, and ours: public, so never used
PUBLIC_SECRETS = frozenset(
    {DEFAULT_SESSION_SECRET, "chatstream-default-session-secret-key", "your-session-secret-key"}
)


def session_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :class:`SessionMiddleware` from 0.3.0's ``fast_session`` options."""
    given = dict(opts.get("fast_session") or {})
    secret = given.get("secret_key")
    if not secret or secret in PUBLIC_SECRETS:
        if secret:
            logger.warning("append_middlewares: %r is a published placeholder; using a random key", secret)
        secret = secrets.token_urlsafe(32)
    store = given.get("store")
    if not isinstance(store, MemoryStore):
        # fastsession's MemoryStore (0.3.0's default) keeps dicts in memory too: ours does the same.
        store = MemoryStore()
    return {
        "secret_key": secret,
        "store": store,
        "same_site": given.get("same_site") or "lax",
        "http_only": given.get("http_only", True),
        "secure": bool(given.get("secure", False)),
    }


def append_middlewares(app: Any, opts: Mapping[str, Any] | None = None) -> None:
    """Add the session middleware (and CORS when ``opts["cors"]`` is given) to ``app``."""
    opts = opts or {}
    app.add_middleware(SessionMiddleware, **session_options(opts))
    cors = opts.get("cors")
    if cors is not None:
        options = cors_options(list(cors.get("allow_origins", ["*"])))
        if options is not None:
            app.add_middleware(CORSMiddleware, **options)
