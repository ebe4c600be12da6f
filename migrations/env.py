"""Alembic environment: the URL comes from chatstream's Settings, migrations run on the async engine.

``chatstream migrate`` passes the URL it resolved through ``config.attributes["database_url"]``;
a plain ``alembic upgrade head`` falls back to the same ``Settings`` the service reads. On
PostgreSQL an advisory lock serialises replicas that migrate at the same time.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from chatstream.history.database import async_url, create_engine, sqlite_url
from chatstream.history.models import Base
from chatstream.settings import Settings

#: arbitrary constant naming chatstream's migration lock in pg_advisory_lock
MIGRATION_LOCK_ID = 7_405_221_903

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return async_url(url)
    settings = Settings()
    return async_url(settings.database_url or sqlite_url(settings.sqlite_path))


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the DDL instead of running it."""
    context.configure(
        url=database_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()  # the lock belongs to the session; Alembic runs its own transactions
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()


async def run_migrations_online() -> None:
    url = database_url()
    engine = create_engine(url, pool_size=1, timeout=float(config.attributes.get("timeout", 10.0)))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
