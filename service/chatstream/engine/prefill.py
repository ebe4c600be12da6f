"""Per-request prefill and the engine's side of the prefix cache.

Every admitted request is prefilled in a row of its own (a :class:`RowPrefill`), first come first
served: each step's prompt budget goes to the oldest unfinished prompt first, then the next, and a
row joins the decoding batch as soon as its own prompt is done, not when a whole group is. One row
per forward means no padding inside a prefill and no mask, so with or without a cached prefix a row
is computed as ``model.generate()`` computes it alone.

:class:`KVReuse` connects rows to the :class:`~.prefix_cache.PrefixCache`: a row starts from the
longest stored prefix of its prompt (its KV copied into the row's cache, at least one prompt token
left to feed for the first logits), and the KV a sequence computed goes back into the store when its
prompt is done and when it ends (finished, stopped or cancelled): exactly the ids whose KV is in its
row, never the last sampled token, which was not fed.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import torch

from . import kvcache
from .batch import Batch, Sequence
from .prefix_cache import PrefixCache, namespace


@dataclass(eq=False)
class RowPrefill:
    """One admitted request whose prompt is (partly) not yet in its cache."""

    seq: Sequence
    batch: Batch | None = None  # its one-row cache, made when its first chunk runs
    done: int = 0  # prompt tokens in that cache (reused or computed)

    @property
    def remaining(self) -> int:
        return len(self.seq.prompt_ids) - self.done

    def inputs(self, tokens: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids and position ids of the next ``tokens`` prompt tokens (one row, no padding)."""
        stop = self.done + tokens
        ids = torch.tensor([self.seq.prompt_ids[self.done : stop]], device=device)
        positions = torch.arange(self.done, stop, device=device).unsqueeze(0)
        return ids, positions


class KVReuse:
    """Where a row's prefix comes from and where a sequence's KV goes; a no-op without a store."""

    def __init__(self, store: PrefixCache | None, num_layers: int, model: str, tokenizer: str, dtype: str):
        self.store = store
        self.num_layers = num_layers
        self.model, self.tokenizer, self.dtype = model, tokenizer, dtype
        self._swept = 0.0

    @classmethod
    def build(cls, store: PrefixCache, engine: Any) -> KVReuse:
        """For ``engine``'s model, tokenizer and dtype; a store with no budget means the cache is off."""
        tokenizer = engine.tokenizer
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        return cls(
            store if store.budget else None,
            engine.num_layers,
            engine.model_name,
            f"{name}:{len(tokenizer)}",
            engine.dtype,
        )

    def space(self, seq: Sequence) -> Hashable:
        return namespace(self.model, self.tokenizer, seq.request.template, self.dtype)

    def start(self, row: RowPrefill) -> None:
        """Give ``row`` its cache: the longest stored prefix of its prompt, or an empty one."""
        seq = row.seq
        hit = None
        if self.store is not None:
            hit = self.store.lookup(self.space(seq), seq.prompt_ids, limit=len(seq.prompt_ids) - 1)
        if hit is not None and hit.tokens:
            cache = kvcache.seeded(self.num_layers, hit.segments, len(seq.prompt_ids))
            seq.hit, seq.cached, row.done = hit, hit.tokens, hit.tokens
        else:
            if self.store is not None:
                self.store.release(hit)
            cache = kvcache.new_cache(self.num_layers)
        row.batch = Batch([seq], cache, [0])

    def keep(self, seq: Sequence, cache: Any, row: int, pad: int, tokens: int) -> None:
        """Store ``seq``'s first ``tokens`` ids, whose KV row ``row`` holds from window column ``pad``."""
        if self.store is None or tokens <= 0:
            return
        ids = seq.ids[:tokens]
        self.store.insert(self.space(seq), ids, lambda a, b: kvcache.row_kv(cache, row, pad + a, pad + b))

    def leave(self, batch: Batch, rows: list[int]) -> None:
        """Rows ``rows`` of ``batch`` end: their KV goes into the store, their pins are released."""
        for r in rows:
            seq = batch.seqs[r]
            self.keep(seq, batch.cache, r, batch.pads[r], batch.width - batch.pads[r])
            self.end(seq)

    def drop_cancelled(self, rows: list[RowPrefill]) -> list[RowPrefill]:
        """The rows still wanted; one cancelled mid-prefill leaves, the prompt KV it computed is kept."""
        gone = [row for row in rows if row.seq.cancelled]  # once: another thread may cancel meanwhile
        for row in gone:
            if row.batch is not None:
                self.keep(row.seq, row.batch.cache, 0, 0, row.done)
            self.end(row.seq)
        return [row for row in rows if row not in gone]

    def end(self, seq: Sequence) -> None:
        """``seq`` no longer needs what it matched."""
        if self.store is not None and seq.hit is not None:
            self.store.release(seq.hit)
            seq.hit = None

    def expire(self) -> None:
        """Drop entries idle past the TTL (at most one sweep a second: an idle engine loops often)."""
        now = time.monotonic()
        if self.store is not None and now - self._swept >= 1.0:
            self._swept = now
            self.store.expire()

    def stats(self, target: Any) -> None:
        """Copy the store's counters into the engine's stats."""
        if self.store is None:
            return
        stats = self.store.stats
        target.prefix_cache_queries_total = stats.queries
        target.prefix_cache_hits_total = stats.hits
        target.prefix_cache_evictions_total = stats.evictions
        target.prefix_cache_tokens = stats.tokens
        target.prefix_cache_tokens_budget = stats.budget
