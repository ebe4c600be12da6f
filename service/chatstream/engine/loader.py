"""Load any HuggingFace causal LM and its tokenizer through the normal ``from_pretrained`` path.

A model larger than one GPU is spread over the first ``num_gpus`` GPUs by accelerate's
``device_map`` with a ``max_memory`` map (:func:`gpu_placement`, a pure function of the GPU sizes).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from typing import Any

logger = logging.getLogger("chatstream")

#: share of a GPU's free memory the weights may take when no --max-gpu-memory is given (the rest is
#: for activations and the KV cache)
GPU_MEMORY_FRACTION = 0.85
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "K": 2**10, "M": 2**20, "G": 2**30}


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


def parse_memory(text: str) -> int:
    """'20GiB', '20GB', '19500MiB', '20G' or a byte count → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (e.g. 20GiB, 20GB, 19500MiB)")
    return int(float(match.group(1)) * _UNITS[unit])


def _mib(size: int) -> str:
    return f"{size // 2**20}MiB"


def gpu_placement(gpu_sizes_bytes: list[int], num_gpus: int | None, max_gpu_memory: str | None) -> dict:
    """``from_pretrained`` keyword arguments that spread a model over the first ``num_gpus`` GPUs.

    ``gpu_sizes_bytes`` is the free memory of every visible GPU, in id order. One GPU (or None)
    gives ``{}``: the model is loaded and moved there whole. With ``max_gpu_memory`` every GPU
    gets that cap and ``device_map="auto"``; without it each GPU gets
    :data:`GPU_MEMORY_FRACTION` of its own free memory, ``"auto"`` when the GPUs are alike and
    ``"sequential"`` (fill GPU 0, then 1, ...) when they differ in size.
    """
    if num_gpus is None or num_gpus <= 1:
        return {}
    if len(gpu_sizes_bytes) < num_gpus:
        raise ValueError(f"num_gpus={num_gpus} but only {len(gpu_sizes_bytes)} GPU(s) are visible")
    sizes = gpu_sizes_bytes[:num_gpus]
    if max_gpu_memory is not None:
        cap = parse_memory(max_gpu_memory)
        small = [i for i, size in enumerate(sizes) if size < cap]
        if small:
            raise ValueError(f"max_gpu_memory={max_gpu_memory} is more than GPU {small[0]} has free")
        return {"device_map": "auto", "max_memory": {i: _mib(cap) for i in range(num_gpus)}}
    device_map = "auto" if len(set(sizes)) == 1 else "sequential"
    budget = {i: _mib(int(size * GPU_MEMORY_FRACTION)) for i, size in enumerate(sizes)}
    return {"device_map": device_map, "max_memory": budget}


def available_gpu_memory(count: int | None = None) -> list[int]:
    """Free bytes of the visible CUDA GPUs (the first ``count``): total minus what torch holds."""
    import torch

    visible = torch.cuda.device_count()
    sizes = []
    for index in range(visible if count is None else min(count, visible)):
        total = torch.cuda.get_device_properties(index).total_memory
        sizes.append(total - torch.cuda.memory_allocated(index))
    return sizes


def placement_kwargs(device: str, num_gpus: int | None, max_gpu_memory: str | None) -> dict:
    """:func:`gpu_placement` for this machine; checks the device and that accelerate is installed."""
    if num_gpus is None or num_gpus <= 1:
        return {}
    if not device.startswith("cuda"):
        raise ValueError(f"num_gpus={num_gpus} needs device cuda, not {device!r}")
    if importlib.util.find_spec("accelerate") is None:
        raise RuntimeError("loading over several GPUs needs accelerate: pip install accelerate")
    return gpu_placement(available_gpu_memory(), num_gpus, max_gpu_memory)


def load_model_and_tokenizer(
    model_id: str,
    *,
    tokenizer_id: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    num_gpus: int | None = None,
    max_gpu_memory: str | None = None,
) -> tuple[Any, Any]:
    """Load, place and put in eval mode; transformers shows its shard progress bar.

    ``num_gpus`` > 1 spreads the layers over that many GPUs (see :func:`gpu_placement`);
    otherwise the whole model is moved to ``device``.
    """
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    console = Console(stderr=True)
    started = time.perf_counter()
    torch_dtype = resolve_dtype(dtype, device)
    placement = placement_kwargs(device, num_gpus, max_gpu_memory)
    where = f"{num_gpus} GPUs ({placement['device_map']})" if placement else device
    with console.status(f"loading {model_id} ({torch_dtype}) on {where}…"):
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_id or model_id, trust_remote_code=trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_id, dtype=torch_dtype, trust_remote_code=trust_remote_code, **placement
        )
        if not placement:
            model.to(device)
        model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if placement:
        logger.info("placement of %s: %s", model_id, getattr(model, "hf_device_map", placement))
    logger.info("loaded %s in %.1fs", model_id, time.perf_counter() - started)
    return model, tokenizer
