"""The engine interface: what the scheduler asks of whatever runs the model.

An engine turns one :class:`GenerationRequest` into a stream of :class:`TokenDelta` objects. The
stream is an async iterator; closing it (``aclose()`` or cancelling the task that iterates it) cancels
the sequence, which the engine must drop before its next step. Engines own their own worker (a
thread for the model), never block the event loop, and report live state through :meth:`stats`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..settings import GENERATION_DEFAULTS, RepetitionPenaltyMethod

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass
class SamplingParams:
    """Per-request sampling options (the seed's semantics; temperature < 1e-4 means greedy)."""

    temperature: float = GENERATION_DEFAULTS.temperature
    top_k: int | None = GENERATION_DEFAULTS.top_k
    top_p: float | None = GENERATION_DEFAULTS.top_p
    repetition_penalty: float | None = GENERATION_DEFAULTS.repetition_penalty
    repetition_penalty_method: RepetitionPenaltyMethod = GENERATION_DEFAULTS.repetition_penalty_method
    max_new_tokens: int = GENERATION_DEFAULTS.max_new_tokens
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature < 1e-4


@dataclass
class GenerationRequest:
    """One sequence to generate.

    ``prompt`` is the rendered text; ``prompt_token_ids`` (when given) wins over it. The prompt
    arrives already fitted to the model's context (the service drops old turns and cuts the ids, once):
    the engine checks it but never shortens it. ``template`` names the prompt format the ids were
    rendered with: the prefix cache keeps each format's entries apart. ``last_user_message`` and
    ``turn`` only feed the mock engine, which answers without a model.
    """

    request_id: str
    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    prompt_token_ids: list[int] | None = None
    add_special_tokens: bool | None = None
    template: str = ""
    last_user_message: str = ""
    turn: int = 1


@dataclass
class TokenDelta:
    """New output since the previous delta of the same sequence.

    ``text`` holds only complete characters; text that may still become a stop string is held back
    until it is known not to be one. The last delta has ``finished=True`` and a ``finish_reason``.
    ``cached_tokens``: prompt tokens whose KV came from the prefix cache (not prefilled again).
    """

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finished: bool = False
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    cached_tokens: int = 0

    @staticmethod
    def merged(first: TokenDelta, second: TokenDelta) -> TokenDelta:
        """One delta for two consecutive deltas of a stream (``first`` is not the finished one).

        Text and token ids are joined; the rest (counts, finish) is ``second``'s, the newer state.
        A consumer that fell behind then gets one delta instead of a backlog to walk token by token.
        """
        return dataclasses.replace(
            second, text=first.text + second.text, token_ids=first.token_ids + second.token_ids
        )


@dataclass
class EngineStats:
    """Live engine state, read by ``/get_load`` and the metrics collector."""

    running: int = 0
    waiting: int = 0
    generated_tokens_total: int = 0
    prompt_tokens_total: int = 0
    steps_total: int = 0
    last_step_seconds: float = 0.0
    kv_cache_tokens_used: int = 0
    kv_cache_tokens_budget: int = 0
    prefix_cache_queries_total: int = 0  # prompt tokens looked up in the prefix cache
    prefix_cache_hits_total: int = 0  # of those, tokens whose KV was reused
    prefix_cache_evictions_total: int = 0  # entries dropped (least recently used or idle)
    prefix_cache_tokens: int = 0  # tokens held
    prefix_cache_tokens_budget: int = 0  # 0: the prefix cache is off


class Engine(ABC):
    """Runs a causal LM (or a mock) for many sequences at once."""

    #: what ``/v1/models`` and the metrics info label call the model
    model_name: str = "unknown"

    @abstractmethod
    async def start(self) -> None:
        """Start the worker. Idempotent."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the worker; running sequences end with ``finish_reason='cancelled'``."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Stream the deltas of one sequence; closing the iterator cancels it."""

    @abstractmethod
    def stats(self) -> EngineStats:
        """Current running/waiting counts and token counters."""

    def count_tokens(self, text: str) -> int:
        """Prompt length in tokens (used for context truncation); engines with a tokenizer override."""
        return len(text.split())

    def encode_prompt(self, text: str, add_special_tokens: bool | None) -> list[int] | None:
        """The token ids this engine would feed for ``text``; None for an engine without a tokenizer.

        The facade tokenises the prompt once, in a worker thread, and hands the ids over in
        :attr:`GenerationRequest.prompt_token_ids`, so neither the event loop nor the engine's
        step loop spends time on it.
        """
        return None

    def info(self) -> dict[str, Any]:
        """Static facts for the metrics info gauge: model, device, dtype, engine kind."""
        return {"model": self.model_name, "device": "none", "dtype": "none", "engine": type(self).__name__}
