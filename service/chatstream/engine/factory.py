"""Build the engine the options ask for: the mock (no model) or continuous batching over a model.

The engine modules are imported only when chosen, so the mock path never imports torch's model code.
"""

from __future__ import annotations

from typing import Any

from .base import Engine


def build_engine(
    model: Any,
    tokenizer: Any,
    device: str | None,
    *,
    use_mock_response: bool,
    mock_params: dict[str, Any],
    max_batch_size: int,
    kv_cache_tokens: int,
    prefill_chunk_tokens: int,
    model_name: str | None,
    prefix_cache_tokens: int | None = None,
    token_sampler: Any = None,
) -> Engine:
    """The mock engine, or a :class:`TransformersEngine` named after the model's last path part.

    ``prefix_cache_tokens``: the KV prefix cache's budget (None: sized by the engine; 0: off).
    ``token_sampler``: the seed's option, a sampler called per row (see ``token_samplers``).
    """
    if use_mock_response:
        from .mock import MockEngine

        return MockEngine(mock_params, model_name=model_name or "chatstream-mock")
    if model is None or tokenizer is None:
        raise ValueError("ChatStream needs model and tokenizer unless use_mock_response=True")
    from .token_samplers import custom_sampler
    from .transformers import TransformersEngine

    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model"
    return TransformersEngine(
        model,
        tokenizer,
        device,
        max_batch_size=max_batch_size,
        kv_cache_tokens=kv_cache_tokens,
        prefill_chunk_tokens=prefill_chunk_tokens,
        model_name=str(name).rstrip("/").split("/")[-1],
        prefix_cache_tokens=prefix_cache_tokens,
        token_sampler=custom_sampler(token_sampler),
    )
