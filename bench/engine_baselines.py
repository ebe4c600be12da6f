"""The engine benchmark's baselines: the seed's loop, static ``generate()`` and the decode ceiling.

Each runner returns :func:`summarise`'s figures for one mode; ``bench/engine.py`` runs them beside
the continuous-batching engine (see its docstring for what every mode measures).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.stats import percentile


def summarise(arrivals: list[float], stamps: list[list[float]], started: float, label: str) -> dict[str, Any]:
    """``stamps[i]``: the time of each token of request i (absolute perf_counter seconds)."""
    tokens = sum(len(s) for s in stamps)
    end = max(s[-1] for s in stamps if s)
    ttft = [s[0] - a for a, s in zip(arrivals, stamps, strict=True) if s]
    gaps = [b - a for s in stamps for a, b in zip(s, s[1:], strict=False)]
    return {
        "mode": label,
        "tokens": tokens,
        "seconds": end - started,
        "tokens_per_s": tokens / (end - started),
        "ttft_p50_ms": 1000 * percentile(ttft, 50),
        "ttft_p99_ms": 1000 * percentile(ttft, 99),
        "itl_p50_ms": 1000 * (percentile(gaps, 50) or 0.0),
    }


async def arrive(started: float, offset: float) -> float:
    """Wait for this request's arrival time and return it.

    The arrival is the scheduled time, not the moment this coroutine got to run: a request that
    arrives while the event loop is busy (the seed's blocking forwards) has been waiting since then.
    """
    arrival = started + offset
    await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
    return arrival


async def run_seed(model: Any, prompts: list[list[int]], new: int, offsets: list[float]) -> dict[str, Any]:
    """(a) The seed's design: per-request KV cache, one forward per token, on the event loop."""
    import torch

    from chatstream.engine.transformers import cache_kwarg

    device = next(model.parameters()).device
    cache_name = cache_kwarg(model)
    stamps: list[list[float]] = [[] for _ in prompts]
    arrivals = [0.0] * len(prompts)
    started = time.perf_counter()

    async def one(i: int) -> None:
        arrivals[i] = await arrive(started, offsets[i])
        ids = torch.tensor([prompts[i]], device=device)
        past = None
        for _ in range(new):
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=True, **{cache_name: past})
            past = out.past_key_values
            token = int(torch.argmax(out.logits[0, -1]))
            stamps[i].append(time.perf_counter())
            ids = torch.tensor([[token]], device=device)
            await asyncio.sleep(0)  # let the other requests take their turn

    await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return summarise(arrivals, stamps, started, "seed")


async def run_static(
    model: Any, tokenizer: Any, prompts: list[list[int]], new: int, offsets: list[float]
) -> dict[str, Any]:
    """(b) One static batch through ``model.generate()``, started once every prompt has arrived."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    device = next(model.parameters()).device
    started = time.perf_counter()
    arrivals = [started + o for o in offsets]
    await asyncio.sleep(max(offsets))
    longest = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id or 0
    ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=device)
    steps: list[float] = []

    class Clock(BaseStreamer):
        def put(self, value: Any) -> None:
            steps.append(time.perf_counter())

        def end(self) -> None:
            pass

    def generate() -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=pad,
                streamer=Clock(),
            )

    await asyncio.to_thread(generate)
    token_times = steps[1:]  # the first put() is the prompt
    return summarise(arrivals, [list(token_times) for _ in prompts], started, "static")


async def run_ceiling(model: Any, prompts: list[list[int]], new: int) -> dict[str, Any]:
    """(d) The decode-step ceiling: N rows per batched decode forward and nothing else.

    The engine's own forward (its in-place KV cache) with no prefill, sampling, scheduling or
    padding, repeated over a context of what a stream holds mid-way (prompt + new/2 tokens): what
    any engine on this model and device could reach at best for N streams.
    """
    import torch

    from chatstream.engine import kvcache
    from chatstream.engine.transformers import cache_kwarg

    device = next(model.parameters()).device
    cache_name = cache_kwarg(model)
    width = min(len(p) for p in prompts) + new // 2
    rows = [(p * (width // len(p) + 1))[:width] for p in prompts]
    cache = kvcache.new_cache(model.config.num_hidden_layers)
    steps = min(new, 32)
    stamps: list[float] = []
    with torch.inference_mode():
        out = model(input_ids=torch.tensor(rows, device=device), use_cache=True, **{cache_name: cache})
        token = out.logits[:, -1:].argmax(-1)
        started = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=token, use_cache=True, **{cache_name: cache})
            token = out.logits[:, -1:].argmax(-1)
            stamps.append(time.perf_counter())
    return summarise([started] * len(prompts), [list(stamps) for _ in prompts], started, "ceiling")
