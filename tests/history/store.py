"""Read the history store directly (asyncpg / sqlite3), to check what the service really wrote."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg

from tests.fixtures.postgres import plain_url

MESSAGES = (
    "SELECT c.id AS conversation_id, c.owner, m.ordinal, m.role, m.text, m.status, m.message_id "
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY c.created_at, m.ordinal"
)


def query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows as dicts from PostgreSQL (asyncpg URL) or an SQLite file (``sqlite+aiosqlite:///path``)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        with sqlite3.connect(path) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql.replace("$1", "?"), args)]

    async def run() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(plain_url(url), timeout=10)
        try:
            return [dict(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    return asyncio.run(run())


def messages(url: str, conversation_id: str | None = None) -> list[dict[str, Any]]:
    rows = query(url, MESSAGES)
    if conversation_id is not None:
        rows = [row for row in rows if row["conversation_id"] == conversation_id]
    return rows


def conversation_ids(url: str) -> list[str]:
    return [row["id"] for row in query(url, "SELECT id FROM conversations ORDER BY created_at")]
