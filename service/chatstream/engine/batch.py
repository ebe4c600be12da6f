"""Sequence and batch bookkeeping for the continuous-batching engine (no model calls here).

A :class:`Sequence` is one request's state between steps: its prompt, what it generated, the text it
may show and its sampling state. A :class:`Batch` is the rows decoding together over one left-padded
cache: row ``i`` holds ``pads[i]`` unused columns and then its tokens, so every row's next token lands
in the same cache column. :func:`form_group` picks the next requests to admit from the waiting queue;
their prompts are prefilled one row each (:mod:`.prefill`) before they join the batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import kvcache
from .base import GenerationRequest, TokenDelta
from .detokenize import IncrementalDetokenizer
from .text import find_stop, partial_suffix_len


@dataclass(eq=False)
class Sequence:
    """One request inside the engine; ``out`` is the queue its stream reads, on its event loop."""

    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    prompt_ids: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    reserved: int = 0  # KV cache tokens it may need: prompt + max_new_tokens
    text: str = ""
    emitted: int = 0  # characters of ``text`` already sent
    generator: torch.Generator | None = None
    seen: torch.Tensor | None = None  # vocabulary mask of prompt and generated ids (repetition penalty)
    detok: IncrementalDetokenizer | None = None
    cancelled: bool = False
    done: bool = False  # its last delta was sent
    started: float = 0.0
    cached: int = 0  # prompt tokens whose KV came from the prefix cache
    hit: Any = None  # the prefix-cache entry it matched, pinned until it ends

    @property
    def ids(self) -> list[int]:
        """Prompt and generated ids: the first ``length - 1`` have their KV in the cache."""
        return self.prompt_ids + self.generated

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.generated)

    def take_prompt(self, prompt_ids: list[int]) -> None:
        """Hold the checked prompt and reserve its KV space (prompt + ``max_new_tokens``)."""
        self.prompt_ids = prompt_ids
        self.reserved = len(prompt_ids) + self.request.params.max_new_tokens

    def start_decoding(self, tokenizer: Any, vocab_size: int, device: str) -> None:
        """Set up detokenising and per-request sampling state (seeded generator, seen-token mask)."""
        params = self.request.params
        self.detok = IncrementalDetokenizer(tokenizer, self.prompt_ids)
        if params.seed is not None:
            self.generator = torch.Generator(device="cpu").manual_seed(params.seed)
        if params.repetition_penalty is not None:
            self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            self.seen[torch.tensor(self.prompt_ids, device=device)] = True

    def accept(self, token: int, eos_ids: set[int]) -> TokenDelta:
        """Append ``token``; the delta holds the text it makes safe to show (``finished`` at the end)."""
        params = self.request.params
        self.generated.append(token)
        if self.seen is not None:
            self.seen[token] = True
        common = {
            "prompt_tokens": len(self.prompt_ids),
            "completion_tokens": len(self.generated),
            "cached_tokens": self.cached,
        }
        stop_token = token in params.stop_token_ids or (not params.ignore_eos and token in eos_ids)
        if not stop_token:
            self.text += self.detok.add(token)
        cut = find_stop(self.text, params.stop, self.emitted)
        finished = stop_token or cut != -1 or len(self.generated) >= params.max_new_tokens
        if cut != -1:
            self.text = self.text[:cut]
        if finished:
            reason = "stop" if (stop_token or cut != -1) else "length"
            self.done = True
            return TokenDelta(self.text[self.emitted :], [token], True, reason, **common)
        safe = len(self.text) - partial_suffix_len(self.text, params.stop)
        new = self.text[self.emitted : safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return TokenDelta(new, [token], **common)

    def fail(self, exc: BaseException) -> TokenDelta:
        """End this sequence with an error; the delta to send says why."""
        self.cancelled = self.done = True
        return TokenDelta(
            finished=True,
            finish_reason="error",
            error=str(exc) or type(exc).__name__,
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=len(self.generated),
            cached_tokens=self.cached,
        )


@dataclass(eq=False)
class Batch:
    """Rows of sequences sharing one left-padded cache; ``pads[i]`` unused columns lead row ``i``."""

    seqs: list[Sequence]
    cache: Any
    pads: list[int]

    @classmethod
    def empty(cls, num_layers: int) -> Batch:
        return cls([], kvcache.new_cache(num_layers), [])

    @property
    def width(self) -> int:
        return kvcache.width(self.cache)

    def mask(self, extra: int, device: str) -> torch.Tensor:
        """Attention mask over the cache plus ``extra`` new columns (0 on each row's padding)."""
        columns = torch.arange(self.width + extra, device=device)
        return (columns.unsqueeze(0) >= torch.tensor(self.pads, device=device).unsqueeze(1)).long()

    def decode_inputs(self, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids and position ids of one decode step: every row's last token, one column."""
        tokens = torch.tensor([[s.generated[-1]] for s in self.seqs], device=device)
        positions = torch.tensor([[s.length - 1] for s in self.seqs], device=device)
        return tokens, positions

    def keep(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` and the padding all remaining rows share."""
        gone = [r for r in range(len(self.seqs)) if r not in set(rows)]
        if not gone:
            return
        order = kvcache.remove_rows(self.cache, gone)
        self.seqs = [self.seqs[r] for r in order]
        self.pads = [self.pads[r] for r in order]
        shared = min(self.pads, default=0)
        if shared:
            kvcache.trim_left(self.cache, shared)
            self.pads = [p - shared for p in self.pads]

    def keep_where(self, leave: list[bool]) -> None:
        """Drop the rows flagged in ``leave`` (one flag per row)."""
        if any(leave):
            self.keep([r for r, gone in enumerate(leave) if not gone])

    def join(self, group: Batch, rows: list[int], max_rows: int) -> None:
        """Append rows ``rows`` of a freshly prefilled group."""
        group.keep(rows)
        if not group.seqs:
            return
        group_width = group.width
        grown = kvcache.join(self.cache, group.cache, max_rows)
        self.pads = [p + grown for p in self.pads]
        self.pads += [p + self.width - group_width for p in group.pads]
        self.seqs += group.seqs


def form_group(
    waiting: deque[Sequence],
    free_slots: int,
    kv_free: int | None,
    prepare: Callable[[Sequence], None],
    fail: Callable[[Sequence, Exception], None],
) -> list[Sequence]:
    """Take the next waiting sequences that fit ``free_slots`` and ``kv_free`` KV tokens, FIFO.

    ``prepare`` checks and admits a sequence the first time it reaches the head of the queue; a
    sequence it rejects is handed to ``fail`` and leaves the queue. ``kv_free`` None means no budget.
    """
    group: list[Sequence] = []
    while waiting and len(group) < free_slots:
        seq = waiting[0]
        if seq.cancelled:
            waiting.popleft()
            continue
        if not seq.prompt_ids:
            try:
                prepare(seq)
            except Exception as exc:  # a bad request fails alone
                waiting.popleft()
                fail(seq, exc)
                continue
        if kv_free is not None and seq.reserved > kv_free:
            break  # FIFO: it waits until running sequences give their KV space back
        waiting.popleft()
        group.append(seq)
        if kv_free is not None:
            kv_free -= seq.reserved
    return group
