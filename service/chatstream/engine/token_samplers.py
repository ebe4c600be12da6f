"""The seed's token samplers: pick the next token from one row of logits, step by step.

The engine samples a whole batch at once (:mod:`.sampling`) and never needs these; they are the
seed's public API for code that runs its own decoding loop, and the ``token_sampler=`` option.
A sampler is a pipeline of named steps; each step returns new logits, or a token id, which ends it:

* ``check``: NaN → 0, ±inf → the dtype's largest/smallest finite value (keeps softmax defined);
* ``rep_penalty``: tokens in ``past_tokens`` get ``penalty`` (multiplicative: transformers' rule,
  dividing positive logits and multiplying negative ones; subtractive: minus ``penalty``);
* ``temperature``: below 1e-4 the best token is returned (greedy), else logits / temperature;
* ``top_k_sampling`` / ``top_p_sampling``: filters (the k best logits; the smallest set of best
  tokens whose probability mass reaches ``top_p``), always keeping at least the best token;
* ``softmax``: sample from the whole distribution;
* ``isolated_top_k_sampling_softmax``: softmax over the k best logits only and sample among them.

Pass a seeded ``torch.Generator`` (``generator=``) for reproducible picks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .sampling import apply_repetition_penalty

#: a step takes the logits and the call's parameters; it returns new logits or the chosen token id
Step = Callable[[torch.Tensor, dict[str, Any]], "torch.Tensor | int"]

GREEDY_BELOW = 1e-4


def check_logits(logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    info = torch.finfo(logits.dtype)
    return torch.nan_to_num(logits, nan=0.0, posinf=info.max, neginf=info.min)


def penalise_repetition(logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    penalty, past = params.get("penalty"), params.get("past_tokens")
    if penalty is None or past is None or len(past) == 0:
        return logits
    if isinstance(penalty, bool) or not isinstance(penalty, int | float):
        raise ValueError(f"penalty must be a number, got {penalty!r}")
    method = params.get("penalty_method") or "multiplicative"
    if method not in ("multiplicative", "subtractive"):
        raise ValueError(f"unknown penalty_method {method!r} (multiplicative or subtractive)")
    seen = torch.as_tensor(sorted({int(t) for t in past}), dtype=torch.long, device=logits.device)
    return apply_repetition_penalty(logits, seen, float(penalty), method)


def scale_by_temperature(logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | int:
    temperature = params.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    if temperature < GREEDY_BELOW:
        return int(torch.argmax(logits))
    return check_logits(logits / temperature, params)


def _k_of(params: dict[str, Any], vocab: int) -> int | None:
    top_k = params.get("top_k")
    return min(int(top_k), vocab) if top_k is not None and top_k > 0 else None


def filter_top_k(logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    k = _k_of(params, logits.shape[-1])
    if k is None:
        return logits
    threshold = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < threshold, float("-inf"))  # ties at the k-th value stay


def filter_top_p(logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    top_p = params.get("top_p")
    if top_p is None or not 0.0 <= top_p < 1.0:
        return logits
    ordered, order = torch.sort(logits, descending=True)
    probs = torch.softmax(ordered, -1)
    drop = probs.cumsum(-1) - probs > top_p  # the mass before a token already exceeds top_p
    drop[0] = False
    kept = ordered.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, kept)


def _draw(probs: torch.Tensor, params: dict[str, Any]) -> int:
    generator = params.get("generator")
    if generator is not None:
        probs = probs.to(generator.device)
    return int(torch.multinomial(probs, 1, generator=generator))


def sample_softmax(logits: torch.Tensor, params: dict[str, Any]) -> int:
    return _draw(torch.softmax(logits, -1), params)


def sample_isolated_top_k(logits: torch.Tensor, params: dict[str, Any]) -> int:
    k = _k_of(params, logits.shape[-1])
    if k is None:
        return sample_softmax(logits, params)
    best = torch.topk(logits, k)
    pick = _draw(torch.softmax(best.values, -1), params)
    return int(best.indices[pick])


STEPS: dict[str, Step] = {
    "check": check_logits,
    "rep_penalty": penalise_repetition,
    "temperature": scale_by_temperature,
    "top_k_sampling": filter_top_k,
    "top_p_sampling": filter_top_p,
    "softmax": sample_softmax,
    "isolated_top_k_sampling_softmax": sample_isolated_top_k,
}


class TokenSamplerBuilder:
    """An ordered pipeline of the steps above, by the seed's names (``append("check")``, ...)."""

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.processors: list[tuple[str, Step]] = []
        for name in names:
            self.append(name)

    def append(self, name: str) -> TokenSamplerBuilder:
        if name not in STEPS:
            raise ValueError(f"unknown sampler step {name!r}: one of {', '.join(STEPS)}")
        self.processors.append((name, STEPS[name]))
        return self

    def names(self) -> list[str]:
        return [name for name, _ in self.processors]

    def process(self, logits: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | int:
        """The token id once a step picks one; the processed logits if no step does."""
        if logits.dim() != 1:
            raise ValueError(f"logits must be one row (1-D), got shape {tuple(logits.shape)}")
        current = logits.float()
        for _, step in self.processors:
            result = step(current, params)
            if isinstance(result, int):
                return result
            current = result
        return current


class TokenSamplerBase(ABC):
    """The seed's sampler interface: ``do_sample(logits, ...)`` returns the next token id."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def do_sample(
        self,
        logits: torch.Tensor,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float = 1.0,
        past_tokens: Sequence[int] | None = None,
        penalty: float | None = None,
        penalty_method: str = "multiplicative",
        *,
        generator: torch.Generator | None = None,
    ) -> int:
        """Pick one token from ``logits`` (one row, vocabulary-sized); None disables an option."""
        params = {
            "logits": logits,
            "top_k": top_k,
            "top_p": top_p,
            "temperature": temperature,
            "past_tokens": past_tokens,
            "penalty": penalty,
            "penalty_method": penalty_method,
            "generator": generator if generator is not None else self.generator,
        }
        return self.process(logits, params)

    def process(self, logits: torch.Tensor, params: dict[str, Any]) -> int:
        result = self.get_sampler().process(logits, params)
        if not isinstance(result, int):
            raise TypeError("the sampler's pipeline ended without picking a token (no sampling step)")
        return result

    @abstractmethod
    def get_sampler(self) -> TokenSamplerBuilder:
        """The pipeline this sampler runs."""


class TokenSamplerHft(TokenSamplerBase):
    """transformers' order: repetition penalty, temperature, top-k, top-p, then softmax sampling.

    The same choice the engine's batched sampler makes for a request with these parameters.
    """

    STEP_NAMES = ("check", "rep_penalty", "temperature", "top_k_sampling", "top_p_sampling", "softmax")

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.sampler = TokenSamplerBuilder(self.STEP_NAMES)

    def get_sampler(self) -> TokenSamplerBuilder:
        return self.sampler


class TokenSamplerIsok(TokenSamplerBase):
    """Repetition penalty, temperature, then softmax over the k best logits only (top-p unused).

    Less varied output; the seed found it gives some Japanese models surer answers.
    """

    STEP_NAMES = ("check", "rep_penalty", "temperature", "isolated_top_k_sampling_softmax")

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.sampler = TokenSamplerBuilder(self.STEP_NAMES)

    def get_sampler(self) -> TokenSamplerBuilder:
        return self.sampler


def sample_rows(sampler: Any, logits: torch.Tensor, seqs: Sequence[Any]) -> list[int]:
    """One token per row with a user's sampler (the ``token_sampler=`` option), in its own order of
    penalties and filters. ``seqs`` are the engine's sequences (``request.params``, ``ids``,
    ``generator``); a seeded request's generator goes to our samplers, which accept it."""
    picks = []
    for row, seq in enumerate(seqs):
        p = seq.request.params
        extra = {"generator": seq.generator} if isinstance(sampler, TokenSamplerBase) else {}
        picks.append(
            int(
                sampler.do_sample(
                    logits[row],
                    top_k=p.top_k,
                    top_p=p.top_p,
                    temperature=p.temperature,
                    past_tokens=seq.ids,
                    penalty=p.repetition_penalty,
                    penalty_method=p.repetition_penalty_method,
                    **extra,
                )
            )
        )
    return picks


def custom_sampler(sampler: Any) -> Any:
    """The sampler the engine must call per row, or None where its own batched sampling is the same
    (no sampler, or exactly :class:`TokenSamplerHft`: transformers' order, as the engine samples)."""
    return None if sampler is None or type(sampler) is TokenSamplerHft else sampler
