"""End-to-end benchmark: N streams through ``chatstream serve`` (OpenAI API) vs the in-process engine.

Starts ``chatstream serve`` on the benchmark model (see ``bench/engine.py``) as a subprocess on a
loopback port with ``--num-of-concurrent-executions N``, sends N streaming chat completions at once
(~100-token prompts, 128 new tokens, greedy) and, while they run, probes ``GET /healthz`` from a
separate thread every ``--probe-ms``. Reports aggregate tokens/s, p50/p99 time to first text, p50
gap between streamed chunks, ``/healthz`` p50/p99/max latency, and the ratio to the in-process engine
measured in fresh processes with the same N (``bench/engine.py --one``).

Both sides are measured warm and alike: the server gets one full-size warm-up round (N streams, a
few tokens each) and then ``--rounds`` measured rounds; after each of them (the server idle) the
in-process engine runs once, in a fresh process after its own full-size warm-up, so the two sides
alternate and a drift in the machine's speed reaches both alike. Each side reports its median
round; the ratio is the median of the per-round ratios (each HTTP round over the in-process run
right after it). Writes JSON to ``bench/results/`` and prints a table.

    python bench/serve.py                # N = 1, 16, 32
    python bench/serve.py --quick        # N = 4, 32 new tokens
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engine import (  # noqa: E402
    RESULTS,
    ensure_model,
    make_prompts,
    median_run,
    paired_ratio,
    run_fresh,
)
from bench.provenance import code_under_test  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.fixtures.server import run_server  # noqa: E402


async def one_stream(client: httpx.AsyncClient, model: str, text: str, new: int) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": new,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sent = time.perf_counter()
    chunks: list[float] = []
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("usage"):
                tokens = data["usage"]["completion_tokens"]
            if any(choice.get("delta", {}).get("content") for choice in data.get("choices", [])):
                chunks.append(time.perf_counter())
    return {"sent": sent, "chunks": chunks, "tokens": tokens}


def probe(url: str, every: float, ready: threading.Event, stop: threading.Event, out: list[float]) -> None:
    """``/healthz`` latency from its own thread and connection, so the streams' parsing does not skew it.

    Sets ``ready`` once its connection is open and probes at least once, however short the round.
    """
    with httpx.Client(base_url=url, timeout=10) as client:
        client.get("/healthz").raise_for_status()  # connect before the round, not inside it
        ready.set()
        while True:
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            out.append(time.perf_counter() - started)
            if stop.wait(every):
                return


async def run_round(
    client: httpx.AsyncClient, url: str, model: str, texts: list[str], new: int, probe_every: float
) -> dict[str, Any]:
    """N streams at once while a separate thread probes ``/healthz``."""
    latencies: list[float] = []
    ready, stop = threading.Event(), threading.Event()
    prober = threading.Thread(target=probe, args=(url, probe_every, ready, stop, latencies), daemon=True)
    prober.start()
    await asyncio.to_thread(ready.wait, 30)
    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(one_stream(client, model, t, new) for t in texts))
    finally:
        stop.set()
        prober.join()
    end = max(r["chunks"][-1] for r in results if r["chunks"])
    tokens = sum(r["tokens"] for r in results)
    ttft = [r["chunks"][0] - r["sent"] for r in results if r["chunks"]]
    gaps = [b - a for r in results for a, b in zip(r["chunks"], r["chunks"][1:], strict=False)]
    return {
        "n": len(texts),
        "tokens": tokens,
        "tokens_per_s": tokens / (end - started),
        "ttft_p50_ms": 1000 * percentile(ttft, 50),
        "ttft_p99_ms": 1000 * percentile(ttft, 99),
        "chunk_gap_p50_ms": 1000 * (percentile(gaps, 50) or 0.0),
        "healthz_probes": len(latencies),
        "healthz_p50_ms": 1000 * percentile(latencies, 50),
        "healthz_p99_ms": 1000 * percentile(latencies, 99),
        "healthz_max_ms": 1000 * max(latencies),
    }


async def run_level(
    url: str,
    texts: list[str],
    new: int,
    probe_every: float,
    rounds: int,
    between: Callable[[], None] = lambda: None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A full-size warm-up round, then ``rounds`` measured ones: the median-throughput round and
    every round in the order run.

    ``between`` runs (in a thread, the server idle) after each measured round: the in-process side's
    run, so both sides alternate and a drift in the machine's speed reaches both alike.
    """
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        model = (await client.get("/v1/models")).json()["data"][0]["id"]
        await asyncio.gather(*(one_stream(client, model, t, 4) for t in texts))  # warm-up
        runs = []
        for _ in range(rounds):
            runs.append(await run_round(client, url, model, texts, new, probe_every))
            await asyncio.to_thread(between)
    result = median_run(runs)
    result["healthz_p99_ms_worst"] = max(r["healthz_p99_ms"] for r in runs)
    return result, runs


def in_process(model_dir: Path, n: int, new: int, prompt_tokens: int, runs: list[dict[str, Any]]) -> None:
    """One run of the engine alone with the same N, in a fresh process (``bench/engine.py``)."""
    passthrough = [f"--model={model_dir}", f"--new-tokens={new}", f"--prompt-tokens={prompt_tokens}"]
    runs.append(run_fresh(passthrough, f"engine,at_once,{n}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--n", default="1,16,32")
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--probe-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per side; the median is kept")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.new_tokens, args.rounds = "4", 32, 1
    code = code_under_test()  # before the runs: a warning about foreign code should not wait for them

    from rich.console import Console
    from rich.table import Table
    from transformers import AutoTokenizer

    model_dir = ensure_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    levels = [int(x) for x in args.n.split(",")]
    # the chat template adds a few tokens around the user message
    prompts = make_prompts(tokenizer, max(levels), args.prompt_tokens - 6)
    texts = [tokenizer.decode(p) for p in prompts]
    # the client holds transformers too: keep its full GC passes (docs/engine.md) out of the /healthz timings
    gc.collect()
    gc.freeze()
    rows = []
    for n in levels:
        server_args = [
            "--model", str(model_dir),
            "--history", "memory",
            "--num-of-concurrent-executions", str(n),
            "--max-queue-size", str(n),
            "--max-new-tokens", str(args.new_tokens),
            "--context-len", "4096",
            "--log-level", "warning",
        ]  # fmt: skip
        engine_runs: list[dict[str, Any]] = []
        engine_run = functools.partial(
            in_process, model_dir, n, args.new_tokens, args.prompt_tokens, engine_runs
        )
        probe_every = args.probe_ms / 1000
        with run_server(*server_args, timeout=180) as server:
            level = run_level(server.url, texts[:n], args.new_tokens, probe_every, args.rounds, engine_run)
            row, http_runs = asyncio.run(level)
        engine = median_run(engine_runs)
        row["in_process_runs_tokens_per_s"] = engine["runs_tokens_per_s"]
        row["in_process_tokens_per_s"] = engine["tokens_per_s"]
        row["ratio_to_in_process"] = paired_ratio(http_runs, engine_runs)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    table = Table(title=f"chatstream serve — {args.new_tokens} new tokens per stream")
    columns = ["N", "tok/s", "in-process tok/s", "× in-process", "TTFT p50", "TTFT p99", "gap p50"]
    for column in [*columns, "/healthz p50", "/healthz p99", "/healthz max"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["n"]),
            f"{r['tokens_per_s']:.1f}",
            f"{r['in_process_tokens_per_s']:.1f}",
            f"{r['ratio_to_in_process']:.2f}",
            f"{r['ttft_p50_ms']:.0f} ms",
            f"{r['ttft_p99_ms']:.0f} ms",
            f"{r['chunk_gap_p50_ms']:.1f} ms",
            f"{r['healthz_p50_ms']:.1f} ms",
            f"{r['healthz_p99_ms']:.1f} ms",
            f"{r['healthz_max_ms']:.1f} ms",
        )
    Console().print(table)
    out = args.out or RESULTS / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "serve",
        "code": code,
        "model": str(model_dir),
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
        "results": rows,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
