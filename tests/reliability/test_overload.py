"""20× capacity against a real server: no 5xx, every refusal immediate and counted, admitted ones served."""

from __future__ import annotations

import asyncio
import json
import re
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from tests.fixtures.server import run_server
from tests.history.store import messages

SLOTS, QUEUE = 2, 2
REJECTED = re.compile(r'chatstream_requests_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)')


def outcomes(url: str) -> dict[str, float]:
    return {k: float(v) for k, v in REJECTED.findall(httpx.get(url + "/metrics").text)}


async def burst(url: str, count: int, spacing: float) -> list[tuple[int, float, str]]:
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    limits = httpx.Limits(max_connections=count + 5, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, cookies=no_cookies, limits=limits) as client:

        async def one(index: int) -> tuple[int, float, str]:
            await asyncio.sleep(index * spacing)
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await client.post("/chat_stream", json={"user_input": f"load {index}"})
            return response.status_code, loop.time() - started, response.text

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def test_twenty_times_capacity(tmp_path, pg_database_url):
    mock = json.dumps({"type": "round", "time_per_token_sec": 0.03})  # ~0.5 s per reply
    with run_server(
        "--mock",
        "--history",
        "sql",
        "--database-url",
        pg_database_url,
        "--mock-params",
        mock,
        "--num-of-concurrent-executions",
        str(SLOTS),
        "--max-queue-size",
        str(QUEUE),
        "--too-many-request-as-http-error",
        log_dir=tmp_path,
    ) as server:
        before = outcomes(server.url)
        # capacity ≈ 2 slots / 0.5 s = 4 req/s; 20× = 80 req/s for 2 s
        results = asyncio.run(burst(server.url, 160, 1 / 80))
        after = outcomes(server.url)

    statuses = [status for status, _, _ in results]
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert set(statuses) <= {200, 429}
    rejected = sorted(seconds for status, seconds, _ in results if status == 429)
    completed = [text for status, _, text in results if status == 200]
    assert len(rejected) > 100 and len(completed) >= SLOTS + QUEUE
    assert all(text.endswith("<::EOS::>") for text in completed)
    # A refusal never waits for a slot: every one comes back sooner than the quickest admitted reply
    # (each streams ~0.5 s by construction). Its latency figures are bench/overload.py's job.
    quickest_reply = min(seconds for status, seconds, _ in results if status == 200)
    assert rejected[-1] < quickest_reply, (rejected[-1], quickest_reply)
    assert after["rejected"] - before["rejected"] == len(rejected)
    assert after["success"] - before["success"] == len(completed)
    # the store holds exactly the admitted turns: each user message once, with its complete reply
    admitted = sorted(f"load {i}" for i, (status, _, _) in enumerate(results) if status == 200)
    rows = messages(pg_database_url)
    assert sorted(r["text"] for r in rows if r["role"] == "user") == admitted
    assert [r["status"] for r in rows if r["role"] == "assistant"] == ["complete"] * len(admitted)
