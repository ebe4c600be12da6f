"""Per-request sampling inside one batch: seeds reproduce, parameters apply to their own row only."""

from __future__ import annotations

import asyncio

import pytest
import torch

from chatstream.engine.base import SamplingParams
from chatstream.engine.sampling import choose_token, choose_tokens
from chatstream.engine.transformers import TransformersEngine

from .helpers import collect, request, running_engine


async def _run(engine: TransformersEngine, requests: list) -> list:
    return await asyncio.gather(*(collect(engine.generate(r)) for r in requests))


async def test_seeded_sampling_reproduces_alone_and_in_a_batch(tiny_lm):
    model, tokenizer = tiny_lm
    async with running_engine(model, tokenizer, max_batch_size=4) as engine:
        seeded = dict(temperature=1.0, top_k=40, top_p=0.9, seed=1234, max_new_tokens=16, ignore_eos=True)
        (alone,) = await _run(engine, [request("Hello", **seeded)])
        crowd = await _run(
            engine,
            [
                request("Tell me a story", temperature=0.7, max_new_tokens=20),
                request("Hello", **seeded),
                request(
                    "こんにちは", temperature=1.3, top_k=5, seed=9, repetition_penalty=1.3, max_new_tokens=9
                ),
            ],
        )
        (other_seed,) = await _run(engine, [request("Hello", **{**seeded, "seed": 99})])
    assert crowd[1].tokens == alone.tokens
    assert len(alone.tokens) == 16
    assert other_seed.tokens != alone.tokens


def test_batched_choice_matches_the_single_row_rule():
    torch.manual_seed(0)
    logits = torch.randn(5, 300) * 3
    params = [
        SamplingParams(temperature=0.0),
        SamplingParams(temperature=0.0, repetition_penalty=1.5),
        SamplingParams(temperature=0.8, top_k=7, seed=1),
        SamplingParams(
            temperature=1.2,
            top_k=None,
            top_p=0.5,
            seed=2,
            repetition_penalty=0.7,
            repetition_penalty_method="subtractive",
        ),
        SamplingParams(temperature=1.0, top_k=3, top_p=0.8, seed=3),
    ]
    seen_ids = [
        torch.tensor([1, 2, 3]),
        torch.tensor([int(logits[1].argmax()), 4]),
        torch.tensor([5]),
        torch.tensor([int(logits[3].argmax())]),
        torch.tensor([6]),
    ]
    masks = []
    for ids in seen_ids:
        mask = torch.zeros(300, dtype=torch.bool)
        mask[ids] = True
        masks.append(mask)

    def generators():
        return [torch.Generator().manual_seed(p.seed) if p.seed is not None else None for p in params]

    batch_gens, row_gens = generators(), generators()
    for _ in range(20):  # the generators advance the same way in both paths
        batched = choose_tokens(logits, params, masks, batch_gens)
        single = [choose_token(logits[i], params[i], seen_ids[i], row_gens[i]) for i in range(5)]
        assert batched == single
    # the penalty moved the greedy choice of row 1 away from its (seen) best token
    assert batched[1] != int(logits[1].argmax())
    # top-k 3 keeps row 4 within its three best tokens
    assert batched[4] in torch.topk(logits[4], 3).indices.tolist()


def test_a_row_that_cannot_be_sampled_raises_for_the_fallback():
    logits = torch.randn(2, 50)
    params = [SamplingParams(temperature=1.0), SamplingParams(temperature=1.0, repetition_penalty=0.0)]
    seen = [None, torch.ones(50, dtype=torch.bool)]
    with pytest.raises(RuntimeError):
        choose_tokens(logits.abs() + 1, params, seen, [None, None])
