"""The mock engine: fixed replies at a chosen pace, with no model loaded.

A product feature, not a test double: it starts instantly, so demos, kind clusters and load tests run
the whole service (queue, history, metrics) without a GPU. ``mock_params``:

* ``type``: ``round`` (a different reply each turn, cycling), ``long`` (one long reply) or ``echo``
  (the user's last message);
* ``initial_wait_sec``: delay before the first token (simulates prefill);
* ``time_per_token_sec``: delay between tokens (default 0.1 s, the seed's pace).

English text is streamed word by word, Japanese (any text without spaces) character by character.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from .base import Engine, EngineStats, GenerationRequest, TokenDelta
from .text import find_stop

ROUND_REPLIES = [
    "Hello! I am a mock model. I answer instantly so you can try the service without a GPU.",
    "This is the second reply in the round. Each turn of a conversation gets the next sentence.",
    "Queues, history and metrics all work the same in mock mode as with a real model.",
    "モックモードでは、モデルを読み込まずに固定の文章を返します。",
    "That is the end of the round; the next turn starts again from the first reply.",
]

LONG_REPLY = (
    "Streaming chat servers send each token to the browser as soon as the model produces it. "
    "While one reply is being written, other users wait in a bounded queue, and the server answers "
    "at once when that queue is full instead of letting requests pile up. Every message is kept in "
    "the history store, so a conversation can continue on any replica after a restart. Operators "
    "watch the queue depth, the tokens per second and the time to the first token, and scale the "
    "number of pods on the queue depth, because a busy GPU always looks fully used. This long reply "
    "exists to exercise slow clients, disconnects in the middle of a stream and the drain of running "
    "streams during a rolling update."
)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def split_mock_tokens(text: str) -> list[str]:
    """Pieces the mock streams: words with their leading space, or single characters for Japanese."""
    if " " not in text.strip() or _CJK.search(text):
        return list(text)
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


class MockEngine(Engine):
    """Streams canned text; concurrency is limited by the scheduler above it, not here."""

    def __init__(self, mock_params: dict[str, Any] | None = None, model_name: str = "chatstream-mock"):
        params = dict(mock_params or {})
        self.mock_type = params.get("type", "round")
        if self.mock_type not in ("round", "long", "echo"):
            raise ValueError(f"unknown mock type {self.mock_type!r} (round, long or echo)")
        self.initial_wait_sec = float(params.get("initial_wait_sec", 0.0))
        self.time_per_token_sec = float(params.get("time_per_token_sec", 0.1))
        self.model_name = model_name
        self._stats = EngineStats()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def reply_for(self, request: GenerationRequest) -> str:
        if self.mock_type == "echo":
            return request.last_user_message
        if self.mock_type == "long":
            return LONG_REPLY
        return ROUND_REPLIES[(max(request.turn, 1) - 1) % len(ROUND_REPLIES)]

    def count_tokens(self, text: str) -> int:
        return len(split_mock_tokens(text)) if text else 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        reply = self.reply_for(request)
        cut = find_stop(reply, request.params.stop)  # honour stop strings like a real engine
        pieces = split_mock_tokens(reply if cut == -1 else reply[:cut])
        limit = request.params.max_new_tokens
        prompt_tokens = self.count_tokens(request.prompt)
        self._stats.running += 1
        self._stats.prompt_tokens_total += prompt_tokens
        produced = 0
        finish = "cancelled"
        try:
            if self.initial_wait_sec > 0:
                await asyncio.sleep(self.initial_wait_sec)
            for index, piece in enumerate(pieces):
                if produced >= limit:
                    break
                if index > 0 and self.time_per_token_sec > 0:
                    await asyncio.sleep(self.time_per_token_sec)
                produced += 1
                self._stats.generated_tokens_total += 1
                self._stats.steps_total += 1
                yield TokenDelta(text=piece, prompt_tokens=prompt_tokens, completion_tokens=produced)
            finish = "length" if produced >= limit and produced < len(pieces) else "stop"
            yield TokenDelta(
                finished=True,
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                completion_tokens=produced,
            )
        finally:
            self._stats.running -= 1

    def stats(self) -> EngineStats:
        return self._stats

    def info(self) -> dict[str, Any]:
        return {"model": self.model_name, "device": "none", "dtype": "none", "engine": "mock"}
