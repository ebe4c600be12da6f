"""LoadTime: times a load once, keeps the duration, then draws a bar against it."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from chatstream.load_time import LoadTime


def timed(cache: Path, out: list[str], work: threading.Event | None = None, **options) -> LoadTime:
    def load() -> str:
        (work or threading.Event()).wait(0.3)
        return "model"

    return LoadTime(
        name="org/model-7b", fn=load, fn_print=out.append, cache_dir=cache, interval=0.02, **options
    )


def test_the_first_run_records_the_duration_and_the_next_shows_a_bar(tmp_path):
    out: list[str] = []
    first = timed(tmp_path, out)
    assert first.stored_data == {"total_time": None} and first.expected_time is None
    assert first() == "model"
    shown = "".join(out)
    assert 'Loading "org/model-7b" ...' in shown and "now recording the loading time" in shown
    stored = json.loads((tmp_path / "loadtime" / "org_model-7b.json").read_text())
    assert stored["total_time"] == pytest.approx(first.elapsed_time)
    assert 0.25 < stored["total_time"] < 5

    out.clear()
    second = timed(tmp_path, out, message="Warming up ")
    assert second.expected_time == pytest.approx(stored["total_time"])
    assert second() == "model"
    shown = "".join(out)
    assert "Warming up " in shown and "100%" in shown and "|" in shown
    percents = [int(p) for p in re.findall(r"(\d+)%", shown)]
    assert percents == sorted(percents) and percents[-1] == 100  # the bar only moves forward
    assert len(set(percents)) > 2  # it was redrawn while the load ran


def test_a_context_manager_times_a_block_and_clear_forgets(tmp_path):
    out: list[str] = []
    with LoadTime(name="block", fn_print=out.append, cache_dir=tmp_path, pbar=False) as lt:
        threading.Event().wait(0.05)
    assert lt.stored_data["total_time"] >= 0.05
    again = LoadTime(name="block", fn_print=out.append, cache_dir=tmp_path, pbar=False)
    assert again.expected_time == pytest.approx(lt.elapsed_time)
    again.clear_stored_data()
    assert LoadTime(name="block", cache_dir=tmp_path).expected_time is None


def test_a_failed_load_raises_and_is_not_recorded(tmp_path):
    def broken() -> None:
        raise OSError("no such model")

    with pytest.raises(OSError, match="no such model"):
        LoadTime(name="bad", fn=broken, fn_print=lambda _: None, cache_dir=tmp_path)()
    assert LoadTime(name="bad", cache_dir=tmp_path).expected_time is None
    with pytest.raises(TypeError, match="fn not set"):
        LoadTime(name="bad", cache_dir=tmp_path)()


def test_a_hub_model_not_downloaded_yet_is_neither_drawn_nor_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    out: list[str] = []
    lt = timed(tmp_path, out, hf=True)
    assert lt.is_model_cached is False
    assert lt() == "model"
    assert out == [] and LoadTime(name="org/model-7b", cache_dir=tmp_path).expected_time is None
    cached = tmp_path / "hub" / "models--org--model-7b"
    cached.mkdir(parents=True)
    (cached / "refs").write_text("main")
    assert timed(tmp_path, out, hf=True).is_model_cached is True
