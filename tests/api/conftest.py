"""Servers shared by the OpenAI API tests (real subprocesses on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager

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


def one_slot_server(
    queue: int, time_per_token_sec: float, *extra: str
) -> AbstractContextManager[ServerHandle]:
    """One generation slot, ``queue`` places, the long mock reply at the given pace."""
    mock = json.dumps({"type": "long", "time_per_token_sec": time_per_token_sec})
    args = ["--num-of-concurrent-executions", "1", "--max-queue-size", str(queue), *extra]
    return run_server("--mock", "--history", "memory", *args, "--mock-params", mock)


@pytest.fixture
def busy_server() -> Iterator[ServerHandle]:
    """One slot, no queue, a slow long reply: a second concurrent request is refused."""
    with one_slot_server(0, 0.03) as server:
        yield server


@pytest.fixture
def keepalive_server() -> Iterator[ServerHandle]:
    """One slot, one queue place, keep-alive comments after 0.2 s without an event."""
    with one_slot_server(1, 0.02, "--sse-keepalive-sec", "0.2") as server:
        yield server
