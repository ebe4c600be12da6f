"""Continuous batching for a HuggingFace causal LM, in a worker thread that owns the model.

Every engine step runs ONE forward pass for all running sequences. The batch is left-padded: row
``i`` holds ``pad[i]`` unused columns and then its tokens, so every row's next token lands in the
same cache column and one in-place write per layer extends the whole batch. New requests are
prefilled one row each, first come first served, at most ``prefill_chunk_tokens`` prompt tokens per
step while other streams are decoding, and each joins the batch as soon as its own prompt is done;
with the prefix cache a row starts from the longest stored prefix of its prompt. Finished or
cancelled rows leave before the next step (their KV kept in the prefix cache) and the shared padding
is trimmed. Written by hand because
transformers' own continuous batching (``generate_batch``) is a blocking batch API, not a streaming
server loop with per-request cancellation and sampling.

This module is the worker and its step loop; the bookkeeping of sequences and the batch is in
:mod:`.batch`, per-request prefill and the prefix cache's use in :mod:`.prefill` (the store itself
in :mod:`.prefix_cache`), the cache in :mod:`.kvcache`, the way deltas reach each stream's event
loop in :mod:`.delivery`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import torch

from .base import Engine, EngineStats, GenerationRequest, TokenDelta
from .batch import Batch, Sequence, form_group
from .delivery import Outbox, next_delta
from .prefill import KVReuse, RowPrefill
from .prefix_cache import PrefixCache, auto_budget, kv_bytes_per_token
from .sampling import choose_token, choose_tokens
from .text import special_token_ids
from .token_samplers import sample_rows

logger = logging.getLogger("chatstream.engine")

#: prompt tokens per forward when nothing else is decoding (only memory limits the chunk then)
IDLE_PREFILL_TOKENS = 8192


def cache_kwarg(model: Any) -> str:
    """The model's name for the KV cache argument (transformers 5 renamed ``past_key_values``)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence ids of the tokenizer and of the model's generation config, together."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = {eos} if isinstance(eos, int) else set(eos or [])
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return ids | ({gen_eos} if isinstance(gen_eos, int) else set(gen_eos or []))


class TransformersEngine(Engine):
    """Continuous-batching engine: one model forward per step for all running sequences."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str | None = None,
        *,
        max_batch_size: int = 2,
        kv_cache_tokens: int = 0,
        prefill_chunk_tokens: int = 512,
        model_name: str = "model",
        prefix_cache_tokens: int | None = None,
        prefix_cache_ttl: float = 3600.0,
        token_sampler: Any = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device or str(next(model.parameters()).device)
        self.max_batch_size = max(1, max_batch_size)
        self.kv_cache_tokens = kv_cache_tokens
        self.prefill_chunk_tokens = max(1, prefill_chunk_tokens)
        self.model_name = model_name
        self.token_sampler = token_sampler  # a user's per-row sampler; None: batched sampling
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.num_layers = int(getattr(model.config, "num_hidden_layers", 0) or len(model.model.layers))
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.eos_ids = eos_token_ids(model, tokenizer)
        forward = inspect.signature(model.forward).parameters
        self._cache_kwarg = cache_kwarg(model)
        self._logits_kwarg = "logits_to_keep" if "logits_to_keep" in forward else None
        self._inbox: queue.Queue[Sequence | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = EngineStats(kv_cache_tokens_budget=kv_cache_tokens)
        self._prefilling: list[RowPrefill] = []  # admitted, prompt not done yet; first come first
        self._outbox = Outbox()
        budget = prefix_cache_tokens
        if budget is None:  # sized from the KV budget, or from the memory free now
            budget = auto_budget(kv_bytes_per_token(model), self.device, kv_cache_tokens)
        self._reuse = KVReuse.build(PrefixCache(budget, prefix_cache_ttl), self)
        self._reuse.stats(self._stats)

    # --- interface ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="chatstream-engine", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def encode_prompt(self, text: str, add_special_tokens: bool | None) -> list[int]:
        if add_special_tokens is None:  # the tokenizer's own default, as the seed called it...
            bos = getattr(self.tokenizer, "bos_token", None)
            if not (bos and text.startswith(bos)):  # ...unless the template wrote the BOS itself
                return self.tokenizer(text).input_ids
            add_special_tokens = False
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def stats(self) -> EngineStats:
        return self._stats

    def info(self) -> dict[str, Any]:
        kind = "transformers"
        return {"model": self.model_name, "device": self.device, "dtype": self.dtype, "engine": kind}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        loop = asyncio.get_running_loop()
        seq = Sequence(request=request, loop=loop, out=asyncio.Queue(), started=time.perf_counter())
        self._stats.waiting += 1
        self._inbox.put(seq)
        try:
            while True:
                delta = await next_delta(seq.out)
                yield delta
                if delta.finished:
                    return
        finally:
            seq.cancelled = True  # the worker drops it before its next step

    # --- admission --------------------------------------------------------------------------
    def _encode(self, request: GenerationRequest) -> list[int]:
        """The prompt's ids, checked (not empty, inside the vocabulary); never shortened here."""
        if request.prompt_token_ids is not None:
            ids = list(request.prompt_token_ids)
        else:
            ids = self.encode_prompt(request.prompt, request.add_special_tokens)
        if not ids:
            raise ValueError("the prompt is empty")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the model's vocabulary ({self.vocab_size})")
        return ids

    def _prepare(self, seq: Sequence) -> None:
        """Check a request when it first reaches the head of the queue; raising fails it alone."""
        if seq.request.params.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        seq.take_prompt(self._encode(seq.request))
        params = seq.request.params
        params.stop_token_ids = list(params.stop_token_ids) + special_token_ids(self.tokenizer, params.stop)
        if self.kv_cache_tokens and seq.reserved > self.kv_cache_tokens:
            raise ValueError(
                f"the request needs {seq.reserved} KV cache tokens (prompt + max_new_tokens); "
                f"the budget is {self.kv_cache_tokens}"
            )
        seq.start_decoding(self.tokenizer, self.vocab_size, self.device)

    def _admit(self, waiting: deque[Sequence], batch: Batch) -> None:
        """Admit what fits the free slots and the KV budget; each prompt is then prefilled on its own."""
        admitted = [r.seq for r in self._prefilling] + batch.seqs
        kv_free = None
        if self.kv_cache_tokens:
            kv_free = self.kv_cache_tokens - sum(s.reserved for s in admitted)
        free_slots = self.max_batch_size - len(admitted)
        group = form_group(waiting, free_slots, kv_free, self._prepare, self._outbox.fail)
        if not group:
            return
        self._prefilling += [RowPrefill(seq) for seq in group]
        tokens = sum(len(s.prompt_ids) for s in group)
        self._stats.prompt_tokens_total += tokens
        # with timestamps, these lines show how a burst reached the engine (docs/engine.md)
        logger.debug(
            "prefill group: %d requests, %d prompt tokens, %d decoding",
            len(group),
            tokens,
            len(batch.seqs),
        )

    # --- model calls ------------------------------------------------------------------------
    def _forward(self, batch: Batch, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits of the last new column for every row; extends ``batch``'s cache by the new columns."""
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            # no padding anywhere: no mask, so the model may take its plain causal path
            "attention_mask": batch.mask(input_ids.shape[1], self.device) if any(batch.pads) else None,
            "position_ids": positions,
            self._cache_kwarg: batch.cache,
            "use_cache": True,
        }
        if self._logits_kwarg:
            kwargs[self._logits_kwarg] = 1
        return self.model(**kwargs).logits[:, -1].to(self.device)  # several GPUs: it was on the last

    @torch.inference_mode()
    def _prefill_chunk(self, row: RowPrefill, tokens: int) -> torch.Tensor | None:
        """Feed the row's next ``tokens`` prompt tokens; the last chunk returns its logits."""
        ids, positions = row.inputs(tokens, self.device)
        logits = self._forward(row.batch, ids, positions)
        row.done += tokens
        return logits if not row.remaining else None

    @torch.inference_mode()
    def _decode(self, batch: Batch) -> torch.Tensor:
        tokens, positions = batch.decode_inputs(self.device)
        return self._forward(batch, tokens, positions)

    # --- sampling and output ------------------------------------------------------------------
    def _sample(self, seqs: list[Sequence], logits: torch.Tensor) -> list[int | None]:
        """A token per row; a row whose sampling fails gets None and its request fails alone."""
        params = [s.request.params for s in seqs]
        try:
            if self.token_sampler is not None:
                return sample_rows(self.token_sampler, logits, seqs)
            return list(choose_tokens(logits, params, [s.seen for s in seqs], [s.generator for s in seqs]))
        except Exception:
            picks: list[int | None] = []
            for row, seq in enumerate(seqs):
                try:
                    seen = seq.seen.nonzero().squeeze(-1) if seq.seen is not None else torch.empty(0)
                    picks.append(choose_token(logits[row], seq.request.params, seen, seq.generator))
                except Exception as exc:
                    logger.warning("sampling failed for %s: %s", seq.request.request_id, exc)
                    self._outbox.fail(seq, exc)
                    picks.append(None)
            return picks

    def _accept(self, seq: Sequence, token: int) -> bool:
        """Append ``token``, send the text it makes safe to show; True when the sequence is done."""
        self._stats.generated_tokens_total += 1
        delta = seq.accept(token, self.eos_ids)
        self._outbox.send(seq, delta)
        return delta.finished

    def _advance(self, seqs: list[Sequence], logits: torch.Tensor) -> list[bool]:
        """Sample and emit for every row; True where the row must leave the batch."""
        picks = self._sample(seqs, logits)
        leave = []
        for seq, token in zip(seqs, picks, strict=True):
            if token is None or seq.cancelled:
                leave.append(True)
                continue
            try:
                leave.append(self._accept(seq, token))
            except Exception as exc:  # e.g. the tokenizer cannot decode this token: fail this one
                logger.exception("emitting a token failed")
                self._outbox.fail(seq, exc)
                leave.append(True)
        return leave

    # --- worker loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        waiting: deque[Sequence] = deque()
        batch = Batch.empty(self.num_layers)
        while not self._stop.is_set():
            idle = not batch.seqs and not self._prefilling and not waiting
            if idle:
                self._reuse.expire()  # entries idle past the TTL go even when no request comes
            self._receive(waiting, idle=idle)
            started = time.perf_counter()
            try:
                batch = self._step(waiting, batch)
            except Exception as exc:  # a failed batched forward (e.g. out of memory) ends that batch
                batch = self._step_failed(batch, exc)
            if batch.seqs or self._prefilling or self._outbox.pending:
                self._stats.steps_total += 1
                self._stats.last_step_seconds = time.perf_counter() - started
            self._update_stats(waiting, batch)
            self._outbox.flush()
        self._cancel_all(waiting, batch)

    def _receive(self, waiting: deque[Sequence], idle: bool) -> None:
        """Move new requests from the inbox to ``waiting``; an idle engine waits a little for one."""
        try:
            while True:
                item = self._inbox.get(timeout=0.05) if idle else self._inbox.get_nowait()
                idle = False
                if item is None:  # stop() wakes the worker
                    break
                waiting.append(item)
        except queue.Empty:
            pass

    @torch.inference_mode()
    def _step(self, waiting: deque[Sequence], batch: Batch) -> Batch:
        """One engine step: drop cancelled rows, this step's prefill budget, one decode forward.

        Runs wholly in inference mode: the cache buffers are inference tensors, and joining or
        removing rows writes into them in place.
        """
        self._leave(batch, [s.cancelled for s in batch.seqs])
        self._prefilling = self._reuse.drop_cancelled(self._prefilling)
        self._admit(waiting, batch)
        self._prefill(waiting, batch)
        if batch.seqs:  # rows that just joined decode their second token in the same forward
            self._leave(batch, self._advance(batch.seqs, self._decode(batch)))
        return batch

    def _leave(self, batch: Batch, leave: list[bool]) -> None:
        """Rows flagged in ``leave`` end: their KV goes to the prefix cache, then they leave the batch."""
        if any(leave):
            self._reuse.leave(batch, [r for r, gone in enumerate(leave) if gone])
            batch.keep_where(leave)

    def _prefill(self, waiting: deque[Sequence], batch: Batch) -> None:
        """Spend this step's prompt budget on the waiting prompts, oldest first; done rows join."""
        budget = self._prefill_budget(batch)
        for row in list(self._prefilling):
            if budget <= 0:
                break
            if row.batch is None:
                self._reuse.start(row)  # now, so prefixes stored earlier in this step are found
            tokens = min(row.remaining, budget)
            try:
                logits = self._prefill_chunk(row, tokens)
            except Exception as exc:  # this prompt breaks the model: it fails alone
                logger.error("prefill failed", exc_info=exc)
                self._prefilling.remove(row)
                self._reuse.end(row.seq)
                self._outbox.fail(row.seq, exc)
                continue
            budget -= tokens
            if logits is not None:
                self._finish_prefill(waiting, batch, row, logits)

    def _prefill_budget(self, batch: Batch) -> int:
        """Prompt tokens for this step: the configured chunk while rows decode, more when idle."""
        if batch.seqs:
            return self.prefill_chunk_tokens
        return max(self.prefill_chunk_tokens, IDLE_PREFILL_TOKENS)

    def _finish_prefill(
        self, waiting: deque[Sequence], batch: Batch, row: RowPrefill, logits: torch.Tensor
    ) -> None:
        """The row's first token goes out at once; its prompt KV is stored; it joins the batch."""
        (gone,) = self._advance([row.seq], logits)
        if gone:
            self._prefilling.remove(row)
        self._update_stats(waiting, batch)  # a row that goes on counts as running throughout
        self._outbox.flush()  # its first token out now, not after the copies and forwards that follow
        logger.debug(
            "prefill done: %s, %d prompt tokens, %d from the prefix cache",
            row.seq.request.request_id,
            len(row.seq.prompt_ids),
            row.seq.cached,
        )
        self._reuse.keep(row.seq, row.batch.cache, 0, 0, row.done)  # later prompts may start from it
        if gone:
            self._reuse.end(row.seq)
        else:
            batch.join(row.batch, [0], self.max_batch_size)
            self._prefilling.remove(row)
        self._update_stats(waiting, batch)

    def _step_failed(self, batch: Batch, exc: Exception) -> Batch:
        """End every sequence of the batch and every one being prefilled; the next step starts empty."""
        logger.error("engine step failed", exc_info=exc)
        for seq in {*batch.seqs, *(r.seq for r in self._prefilling)}:
            self._reuse.end(seq)
            if not seq.done:
                self._outbox.fail(seq, exc)
        self._prefilling = []
        return Batch.empty(self.num_layers)

    def _update_stats(self, waiting: deque[Sequence], batch: Batch) -> None:
        self._stats.running = len(batch.seqs) + len(self._prefilling)
        self._stats.waiting = len(waiting) + self._inbox.qsize()
        self._stats.kv_cache_tokens_used = sum(s.length for s in batch.seqs) + sum(
            r.done for r in self._prefilling
        )
        self._reuse.stats(self._stats)

    def _cancel_all(self, waiting: deque[Sequence], batch: Batch) -> None:
        """At stop: every sequence not yet finished ends with ``finish_reason='cancelled'``."""
        for seq in list(waiting) + batch.seqs + [r.seq for r in self._prefilling]:
            if not seq.done:
                seq.done = True
                self._outbox.send(seq, TokenDelta(finished=True, finish_reason="cancelled"))
        self._prefilling = []
        self._outbox.flush()
