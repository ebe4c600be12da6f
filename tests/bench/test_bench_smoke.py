"""The engine and serving benchmarks run end to end and write the report they promise.

Smoke runs on the small test model with a few tokens: they check the report's shape and that every
side was measured, not the figures (those come from full runs, see docs/engine.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_engine_benchmark_compares_every_mode(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    args = ["--model", str(tiny_model_dir), "--n", "1,4", "--new-tokens", "8", "--prompt-tokens", "20"]
    printed = _run("engine.py", *args, "--out", str(out))
    report = json.loads(out.read_text())
    rows = {(r["arrivals"], r["n"], r["mode"]): r for r in report["results"]}
    for n in (1, 4):
        for mode in ("seed", "static", "engine"):
            for arrival in ("at_once", "staggered"):
                row = rows[(arrival, n, mode)]
                assert row["tokens"] == 8 * n and row["tokens_per_s"] > 0
                assert row["ratio_to_seed"] > 0
        ceiling = rows[("at_once", n, "ceiling")]
        assert rows[("at_once", n, "engine")]["ratio_to_ceiling"] == (
            rows[("at_once", n, "engine")]["tokens_per_s"] / ceiling["tokens_per_s"]
        )
    assert ("staggered", 1, "ceiling") not in rows
    # the report names the code it measured: this checkout's package at this checkout's commit
    assert report["code"]["this_checkout"]
    assert report["code"]["chatstream"] == str(REPO / "service" / "chatstream")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert report["code"]["commit"] == head.stdout.strip()
    assert "engine benchmark" in printed and "ceiling" in printed


def test_serve_benchmark_measures_http_against_in_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    args = ["--model", str(tiny_model_dir), "--n", "2", "--new-tokens", "8", "--prompt-tokens", "20"]
    printed = _run("serve.py", *args, "--rounds", "2", "--probe-ms", "20", "--out", str(out))
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["n"] == 2 and row["tokens"] == 16
    assert len(row["runs_tokens_per_s"]) == 2 and len(row["in_process_runs_tokens_per_s"]) == 2
    # two rounds: the mean of the two within-round ratios, between the extremes of the cross ratios
    http, local = row["runs_tokens_per_s"], row["in_process_runs_tokens_per_s"]
    assert min(http) / max(local) <= row["ratio_to_in_process"] <= max(http) / min(local)
    assert row["healthz_probes"] > 0 and row["healthz_p99_ms"] > 0
    assert report["code"]["this_checkout"]
    assert "chatstream serve" in printed


def test_compare_benchmark_alternates_checkouts(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    args = ["--model", str(tiny_model_dir), "--n", "2", "--new-tokens", "4", "--prompt-tokens", "20"]
    sides = ["--side", f"a={REPO}:engine-off", "--side", f"b={REPO}:engine"]
    printed = _run("compare.py", *args, *sides, "--rounds", "2", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["sides"] == {
        "a engine-off": {"checkout": str(REPO), "mode": "engine-off"},
        "b engine": {"checkout": str(REPO), "mode": "engine"},
    }
    first, second = report["results"]
    assert first["ratio_to_first"] == 1.0 and len(first["runs_tokens_per_s"]) == 2
    # two rounds: the mean of the two within-round ratios, between the extremes of the cross ratios
    b, a = second["runs_tokens_per_s"], first["runs_tokens_per_s"]
    assert min(b) / max(a) <= second["ratio_to_first"] <= max(b) / min(a)
    assert "b engine" in printed and "× first" in printed
