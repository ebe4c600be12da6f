"""Multi-turn chat benchmark: K conversations × T turns; the seed loop, the engine cache off, cache on.

Every conversation sends its next turn as soon as the previous reply is complete (~60 user words a
turn, 64 new tokens, greedy, EOS ignored), all K at once, with or without one ~200-token system
prompt shared by every conversation. Prompts are rendered as the service renders them (the prompt
class's text, then the tokenizer; ``--history ids`` keeps the reply's own ids instead). Side by side,
each run in a fresh process after a warm-up of its own:

- ``seed``: the seed's design, a per-request KV cache and one forward per token on the event loop;
- ``off``: :class:`TransformersEngine` with ``--slots`` slots and ``prefix_cache_tokens=0``;
- ``on``: the same engine with its prefix cache (``--prefix-cache-tokens``, default: the engine's);
- ``http-off`` / ``http-on`` (``--http``): the same load through ``chatstream serve``'s OpenAI API.

Reports per-turn TTFT p50/p99, aggregate tokens/s, turns/s, the prefix-cache hit rate (prompt tokens
reused over prompt tokens, turns 2+), peak RSS, and the issue's target ratios (turn-T TTFT of ``on``
over ``off`` and over ``seed``, ``on``'s TTFT growth turn T / turn 1, turns/s of ``on`` over ``off``).
With ``--repeat R`` every mode runs once per round; each mode keeps its median run and each ratio is
the median of the within-round ratios. Writes JSON to ``bench/results/`` and prints a table.

    python bench/multiturn.py                        # 4×6 and 16×8, with and without the system prompt
    python bench/multiturn.py --quick                # 2×3, 16 new tokens: a smoke run
    python bench/multiturn.py --http --modes on,off  # and through chatstream serve
    python bench/multiturn.py --device cuda --dtype bfloat16 --model /path/to/model
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engine import RESULTS, ensure_model  # noqa: E402
from bench.multiturn_http import run_http  # noqa: E402
from bench.multiturn_workload import (  # noqa: E402
    Conversation,
    TurnResult,
    engine_turn,
    seed_turn,
    summarise,
    system_prompt,
    user_message,
)
from bench.provenance import code_under_test  # noqa: E402


def prompt_class(name: str, tokenizer: Any) -> type:
    """The prompt class the service would use for ``--chat-prompt-clazz name``."""
    from chatstream.prompts.chat_template import ChatTemplatePrompt
    from chatstream.prompts.registry import resolve_prompt_class

    chosen = resolve_prompt_class(name)
    return ChatTemplatePrompt.bind(tokenizer) if chosen is None else chosen


async def drive(args: argparse.Namespace, tokenizer: Any, turn_fn: Any, k: int, t: int, system: str) -> dict:
    """K conversations at once, T turns each, every turn sent when the previous reply is complete."""
    results: list[list[TurnResult]] = [[] for _ in range(k)]
    cls = prompt_class(args.prompt, tokenizer)
    started = time.perf_counter()

    async def one(c: int) -> None:
        conversation = Conversation(cls, tokenizer, system, args.history)
        for turn in range(t):
            ids = conversation.ask(user_message(c, turn, args.words))
            result = await turn_fn(ids)
            conversation.answer(result.text, result.token_ids)
            results[c].append(result)

    await asyncio.gather(*(one(c) for c in range(k)))
    return summarise(results, started, time.perf_counter())


async def run_local(
    args: argparse.Namespace, model: Any, tokenizer: Any, mode: str, k: int, t: int, system: str
):
    """One in-process run of ``mode``; the engine (cache off or on) is built for it and stopped after."""
    if mode == "seed":
        return await drive(
            args, tokenizer, lambda ids: seed_turn(model, tokenizer, ids, args.new_tokens), k, t, system
        )
    from chatstream.engine.transformers import TransformersEngine

    options: dict[str, Any] = {
        "max_batch_size": args.slots,
        "prefill_chunk_tokens": args.prefill_chunk_tokens,
    }
    if mode == "off":
        options["prefix_cache_tokens"] = 0
    elif args.prefix_cache_tokens is not None:
        options["prefix_cache_tokens"] = args.prefix_cache_tokens
    engine = TransformersEngine(model, tokenizer, **options)
    await engine.start()
    try:
        result = await drive(
            args, tokenizer, lambda ids: engine_turn(engine, tokenizer, ids, args.new_tokens), k, t, system
        )
    finally:
        await engine.stop()
    stats = engine.stats()
    result["prefix_cache_tokens_budget"] = stats.prefix_cache_tokens_budget
    result["prefix_cache_tokens_held"] = stats.prefix_cache_tokens
    return result


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """``mode,K,T,system_tokens`` in this fresh process, after a small warm-up of that mode."""
    import torch

    from chatstream.engine.loader import load_model_and_tokenizer

    mode, k, t, system_tokens = args.one.split(",")
    k, t, system_tokens = int(k), int(t), int(system_tokens)
    model, tokenizer = load_model_and_tokenizer(str(args.model), device=args.device, dtype=args.dtype)
    # as the server does after startup: a full GC pass over the model's objects (~0.15 s here) would
    # land in the measured run at random, more often the more the mode allocates
    gc.collect()
    gc.freeze()
    warm = argparse.Namespace(**{**vars(args), "new_tokens": 4, "words": 8})
    asyncio.run(run_local(warm, model, tokenizer, mode, min(k, args.slots), 1, ""))  # kernels, thread pools
    result = asyncio.run(
        run_local(args, model, tokenizer, mode, k, t, system_prompt(tokenizer, system_tokens))
    )
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    kv_bytes = 2 * config.num_hidden_layers * heads * head_dim * torch.finfo(model.dtype).bits // 8
    result.update(
        mode=mode,
        k=k,
        t=t,
        system_tokens=system_tokens,
        dtype=str(model.dtype).replace("torch.", ""),
        parameters=sum(p.numel() for p in model.parameters()),
        model_mb=sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
        kv_bytes_per_token=kv_bytes,
        rss_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return result


def run_fresh(passthrough: list[str], spec: str) -> dict[str, Any]:
    command = [sys.executable, __file__, *passthrough, f"--one={spec}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{spec} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired(runs: list[dict], bases: list[dict], key: str) -> float:
    """The median over rounds of ``runs[i][key] / bases[i][key]`` (runs taken side by side)."""
    ratios = sorted(value(r, key) / value(b, key) for r, b in zip(runs, bases, strict=True))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def value(run: dict[str, Any], key: str) -> float:
    return run["turns"][-1]["ttft_p50_ms"] if key == "last_ttft" else run[key]


def ratios(runs: dict[str, list[dict]]) -> dict[str, float]:
    """The issue's target ratios, from the modes this scenario ran (names: ``{side}_{what}``)."""
    out: dict[str, float] = {}
    for prefix in ("", "http-"):
        on, off, seed = runs.get(prefix + "on"), runs.get(prefix + "off"), runs.get("seed")
        if on and off:
            out[prefix + "on_over_off_last_ttft"] = paired(on, off, "last_ttft")
            out[prefix + "on_over_off_turns_per_s"] = paired(on, off, "turns_per_s")
        if on and seed and not prefix:
            out["on_over_seed_last_ttft"] = paired(on, seed, "last_ttft")
    return out


TARGETS = {  # the targets (K=4, T=6, 8 slots): ratio name → (comparison, bound)
    "on_over_off_last_ttft": ("<=", 0.3),
    "on_over_seed_last_ttft": ("<=", 0.5),
    "on_ttft_growth": ("<=", 1.5),
    "on_over_off_turns_per_s": (">=", 1.5),
    "on_hit_rate_turns_2plus": (">=", 0.8),
    "on_extra_rss_over_cache_budget": ("<=", 1.0),  # RSS within the configured budget plus the model
}


def measure_scenario(args: argparse.Namespace, passthrough: list[str], k: int, t: int, system: int) -> dict:
    """Every mode once per round for ``--repeat`` rounds; per mode the median run, and the ratios."""
    modes = [m for m in args.modes.split(",") if m and m != "none"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(run_fresh(passthrough, f"{mode},{k},{t},{system}"))
            last = runs[mode][-1]
            print(
                f"K={k} T={t} system={system} {mode:4} {last['turns_per_s']:.2f} turns/s "
                f"turn-{t} TTFT p50 {last['turns'][-1]['ttft_p50_ms']:.0f} ms "
                f"hit {last['hit_rate_turns_2plus']:.0%}",
                file=sys.stderr,
            )
        for mode in args.http_modes:
            runs.setdefault(mode, []).append(run_http(args, mode, k, t, system))
    rows = {}
    for mode, mode_runs in runs.items():
        ordered = sorted(mode_runs, key=lambda r: r["turns_per_s"])
        rows[mode] = dict(ordered[len(ordered) // 2], runs_turns_per_s=[r["turns_per_s"] for r in mode_runs])
    scenario = {"k": k, "t": t, "system_tokens": system, "modes": rows, "ratios": ratios(runs)}
    if "on" in rows:
        scenario["ratios"]["on_ttft_growth"] = rows["on"]["ttft_growth"]
        scenario["ratios"]["on_hit_rate_turns_2plus"] = rows["on"]["hit_rate_turns_2plus"]
    if "on" in rows and "off" in rows:
        scenario["ratios"].update(memory(rows["on"], rows["off"]))
    return scenario


def memory(on: dict[str, Any], off: dict[str, Any]) -> dict[str, float]:
    """What the cache added to the peak RSS, over its configured budget and over the KV it held."""
    extra = on["rss_peak_mb"] - off["rss_peak_mb"]
    per_token_mb = on["kv_bytes_per_token"] / 2**20
    budget_mb = on["prefix_cache_tokens_budget"] * per_token_mb
    return {
        "on_extra_rss_mb": extra,
        "on_cache_held_mb": on["prefix_cache_tokens_held"] * per_token_mb,
        "on_extra_rss_over_cache_budget": extra / budget_mb if budget_mb else 0.0,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: built)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    parser.add_argument("--scenarios", default="4x6,16x8", help="comma-separated KxT")
    parser.add_argument("--system-tokens", default="0,200", help="comma-separated system prompt sizes")
    parser.add_argument("--words", type=int, default=60, help="user words per turn")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--slots", type=int, default=8, help="engine slots (num_of_concurrent_executions)")
    parser.add_argument("--prefill-chunk-tokens", type=int, default=512)
    parser.add_argument("--prefix-cache-tokens", type=int, default=None, help="'on' budget (default: auto)")
    parser.add_argument("--prompt", default="auto", help="prompt class: auto (chat template) or a preset")
    parser.add_argument("--history", default="text", choices=["text", "ids"], help="how turns build prompts")
    parser.add_argument("--modes", default="seed,off,on", help="in-process modes (none: only --http)")
    parser.add_argument("--http", action="store_true", help="also through chatstream serve (--http-modes)")
    parser.add_argument("--http-modes", default="http-off,http-on")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (every mode once per round)")
    parser.add_argument("--quick", action="store_true", help="2x3, 16 new tokens, 20 words: a smoke run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:  # smaller sizes, where no other value was given
        quick = {"scenarios": "2x3", "new_tokens": 16, "words": 20, "system_tokens": "0,60"}
        for name, value in quick.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    args.http_modes = [m for m in args.http_modes.split(",") if m] if args.http else []
    return args


def passthrough_args(args: argparse.Namespace) -> list[str]:
    names = ["model", "device", "dtype", "words", "new_tokens", "slots", "prefill_chunk_tokens", "prompt"]
    names += ["history"] + (["prefix_cache_tokens"] if args.prefix_cache_tokens is not None else [])
    return [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]


def print_table(scenarios: list[dict[str, Any]], device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    first = next(iter(scenarios[0]["modes"].values()))
    title = f"multi-turn chat — {first['parameters'] / 1e6:.1f}M params on {device} ({first['dtype']})"
    table = Table(title=title)
    columns = ["K×T", "system", "mode", "tok/s", "turns/s", "TTFT p50 per turn (ms)", "last p99 ms"]
    for column in [*columns, "hit 2+", "RSS MB"]:
        table.add_column(column, justify="right", no_wrap=column.startswith("TTFT"))
    for s in scenarios:
        for mode, r in s["modes"].items():
            table.add_row(
                f"{s['k']}×{s['t']}",
                str(s["system_tokens"]),
                mode,
                f"{r['tokens_per_s']:.1f}",
                f"{r['turns_per_s']:.2f}",
                "/".join(f"{p['ttft_p50_ms']:.0f}" for p in r["turns"]),
                f"{r['turns'][-1]['ttft_p99_ms']:.0f}",
                f"{r['hit_rate_turns_2plus']:.0%}",
                f"{r['rss_peak_mb']:.0f}",
            )
    Console(width=max(160, Console().width)).print(table)
    checks = Table(title="target ratios (the issue's targets are for K=4, T=6, 8 slots)")
    for column in ["K×T", "system", "ratio", "value", "target"]:
        checks.add_column(column, justify="right")
    for s in scenarios:
        for name, got in s["ratios"].items():
            op, bound = TARGETS.get(name.removeprefix("http-"), ("", None))
            target = ""
            if bound is not None:
                met = got <= bound if op == "<=" else got >= bound
                target = f"{op} {bound} {'ok' if met else 'MISSED'}"
            checks.add_row(f"{s['k']}×{s['t']}", str(s["system_tokens"]), name, f"{got:.2f}", target)
    Console(width=max(160, Console().width)).print(checks)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = ensure_model(args.model)
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    code = code_under_test()  # before the runs: a warning about foreign code should not wait for them
    passthrough = passthrough_args(args)
    scenarios = []
    for spec in args.scenarios.split(","):
        k, t = (int(x) for x in spec.lower().split("x"))
        for system in (int(x) for x in args.system_tokens.split(",")):
            scenarios.append(measure_scenario(args, passthrough, k, t, system))
    print_table(scenarios, args.device)
    report = {
        "benchmark": "multiturn",
        "code": code,
        "model": str(args.model),
        "device": args.device,
        "platform": platform.platform(),
        **{name: getattr(args, name) for name in ["words", "new_tokens", "slots", "prefill_chunk_tokens"]},
        **{name: getattr(args, name) for name in ["prefix_cache_tokens", "prompt", "history", "repeat"]},
        "targets": {name: list(target) for name, target in TARGETS.items()},
        "scenarios": scenarios,
    }
    out = args.out or RESULTS / f"multiturn-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
