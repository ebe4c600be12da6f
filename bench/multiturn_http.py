"""The HTTP side of ``bench/multiturn.py``: the same conversations through ``chatstream serve``.

The server runs on the benchmark model with the same slots, chunk budget and prompt class, its
prefix cache off (``http-off``: ``--prefix-cache-tokens 0``) or on (``http-on``); the client keeps
each conversation's messages and sends them all every turn (OpenAI chat completions, streamed). The
hit rate comes from the server's ``chatstream_prefix_cache_{queries,hits}_total`` counters, read once
every conversation has finished turn 1 (the turns 2+ share) and at the end; the server's peak RSS is
sampled from its process while the load runs.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import httpx
from bench.multiturn_workload import TurnResult, http_turn, summarise, system_prompt, user_message
from tests.fixtures.server import run_server

QUERIES = "chatstream_prefix_cache_queries_total"
HITS = "chatstream_prefix_cache_hits_total"


def server_args(args: argparse.Namespace, mode: str, k: int) -> list[str]:
    cli = [
        "--model", str(args.model),
        "--device", args.device,
        "--dtype", args.dtype,
        "--history", "memory",
        "--num-of-concurrent-executions", str(args.slots),
        "--max-queue-size", str(k),
        "--max-new-tokens", str(args.new_tokens),
        "--context-len", "4096",
        "--prefill-chunk-tokens", str(args.prefill_chunk_tokens),
        "--chat-prompt-clazz", args.prompt,
        "--log-level", "warning",
    ]  # fmt: skip
    if mode == "http-off":
        cli += ["--prefix-cache-tokens", "0"]
    elif args.prefix_cache_tokens is not None:
        cli += ["--prefix-cache-tokens", str(args.prefix_cache_tokens)]
    return cli


def counters(client: httpx.Client) -> dict[str, float]:
    """The prefix-cache counters summed over their labels (0 where the server has none)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {QUERIES: 0.0, HITS: 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.wait(0.1):
        peak[0] = max(peak[0], process.memory_info().rss / 2**20)


async def converse(url: str, k: int, t: int, system: str, args: argparse.Namespace) -> dict[str, Any]:
    """K conversations, T turns; all finish turn 1 before turns 2+ run free (the counters are read)."""
    results: list[list[TurnResult]] = [[] for _ in range(k)]
    histories = [[{"role": "system", "content": system}] if system else [] for _ in range(k)]
    marks: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        model = (await client.get("/v1/models")).json()["data"][0]["id"]

        async def turns(c: int, first: int, last: int) -> None:
            for turn in range(first, last):
                histories[c].append({"role": "user", "content": user_message(c, turn, args.words)})
                result = await http_turn(client, model, histories[c], args.new_tokens)
                histories[c].append({"role": "assistant", "content": result.text})
                results[c].append(result)

        with httpx.Client(base_url=url, timeout=30) as sync:
            marks.append(await asyncio.to_thread(counters, sync))
            started = time.perf_counter()
            await asyncio.gather(*(turns(c, 0, 1) for c in range(k)))
            marks.append(await asyncio.to_thread(counters, sync))
            await asyncio.gather(*(turns(c, 1, t) for c in range(k)))
            end = time.perf_counter()
            marks.append(await asyncio.to_thread(counters, sync))
    return {"results": results, "started": started, "end": end, "marks": marks}


def run_http(args: argparse.Namespace, mode: str, k: int, t: int, system_tokens: int) -> dict[str, Any]:
    """One run of ``mode`` (``http-off`` / ``http-on``) against a fresh server, after a warm-up."""
    from transformers import AutoTokenizer

    system = system_prompt(AutoTokenizer.from_pretrained(args.model), system_tokens)
    with run_server(*server_args(args, mode, k), timeout=300) as server:
        asyncio.run(converse(server.url, min(k, args.slots), 1, "", warm_up(args)))
        stop, peak = threading.Event(), [0.0]
        sampler = threading.Thread(target=sample_rss, args=(server.process.pid, stop, peak), daemon=True)
        sampler.start()
        try:
            run = asyncio.run(converse(server.url, k, t, system, args))
        finally:
            stop.set()
            sampler.join()
    result = summarise(run["results"], run["started"], run["end"])
    before, after_first, after_all = run["marks"]
    result["hit_rate_turns_2plus"] = hit_rate(after_first, after_all)
    result["hit_rate_all"] = hit_rate(before, after_all)
    first = next(r for conv in run["results"] for r in conv)
    result.update(mode=mode, k=k, t=t, system_tokens=system_tokens, rss_peak_mb=peak[0])
    result.update(dtype=args.dtype, parameters=0, prompt_tokens_turn1=first.prompt_tokens)
    return result


def hit_rate(before: dict[str, float], after: dict[str, float]) -> float:
    queries = after[QUERIES] - before[QUERIES]
    return (after[HITS] - before[HITS]) / queries if queries else 0.0


def warm_up(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "new_tokens": 4, "words": 8})
