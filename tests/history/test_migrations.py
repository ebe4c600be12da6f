"""Alembic migrations on a real PostgreSQL (and the SQLite default): up, down, up again, and in step
with the models."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatstream.history.database import create_engine
from chatstream.history.migrate import downgrade_to, head_revision, upgrade_to_head
from chatstream.history.models import Base

from .store import query

TABLES = {"conversations", "messages", "feedback"}


def child_env(**extra: str) -> dict[str, str]:
    """A bare environment for a child process that still imports the code under test (PYTHONPATH)."""
    env = {"PATH": "/usr/bin:/bin", **extra}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def pg_tables(url: str) -> set[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def model_drift(url: str) -> list:
    """What autogenerate would change to make the database match the models (empty: in step)."""

    async def run() -> list:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_downgrade_upgrade_on_postgres(pg_database_url):
    upgrade_to_head(pg_database_url)
    assert TABLES <= pg_tables(pg_database_url)
    assert (
        query(pg_database_url, "SELECT version_num FROM alembic_version")[0]["version_num"] == head_revision()
    )
    assert model_drift(pg_database_url) == []

    downgrade_to(pg_database_url, "base")
    assert pg_tables(pg_database_url) & TABLES == set()
    assert query(pg_database_url, "SELECT count(*) AS n FROM alembic_version")[0]["n"] == 0

    upgrade_to_head(pg_database_url)
    assert TABLES <= pg_tables(pg_database_url)
    upgrade_to_head(pg_database_url)  # idempotent
    assert model_drift(pg_database_url) == []


def test_sqlite_migrates_with_the_same_scripts(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    upgrade_to_head(url)
    downgrade_to(url, "base")
    upgrade_to_head(url)
    names = {row["name"] for row in query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLES <= names
    assert model_drift(url) == []


def test_migrate_command_reads_the_service_settings(pg_database_url, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "chatstream", "migrate"],
        env=child_env(CHATSTREAM_DATABASE_URL=pg_database_url),
        cwd=tmp_path,  # no alembic.ini here: found next to the source checkout
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        query(pg_database_url, "SELECT version_num FROM alembic_version")[0]["version_num"] == head_revision()
    )


def test_plain_alembic_uses_the_same_settings(pg_database_url):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = child_env(CHATSTREAM_DATABASE_URL=pg_database_url.replace("+asyncpg", ""))
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert TABLES <= pg_tables(pg_database_url)
