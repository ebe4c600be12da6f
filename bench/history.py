"""History-store benchmark: streams/s with the PostgreSQL handler vs in-memory sessions, in one run.

Starts real ``chatstream serve --mock`` processes (one per store, one at a time) and drives each with
``--clients`` concurrent clients for ``--duration`` seconds. Every client keeps its cookie, so it
holds one growing multi-turn conversation, as a browser does; with the SQL store every turn reads
the conversation back from the database and writes the user message, the reply and its outcome.
Rounds alternate between the stores (memory, postgres, memory, postgres, …) so machine noise hits
both alike; the ratio compares their medians. SQLite (the zero-setup default) is measured too.

PostgreSQL: ``--database-url`` or, by default, a throwaway cluster started from the installed
server binaries (the same one the tests use). Writes JSON to ``bench/results/history.json`` and
prints a table. Target: postgres ≥ 0.9× memory at 32 clients.

    python bench/history.py                 # 32 clients, 3 rounds × 8 s per store
    python bench/history.py --quick         # 1 round × 4 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stats import percentile  # noqa: E402
from tests.fixtures.postgres import start_local_cluster  # noqa: E402
from tests.fixtures.server import run_server  # noqa: E402

EOS = "<::EOS::>"


async def client_loop(url: str, deadline: float, latencies: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        turn = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with client.stream(
                    "POST", "/chat_stream", json={"user_input": f"turn {turn}"}
                ) as response:
                    body = "".join([chunk async for chunk in response.aiter_text()])
                if response.status_code == 200 and body.endswith(EOS):
                    latencies.append(time.perf_counter() - started)
                else:
                    errors.append(f"{response.status_code}: {body[-80:]}")
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
            turn += 1


async def drive(url: str, clients: int, duration: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(client_loop(url, deadline, latencies, errors) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "streams": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": elapsed,
        "streams_per_s": len(latencies) / elapsed,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
    }


def server_args(
    store: str, pace: float, args: argparse.Namespace, database_url: str | None, workdir: Path
) -> list[str]:
    mock = {"type": "round", "time_per_token_sec": pace}
    common = [
        "--mock",
        "--mock-params",
        json.dumps(mock),
        "--num-of-concurrent-executions",
        str(args.clients),
        "--max-queue-size",
        str(args.clients),
        "--log-level",
        "warning",
        "--no-metrics-enabled",
    ]
    if store == "memory":
        return [*common, "--history", "memory"]
    if store == "sqlite":
        return [*common, "--history", "sql", "--sqlite-path", str(workdir / f"bench-{time.time_ns()}.db")]
    return [*common, "--history", "sql", "--database-url", database_url or ""]


def measure(
    store: str, pace: float, args: argparse.Namespace, database_url: str | None, workdir: Path
) -> dict:
    with run_server(*server_args(store, pace, args, database_url, workdir)) as server:
        asyncio.run(drive(server.url, args.clients, 1.0))  # warm-up: connections, pools, first turns
        return asyncio.run(drive(server.url, args.clients, args.duration))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round and store")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--paces",
        default="0.1,0.01",
        help="mock seconds per token, comma-separated: 0.1 is the seed's (and the mock's default) pace; "
        "0.01 makes the 2-core machine CPU-bound so the store's own cost shows",
    )
    parser.add_argument("--database-url", help="PostgreSQL to use (default: a throwaway local cluster)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite store")
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s per store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "history.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 4.0

    workdir = Path(tempfile.mkdtemp(prefix="chatstream-bench-history-"))
    cluster = None
    database_url = args.database_url
    if database_url is None:
        (workdir / "pg").mkdir()
        workdir.chmod(0o755)
        cluster = start_local_cluster(workdir / "pg")
        database_url = cluster.url(cluster.create_database())

    stores = ["memory", "postgres"] + ([] if args.no_sqlite else ["sqlite"])
    paces = [float(p) for p in args.paces.split(",")]
    runs: dict[tuple[float, str], list[dict]] = {(pace, store): [] for pace in paces for store in stores}
    console = Console()
    try:
        for round_number in range(args.rounds):
            for pace in paces:
                for store in stores:
                    result = measure(store, pace, args, database_url, workdir)
                    runs[pace, store].append(result)
                    console.print(
                        f"round {round_number + 1} pace {pace:g}s {store:8s} "
                        f"{result['streams_per_s']:7.1f} streams/s (errors {result['errors']})"
                    )
    finally:
        if cluster is not None:
            cluster.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)

    summary: dict[str, dict[str, dict]] = {}
    for (pace, store), results in runs.items():
        summary.setdefault(f"{pace:g}", {})[store] = {
            "streams_per_s": statistics.median(r["streams_per_s"] for r in results),
            "p50_s": statistics.median(r["p50_s"] or 0 for r in results),
            "p99_s": statistics.median(r["p99_s"] or 0 for r in results),
            "errors": sum(r["errors"] for r in results),
            "rounds": results,
        }
    for per_store in summary.values():
        base = per_store["memory"]["streams_per_s"]
        for data in per_store.values():
            data["ratio_to_memory"] = data["streams_per_s"] / base if base else None

    table = Table(
        title=f"History stores: {args.clients} clients, mock engine, {args.rounds}×{args.duration:g}s"
    )
    for column in ("s/token", "store", "streams/s", "× memory", "p50 latency", "p99 latency", "errors"):
        table.add_column(column, justify="right")
    for pace, per_store in summary.items():
        for store, data in per_store.items():
            table.add_row(
                pace,
                store,
                f"{data['streams_per_s']:.1f}",
                f"{data['ratio_to_memory']:.2f}",
                f"{data['p50_s'] * 1000:.0f} ms",
                f"{data['p99_s'] * 1000:.0f} ms",
                str(data["errors"]),
            )
    console.print(table)
    target = {pace: per_store["postgres"]["ratio_to_memory"] >= 0.9 for pace, per_store in summary.items()}
    for pace, met in target.items():
        console.print(f"pace {pace}s/token: postgres ≥ 0.9× memory {'met' if met else 'NOT met'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"config": config, "results": summary, "target_met": target}, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
