"""Spreading a model over several GPUs: the device map and memory caps from given GPU sizes."""

from __future__ import annotations

import pytest

from chatstream.engine import loader
from chatstream.engine.loader import gpu_placement, parse_memory, placement_kwargs

GIB = 2**30


def test_one_gpu_or_none_means_no_placement():
    assert gpu_placement([80 * GIB, 80 * GIB], None, None) == {}
    assert gpu_placement([80 * GIB], 1, "20GiB") == {}


def test_alike_gpus_are_balanced_with_headroom():
    got = gpu_placement([24 * GIB] * 4, 2, None)
    assert got == {"device_map": "auto", "max_memory": {0: "20889MiB", 1: "20889MiB"}}  # 85% of 24 GiB


def test_gpus_of_different_sizes_are_filled_in_order():
    got = gpu_placement([10 * GIB, 16 * GIB, 8 * GIB], 3, None)
    assert got["device_map"] == "sequential"
    assert got["max_memory"] == {0: "8704MiB", 1: "13926MiB", 2: "6963MiB"}


def test_a_memory_cap_applies_to_every_gpu():
    got = gpu_placement([10 * GIB, 16 * GIB, 80 * GIB], 2, "9GiB")
    assert got == {"device_map": "auto", "max_memory": {0: "9216MiB", 1: "9216MiB"}}
    with pytest.raises(ValueError, match="GPU 0"):
        gpu_placement([8 * GIB, 16 * GIB], 2, "9GiB")


def test_more_gpus_than_visible_is_an_error():
    with pytest.raises(ValueError, match="only 1 GPU"):
        gpu_placement([80 * GIB], 2, None)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20GiB", 20 * GIB),
        ("20GB", 20 * 10**9),
        ("19500MiB", 19500 * 2**20),
        ("1.5G", int(1.5 * GIB)),
        ("42", 42),
    ],
)
def test_memory_sizes(text, size):
    assert parse_memory(text) == size


def test_bad_memory_sizes():
    for text in ("", "GiB", "20 parsecs", "-1GiB"):
        with pytest.raises(ValueError, match="not a memory size"):
            parse_memory(text)


def test_the_loader_checks_device_and_accelerate(monkeypatch):
    assert placement_kwargs("cpu", 1, None) == {}
    with pytest.raises(ValueError, match="needs device cuda"):
        placement_kwargs("cpu", 2, None)
    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install accelerate"):
        placement_kwargs("cuda", 2, None)
    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(loader, "available_gpu_memory", lambda: [40 * GIB, 40 * GIB])
    assert placement_kwargs("cuda", 2, "30GiB")["max_memory"] == {0: "30720MiB", 1: "30720MiB"}


def test_a_single_device_load_still_works(tiny_model_dir):
    model, tokenizer = loader.load_model_and_tokenizer(str(tiny_model_dir), device="cpu", num_gpus=None)
    assert next(model.parameters()).device.type == "cpu" and not model.training
    assert tokenizer.pad_token is not None
