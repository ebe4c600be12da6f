"""Side by side: one ``bench/engine.py --one`` measurement in several checkouts, alternating round by round.

For a refactor that should not change speed ("within noise of the previous revision"), two
separate benchmark runs minutes apart are not comparable on a shared VM: its speed drifts by ±20 %.
Here every round runs each side once, in a fresh process, one after another, and each side's
ratio to the first side is the median of the per-round ratios, so the drift cancels. Each side is
a checkout (``git worktree add --detach /tmp/old <rev>``) whose ``bench/engine.py`` has ``--one``;
its own ``service/`` goes first on ``PYTHONPATH``, so an editable install elsewhere cannot leak in.
Writes JSON to ``bench/results/`` and prints a table.

    git worktree add --detach /tmp/old f5ecce9
    python bench/compare.py --side old=/tmp/old:engine --side new=.:engine-off --side new=.:engine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engine import RESULTS, paired_ratio  # noqa: E402


def parse_side(text: str) -> tuple[str, Path, str]:
    """``name=path[:mode]`` → (label, checkout, engine mode); the mode defaults to ``engine``."""
    name, _, rest = text.partition("=")
    path, _, mode = rest.partition(":")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected name=path[:mode], got {text!r}")
    mode = mode or "engine"
    return f"{name} {mode}", Path(path).resolve(), mode


def run_side(checkout: Path, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout / "service"))
    command = [
        sys.executable,
        "bench/engine.py",
        f"--new-tokens={args.new_tokens}",
        f"--prompt-tokens={args.prompt_tokens}",
        f"--one={mode},{args.arrivals},{args.n}",
        f"--model={args.model}",
    ]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{checkout} {mode} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    base = next(iter(runs.values()))
    rows = []
    for label, results in runs.items():
        rows.append(
            {
                "side": label,
                "tokens_per_s": statistics.median(r["tokens_per_s"] for r in results),
                "ttft_p50_ms": statistics.median(r["ttft_p50_ms"] for r in results),
                "ttft_p99_ms": statistics.median(r["ttft_p99_ms"] for r in results),
                "itl_p50_ms": statistics.median(r["itl_p50_ms"] for r in results),
                "ratio_to_first": paired_ratio(results, base),
                "runs_tokens_per_s": [r["tokens_per_s"] for r in results],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=parse_side, action="append", required=True, help="name=path[:mode]")
    # one model for every side (a checkout would otherwise build its own copy under its bench/results)
    parser.add_argument("--model", type=Path, default=RESULTS / "model-h512-l8")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--arrivals", choices=("at_once", "staggered"), default="at_once")
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in args.side}
    for round_no in range(args.rounds):
        for label, checkout, mode in args.side:
            result = run_side(checkout, mode, args)
            runs[label].append(result)
            print(f"round {round_no} {label:20} {result['tokens_per_s']:7.1f} tok/s", file=sys.stderr)
    rows = summarise(runs)
    sides = {label: {"checkout": str(path), "mode": mode} for label, path, mode in args.side}
    report = {
        "benchmark": "compare",
        "n": args.n,
        "arrivals": args.arrivals,
        "new_tokens": args.new_tokens,
        "prompt_tokens": args.prompt_tokens,
        "rounds": args.rounds,
        "sides": sides,
        "results": rows,
    }
    out = args.out or RESULTS / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    table = Table(title=f"N={args.n} {args.arrivals}, {args.new_tokens} new tokens, {args.rounds} rounds")
    for column in ("side", "tok/s", "× first", "TTFT p50", "TTFT p99", "ITL p50"):
        table.add_column(column, justify="left" if column == "side" else "right")
    for row in rows:
        table.add_row(
            row["side"],
            f"{row['tokens_per_s']:.1f}",
            f"{row['ratio_to_first']:.2f}",
            f"{row['ttft_p50_ms']:.0f} ms",
            f"{row['ttft_p99_ms']:.0f} ms",
            f"{row['itl_p50_ms']:.1f} ms",
        )
    Console().print(table)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
