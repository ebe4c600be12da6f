"""The store's plumbing: engine and settings, schema check, readiness, transactions and the ticker.

Every database call goes through :meth:`SqlStore.transaction`, the one place that turns an outage
into 503 ``database_unavailable``; the engine's pool reconnects by itself when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import ChatStreamError, unavailable
from ...settings import Settings
from ..base import RequestHandler
from ..database import backend_name, create_engine, is_unavailable, redact, sqlite_url
from ..migrate import head_revision, upgrade_to_head
from .tables import DATABASE_DOWN

logger = logging.getLogger("chatstream.history")


class SqlStore(RequestHandler):
    """Connection, schema and life cycle of the SQL store; the request methods live in subclasses.

    ``database_url``: an SQLAlchemy URL (``postgresql+asyncpg://…``; ``postgresql://`` is accepted);
    without one, ``settings.database_url``, else the embedded SQLite file ``settings.sqlite_path``.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
        turn_lease_sec: float | None = None,
        write_interval_sec: float | None = None,
    ) -> None:
        settings = settings or Settings()
        self.url = database_url or settings.database_url or sqlite_url(settings.sqlite_path)
        self.backend = backend_name(self.url)
        self.auto_migrate = settings.auto_migrate if auto_migrate is None else auto_migrate
        self.lease = timedelta(seconds=turn_lease_sec or settings.turn_lease_sec)
        self.write_interval = write_interval_sec or settings.history_write_interval_sec
        self.timeout = settings.db_timeout_sec
        self.engine = create_engine(self.url, pool_size=settings.db_pool_size, timeout=self.timeout)
        self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        #: this process's running turns by message id (their progress is written by the ticker)
        #: this process's running turns (``SqlTurn``) by message id, for the lease ticker
        self.active: dict[str, Any] = {}
        self.expected_revision = head_revision()
        self.schema_ok = False
        self._schema_lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        """Migrate (when allowed) and start the ticker. A database that is down does not stop the start:
        requests get 503 and readiness says why until it is back."""
        await self.ensure_schema()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self.tick_forever(), name="chatstream-history-ticker")

    async def shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self.engine.dispose()

    async def check_ready(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"ok": False, "database": self.backend}
        try:
            await asyncio.wait_for(self._ping(), self.timeout)
        except Exception as exc:
            facts["error"] = "database unreachable: " + type(exc).__name__
            return facts
        if not self.schema_ok:
            await self.ensure_schema()
        if not self.schema_ok:
            facts["error"] = "database schema is not at the expected revision: run `chatstream migrate`"
            return facts
        facts["ok"] = True
        return facts

    async def _ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # --- schema -----------------------------------------------------------------------------
    async def ensure_schema(self) -> None:
        """Auto-migrate when enabled; otherwise check that the migration job has run.

        Only until it succeeds once, and one attempt at a time: while the database is down at start,
        concurrent requests wait for the attempt in progress instead of each starting a migration.
        """
        async with self._schema_lock:
            if not self.schema_ok:
                await self._check_schema()

    async def _check_schema(self) -> None:
        try:
            if self.auto_migrate:
                await asyncio.to_thread(upgrade_to_head, self.url, self.timeout)
                self.schema_ok = True
            else:
                self.schema_ok = await self._revision() == self.expected_revision
        except Exception as exc:
            logger.warning("chat history database %s not ready: %s", redact(self.url), exc)
            self.schema_ok = False

    async def _revision(self) -> str | None:
        if self.expected_revision is None:
            return None  # no migrations shipped with this install: nothing to compare against
        async with self.engine.connect() as connection:
            try:
                return await connection.scalar(text("SELECT version_num FROM alembic_version"))
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                return None

    # --- one place that turns database outages into 503 -------------------------------------
    @asynccontextmanager
    async def transaction(self, autocommit: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction (or autocommitting each statement: fewer round trips)."""
        if not self.schema_ok:
            await self.ensure_schema()
            if not self.schema_ok:
                raise unavailable(DATABASE_DOWN, code="database_unavailable")
        try:
            if autocommit:
                async with self.autocommit_engine.connect() as db:
                    yield db
            else:
                async with self.engine.begin() as db:
                    yield db
        except ChatStreamError:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                logger.warning("chat history database unavailable: %s", type(exc).__name__)
                raise unavailable(DATABASE_DOWN, code="database_unavailable") from exc
            raise

    # --- the ticker -------------------------------------------------------------------------
    async def tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.write_interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: the next tick retries
                logger.debug("history ticker: %s", exc)

    async def tick(self) -> None:
        """Write the running turns' progress and renew their leases (the turn writer does it)."""
