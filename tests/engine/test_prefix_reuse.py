"""The prefix cache inside the engine: greedy output with it is what ``model.generate()`` gives alone.

Multi-turn conversations, prompts sharing a system prefix, eviction under a tiny budget, a request
cancelled mid-prefill and regenerate, each with the cache on and off; and per-request prefill: a
row joins decoding as soon as its own prompt is done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatstream.engine.transformers import TransformersEngine

from .helpers import collect, reference, request, running_engine

SYSTEM = "You are a helpful assistant who answers questions about the sea, robots and lighthouses."
QUESTIONS = [
    "Tell me a story about a small robot",
    "How are you today?",
    "What would you like to talk about?",
    "こんにちは。今日はいい天気ですね。",
]
FOLLOW_UPS = [" And then what happened?", " Why?", " Tell me more about the lighthouse keeper."]


def asking(ids: list[int], new: int, name: str, **params: Any):
    """A greedy request with its own id (the prefill debug lines name it)."""
    req = request(ids=ids, max_new_tokens=new, ignore_eos=True, **params)
    req.request_id = name
    return req


async def burst(model: Any, tokenizer: Any, requests: list[Any], **options: Any) -> tuple[list[Any], Any]:
    """All ``requests`` queued before the engine starts: its first step finds every one of them."""
    engine = TransformersEngine(model, tokenizer, **options)
    tasks = [asyncio.create_task(collect(engine.generate(r))) for r in requests]
    await asyncio.sleep(0)  # every task runs up to its first wait: each request is in the inbox
    assert engine.stats().waiting == len(requests)
    await engine.start()
    try:
        return await asyncio.gather(*tasks), engine
    finally:
        await engine.stop()


async def converse(engine: Any, tokenizer: Any, first: list[int], turns: int, name: str) -> list[Any]:
    """One conversation: every turn's prompt is the previous prompt, its reply and a follow-up."""
    ids, results = first, []
    for turn in range(turns):
        got = await collect(engine.generate(asking(ids, 10 + 3 * turn, f"{name}-{turn}")))
        results.append((ids, got))
        ids = ids + got.tokens + tokenizer(FOLLOW_UPS[turn % len(FOLLOW_UPS)]).input_ids
    return results


async def test_multi_turn_conversations_match_generate_with_the_cache_on_and_off(tiny_lm):
    model, tokenizer = tiny_lm
    firsts = [tokenizer(q).input_ids for q in QUESTIONS[:3]]
    outcomes = {}
    for budget in (0, 4096):
        options = {"max_batch_size": 2, "prefill_chunk_tokens": 8, "prefix_cache_tokens": budget}
        async with running_engine(model, tokenizer, **options) as engine:
            runs = [converse(engine, tokenizer, ids, 3, f"c{i}") for i, ids in enumerate(firsts)]
            outcomes[budget] = await asyncio.gather(*runs)
        stats = engine.stats()
        assert stats.prefix_cache_tokens <= budget and stats.prefix_cache_tokens_budget == budget
    for off, on in zip(outcomes[0], outcomes[4096], strict=True):
        for turn, ((ids, got_off), (same_ids, got_on)) in enumerate(zip(off, on, strict=True)):
            assert ids == same_ids
            assert got_on.tokens == got_off.tokens == reference(model, ids, 10 + 3 * turn)
            assert got_on.text == got_off.text  # a hit and a miss stream the same text
            assert got_off.last.cached_tokens == 0
            if turn:  # the previous prompt and reply, all but the reply's last token (never fed)
                previous_ids, previous = on[turn - 1]
                assert got_on.last.cached_tokens == len(previous_ids) + len(previous.tokens) - 1
    assert stats.prefix_cache_hits_total == sum(
        r.last.cached_tokens for conv in outcomes[4096] for _, r in conv
    )
    assert stats.prefix_cache_queries_total == sum(len(ids) for conv in outcomes[4096] for ids, _ in conv)


async def test_a_shared_system_prompt_is_computed_once_even_in_one_burst(tiny_lm):
    model, tokenizer = tiny_lm
    system = tokenizer(SYSTEM).input_ids
    prompts = [system + tokenizer(" " + q).input_ids for q in QUESTIONS]
    requests = [asking(ids, 8, f"q{i}") for i, ids in enumerate(prompts)]
    results, engine = await burst(model, tokenizer, requests, max_batch_size=4, prefix_cache_tokens=4096)
    assert [r.tokens for r in results] == [reference(model, ids, 8) for ids in prompts]
    # each row looks the store up when its prefill starts, after the rows before it stored their prompt
    assert results[0].last.cached_tokens == 0
    assert all(r.last.cached_tokens >= len(system) for r in results[1:])
    assert engine.stats().prefix_cache_hits_total == sum(r.last.cached_tokens for r in results)


async def test_eviction_under_a_tiny_budget_stays_exact_and_within_budget(tiny_lm):
    model, tokenizer = tiny_lm
    system = tokenizer(SYSTEM).input_ids
    prompts = [system[: 5 + 3 * i] + tokenizer(q).input_ids for i, q in enumerate(QUESTIONS * 2)]
    expected = [reference(model, ids, 12) for ids in prompts]
    budget = 40
    async with running_engine(
        model, tokenizer, max_batch_size=3, prefill_chunk_tokens=6, prefix_cache_tokens=budget
    ) as engine:
        peak = 0
        progress = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while True:
                await progress.wait()
                progress.clear()
                peak = max(peak, engine.stats().prefix_cache_tokens)

        watcher = asyncio.create_task(watch())
        results = []
        for wave in range(2):  # the second wave finds what the first left, or what is left of it
            part = [asking(ids, 12, f"w{wave}-{i}") for i, ids in enumerate(prompts)]
            results.append(
                await asyncio.gather(*(collect(engine.generate(r), progress=progress) for r in part))
            )
        watcher.cancel()
        stats = engine.stats()
    for wave in results:
        assert [r.tokens for r in wave] == expected
    assert 0 < peak <= budget and stats.prefix_cache_tokens <= budget
    assert stats.prefix_cache_evictions_total > 0 and stats.prefix_cache_hits_total > 0


async def test_a_request_cancelled_mid_prefill_leaves_what_it_computed(tiny_lm):
    model, tokenizer = tiny_lm
    long_ids = tokenizer(" ".join(["the robot paints the sea at night"] * 40)).input_ids
    short = tokenizer("Hello").input_ids
    async with running_engine(
        model, tokenizer, max_batch_size=4, prefill_chunk_tokens=8, prefix_cache_tokens=8192
    ) as engine:
        background = engine.generate(asking(short, 2000, "background"))
        await background.__anext__()  # it decodes: every step gives prompts 8 tokens
        cancelled = asyncio.create_task(collect(engine.generate(asking(long_ids, 5, "cancelled"))))
        steps = 0
        while steps < 6:  # a few of the long prompt's chunks go through
            steps += len((await background.__anext__()).token_ids)
        cancelled.cancel()
        while engine.stats().running > 1:  # it leaves before the next step
            await background.__anext__()
        again = await collect(engine.generate(asking(long_ids, 5, "again")))
        await background.aclose()
        await asyncio.gather(cancelled, return_exceptions=True)
    assert again.tokens == reference(model, long_ids, 5)
    assert 0 < again.last.cached_tokens < len(long_ids) - 1  # the part prefilled before the cancel


async def test_regenerate_hits_fully_and_repeats_the_reply(tiny_lm):
    model, tokenizer = tiny_lm
    ids = tokenizer(SYSTEM + " " + QUESTIONS[0]).input_ids
    async with running_engine(model, tokenizer, prefix_cache_tokens=4096) as engine:
        first = await collect(engine.generate(asking(ids, 9, "first")))
        again = await collect(engine.generate(asking(ids, 9, "regenerate")))
    assert first.tokens == again.tokens == reference(model, ids, 9)
    assert again.last.cached_tokens == len(ids) - 1  # all but the last prompt token, fed for its logits


async def test_each_row_joins_decoding_as_soon_as_its_own_prompt_is_done(tiny_lm, caplog):
    """Three prompts arrive together: one forward each, and each row's first token before the next prompt."""
    model, tokenizer = tiny_lm
    prompts = [tokenizer(q).input_ids for q in QUESTIONS[:3]]
    events: list[str] = []

    def forward(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        rows, columns = kwargs["input_ids"].shape
        events.append(f"forward {rows}x{columns}")

    class Done(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg.startswith("prefill done"):
                events.append(f"done {record.args[0]}")

    handler = Done(level=logging.DEBUG)
    logger = logging.getLogger("chatstream.engine")
    logger.addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="chatstream.engine")
    hook = model.register_forward_pre_hook(forward, with_kwargs=True)
    try:
        requests = [asking(ids, 3, f"r{i}") for i, ids in enumerate(prompts)]
        results, _ = await burst(model, tokenizer, requests, max_batch_size=4, prefix_cache_tokens=0)
    finally:
        hook.remove()
        logger.removeHandler(handler)
    assert [r.tokens for r in results] == [reference(model, ids, 3) for ids in prompts]
    assert events[:7] == [
        f"forward 1x{len(prompts[0])}",
        "done r0",
        f"forward 1x{len(prompts[1])}",
        "done r1",
        f"forward 1x{len(prompts[2])}",
        "done r2",
        "forward 3x1",
    ]


async def test_cache_memory_is_never_read_before_it_is_written(tiny_lm, monkeypatch):
    """Buffers come uninitialised: filled with NaN here, any read of an unwritten column would show."""
    import torch

    from chatstream.engine import kvcache

    real = kvcache.buffer

    def poisoned(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return real(shape, like).fill_(float("nan"))

    monkeypatch.setattr(kvcache, "buffer", poisoned)
    model, tokenizer = tiny_lm
    firsts = [tokenizer(q).input_ids for q in QUESTIONS]
    options = {"max_batch_size": 3, "prefill_chunk_tokens": 6, "prefix_cache_tokens": 4096}
    async with running_engine(model, tokenizer, **options) as engine:
        runs = [converse(engine, tokenizer, ids, 3, f"c{i}") for i, ids in enumerate(firsts)]
        outcomes = await asyncio.gather(*runs)
    for conversation in outcomes:
        for turn, (ids, got) in enumerate(conversation):
            assert got.tokens == reference(model, ids, 10 + 3 * turn)


async def test_an_idle_engine_lets_entries_expire_after_the_ttl(tiny_lm):
    model, tokenizer = tiny_lm
    ids = tokenizer(QUESTIONS[0]).input_ids
    async with running_engine(model, tokenizer, prefix_cache_tokens=4096, prefix_cache_ttl=0.3) as engine:
        await collect(engine.generate(asking(ids, 5, "once")))
        assert engine.stats().prefix_cache_tokens == len(ids) + 4
        for _ in range(100):  # no request comes: the idle worker's sweep drops it
            if not engine.stats().prefix_cache_tokens:
                break
            await asyncio.sleep(0.05)
        stats = engine.stats()
    # two entries went: the prompt (stored when its prefill was done) and the reply that extended it
    assert stats.prefix_cache_tokens == 0 and stats.prefix_cache_evictions_total == 2


def test_a_token_of_kv_costs_two_tensors_per_layer(tiny_lm):
    from chatstream.engine.prefix_cache import kv_bytes_per_token

    model, _ = tiny_lm
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    expected = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 8  # float64
    assert kv_bytes_per_token(model) == expected
