"""Overload benchmark: 1×, 5× and 20× capacity against a real ``chatstream serve`` with a slow mock.

Loopback only and bounded (``--duration`` seconds and ``--max-requests`` per level). Starts its own
server (mock engine, ``--slots`` running + ``--queue`` waiting, 429 on overload) with the SQL history
store on SQLite (or ``--database-url``), then for each level sends requests open-loop at
``level × capacity`` requests/s, where capacity = slots / reply time (what the server can complete
per second). Every request carries a unique marker in its user message.

Reports per level: completed, rejected, 5xx, other errors, p50/p99 latency of completed (whole
stream) and rejected requests; whether ``chatstream_requests_total{outcome="rejected"|"success"}``
moved by exactly what the clients saw; and whether the store holds exactly the admitted requests'
user messages (every admitted marker present, no rejected one). Writes JSON and prints a table.

    python bench/overload.py                     # defaults: 2 slots, 2 queue places, 3 s per level
    python bench/overload.py --database-url postgresql+asyncpg://user:pw@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import uuid
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stats import percentile  # noqa: E402
from tests.fixtures.server import run_server  # noqa: E402

REQUESTS_TOTAL = re.compile(r'^chatstream_requests_total\{[^}]*outcome="(\w+)"[^}]*\}\s+([0-9.e+]+)$', re.M)


def scrape_outcomes(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    totals: dict[str, float] = {}
    for outcome, value in REQUESTS_TOTAL.findall(text):
        totals[outcome] = totals.get(outcome, 0.0) + float(value)
    return totals


async def one_request(client: httpx.AsyncClient, marker: str) -> dict:
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/chat_stream", json={"user_input": marker}) as response:
            body = (await response.aread()).decode("utf-8", "replace")
            status = response.status_code
    except httpx.HTTPError as exc:
        return {"marker": marker, "kind": "error", "error": type(exc).__name__, "seconds": None}
    seconds = time.perf_counter() - started
    if status == 429 or (status == 200 and body.startswith('{"error":"too_many_requests"')):
        kind = "rejected"
    elif status >= 500:
        kind = "5xx"
    elif status == 200 and body.endswith("<::EOS::>") and '"generation_failed"' not in body:
        kind = "completed"
    else:
        kind = "other"
    return {"marker": marker, "kind": kind, "status": status, "seconds": seconds}


async def run_level(url: str, rate: float, duration: float, max_requests: int, prefix: str) -> list[dict]:
    """Open loop: one request every 1/rate s for ``duration`` s, each on its own connection/session."""
    count = min(max_requests, max(1, int(rate * duration)))
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # each request: new session
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, cookies=no_cookies, limits=limits) as client:
        start = time.perf_counter()
        tasks = []
        for index in range(count):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_request(client, f"{prefix}-{index:05d}")))
        return list(await asyncio.gather(*tasks))


async def markers_in_store(database_url: str, prefix: str) -> set[str]:
    """Every marker found in any text column of any table (schema-agnostic on purpose)."""
    from sqlalchemy import MetaData, String, Text, select
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    found: set[str] = set()
    pattern = re.compile(re.escape(prefix) + r"-\d{5}")
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            for table in metadata.tables.values():
                for column in table.columns:
                    if not isinstance(column.type, (String, Text)):
                        continue
                    rows = await conn.execute(select(column).where(column.like(f"%{prefix}-%")))
                    for (value,) in rows:
                        found.update(pattern.findall(str(value)))
    finally:
        await engine.dispose()
    return found


def wait_idle(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        load = httpx.get(url + "/get_load", timeout=5).json()
        if load["processing"] == 0 and load["waiting"] == 0:
            return
        time.sleep(0.1)
    raise TimeoutError("server did not become idle")


def summarize(level: float, rate: float, results: list[dict], metric_delta: dict, store: dict) -> dict:
    by_kind: dict[str, list[dict]] = {}
    for item in results:
        by_kind.setdefault(item["kind"], []).append(item)

    def latency(kind: str) -> dict:
        seconds = [r["seconds"] for r in by_kind.get(kind, []) if r["seconds"] is not None]
        return {
            "p50_ms": None if not seconds else round(statistics.median(seconds) * 1000, 1),
            "p99_ms": None if not seconds else round(percentile(seconds, 99) * 1000, 1),
            "max_ms": None if not seconds else round(max(seconds) * 1000, 1),
        }

    counts = {kind: len(by_kind.get(kind, [])) for kind in ("completed", "rejected", "5xx", "error", "other")}
    return {
        "level": level,
        "rate_rps": round(rate, 2),
        "sent": len(results),
        **counts,
        "completed_latency": latency("completed"),
        "rejected_latency": latency("rejected"),
        "metrics_delta": metric_delta,
        "metrics_match": metric_delta.get("rejected") == counts["rejected"]
        and metric_delta.get("success") == counts["completed"],
        "store": store,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,5,20", help="multiples of capacity")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--queue", type=int, default=2)
    parser.add_argument("--time-per-token", type=float, default=0.03, help="slow mock pace (s/token)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per level")
    parser.add_argument("--max-requests", type=int, default=600, help="per level")
    parser.add_argument("--history", default="sql", choices=["sql", "memory"])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "overload.json"))
    args = parser.parse_args(argv)

    workdir = Path("/tmp") / f"chatstream-overload-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    mock = {"type": "round", "time_per_token_sec": args.time_per_token}
    cli = [
        "--mock",
        "--mock-params",
        json.dumps(mock),
        "--num-of-concurrent-executions",
        str(args.slots),
        "--max-queue-size",
        str(args.queue),
        "--too-many-request-as-http-error",
        "--history",
        args.history,
        "--log-level",
        "warning",
    ]
    if args.history == "sql":
        cli += ["--database-url", database_url]

    run_id = uuid.uuid4().hex[:8]
    report: dict = {"config": {**vars(args), "database_url": database_url.split("@")[-1]}, "levels": []}
    with run_server(*cli, log_dir=workdir) as server:
        # Capacity: measure one reply's duration on the idle server (the mock's pace, not a guess).
        probe = httpx.post(server.url + "/chat_stream", json={"user_input": "warm-up"}, timeout=60)
        assert probe.status_code == 200, probe.text
        started = time.perf_counter()
        httpx.post(server.url + "/chat_stream", json={"user_input": "probe"}, timeout=60)
        reply_seconds = time.perf_counter() - started
        capacity = args.slots / reply_seconds
        report["capacity_rps"] = round(capacity, 2)
        report["reply_seconds"] = round(reply_seconds, 3)

        for level in [float(x) for x in args.levels.split(",")]:
            wait_idle(server.url)
            prefix = f"ovl{run_id}x{int(level)}"
            before = scrape_outcomes(server.url)
            results = asyncio.run(
                run_level(server.url, capacity * level, args.duration, args.max_requests, prefix)
            )
            wait_idle(server.url)
            after = scrape_outcomes(server.url)
            delta = {k: int(after.get(k, 0) - before.get(k, 0)) for k in after}
            store: dict = {"checked": False}
            if args.history == "sql":
                admitted = {
                    r["marker"] for r in results if r["kind"] in ("completed", "5xx", "other", "error")
                }
                rejected = {r["marker"] for r in results if r["kind"] == "rejected"}
                found = asyncio.run(markers_in_store(database_url, prefix))
                store = {
                    "checked": True,
                    "admitted": len(admitted),
                    "found": len(found),
                    "admitted_missing": len(admitted - found),
                    "rejected_present": len(rejected & found),
                    "match": found == admitted,
                }
            report["levels"].append(summarize(level, capacity * level, results, delta, store))
        report["server_log_errors"] = server.log().count("ERROR")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nJSON: {out}")
    ok = all(
        lvl["5xx"] == 0
        and lvl["error"] == 0
        and lvl["metrics_match"]
        and (lvl["store"].get("match", True))
        and (lvl["rejected_latency"]["p99_ms"] or 0) < 50
        for lvl in report["levels"]
    )
    return 0 if ok else 1


def print_table(report: dict) -> None:
    print(
        f"capacity ≈ {report['capacity_rps']} req/s "
        f"({report['config']['slots']} slots, {report['config']['queue']} queue, "
        f"reply {report['reply_seconds']} s)"
    )
    header = (
        f"{'load':>5} {'req/s':>7} {'sent':>5} {'done':>5} {'rej':>5} {'5xx':>4} {'err':>4} "
        f"{'done p50':>9} {'done p99':>9} {'rej p50':>8} {'rej p99':>8} {'metrics':>8} {'store':>12}"
    )
    print(header)
    print("-" * len(header))
    for lvl in report["levels"]:
        store = lvl["store"]
        store_text = (
            f"{store['found']}/{store['admitted']} {'ok' if store['match'] else 'BAD'}"
            if store.get("checked")
            else "n/a"
        )
        done, rej = lvl["completed_latency"], lvl["rejected_latency"]
        print(
            f"{lvl['level']:>4.0f}× {lvl['rate_rps']:>7.1f} {lvl['sent']:>5} {lvl['completed']:>5} "
            f"{lvl['rejected']:>5} {lvl['5xx']:>4} {lvl['error'] + lvl['other']:>4} "
            f"{_ms(done['p50_ms']):>9} {_ms(done['p99_ms']):>9} "
            f"{_ms(rej['p50_ms']):>8} {_ms(rej['p99_ms']):>8} "
            f"{'ok' if lvl['metrics_match'] else 'BAD':>8} {store_text:>12}"
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


if __name__ == "__main__":
    raise SystemExit(main())
