"""Next-token choice with the seed's sampling semantics, for one row of logits."""

from __future__ import annotations

import torch

from .base import SamplingParams


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float, method: str
) -> torch.Tensor:
    """Multiplicative: divide positive / multiply negative logits of seen tokens (transformers' rule).
    Subtractive: subtract ``penalty`` from the logits of seen tokens."""
    if seen.numel() == 0:
        return logits
    picked = logits.gather(-1, seen)
    if method == "subtractive":
        picked = picked - penalty
    else:
        picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(-1, seen, picked)


def choose_token(
    logits: torch.Tensor, params: SamplingParams, seen: torch.Tensor, generator: torch.Generator | None
) -> int:
    """Greedy below temperature 1e-4 (as the seed), else temperature → top-k → top-p sampling."""
    logits = logits.float()
    if params.repetition_penalty is not None:
        logits = apply_repetition_penalty(
            logits, seen, params.repetition_penalty, params.repetition_penalty_method
        )
    if params.greedy:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if params.top_k:
        k = min(params.top_k, logits.shape[-1])
        threshold = torch.topk(logits, k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, -1) > params.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, -1)
    return int(torch.multinomial(probs, 1, generator=generator))
