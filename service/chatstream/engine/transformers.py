"""Continuous batching for a HuggingFace causal LM, in a worker thread that owns the model.

Every engine step runs ONE forward pass for all running sequences. The batch is left-padded: row
``i`` holds ``pad[i]`` unused columns and then its tokens, so every row's next token lands in the
same cache column and one in-place write per layer extends the whole batch. New requests are
prefilled as a group (left-padded among themselves, in chunks of at most ``prefill_chunk_tokens``
tokens while other streams are decoding) and join the batch at a step boundary; finished or
cancelled rows leave before the next step and the shared padding is trimmed. Written by hand because
transformers' own continuous batching (``generate_batch``) is a blocking batch API, not a streaming
server loop with per-request cancellation and sampling.
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
from dataclasses import dataclass, field
from typing import Any

import torch

from . import kvcache
from .base import Engine, EngineStats, GenerationRequest, TokenDelta
from .detokenize import IncrementalDetokenizer
from .sampling import choose_token, choose_tokens
from .text import find_stop, partial_suffix_len

logger = logging.getLogger("chatstream.engine")

#: prompt tokens per forward when nothing else is decoding (only memory limits the chunk then)
IDLE_PREFILL_TOKENS = 8192


def cache_kwarg(model: Any) -> str:
    """The model's name for the KV cache argument (transformers 5 renamed ``past_key_values``)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@dataclass(eq=False)
class _Sequence:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    prompt_ids: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    reserved: int = 0
    text: str = ""
    emitted: int = 0
    generator: torch.Generator | None = None
    seen: torch.Tensor | None = None
    detok: IncrementalDetokenizer | None = None
    cancelled: bool = False
    done: bool = False  # its last delta was sent
    solo: bool = False
    started: float = 0.0

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.generated)


@dataclass(eq=False)
class _Batch:
    """Rows of sequences sharing one left-padded cache; ``pads[i]`` unused columns lead row ``i``."""

    seqs: list[_Sequence]
    cache: Any
    pads: list[int]

    @property
    def width(self) -> int:
        return kvcache.width(self.cache)

    def mask(self, extra: int, device: str) -> torch.Tensor:
        """Attention mask over the cache plus ``extra`` new columns (0 on each row's padding)."""
        columns = torch.arange(self.width + extra, device=device)
        return (columns.unsqueeze(0) >= torch.tensor(self.pads, device=device).unsqueeze(1)).long()

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

    def join(self, group: _Batch, rows: list[int], max_rows: int) -> None:
        """Append rows ``rows`` of a freshly prefilled group."""
        group.keep(rows)
        if not group.seqs:
            return
        group_width = group.width
        grown = kvcache.join(self.cache, group.cache, max_rows)
        self.pads = [p + grown for p in self.pads]
        self.pads += [p + self.width - group_width for p in group.pads]
        self.seqs += group.seqs


@dataclass(eq=False)
class _Prefill:
    """A group of new sequences whose prompts are processed together, one chunk per engine step."""

    batch: _Batch
    ids: torch.Tensor  # group rows × longest prompt, left-padded
    done: int = 0  # prompt columns processed so far


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
        dtype: str | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device or str(next(model.parameters()).device)
        if dtype not in (None, "auto"):
            from .loader import resolve_dtype

            model.to(resolve_dtype(dtype, self.device))
        self.max_batch_size = max(1, max_batch_size)
        self.kv_cache_tokens = kv_cache_tokens
        self.prefill_chunk_tokens = max(1, prefill_chunk_tokens)
        self.model_name = model_name
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        config = model.config
        self.num_layers = int(getattr(config, "num_hidden_layers", 0) or len(model.model.layers))
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        forward = inspect.signature(model.forward).parameters
        self._cache_kwarg = cache_kwarg(model)
        self._logits_kwarg = "logits_to_keep" if "logits_to_keep" in forward else None
        self._inbox: queue.Queue[_Sequence | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = EngineStats(kv_cache_tokens_budget=kv_cache_tokens)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self.eos_ids |= {gen_eos} if isinstance(gen_eos, int) else set(gen_eos or [])
        self._group: list[_Sequence] = []  # the prefill group, until it joins the batch
        self._outbox: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, TokenDelta]]] = {}

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
        if add_special_tokens is None:  # the tokenizer's own default, as the seed called it
            return self.tokenizer(text).input_ids
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def stats(self) -> EngineStats:
        return self._stats

    def info(self) -> dict[str, Any]:
        kind = "transformers"
        return {"model": self.model_name, "device": self.device, "dtype": self.dtype, "engine": kind}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        loop = asyncio.get_running_loop()
        seq = _Sequence(request=request, loop=loop, out=asyncio.Queue(), started=time.perf_counter())
        self._stats.waiting += 1
        self._inbox.put(seq)
        try:
            while True:
                delta = await seq.out.get()
                while not delta.finished and not seq.out.empty():
                    # a consumer that fell behind gets one delta, not a backlog to walk token by token
                    delta = _merge(delta, seq.out.get_nowait())
                yield delta
                if delta.finished:
                    return
        finally:
            seq.cancelled = True

    # --- delivery -------------------------------------------------------------------------
    def _send(self, seq: _Sequence, delta: TokenDelta) -> None:
        self._outbox.setdefault(seq.loop, []).append((seq, delta))

    def _flush(self) -> None:
        """One wake-up per event loop per step, however many streams got a delta."""
        outbox, self._outbox = self._outbox, {}
        for loop, items in outbox.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # that event loop is closed: nobody is listening any more
                pass

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        seq.cancelled = seq.done = True
        self._send(
            seq,
            TokenDelta(
                finished=True,
                finish_reason="error",
                error=str(exc) or type(exc).__name__,
                prompt_tokens=len(seq.prompt_ids),
                completion_tokens=len(seq.generated),
            ),
        )

    # --- admission --------------------------------------------------------------------------
    def _encode(self, request: GenerationRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            ids = list(request.prompt_token_ids)
        else:
            ids = self.encode_prompt(request.prompt, request.add_special_tokens)
        budget = max(request.context_len - request.params.max_new_tokens, 1)
        ids = ids[-budget:]
        if not ids:
            raise ValueError("the prompt is empty")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the model's vocabulary ({self.vocab_size})")
        return ids

    def _prepare(self, seq: _Sequence) -> None:
        params = seq.request.params
        if params.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        seq.prompt_ids = self._encode(seq.request)
        seq.reserved = len(seq.prompt_ids) + params.max_new_tokens
        if self.kv_cache_tokens and seq.reserved > self.kv_cache_tokens:
            raise ValueError(
                f"the request needs {seq.reserved} KV cache tokens (prompt + max_new_tokens); "
                f"the budget is {self.kv_cache_tokens}"
            )
        seq.detok = IncrementalDetokenizer(self.tokenizer, seq.prompt_ids)
        if params.seed is not None:
            seq.generator = torch.Generator(device="cpu").manual_seed(params.seed)
        if params.repetition_penalty is not None:
            seq.seen = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
            seq.seen[torch.tensor(seq.prompt_ids, device=self.device)] = True

    def _form_group(self, waiting: deque[_Sequence], running: int, reserved: int) -> _Prefill | None:
        """Take the next waiting sequences that fit the free slots and the KV budget, FIFO."""
        group: list[_Sequence] = []
        while waiting and running + len(group) < self.max_batch_size:
            seq = waiting[0]
            if seq.cancelled:
                waiting.popleft()
                continue
            if not seq.prompt_ids:
                try:
                    self._prepare(seq)
                except Exception as exc:  # a bad request fails alone
                    waiting.popleft()
                    self._fail(seq, exc)
                    continue
            if self.kv_cache_tokens and reserved + seq.reserved > self.kv_cache_tokens:
                break  # FIFO: it waits until running sequences give their KV space back
            if group and (seq.solo or group[0].solo):
                break
            waiting.popleft()
            group.append(seq)
            reserved += seq.reserved
        if not group:
            return None
        longest = max(len(s.prompt_ids) for s in group)
        pad_id = 0
        ids = torch.full((len(group), longest), pad_id, dtype=torch.long)
        for row, seq in enumerate(group):
            ids[row, longest - len(seq.prompt_ids) :] = torch.tensor(seq.prompt_ids)
        pads = [longest - len(s.prompt_ids) for s in group]
        batch = _Batch(group, kvcache.new_cache(self.num_layers), pads)
        return _Prefill(batch, ids.to(self.device))

    # --- model calls ------------------------------------------------------------------------
    def _forward(self, batch: _Batch, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
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
        return self.model(**kwargs).logits[:, -1]

    @torch.inference_mode()
    def _prefill_chunk(self, prefill: _Prefill, budget: int) -> torch.Tensor | None:
        """Process the next chunk of the group's prompts; the last chunk returns the logits."""
        batch = prefill.batch
        rows, longest = prefill.ids.shape
        width = min(longest - prefill.done, max(1, budget // rows))
        start, stop = prefill.done, prefill.done + width
        pads = torch.tensor(batch.pads, device=self.device).unsqueeze(1)
        positions = (torch.arange(start, stop, device=self.device).unsqueeze(0) - pads).clamp(min=0)
        logits = self._forward(batch, prefill.ids[:, start:stop], positions)
        if any(p > start for p in batch.pads):  # padding columns hold garbage: zero them
            valid = torch.arange(start, stop, device=self.device).unsqueeze(0) >= pads
            for layer in batch.cache.layers:
                keep = valid[:, None, :, None].to(layer.k.dtype)
                layer.k[:, :, layer.start + start : layer.start + stop] *= keep
                layer.v[:, :, layer.start + start : layer.start + stop] *= keep
        prefill.done = stop
        return logits if stop == longest else None

    @torch.inference_mode()
    def _decode(self, batch: _Batch) -> torch.Tensor:
        tokens = torch.tensor([[s.generated[-1]] for s in batch.seqs], device=self.device)
        positions = torch.tensor([[s.length - 1] for s in batch.seqs], device=self.device)
        return self._forward(batch, tokens, positions)

    # --- sampling and output ------------------------------------------------------------------
    def _sample(self, seqs: list[_Sequence], logits: torch.Tensor) -> list[int | None]:
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
                    self._fail(seq, exc)
                    picks.append(None)
            return picks

    def _accept(self, seq: _Sequence, token: int) -> bool:
        """Append ``token``, send the text it makes safe to show; True when the sequence is done."""
        params = seq.request.params
        seq.generated.append(token)
        if seq.seen is not None:
            seq.seen[token] = True
        self._stats.generated_tokens_total += 1
        common = {"prompt_tokens": len(seq.prompt_ids), "completion_tokens": len(seq.generated)}
        stop_token = token in params.stop_token_ids or (not params.ignore_eos and token in self.eos_ids)
        if not stop_token:
            seq.text += seq.detok.add(token)
        cut = find_stop(seq.text, params.stop, seq.emitted)
        finished = stop_token or cut != -1 or len(seq.generated) >= params.max_new_tokens
        if cut != -1:
            seq.text = seq.text[:cut]
        if finished:
            reason = "stop" if (stop_token or cut != -1) else "length"
            seq.done = True
            self._send(seq, TokenDelta(seq.text[seq.emitted :], [token], True, reason, **common))
            return True
        safe = len(seq.text) - partial_suffix_len(seq.text, params.stop)
        new = seq.text[seq.emitted : safe] if safe > seq.emitted else ""
        seq.emitted = max(seq.emitted, safe)
        self._send(seq, TokenDelta(new, [token], **common))
        return False

    def _advance(self, seqs: list[_Sequence], logits: torch.Tensor) -> list[bool]:
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
                self._fail(seq, exc)
                leave.append(True)
        return leave

    # --- worker loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        waiting: deque[_Sequence] = deque()
        batch = self._empty_batch()
        prefill: _Prefill | None = None
        while not self._stop.is_set():
            idle = not batch.seqs and prefill is None and not waiting
            try:
                while True:
                    item = self._inbox.get(timeout=0.05) if idle else self._inbox.get_nowait()
                    idle = False
                    if item is None:
                        break
                    waiting.append(item)
            except queue.Empty:
                pass
            started = time.perf_counter()
            try:
                batch, prefill = self._step(waiting, batch, prefill)
            except Exception as exc:  # a failed batched forward (e.g. out of memory) ends that batch
                logger.exception("engine step failed")
                for seq in {*batch.seqs, *self._group}:
                    if not seq.done:
                        self._fail(seq, exc)
                batch, prefill, self._group = self._empty_batch(), None, []
            if batch.seqs or prefill or self._outbox:
                self._stats.steps_total += 1
                self._stats.last_step_seconds = time.perf_counter() - started
            self._update_stats(waiting, batch, prefill)
            self._flush()
        for seq in list(waiting) + batch.seqs + self._group:
            if not seq.done:
                seq.done = True
                self._send(seq, TokenDelta(finished=True, finish_reason="cancelled"))
        self._flush()

    def _update_stats(self, waiting: deque[_Sequence], batch: _Batch, prefill: _Prefill | None) -> None:
        group = prefill.batch.seqs if prefill else []
        self._stats.running = len(batch.seqs) + len(group)
        self._stats.waiting = len(waiting) + self._inbox.qsize()
        self._stats.kv_cache_tokens_used = sum(s.length for s in batch.seqs) + sum(
            min(len(s.prompt_ids), prefill.done) for s in group
        )

    @torch.inference_mode()
    def _step(
        self, waiting: deque[_Sequence], batch: _Batch, prefill: _Prefill | None
    ) -> tuple[_Batch, _Prefill | None]:
        """One engine step: drop cancelled rows, at most one prefill chunk, one decode forward.

        Runs wholly in inference mode: the cache buffers are inference tensors, and joining or
        removing rows writes into them in place.
        """
        if any(s.cancelled for s in batch.seqs):
            batch.keep([r for r, s in enumerate(batch.seqs) if not s.cancelled])
        if prefill is not None and all(s.cancelled for s in prefill.batch.seqs):
            prefill, self._group = None, []
        if prefill is None:
            reserved = sum(s.reserved for s in batch.seqs)
            prefill = self._form_group(waiting, len(batch.seqs), reserved)
            if prefill is not None:
                tokens = sum(len(s.prompt_ids) for s in prefill.batch.seqs)
                self._stats.prompt_tokens_total += tokens
                self._group = list(prefill.batch.seqs)
                # with timestamps, these lines show how a burst reached the engine (docs/engine.md)
                logger.debug(
                    "prefill group: %d requests, %d prompt tokens, %d decoding",
                    len(self._group),
                    tokens,
                    len(batch.seqs),
                )
        if prefill is not None:
            budget = self.prefill_chunk_tokens
            if not batch.seqs:
                budget = max(budget, IDLE_PREFILL_TOKENS)
            try:
                logits = self._prefill_chunk(prefill, budget)
            except Exception as exc:
                self._prefill_failed(prefill, waiting, exc)
                self._group = []
                return batch, None
            if logits is not None:
                group = prefill.batch
                leave = self._advance(group.seqs, logits)
                keep = [r for r, gone in enumerate(leave) if not gone]
                if keep:
                    batch.join(group, keep, self.max_batch_size)
                prefill, self._group = None, []
                self._update_stats(waiting, batch, prefill)
                self._flush()  # first tokens out now, not after the decode forward below
        if batch.seqs:  # rows that just joined decode their second token in the same forward
            leave = self._advance(batch.seqs, self._decode(batch))
            if any(leave):
                batch.keep([r for r, gone in enumerate(leave) if not gone])
        return batch, prefill

    def _empty_batch(self) -> _Batch:
        return _Batch([], kvcache.new_cache(self.num_layers), [])

    def _prefill_failed(self, prefill: _Prefill, waiting: deque[_Sequence], exc: Exception) -> None:
        """Retry a failed group one by one, so only the request that breaks the model fails."""
        seqs = [s for s in prefill.batch.seqs if not s.cancelled]
        if len(seqs) == 1 or all(s.solo for s in seqs):
            logger.exception("prefill failed", exc_info=exc)
            for seq in seqs:
                self._fail(seq, exc)
            return
        for seq in reversed(seqs):
            seq.solo = True
            waiting.appendleft(seq)


def _merge(first: TokenDelta, second: TokenDelta) -> TokenDelta:
    second.text = first.text + second.text
    second.token_ids = first.token_ids + second.token_ids
    return second


def _deliver(items: list[tuple[_Sequence, TokenDelta]]) -> None:
    for seq, delta in items:
        seq.out.put_nowait(delta)
