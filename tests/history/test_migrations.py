"""Alembic migrations on a real PostgreSQL (and the SQLite default): up, down, up again, and in step
with the models."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatstream.history.database import create_engine
from chatstream.history.migrate import alembic_config, downgrade_to, head_revision, upgrade_to_head
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


def conversation_columns(url: str) -> set[str]:
    if url.startswith("sqlite"):
        return {row["name"] for row in query(url, "PRAGMA table_info(conversations)")}
    sql = "SELECT column_name FROM information_schema.columns WHERE table_name = 'conversations'"
    return {row["column_name"] for row in query(url, sql)}


ROWS_0001 = [
    "INSERT INTO conversations (id, owner, session_key, title, prompt_class, system_text, generation_params,"
    " created_at, updated_at) VALUES ('c1', 'o', NULL, 't', 'SomePrompt', NULL, '{}',"
    " '2026-12-01 10:00:00', '2026-12-01 10:00:00')",
    "INSERT INTO messages (conversation_id, ordinal, role, text, message_id, status, created_at, updated_at)"
    " VALUES ('c1', 0, 'assistant', 'hi', 'm1', 'complete', '2026-12-01 10:00:00', '2026-12-01 10:00:00')",
    "INSERT INTO feedback (message_id, is_like, created_at, updated_at)"
    " VALUES ('m1', true, '2026-12-01 10:00:00', '2026-12-01 10:00:00')",
]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_prompt_class_is_dropped_and_restored_keeping_every_row(backend, request, tmp_path):
    """0002 drops the unused column in place: no table rebuild, so no cascade deletes the messages."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    command.upgrade(alembic_config(url), "0001")
    for statement in ROWS_0001:
        query(url, statement)
    counts = "SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m, "
    counts += "(SELECT count(*) FROM feedback) AS f"
    assert query(url, counts) == [{"c": 1, "m": 1, "f": 1}]

    upgrade_to_head(url)
    assert "prompt_class" not in conversation_columns(url)
    assert query(url, counts) == [{"c": 1, "m": 1, "f": 1}]
    assert query(url, "SELECT title FROM conversations") == [{"title": "t"}]

    downgrade_to(url, "0001")
    assert "prompt_class" in conversation_columns(url)
    assert query(url, counts) == [{"c": 1, "m": 1, "f": 1}]
    assert query(url, "SELECT prompt_class FROM conversations") == [{"prompt_class": ""}]
    upgrade_to_head(url)
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
