"""How ``bench/engine.py`` orders its runs and forms its ratios (the runs themselves: the smoke test)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import engine as bench_engine


def _run(tokens_per_s: float, label: str = "") -> dict[str, Any]:
    return {"tokens_per_s": tokens_per_s, "label": label}


def test_paired_ratio_compares_runs_of_the_same_round() -> None:
    # the machine ran twice as fast in round 2: each round's ratio is 2, the medians' ratio is not
    engine = [_run(20), _run(40), _run(22)]
    seed = [_run(10), _run(20), _run(11)]
    assert bench_engine.paired_ratio(engine, seed) == 2.0
    assert bench_engine.paired_ratio(engine[:2], [_run(10), _run(40)]) == 1.5  # even count: the mean


def test_every_mode_runs_once_per_round(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    speed = {"seed": 10.0, "engine": 30.0, "ceiling": 40.0}

    def fake_run(passthrough: list[str], spec: str) -> dict[str, Any]:
        mode = spec.split(",")[0]
        calls.append(mode)
        rate = speed[mode] * (1 + 0.1 * len(calls))  # drifting machine
        return {"tokens_per_s": rate, "ttft_p50_ms": 1.0, "itl_p50_ms": 1.0, "mode": mode}

    monkeypatch.setattr(bench_engine, "run_fresh", fake_run)
    rows = bench_engine.measure_level([], ["seed", "engine", "ceiling"], "at_once", 4, 3)
    assert calls == ["seed", "engine", "ceiling"] * 3
    by_mode = {r["mode"]: r for r in rows}
    assert len(by_mode["engine"]["runs_tokens_per_s"]) == 3
    assert by_mode["seed"]["ratio_to_seed"] == 1.0
    # round i: seed at call 3i+1, engine at 3i+2 — the ratio is 3·(1+0.1(3i+2))/(1+0.1(3i+1))
    expected = sorted(3 * (1 + 0.1 * (3 * i + 2)) / (1 + 0.1 * (3 * i + 1)) for i in range(3))[1]
    assert by_mode["engine"]["ratio_to_seed"] == pytest.approx(expected)
    assert "ratio_to_ceiling" in by_mode["engine"] and "ratio_to_ceiling" not in by_mode["seed"]
