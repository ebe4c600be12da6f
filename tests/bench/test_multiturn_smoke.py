"""``bench/multiturn.py`` runs end to end and writes the report it promises (a smoke run, not figures).

In process: the seed loop, the engine with its prefix cache off and on, with and without a shared
system prompt. Through HTTP: ``chatstream serve`` with the cache on (and off, once the service has
the ``prefix_cache_tokens`` setting).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chatstream.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    command = [sys.executable, str(REPO / "bench" / "multiturn.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_multiturn_benchmark_compares_the_seed_and_the_cache_off_and_on(tiny_model_dir: Path, tmp_path: Path):
    out = tmp_path / "multiturn.json"
    printed = _run("--quick", "--model", str(tiny_model_dir), "--out", str(out))
    report = json.loads(out.read_text())
    scenarios = {(s["k"], s["t"], s["system_tokens"]): s for s in report["scenarios"]}
    assert set(scenarios) == {(2, 3, 0), (2, 3, 60)}
    for scenario in scenarios.values():
        modes = scenario["modes"]
        assert set(modes) == {"seed", "off", "on"}
        for run in modes.values():
            assert run["tokens"] == 2 * 3 * 16 and run["turns_per_s"] > 0
            assert [p["turn"] for p in run["turns"]] == [1, 2, 3]
            assert all(p["ttft_p50_ms"] > 0 for p in run["turns"]) and run["rss_peak_mb"] > 0
        assert modes["seed"]["hit_rate_turns_2plus"] == modes["off"]["hit_rate_turns_2plus"] == 0
        assert modes["on"]["hit_rate_turns_2plus"] > 0.3  # each turn reuses the ones before it
        assert modes["on"]["prefix_cache_tokens_budget"] > 0
        assert modes["off"]["prefix_cache_tokens_budget"] == 0
        expected = {"on_over_off_last_ttft", "on_over_seed_last_ttft", "on_ttft_growth"}
        assert expected <= set(scenario["ratios"])
    with_system = scenarios[(2, 3, 60)]["modes"]["on"]["turns"][0]
    assert with_system["cached_tokens"] > 0  # the second conversation's turn 1 finds the system prompt
    assert "multi-turn chat" in printed and "target ratios" in printed


def test_multiturn_benchmark_through_chatstream_serve(tiny_model_dir: Path, tmp_path: Path):
    out = tmp_path / "http.json"
    modes = "http-off,http-on" if "prefix_cache_tokens" in Settings.model_fields else "http-on"
    args = ["--quick", "--model", str(tiny_model_dir), "--modes", "none", "--http", "--http-modes", modes]
    _run(*args, "--system-tokens", "60", "--out", str(out))
    (scenario,) = json.loads(out.read_text())["scenarios"]
    runs = scenario["modes"]
    assert set(runs) == set(modes.split(","))
    assert runs["http-on"]["tokens"] > 0 and runs["http-on"]["rss_peak_mb"] > 0
    assert runs["http-on"]["hit_rate_turns_2plus"] > 0.3
    if "http-off" in runs:
        assert runs["http-off"]["hit_rate_turns_2plus"] == 0
        assert "http-on_over_off_last_ttft" in scenario["ratios"]
