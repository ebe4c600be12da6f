"""build_engine picks the engine the options ask for and names it after the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatstream.engine.factory import build_engine
from chatstream.engine.mock import MockEngine
from chatstream.engine.transformers import TransformersEngine

OPTIONS: dict[str, Any] = {
    "mock_params": {"type": "echo"},
    "max_batch_size": 3,
    "kv_cache_tokens": 500,
    "prefill_chunk_tokens": 64,
}


def test_the_mock_needs_no_model() -> None:
    engine = build_engine(None, None, None, use_mock_response=True, model_name=None, **OPTIONS)
    assert isinstance(engine, MockEngine) and engine.mock_type == "echo"
    assert engine.model_name == "chatstream-mock"
    named = build_engine(None, None, None, use_mock_response=True, model_name="demo", **OPTIONS)
    assert named.model_name == "demo"


def test_a_real_engine_without_a_model_is_refused() -> None:
    with pytest.raises(ValueError, match="needs model and tokenizer unless use_mock_response=True"):
        build_engine(None, None, "cpu", use_mock_response=False, model_name=None, **OPTIONS)


def test_the_transformers_engine_takes_the_options_and_the_model_path_name(
    tiny_lm: tuple[Any, Any], tiny_model_dir: Path
) -> None:
    model, tokenizer = tiny_lm
    engine = build_engine(model, tokenizer, "cpu", use_mock_response=False, model_name=None, **OPTIONS)
    assert isinstance(engine, TransformersEngine)
    assert (engine.max_batch_size, engine.kv_cache_tokens, engine.prefill_chunk_tokens) == (3, 500, 64)
    assert engine.model_name == tiny_model_dir.name  # loaded from that directory
    named = build_engine(model, tokenizer, "cpu", use_mock_response=False, model_name="org/tiny", **OPTIONS)
    assert named.model_name == "tiny"
    assert engine.stats().prefix_cache_tokens_budget == 500  # by default the KV budget, when one is set
    off = build_engine(
        model, tokenizer, "cpu", use_mock_response=False, model_name=None, prefix_cache_tokens=0, **OPTIONS
    )
    assert off.stats().prefix_cache_tokens_budget == 0
