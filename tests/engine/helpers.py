"""Drive the engine from tests: collect a stream, build requests, wait on engine progress (no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from chatstream.engine.base import GenerationRequest, SamplingParams, TokenDelta
from chatstream.engine.transformers import TransformersEngine


@asynccontextmanager
async def running_engine(model: Any, tokenizer: Any, **options: Any) -> AsyncIterator[TransformersEngine]:
    """A started engine, stopped however the test ends."""
    engine = TransformersEngine(model, tokenizer, **options)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def request(prompt: str = "", ids: list[int] | None = None, **params: Any) -> GenerationRequest:
    params.setdefault("temperature", 0.0)
    params.setdefault("max_new_tokens", 12)
    return GenerationRequest(
        request_id="t", prompt=prompt, prompt_token_ids=ids, params=SamplingParams(**params)
    )


@dataclass
class Collected:
    deltas: list[TokenDelta] = field(default_factory=list)

    @property
    def tokens(self) -> list[int]:
        return [t for d in self.deltas for t in d.token_ids]

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)

    @property
    def last(self) -> TokenDelta:
        return self.deltas[-1]


async def collect(
    stream: Any, *, stop_after: int | None = None, progress: asyncio.Event | None = None
) -> Collected:
    """Read ``stream`` to the end, or close it after ``stop_after`` deltas (a client disconnect)."""
    out = Collected()
    async for delta in stream:
        out.deltas.append(delta)
        if progress is not None:
            progress.set()
        if stop_after is not None and len(out.deltas) >= stop_after:
            await stream.aclose()
            break
    return out


def reference(model: Any, ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy ``model.generate()`` for this prompt alone — what the engine must reproduce."""
    import torch

    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=max_new_tokens)
    return out[0, len(ids) :].tolist()
