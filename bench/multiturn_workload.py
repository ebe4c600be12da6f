"""The multi-turn chat workload of ``bench/multiturn.py``: conversations, their prompts, one turn per side.

A :class:`Conversation` renders its prompt the way the service does (the prompt class's text, then
the tokenizer) or, with ``history="ids"``, keeps the ids of the previous prompt and of the reply and
tokenises only the text after them (what a service that stores reply ids would feed). Each side
runs one turn and returns a :class:`TurnResult`:

- :func:`seed_turn`: the seed's design, a per-request KV cache and one forward per token on the event
  loop, yielding between tokens (the whole conversation is prefilled again every turn);
- :func:`engine_turn`: :class:`~chatstream.engine.transformers.TransformersEngine`, cache off or on;
- :func:`http_turn`: ``POST /v1/chat/completions`` (streaming) against ``chatstream serve``; the
  client keeps the messages, the server renders them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import percentile

#: words the user messages and the system prompt are drawn from (plain English, as chat users type)
WORDS = (
    "the a streaming chat server sends every token as soon as model produces it users wait in bounded "
    "queue and refuses work it cannot finish conversations are stored database so that any replica "
    "can continue them after restart operators scale number of pods on depth watch time to first "
    "hello how you today fine thank what would like talk about tell me story small robot who learned "
    "paint sea at night lighthouse keeper taught patience quick brown fox jumps over lazy dog please "
    "explain why this happens again with more detail could give example short answer long question"
).split()


def user_message(conversation: int, turn: int, words: int) -> str:
    """A different ~``words``-word message for every (conversation, turn), the same on every run."""
    rng = random.Random(conversation * 1009 + turn)
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "?"


def system_prompt(tokenizer: Any, tokens: int) -> str:
    """One system prompt of about ``tokens`` tokens, shared by every conversation ("" for 0)."""
    if tokens <= 0:
        return ""
    rng = random.Random(42)
    text = "You are a helpful assistant."
    while len(tokenizer(text, add_special_tokens=False).input_ids) < tokens:
        text += " " + " ".join(rng.choice(WORDS) for _ in range(8)) + "."
    return text


class Conversation:
    """One user's conversation: the prompt object (as the service keeps it) and the client's messages."""

    def __init__(self, prompt_class: type, tokenizer: Any, system: str, history: str) -> None:
        self.prompt = prompt_class()
        self.prompt.set_system(system)
        self.tokenizer = tokenizer
        self.history = history
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        self._text = ""  # the previous prompt's text + its reply
        self._ids: list[int] = []  # and their ids

    def ask(self, message: str) -> list[int]:
        """Add the user's message; the prompt ids of this turn."""
        self.prompt.add_requester_msg(message)
        self.prompt.add_responder_msg(None)
        self.messages.append({"role": "user", "content": message})
        text = self.prompt.create_prompt()
        if self.history == "ids" and self._ids and text.startswith(self._text):
            ids = self._ids + self.tokenizer.encode(text[len(self._text) :], add_special_tokens=False)
        else:
            ids = self.tokenizer(text).input_ids
        self._text, self._ids = text, ids
        return ids

    def answer(self, text: str, ids: list[int]) -> None:
        """The reply joins the history (and, for ``history="ids"``, its ids follow the prompt's)."""
        self.prompt.set_responder_last_msg(text)
        self.messages.append({"role": "assistant", "content": text})
        self._text += text
        self._ids = self._ids + ids


@dataclass
class TurnResult:
    """One turn as the client saw it: when it was sent, when each token came, what the engine reused."""

    sent: float
    stamps: list[float] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0


def summarise(results: list[list[TurnResult]], started: float, end: float) -> dict[str, Any]:
    """Per-turn TTFT and hit rate, throughput over the whole run."""
    turns = len(results[0])
    per_turn = []
    for turn in range(turns):
        done = [r[turn] for r in results if r[turn].stamps]
        ttft = [r.stamps[0] - r.sent for r in done]
        prompt = sum(r.prompt_tokens for r in done)
        per_turn.append(
            {
                "turn": turn + 1,
                "ttft_p50_ms": 1000 * percentile(ttft, 50),
                "ttft_p99_ms": 1000 * percentile(ttft, 99),
                "prompt_tokens": prompt,
                "cached_tokens": sum(r.cached_tokens for r in done),
                "hit_rate": sum(r.cached_tokens for r in done) / prompt if prompt else 0.0,
            }
        )
    later = per_turn[1:] or per_turn
    tokens = sum(len(r.stamps) for conv in results for r in conv)
    seconds = end - started
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "turns_per_s": sum(len(conv) for conv in results) / seconds,
        "turns": per_turn,
        "hit_rate_turns_2plus": sum(p["cached_tokens"] for p in later)
        / max(1, sum(p["prompt_tokens"] for p in later)),
        "ttft_growth": per_turn[-1]["ttft_p50_ms"] / per_turn[0]["ttft_p50_ms"],
    }


async def seed_turn(model: Any, tokenizer: Any, ids: list[int], new: int) -> TurnResult:
    """The seed's loop: this request's own KV cache, one forward per token, the loop shared."""
    import torch

    from chatstream.engine.transformers import cache_kwarg

    result = TurnResult(sent=time.perf_counter(), prompt_tokens=len(ids))
    device = next(model.parameters()).device
    inputs, past = torch.tensor([ids], device=device), None
    for _ in range(new):
        with torch.inference_mode():
            out = model(input_ids=inputs, use_cache=True, **{cache_kwarg(model): past})
        past = out.past_key_values
        token = int(torch.argmax(out.logits[0, -1]))
        result.stamps.append(time.perf_counter())
        result.token_ids.append(token)
        inputs = torch.tensor([[token]], device=device)
        await asyncio.sleep(0)  # the other conversations take their turn
    result.text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
    return result


async def engine_turn(engine: Any, tokenizer: Any, ids: list[int], new: int) -> TurnResult:
    """One greedy turn through the engine; ``cached_tokens`` is what its prefix cache reused."""
    from chatstream.engine import GenerationRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_new_tokens=new, ignore_eos=True)
    request = GenerationRequest(request_id="", prompt="", prompt_token_ids=ids, params=params)
    result = TurnResult(sent=time.perf_counter(), prompt_tokens=len(ids))
    async for delta in engine.generate(request):
        now = time.perf_counter()
        result.stamps += [now] * len(delta.token_ids)
        result.token_ids += delta.token_ids
        if delta.finished:
            result.cached_tokens = getattr(delta, "cached_tokens", 0)
    result.text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
    return result


async def http_turn(client: Any, model: str, messages: list[dict[str, str]], new: int) -> TurnResult:
    """One streamed chat completion; a stamp per content chunk (the server may merge tokens)."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": new,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = TurnResult(sent=time.perf_counter())
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("usage"):
                result.prompt_tokens = data["usage"]["prompt_tokens"]
                details = data["usage"].get("prompt_tokens_details") or {}
                result.cached_tokens = details.get("cached_tokens") or 0
            for choice in data.get("choices", []):
                if content := choice.get("delta", {}).get("content"):
                    result.stamps.append(time.perf_counter())
                    result.text += content
    return result
