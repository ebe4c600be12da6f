"""Servers shared by the OpenAI API tests (real subprocesses on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.server import ServerHandle, run_server

MODEL = "chatstream-mock"


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ServerHandle]:
    """Echo mock (the reply is the last user message), a small max_new_tokens cap of 8."""
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--max-new-tokens-cap",
        "8",
        "--mock-params",
        '{"type": "echo", "time_per_token_sec": 0.01}',
    ) as server:
        yield server


@pytest.fixture
def busy_server() -> Iterator[ServerHandle]:
    """One slot, no queue, a slow long reply: a second concurrent request is refused."""
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--num-of-concurrent-executions",
        "1",
        "--max-queue-size",
        "0",
        "--mock-params",
        '{"type": "long", "time_per_token_sec": 0.03}',
    ) as server:
        yield server
