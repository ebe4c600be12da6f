"""Generation with a HuggingFace causal LM in a worker thread that owns the model.

The model never runs on the asyncio thread: a single worker thread steps every running sequence in
turn (one token each per round, so all streams advance together) and hands deltas back to the event
loop with ``call_soon_threadsafe``. Each sequence keeps its own KV cache; a cancelled sequence is
dropped before the next round. Batched decoding (one forward pass for all sequences) is the job of
the continuous-batching engine that replaces this loop behind the same interface.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .base import Engine, EngineStats, GenerationRequest, TokenDelta
from .detokenize import IncrementalDetokenizer
from .sampling import choose_token
from .text import find_stop, partial_suffix_len

logger = logging.getLogger("chatstream.engine")


@dataclass
class _Sequence:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    prompt_ids: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    past: Any = None
    next_input: list[int] = field(default_factory=list)
    position: int = 0
    text: str = ""
    emitted: int = 0
    generator: torch.Generator | None = None
    detok: IncrementalDetokenizer | None = None
    cancelled: bool = False

    def send(self, delta: TokenDelta) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, delta)


class TransformersEngine(Engine):
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
        self.max_batch_size = max_batch_size
        self.kv_cache_tokens = kv_cache_tokens
        self.model_name = model_name
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self._inbox: queue.Queue[_Sequence | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = EngineStats(kv_cache_tokens_budget=kv_cache_tokens)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [])

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

    def stats(self) -> EngineStats:
        return self._stats

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "device": self.device,
            "dtype": self.dtype,
            "engine": "transformers",
        }

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        loop = asyncio.get_running_loop()
        seq = _Sequence(request=request, loop=loop, out=asyncio.Queue())
        self._stats.waiting += 1
        self._inbox.put(seq)
        try:
            while True:
                delta = await seq.out.get()
                yield delta
                if delta.finished:
                    return
        finally:
            seq.cancelled = True

    # --- worker -----------------------------------------------------------------------------
    def _encode(self, request: GenerationRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            ids = list(request.prompt_token_ids)
        elif request.add_special_tokens is None:
            ids = self.tokenizer(request.prompt).input_ids
        else:
            ids = self.tokenizer.encode(request.prompt, add_special_tokens=request.add_special_tokens)
        budget = max(request.context_len - request.params.max_new_tokens, 1)
        return ids[-budget:]

    def _admit(self, seq: _Sequence) -> None:
        seq.prompt_ids = self._encode(seq.request)
        seq.next_input = list(seq.prompt_ids)
        seq.detok = IncrementalDetokenizer(self.tokenizer, seq.prompt_ids)
        if seq.request.params.seed is not None:
            seq.generator = torch.Generator(device="cpu").manual_seed(seq.request.params.seed)
        self._stats.prompt_tokens_total += len(seq.prompt_ids)

    def _run(self) -> None:
        active: list[_Sequence] = []
        pending: list[_Sequence] = []
        while not self._stop.is_set():
            block = not active and not pending
            try:
                while True:
                    item = self._inbox.get(timeout=0.05) if block else self._inbox.get_nowait()
                    block = False
                    if item is None:
                        break
                    pending.append(item)
            except queue.Empty:
                pass
            while pending and len(active) < self.max_batch_size:
                seq = pending.pop(0)
                self._stats.waiting -= 1
                if seq.cancelled:
                    continue
                try:
                    self._admit(seq)
                    active.append(seq)
                except Exception as exc:
                    seq.send(TokenDelta(finished=True, finish_reason="error", error=str(exc)))
            self._stats.running = len(active)
            started = time.perf_counter()
            for seq in list(active):
                if seq.cancelled:
                    active.remove(seq)
                    continue
                try:
                    done = self._step(seq)
                except Exception as exc:  # fail this request only; the worker keeps serving
                    logger.exception("generation step failed")
                    seq.send(TokenDelta(finished=True, finish_reason="error", error=str(exc)))
                    done = True
                if done:
                    active.remove(seq)
                    seq.past = None
            if active:
                self._stats.steps_total += 1
                self._stats.last_step_seconds = time.perf_counter() - started
            self._stats.running = len(active)
            self._stats.kv_cache_tokens_used = sum(len(s.prompt_ids) + len(s.generated) for s in active)
        for seq in active + pending:
            seq.send(TokenDelta(finished=True, finish_reason="cancelled"))

    @torch.inference_mode()
    def _step(self, seq: _Sequence) -> bool:
        params = seq.request.params
        ids = torch.tensor([seq.next_input], device=self.device)
        positions = torch.arange(seq.position, seq.position + ids.shape[1], device=self.device).unsqueeze(0)
        out = self.model(input_ids=ids, past_key_values=seq.past, position_ids=positions, use_cache=True)
        seq.past = out.past_key_values
        seq.position += ids.shape[1]
        seen = torch.tensor(seq.prompt_ids + seq.generated, device=out.logits.device, dtype=torch.long)
        token = choose_token(out.logits[0, -1], params, seen, seq.generator)
        seq.generated.append(token)
        seq.next_input = [token]
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
            seq.send(TokenDelta(seq.text[seq.emitted :], [token], True, reason, **common))
            return True
        safe = len(seq.text) - partial_suffix_len(seq.text, params.stop)
        new = seq.text[seq.emitted : safe] if safe > seq.emitted else ""
        seq.emitted = max(seq.emitted, safe)
        seq.send(TokenDelta(new, [token], **common))
        return False
