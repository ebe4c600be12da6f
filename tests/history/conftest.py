"""Servers for the history tests: mock engine, SQL history on the test PostgreSQL, short leases."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from tests.fixtures.server import ServerHandle, run_server

KEY_A = "history-key-a-0123456789abcdefghij"
KEY_B = "history-key-b-0123456789abcdefghij"
SECRET = "history-test-secret-0123456789abcdef"


def sql_server_args(database_url: str, *extra: str, mock: dict | None = None) -> list[str]:
    params = mock or {"type": "round", "time_per_token_sec": 0.005}
    return [
        "--mock",
        "--history",
        "sql",
        "--database-url",
        database_url,
        "--mock-params",
        json.dumps(params),
        "--turn-lease-sec",
        "2",
        "--history-write-interval-sec",
        "0.2",
        *extra,
    ]


@contextlib.contextmanager
def sql_server(database_url: str, *extra: str, mock: dict | None = None, env: dict | None = None):
    with run_server(
        *sql_server_args(database_url, *extra, mock=mock),
        env={"CHATSTREAM_SESSION_SECRET": SECRET, **(env or {})},
    ) as server:
        yield server


@pytest.fixture
def pg_server(pg_database_url: str) -> Iterator[ServerHandle]:
    with sql_server(pg_database_url) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
