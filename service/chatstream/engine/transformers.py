"""Continuous batching for a HuggingFace causal LM, in a worker thread that owns the model.

Every engine step runs ONE forward pass for all running sequences. The batch is left-padded: row
``i`` holds ``pad[i]`` unused columns and then its tokens, so every row's next token lands in the
same cache column and one in-place write per layer extends the whole batch. New requests are
prefilled as a group (left-padded among themselves, in chunks of at most ``prefill_chunk_tokens``
tokens while other streams are decoding) and join the batch at a step boundary; finished or
cancelled rows leave before the next step and the shared padding is trimmed. Written by hand because
transformers' own continuous batching (``generate_batch``) is a blocking batch API, not a streaming
server loop with per-request cancellation and sampling.

This module is the worker and its step loop; the bookkeeping of sequences, the batch and the
prefill group is in :mod:`.batch`, the cache itself in :mod:`.kvcache`, the way deltas reach each
stream's event loop in :mod:`.delivery`.
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
from .batch import Batch, Prefill, Sequence, form_group
from .delivery import Outbox, next_delta
from .sampling import choose_token, choose_tokens
from .text import special_token_ids

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
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device or str(next(model.parameters()).device)
        self.max_batch_size = max(1, max_batch_size)
        self.kv_cache_tokens = kv_cache_tokens
        self.prefill_chunk_tokens = max(1, prefill_chunk_tokens)
        self.model_name = model_name
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
        self._group: list[Sequence] = []  # the prefill group, until it joins the batch
        self._outbox = Outbox()

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

    def _admit(self, waiting: deque[Sequence], batch: Batch) -> Prefill | None:
        """The next prefill group: what fits the free slots and the KV budget (None when nothing does)."""
        kv_free = None
        if self.kv_cache_tokens:
            kv_free = self.kv_cache_tokens - sum(s.reserved for s in batch.seqs)
        free_slots = self.max_batch_size - len(batch.seqs)
        group = form_group(waiting, free_slots, kv_free, self._prepare, self._outbox.fail)
        if not group:
            return None
        self._group = list(group)
        prefill = Prefill.left_padded(group, self.num_layers, self.device)
        tokens = sum(len(s.prompt_ids) for s in group)
        self._stats.prompt_tokens_total += tokens
        # with timestamps, these lines show how a burst reached the engine (docs/engine.md)
        logger.debug(
            "prefill group: %d requests, %d prompt tokens, %d decoding",
            len(group),
            tokens,
            len(batch.seqs),
        )
        return prefill

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
        # a model spread over several GPUs returns its logits on the last one
        return self.model(**kwargs).logits[:, -1].to(self.device)

    @torch.inference_mode()
    def _prefill_chunk(self, prefill: Prefill, budget: int) -> torch.Tensor | None:
        """Process the next chunk of the group's prompts; the last chunk returns the logits."""
        start, stop = prefill.next_columns(budget)
        logits = self._forward(prefill.batch, prefill.ids[:, start:stop], prefill.positions(start, stop))
        prefill.clear_padding(start, stop)
        prefill.done = stop
        return logits if prefill.complete else None

    @torch.inference_mode()
    def _decode(self, batch: Batch) -> torch.Tensor:
        tokens, positions = batch.decode_inputs(self.device)
        return self._forward(batch, tokens, positions)

    # --- sampling and output ------------------------------------------------------------------
    def _sample(self, seqs: list[Sequence], logits: torch.Tensor) -> list[int | None]:
        """A token per row; a row whose sampling fails gets None and its request fails alone."""
        params = [s.request.params for s in seqs]
        try:
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
        prefill: Prefill | None = None
        while not self._stop.is_set():
            self._receive(waiting, idle=not batch.seqs and prefill is None and not waiting)
            started = time.perf_counter()
            try:
                batch, prefill = self._step(waiting, batch, prefill)
            except Exception as exc:  # a failed batched forward (e.g. out of memory) ends that batch
                batch, prefill = self._step_failed(batch, exc), None
            if batch.seqs or prefill is not None or self._outbox.pending:
                self._stats.steps_total += 1
                self._stats.last_step_seconds = time.perf_counter() - started
            self._update_stats(waiting, batch, prefill)
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
    def _step(
        self, waiting: deque[Sequence], batch: Batch, prefill: Prefill | None
    ) -> tuple[Batch, Prefill | None]:
        """One engine step: drop cancelled rows, at most one prefill chunk, one decode forward.

        Runs wholly in inference mode: the cache buffers are inference tensors, and joining or
        removing rows writes into them in place.
        """
        batch.keep_where([s.cancelled for s in batch.seqs])
        if prefill is not None and all(s.cancelled for s in prefill.seqs):
            prefill, self._group = None, []
        if prefill is None:
            prefill = self._admit(waiting, batch)
        if prefill is not None:
            try:
                logits = self._prefill_chunk(prefill, self._prefill_budget(batch))
            except Exception as exc:
                self._prefill_failed(prefill, waiting, exc)
                return batch, None
            if logits is not None:
                self._finish_prefill(waiting, batch, prefill, logits)
                prefill = None
        if batch.seqs:  # rows that just joined decode their second token in the same forward
            batch.keep_where(self._advance(batch.seqs, self._decode(batch)))
        return batch, prefill

    def _prefill_budget(self, batch: Batch) -> int:
        """Prompt tokens for this step's chunk: the configured chunk while rows decode, more when idle."""
        if batch.seqs:
            return self.prefill_chunk_tokens
        return max(self.prefill_chunk_tokens, IDLE_PREFILL_TOKENS)

    def _finish_prefill(
        self, waiting: deque[Sequence], batch: Batch, prefill: Prefill, logits: torch.Tensor
    ) -> None:
        """The group's first tokens: rows that go on join the batch, and the tokens go out at once."""
        leave = self._advance(prefill.seqs, logits)
        keep = [r for r, gone in enumerate(leave) if not gone]
        if keep:
            batch.join(prefill.batch, keep, self.max_batch_size)
        self._group = []
        self._update_stats(waiting, batch, None)
        self._outbox.flush()  # first tokens out now, not after the decode forward that follows

    def _prefill_failed(self, prefill: Prefill, waiting: deque[Sequence], exc: Exception) -> None:
        """Retry a failed group one by one, so only the request that breaks the model fails."""
        self._group = []
        seqs = [s for s in prefill.seqs if not s.cancelled]
        if len(seqs) == 1 or all(s.solo for s in seqs):
            logger.exception("prefill failed", exc_info=exc)
            for seq in seqs:
                self._outbox.fail(seq, exc)
            return
        for seq in reversed(seqs):
            seq.solo = True
            waiting.appendleft(seq)

    def _step_failed(self, batch: Batch, exc: Exception) -> Batch:
        """End every sequence of the batch and of the forming group; the next step starts empty."""
        logger.error("engine step failed", exc_info=exc)
        for seq in {*batch.seqs, *self._group}:
            if not seq.done:
                self._outbox.fail(seq, exc)
        self._group = []
        return Batch.empty(self.num_layers)

    def _update_stats(self, waiting: deque[Sequence], batch: Batch, prefill: Prefill | None) -> None:
        group, group_kv = (prefill.seqs, prefill.kv_tokens) if prefill is not None else ([], 0)
        self._stats.running = len(batch.seqs) + len(group)
        self._stats.waiting = len(waiting) + self._inbox.qsize()
        self._stats.kv_cache_tokens_used = sum(s.length for s in batch.seqs) + group_kv

    def _cancel_all(self, waiting: deque[Sequence], batch: Batch) -> None:
        """At stop: every sequence not yet finished ends with ``finish_reason='cancelled'``."""
        for seq in list(waiting) + batch.seqs + self._group:
            if not seq.done:
                seq.done = True
                self._outbox.send(seq, TokenDelta(finished=True, finish_reason="cancelled"))
        self._outbox.flush()
