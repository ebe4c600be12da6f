"""Server-side HTTP sessions behind a signed cookie, with fastsession's interface.

The seed keeps each browser's conversation in ``request.state.session`` as provided by the
``fastsession`` package (``get_session()`` returns a dict, ``save_session()`` persists it). This pure
ASGI middleware offers the same interface so fastsession is optional, and so streaming responses are
not wrapped by ``BaseHTTPMiddleware`` (which would hide client disconnects from the body iterator).
The cookie holds only a random session id signed with itsdangerous; the data stays on the server.
"""

from __future__ import annotations

import secrets
import threading
import time
from http.cookies import SimpleCookie
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class MemoryStore:
    """Session dicts in process memory, expired after ``max_age`` seconds without use."""

    def __init__(self, max_age: float = 14 * 24 * 3600, max_sessions: int = 100_000) -> None:
        self.max_age = max_age
        self.max_sessions = max_sessions
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._data.get(session_id)
            if item is None or time.monotonic() - item[0] > self.max_age:
                self._data.pop(session_id, None)
                return None
            self._data[session_id] = (time.monotonic(), item[1])
            return item[1]

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            if len(self._data) >= self.max_sessions and session_id not in self._data:
                self._evict()
            self._data[session_id] = (time.monotonic(), data)

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (t, _) in self._data.items() if now - t > self.max_age]:
            del self._data[key]
        while len(self._data) >= self.max_sessions:
            oldest = min(self._data, key=lambda k: self._data[k][0])
            del self._data[oldest]


class Session:
    """What ``request.state.session`` holds: fastsession's ``get_session``/``save_session``."""

    def __init__(self, store: MemoryStore, session_id: str, data: dict[str, Any], is_new: bool) -> None:
        self._store = store
        self.session_id = session_id
        self._data = data
        self.is_new = is_new

    def get_session(self) -> dict[str, Any]:
        return self._data

    def get_session_id(self) -> str:
        return self.session_id

    def save_session(self) -> None:
        self._store.save(self.session_id, self._data)

    def clear_session(self) -> None:
        self._data.clear()


class SessionMiddleware:
    """Attach a :class:`Session` to every HTTP request and set the signed cookie on new ones."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        store: MemoryStore | None = None,
        cookie_name: str = "chatstream_session",
        max_age: int = 14 * 24 * 3600,
        secure: bool = False,
        same_site: str = "lax",
        http_only: bool = True,
        path: str = "/",
    ) -> None:
        self.app = app
        self.store = store or MemoryStore(max_age=max_age)
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.secure = secure
        self.same_site = same_site
        self.http_only = http_only
        self.path = path
        self.serializer = URLSafeTimedSerializer(secret_key, salt="chatstream-session")

    def _session_id_from(self, scope: Scope) -> tuple[str, str] | tuple[None, None]:
        """The session id and the cookie's signed value as sent, when the request carries a valid one."""
        for name, value in scope.get("headers", []):
            if name != b"cookie":
                continue
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:
                continue
            morsel = cookie.get(self.cookie_name)
            if morsel is None:
                continue
            try:
                return self.serializer.loads(morsel.value, max_age=self.max_age), morsel.value
            except BadSignature:
                return None, None
        return None, None

    def _cookie_header(self, session_id: str, signed: str | None = None) -> str:
        cookie = SimpleCookie()
        cookie[self.cookie_name] = signed or self.serializer.dumps(session_id)
        morsel = cookie[self.cookie_name]
        morsel["path"] = self.path
        morsel["max-age"] = self.max_age
        morsel["samesite"] = self.same_site
        if self.http_only:
            morsel["httponly"] = True
        if self.secure:
            morsel["secure"] = True
        return morsel.OutputString()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id, signed = self._session_id_from(scope)
        data = self.store.load(session_id) if session_id else None
        is_new = data is None
        if is_new:
            # A validly signed id this process has no data for (a restart, another replica) keeps its
            # name: the SQL history finds the session's conversations by it. Its cookie is sent back
            # as it came, never signed anew: a load balancer hashing on the cookie (conversation
            # affinity) must see the same value whichever replica answered.
            session_id = session_id or secrets.token_urlsafe(24)
            data = {}
        session = Session(self.store, session_id, data, is_new)
        scope.setdefault("state", {})["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.is_new and session.get_session():
                # Only sessions that hold something get a cookie (health probes, metrics scrapes do not).
                session.save_session()
                header = self._cookie_header(session.session_id, signed)
                MutableHeaders(scope=message).append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
