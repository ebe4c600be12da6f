"""The seed's quick-start runs unchanged; the queue admits exactly N+M; disconnects free places."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatstream.engine.mock import ROUND_REPLIES
from tests.fixtures.server import run_server

from .helpers import chat, last_text

HERE = Path(__file__).parent
UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "--app-dir",
    str(HERE),
    "quickstart_app:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
]


def quickstart(tmp_path: Path, **env: str):
    log = tmp_path / "callbacks.log"
    return run_server(command=UVICORN, env={"CALLBACK_LOG": str(log), **env}, ready_path="/get_load"), log


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met in time: {predicate.__doc__ or ''}")


def test_seed_quickstart_with_fastsession_runs_multi_turn(tmp_path):
    server_cm, log = quickstart(tmp_path)
    with server_cm as server, server.client() as client:
        first = chat(client, "hello")
        second = chat(client, "again")
        assert first.status_code == second.status_code == 200
        assert last_text(first.text) == ROUND_REPLIES[0]
        assert last_text(second.text) == ROUND_REPLIES[1]  # the session kept the conversation
        wait_for(lambda: log.read_text().splitlines() == ["success", "success"])


async def _burst(url: str, count: int) -> list[tuple[int, str]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(i: int) -> tuple[int, str]:
            response = await client.post("/chat_stream", json={"user_input": f"u{i}"})
            return response.status_code, response.text

        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.mark.parametrize(("as_http_error", "status"), [(False, 200), (True, 429)])
def test_burst_of_n_plus_m_admitted_and_the_next_refused(tmp_path, as_http_error, status):
    server_cm, _ = quickstart(
        tmp_path, QS_N="2", QS_M="3", QS_MOCK="long", QS_PACE="0.03", QS_429="1" if as_http_error else "0"
    )
    with server_cm as server:
        results = asyncio.run(_burst(server.url, 6))
    refused = [r for r in results if '"too_many_requests"' in r[1] and "<::EOS::>" not in r[1]]
    served = [r for r in results if r[1].endswith("<::EOS::>")]
    assert len(served) == 5 and len(refused) == 1
    assert refused[0][0] == status


def test_rejection_headers_and_fifo_start_order(tmp_path):
    args = (
        "--mock",
        "--history",
        "memory",
        "--num-of-concurrent-executions",
        "1",
        "--max-queue-size",
        "3",
        "--too-many-request-as-http-error",
        "--mock-params",
        '{"type": "long", "time_per_token_sec": 0.005}',
    )
    with run_server(*args) as server:

        async def scenario() -> tuple[list[int], httpx.Response]:
            order: list[int] = []
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

                async def one(i: int) -> None:
                    async with client.stream("POST", "/chat_stream", json={"user_input": str(i)}) as response:
                        first = True
                        async for _ in response.aiter_text():
                            if first:
                                order.append(i)
                                first = False

                tasks = []
                for i in range(4):
                    tasks.append(asyncio.create_task(one(i)))
                    await asyncio.sleep(0.05)  # arrive in order 0, 1, 2, 3
                refused = await client.post("/chat_stream", json={"user_input": "late"})
                await asyncio.gather(*tasks)
            return order, refused

        order, refused = asyncio.run(scenario())
    assert order == [0, 1, 2, 3]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "too_many_requests"


def test_disconnects_free_places_and_the_callback_says_which(tmp_path):
    server_cm, log = quickstart(tmp_path, QS_N="1", QS_M="1", QS_MOCK="long", QS_PACE="0.05")
    with server_cm as server:
        load = lambda: httpx.get(server.url + "/get_load").json()  # noqa: E731
        with (
            httpx.Client(base_url=server.url, timeout=30) as a,
            httpx.Client(base_url=server.url, timeout=30) as b,
        ):
            with a.stream("POST", "/chat_stream", json={"user_input": "a"}) as streaming:
                chunks = streaming.iter_text()  # keep the iterator: dropping it closes the response
                next(chunks)  # A is streaming and holds the only slot
                with b.stream("POST", "/chat_stream", json={"user_input": "b"}):
                    wait_for(lambda: load()["waiting"] == 1)  # B waits in the only queue place
                # B left while waiting: its place is free again at once
                wait_for(lambda: load()["waiting"] == 0)
            # A left while streaming: the slot is free again
            wait_for(lambda: load()["processing"] == 0)
            after = chat(b, "c")
            assert after.status_code == 200 and after.text.endswith("<::EOS::>")
        wait_for(
            lambda: (
                sorted(log.read_text().splitlines())
                == sorted(
                    ["client_disconnected_before_streaming", "client_disconnected_while_streaming", "success"]
                )
            )
        )
