"""Generation options: the service's defaults, per-conversation overrides and per-request ones.

One object holds the values in force (the seed's ``params`` dict, which the console can change at
run time) and merges them with overrides into the engine's :class:`SamplingParams`, so the merge rule
and the ``max_new_tokens`` cap live in one place.
"""

from __future__ import annotations

from typing import Any

from ..engine.base import SamplingParams
from ..settings import GENERATION_DEFAULTS

#: the knobs a conversation or a request may override, with the seed's names
SAMPLING_KEYS = ("temperature", "top_k", "top_p", "repetition_penalty", "repetition_penalty_method")
REPETITION_PENALTY_METHODS = ("multiplicative", "subtractive")


class GenerationOptions:
    """The generation values in force for every turn, and the cap on what clients may ask for."""

    def __init__(
        self,
        *,
        temperature: float = GENERATION_DEFAULTS.temperature,
        top_k: int | None = GENERATION_DEFAULTS.top_k,
        top_p: float | None = GENERATION_DEFAULTS.top_p,
        repetition_penalty: float | None = GENERATION_DEFAULTS.repetition_penalty,
        repetition_penalty_method: str = GENERATION_DEFAULTS.repetition_penalty_method,
        max_new_tokens: int = GENERATION_DEFAULTS.max_new_tokens,
        max_new_tokens_cap: int = 4096,
    ) -> None:
        if repetition_penalty_method not in REPETITION_PENALTY_METHODS:
            raise ValueError("repetition_penalty_method must be 'multiplicative' or 'subtractive'")
        self.max_new_tokens_cap = max_new_tokens_cap
        #: the seed's ``params`` dict: mutable, so a console user's ``/params`` changes what follows
        self.values: dict[str, Any] = {
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "repetition_penalty": repetition_penalty,
            "repetition_penalty_method": repetition_penalty_method,
            "max_new_tokens": max_new_tokens,
        }

    def sampling_params(self, overrides: dict[str, Any] | None = None) -> SamplingParams:
        """The values in force with the non-``None`` overrides on top, ``max_new_tokens`` capped."""
        merged = {**self.values, **{k: v for k, v in (overrides or {}).items() if v is not None}}
        return SamplingParams(
            temperature=float(merged["temperature"]),
            top_k=merged.get("top_k"),
            top_p=merged.get("top_p"),
            repetition_penalty=merged.get("repetition_penalty"),
            repetition_penalty_method=merged.get("repetition_penalty_method", "multiplicative"),
            max_new_tokens=min(int(merged["max_new_tokens"]), self.max_new_tokens_cap),
            seed=merged.get("seed"),
        )

    def update(self, values: dict[str, Any]) -> None:
        """Change the values in force; the merged result is validated before anything changes."""
        self.sampling_params(values)
        self.values.update(values)

    def effective(self, overrides: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        """What a conversation runs with for ``keys``: its own override, else the value in force."""
        return {key: overrides.get(key, self.values.get(key)) for key in keys}


def used_params(params: SamplingParams) -> dict[str, Any]:
    """What is worth keeping with a message to explain it later (sampling knobs, limits, seed)."""
    used = {name: getattr(params, name) for name in SAMPLING_KEYS}
    used.update(max_new_tokens=params.max_new_tokens, seed=params.seed, stop=list(params.stop))
    return used
