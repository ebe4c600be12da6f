"""Engine benchmark: the seed's per-request loop vs static ``generate()`` vs the continuous-batching engine.

Side by side in one run, on the same ~100-token prompts (128 new tokens, EOS disabled, greedy):

(a) ``seed``: a re-implementation of the seed's loop — each request owns its KV cache and runs one
    forward per token on the event loop, yielding between tokens (cooperative interleaving);
(b) ``static``: one batched ``model.generate()`` over all prompts (it starts when the last one arrived);
(c) ``engine``: :class:`TransformersEngine` with ``num_of_concurrent_executions = N`` and its prefix
    cache on (the default budget); ``engine-off``: the same with ``prefix_cache_tokens=0``.
(d) ``ceiling``: N rows per batched decode forward and nothing else (no prefill, sampling or
    scheduling), the most any engine could reach for N streams on this model and device.
    (a), (b) and (d) are in ``bench/engine_baselines.py``.

For N concurrent requests arriving all at once and staggered (``--stagger-ms`` apart) it reports
aggregate tokens/s, p50/p99 time to first token, p50 inter-token gap, each ratio to (a) and the
engine's ratio to (d) and to ``engine-off``. With ``--shared-prefix-tokens S`` every prompt starts
with the same S-token preamble (a system prompt) before its own ``--prompt-tokens`` question: the
burst where a prefix cache shares one preamble's KV among all rows. Every measurement runs in a
fresh process; with ``--repeat R`` every mode runs once per round for R rounds, each mode reports its
median run, and each ratio is the median of the ratios within a round (runs taken side by side, so a
drift in the machine's speed cancels). Writes JSON to ``bench/results/`` and prints a table. The
model is ``chatstream make-tiny-model`` with hidden 512, 8 layers, 8 heads, intermediate 1376, vocab
16000 (~42M parameters), built on first use.

    python bench/engine.py                 # N = 1, 4, 16, 32
    python bench/engine.py --quick         # N = 1, 4, 32 tokens: a smoke run
    python bench/engine.py --device cuda --dtype bfloat16 --n 1,16,64 --model /path/to/model
    python bench/engine.py --shared-prefix-tokens 200 --n 16 --arrivals at_once --modes seed,engine-off,engine
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))

from bench.engine_baselines import arrive, run_ceiling, run_seed, run_static, summarise  # noqa: E402
from bench.provenance import code_under_test  # noqa: E402

MODEL_SIZES = {
    "hidden_size": 512,
    "num_layers": 8,
    "num_heads": 8,
    "intermediate_size": 1376,
    "vocab_size": 16000,
}


def ensure_model(path: Path | None) -> Path:
    """The 42M-parameter benchmark model, written once under bench/results/."""
    from chatstream.tiny_model import make_tiny_model

    target = path or RESULTS / "model-h512-l8"
    if not (target / "config.json").exists():
        print(f"writing the benchmark model to {target} …", file=sys.stderr)
        make_tiny_model(target, **MODEL_SIZES)
    return target


def make_prompts(tokenizer: Any, n: int, length: int, shared: int = 0) -> list[list[int]]:
    """``n`` different prompts of ``length`` ± 4 tokens (different lengths exercise the padding),
    each after the same ``shared``-token preamble when ``shared`` > 0."""
    from chatstream.tiny_model import corpus

    ids = tokenizer(" ".join(corpus()[:400]), add_special_tokens=False).input_ids
    numbered = tokenizer(" ".join(corpus()[-200:]), add_special_tokens=False).input_ids
    preamble = numbered[:shared]  # text none of the questions is drawn from
    prompts = []
    for i in range(n):
        size = length - 4 + (i * 3) % 9
        start = (i * 37) % max(1, len(ids) - size)
        prompts.append(preamble + ids[start : start + size])
    return prompts


async def run_engine(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    new: int,
    offsets: list[float],
    chunk: int,
    prefix_cache_tokens: int | None = None,
) -> dict[str, Any]:
    """(c) The continuous-batching engine, N slots; its prefix cache off with ``prefix_cache_tokens=0``."""
    from chatstream.engine import GenerationRequest, SamplingParams
    from chatstream.engine.transformers import TransformersEngine

    engine = TransformersEngine(
        model,
        tokenizer,
        max_batch_size=len(prompts),
        prefill_chunk_tokens=chunk,
        prefix_cache_tokens=prefix_cache_tokens,
    )
    await engine.start()
    stamps: list[list[float]] = [[] for _ in prompts]
    arrivals = [0.0] * len(prompts)
    started = time.perf_counter()

    async def one(i: int) -> None:
        arrivals[i] = await arrive(started, offsets[i])
        params = SamplingParams(temperature=0.0, max_new_tokens=new, ignore_eos=True)
        request = GenerationRequest(request_id=str(i), prompt="", prompt_token_ids=prompts[i], params=params)
        async for delta in engine.generate(request):
            now = time.perf_counter()
            stamps[i] += [now] * len(delta.token_ids)

    try:
        await asyncio.gather(*(one(i) for i in range(len(prompts))))
    finally:
        await engine.stop()
    result = summarise(arrivals, stamps, started, "engine" if prefix_cache_tokens is None else "engine-off")
    stats = engine.stats()
    queries = stats.prefix_cache_queries_total
    result["prefix_cache_hit_rate"] = stats.prefix_cache_hits_total / queries if queries else 0.0
    return result


def measure(
    model: Any,
    tokenizer: Any,
    mode: str,
    prompts: list[list[int]],
    new: int,
    offsets: list[float],
    chunk: int,
):
    if mode == "seed":
        return asyncio.run(run_seed(model, prompts, new, offsets))
    if mode == "static":
        return asyncio.run(run_static(model, tokenizer, prompts, new, offsets))
    if mode == "ceiling":
        return asyncio.run(run_ceiling(model, prompts, new))
    cache = 0 if mode == "engine-off" else None
    return asyncio.run(run_engine(model, tokenizer, prompts, new, offsets, chunk, cache))


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One (mode, arrivals, N) measurement in this fresh process, after a full-size warm-up of that mode."""
    from chatstream.engine.loader import load_model_and_tokenizer

    mode, arrival, n = args.one.split(",")
    n = int(n)
    model, tokenizer = load_model_and_tokenizer(str(args.model), device=args.device, dtype=args.dtype)
    # as the server does after startup: a full GC pass over the model's objects (~0.15 s here) would
    # land in the measured run at random, more often the more the mode allocates
    gc.collect()
    gc.freeze()
    prompts = make_prompts(tokenizer, n, args.prompt_tokens, args.shared_prefix_tokens)
    offsets = [i * args.stagger_ms / 1000 if arrival == "staggered" else 0.0 for i in range(n)]
    # a full-size warm-up, as bench/serve.py gives the server: both sides are measured warm
    measure(model, tokenizer, mode, prompts, 4, [0.0] * n, args.prefill_chunk_tokens)
    result = measure(model, tokenizer, mode, prompts, args.new_tokens, offsets, args.prefill_chunk_tokens)
    result.update(arrivals=arrival, n=n, dtype=str(model.dtype))
    result["parameters"] = sum(p.numel() for p in model.parameters())
    return result


def run_fresh(passthrough: list[str], spec: str) -> dict[str, Any]:
    """One ``mode,arrivals,N`` measurement in a fresh process (torch's thread pools and caches start
    equal for every mode)."""
    command = [sys.executable, __file__, *passthrough, f"--one={spec}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{spec} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput, and every run's throughput beside it."""
    runs = sorted(runs, key=lambda r: r["tokens_per_s"])
    result = dict(runs[len(runs) // 2])
    result["runs_tokens_per_s"] = [r["tokens_per_s"] for r in runs]
    return result


def paired_ratio(runs: list[dict[str, Any]], bases: list[dict[str, Any]]) -> float:
    """The median over rounds of ``runs[i]``'s throughput over ``bases[i]``'s.

    Both were measured in the same round, minutes apart at most, so a drift in the machine's speed
    (±20 % over a full benchmark on a shared VM) cancels out of each ratio.
    """
    ratios = sorted(r["tokens_per_s"] / b["tokens_per_s"] for r, b in zip(runs, bases, strict=True))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def measure_level(passthrough: list[str], modes: list[str], arrival: str, n: int, rounds: int) -> list[dict]:
    """Every mode once per round, the rounds one after another; per mode the median run.

    Round-robin rather than all runs of one mode and then the next: the ratios to the seed and to
    the ceiling then compare runs taken side by side (see :func:`paired_ratio`).
    """
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            result = run_fresh(passthrough, f"{mode},{arrival},{n}")
            runs[mode].append(result)
            print(
                f"{arrival:9} N={n:<3} {mode:7} {result['tokens_per_s']:8.1f} tok/s "
                f"ttft p50 {result['ttft_p50_ms']:.0f} ms  itl p50 {result['itl_p50_ms']:.1f} ms",
                file=sys.stderr,
            )
    rows = []
    for mode in modes:
        row = median_run(runs[mode])
        if "seed" in runs:
            row["ratio_to_seed"] = paired_ratio(runs[mode], runs["seed"])
        if mode == "engine" and "ceiling" in runs:
            row["ratio_to_ceiling"] = paired_ratio(runs[mode], runs["ceiling"])
        if mode == "engine" and "engine-off" in runs:
            row["ratio_to_cache_off"] = paired_ratio(runs[mode], runs["engine-off"])
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: built)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    parser.add_argument("--n", default="1,4,16,32", help="comma-separated concurrency levels")
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--shared-prefix-tokens", type=int, default=0, help="a shared preamble of N tokens")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--stagger-ms", type=float, default=50.0, help="gap between staggered arrivals")
    parser.add_argument("--prefill-chunk-tokens", type=int, default=512)
    parser.add_argument("--arrivals", default="at_once,staggered")
    parser.add_argument("--modes", default="seed,static,engine,ceiling")
    parser.add_argument("--quick", action="store_true", help="N = 1, 4 and 32 new tokens")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds (every mode once per round); medians are kept"
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.new_tokens = "1,4", 32
    return args


def passthrough_args(args: argparse.Namespace) -> list[str]:
    """The options every fresh measuring process gets again."""
    names = ["model", "device", "dtype", "prompt_tokens", "new_tokens", "stagger_ms", "prefill_chunk_tokens"]
    names.append("shared_prefix_tokens")
    return [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]


def print_table(rows: list[dict[str, Any]], device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    params, dtype = rows[0]["parameters"], rows[0]["dtype"]
    table = Table(title=f"engine benchmark — {params / 1e6:.1f}M params on {device} ({dtype})")
    columns = ["arrivals", "N", "mode", "tok/s", "× seed", "× ceiling", "× cache off", "TTFT p50 ms"]
    for column in [*columns, "TTFT p99 ms", "ITL p50 ms", "hit"]:
        table.add_column(column, justify="right")
    for r in rows:
        ratio = r.get("ratio_to_seed")
        of_ceiling = r.get("ratio_to_ceiling")
        of_off = r.get("ratio_to_cache_off")
        table.add_row(
            r["arrivals"],
            str(r["n"]),
            r["mode"],
            f"{r['tokens_per_s']:.1f}",
            f"{ratio:.2f}" if ratio is not None else "",
            f"{of_ceiling:.2f}" if of_ceiling is not None else "",
            f"{of_off:.2f}" if of_off is not None else "",
            f"{r['ttft_p50_ms']:.0f}",
            f"{r['ttft_p99_ms']:.0f}",
            f"{r['itl_p50_ms']:.1f}",
            f"{r['prefix_cache_hit_rate']:.0%}" if "prefix_cache_hit_rate" in r else "",
        )
    Console(width=max(160, Console().width)).print(table)


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]], code: dict[str, Any]) -> Path:
    import torch

    report = {
        "benchmark": "engine",
        "code": code,
        "model": str(args.model),
        "parameters": rows[0]["parameters"],
        "device": args.device,
        "dtype": rows[0]["dtype"],
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "prompt_tokens": args.prompt_tokens,
        "shared_prefix_tokens": args.shared_prefix_tokens,
        "new_tokens": args.new_tokens,
        "stagger_ms": args.stagger_ms,
        "repeat": args.repeat,
        "prefill_chunk_tokens": args.prefill_chunk_tokens,
        "results": rows,
    }
    out = args.out or RESULTS / f"engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = ensure_model(args.model)
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    code = code_under_test()  # before the runs: a warning about foreign code should not wait for them
    levels = [int(x) for x in args.n.split(",")]
    rows: list[dict[str, Any]] = []
    for arrival in args.arrivals.split(","):
        # a bare decode step has no arrivals: the ceiling is measured with the at-once runs only
        modes = [m for m in args.modes.split(",") if m != "ceiling" or arrival == "at_once"]
        for n in levels:
            rows += measure_level(passthrough_args(args), modes, arrival, n, args.repeat)
    print_table(rows, args.device)
    out = write_report(args, rows, code)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
