"""Load any HuggingFace causal LM and its tokenizer through the normal ``from_pretrained`` path."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("chatstream")


def resolve_dtype(dtype: str, device: str) -> Any:
    """'auto' → float32 on CPU, bfloat16 on CUDA when supported (else float16), float16 on MPS."""
    import torch

    if dtype != "auto":
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if device.startswith("cuda"):
        return (
            torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16
        )
    if device == "mps":
        return torch.float16
    return torch.float32


def load_model_and_tokenizer(
    model_id: str,
    *,
    tokenizer_id: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load, move to ``device`` and put in eval mode; transformers shows its shard progress bar."""
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    console = Console(stderr=True)
    started = time.perf_counter()
    torch_dtype = resolve_dtype(dtype, device)
    with console.status(f"loading {model_id} ({torch_dtype}) on {device}…"):
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_id or model_id, trust_remote_code=trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_id, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        model.to(device)
        model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("loaded %s in %.1fs", model_id, time.perf_counter() - started)
    return model, tokenizer
