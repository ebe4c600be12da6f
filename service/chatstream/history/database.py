"""Database URLs, the async engine, and telling "the database is down" apart from a bug.

PostgreSQL URLs are given to the asyncpg driver; with no URL the service uses an embedded SQLite
file through aiosqlite, so the same models and migrations run with zero set-up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sqlite_url(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def async_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``): async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def backend_name(url: str) -> str:
    return make_url(url).get_backend_name()


def create_engine(url: str, *, pool_size: int = 10, timeout: float = 5.0) -> AsyncEngine:
    """An engine that fails fast (``timeout`` seconds) while the database is down and reconnects by itself.

    No ``pool_pre_ping`` (a round trip per checkout, on every turn): the first statement that meets a
    dead connection fails as a disconnect, SQLAlchemy then invalidates the whole pool, and the next
    checkout opens fresh connections, so no pod restart is needed once the database is back.
    """
    url = async_url(url)
    kwargs: dict[str, Any] = {}
    if backend_name(url) == "postgresql":
        kwargs.update(
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeout,
            pool_recycle=1800,
            connect_args={"timeout": timeout, "command_timeout": timeout},
        )
    else:
        kwargs["connect_args"] = {"timeout": timeout}
    engine = create_async_engine(url, **kwargs)
    if backend_name(url) == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; foreign keys make deletes cascade as in PostgreSQL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached (answer 503), not a bug (answer 500)."""
    if isinstance(exc, (IntegrityError, DataError, ProgrammingError)):
        return False
    return isinstance(exc, (DBAPIError, PoolTimeoutError, OSError, asyncio.TimeoutError, TimeoutError))
