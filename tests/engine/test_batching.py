"""Continuous batching gives each request exactly what ``model.generate()`` gives it alone."""

from __future__ import annotations

import asyncio

from chatstream.engine.transformers import TransformersEngine

from .helpers import collect, reference, request, running_engine

PROMPTS = [
    "Hello, how are you today?",
    "The quick brown fox jumps over the lazy dog. A streaming chat server sends every token as soon as",
    "こんにちは。今日はいい天気ですね。",
    "item 7 value",
    "Operators scale the number of pods on the queue depth and watch the time to the first token. Users",
    "Tell me a story about a small robot",
]


async def test_staggered_arrivals_with_cancellations_match_generate(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = [tokenizer(p).input_ids for p in PROMPTS]
    lengths = [14, 20, 9, 25, 16, 11]
    expected = [reference(model, ids, n) for ids, n in zip(prompts, lengths, strict=True)]
    # 3 slots for 6 requests (some wait), a small prefill budget (long prompts take several chunks
    # while others decode), and two clients that disconnect mid-stream.
    async with running_engine(model, tokenizer, max_batch_size=3, prefill_chunk_tokens=8) as engine:
        tasks: list[asyncio.Task] = []
        cancel_after = {1: 3, 4: 5}
        for i, ids in enumerate(prompts):
            progress = asyncio.Event()
            stream = engine.generate(request(ids=ids, max_new_tokens=lengths[i]))
            tasks.append(
                asyncio.create_task(collect(stream, stop_after=cancel_after.get(i), progress=progress))
            )
            await progress.wait()  # the next request arrives once this one streams: staggered
        results = await asyncio.gather(*tasks)

    for i, (got, want) in enumerate(zip(results, expected, strict=True)):
        if i in cancel_after:
            assert not got.last.finished
            assert got.tokens == want[: len(got.tokens)]
        else:
            assert got.tokens == want, f"request {i} diverged from generate()"
            assert got.last.finished and got.last.finish_reason in {"stop", "length"}
            assert got.last.completion_tokens == len(want)
            assert got.last.prompt_tokens == len(prompts[i])
    stats = engine.stats()
    assert stats.running == 0 and stats.waiting == 0 and stats.kv_cache_tokens_used == 0
    assert stats.generated_tokens_total >= sum(len(r.tokens) for r in results)
    assert stats.prompt_tokens_total == sum(len(p) for p in prompts)


async def test_all_at_once_beyond_slots_and_one_forward_per_step(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = [tokenizer(p).input_ids for p in PROMPTS]
    expected = [reference(model, ids, 10) for ids in prompts]
    async with running_engine(model, tokenizer, max_batch_size=6) as engine:
        streams = [engine.generate(request(ids=ids, max_new_tokens=10, ignore_eos=True)) for ids in prompts]
        results = await asyncio.gather(*(collect(s) for s in streams))
    for got, want in zip(results, expected, strict=True):
        assert got.tokens[: len(want)] == want
    # one decode forward per step serves all six streams: far fewer steps than the 60 tokens
    # a one-sequence-per-forward loop needs
    assert engine.stats().generated_tokens_total == 60
    assert engine.stats().steps_total <= 20


async def test_cancelled_stream_leaves_before_the_next_step(tiny_lm):
    model, tokenizer = tiny_lm
    async with running_engine(model, tokenizer, max_batch_size=4) as engine:
        keep = engine.generate(request("Hello", max_new_tokens=400, ignore_eos=True))
        drop = engine.generate(request("Tell me a story", max_new_tokens=400, ignore_eos=True))
        await keep.__anext__()
        await drop.__anext__()
        assert engine.stats().running == 2
        await drop.aclose()
        left = False
        for _ in range(50):  # the other stream keeps going; the closed one leaves the batch
            delta = await keep.__anext__()
            assert not delta.finished
            if engine.stats().running == 1:
                left = True
                break
        assert left
        await keep.aclose()


async def test_stop_ends_running_streams_as_cancelled(tiny_lm):
    model, tokenizer = tiny_lm
    engine = TransformersEngine(model, tokenizer)
    await engine.start()
    stream = engine.generate(request("Hello", max_new_tokens=10_000, ignore_eos=True))
    await stream.__anext__()
    await engine.stop()
    deltas = [d async for d in stream]
    assert deltas[-1].finished and deltas[-1].finish_reason == "cancelled"


async def test_churn_many_joins_and_leaves_stays_exact(tiny_lm):
    """Rows leave from the middle, wider prompts join narrower batches, buffers grow: still exact."""
    model, tokenizer = tiny_lm
    words = "The quick brown fox jumps over the lazy dog while the robot paints the sea at night".split()
    prompts = [tokenizer(" ".join(words[: 2 + (i * 5) % 15])).input_ids for i in range(12)]
    lengths = [5 + (i * 7) % 40 for i in range(12)]
    expected = [reference(model, ids, n) for ids, n in zip(prompts, lengths, strict=True)]
    async with running_engine(model, tokenizer, max_batch_size=5, prefill_chunk_tokens=6) as engine:
        tasks = []
        for i, ids in enumerate(prompts):
            progress = asyncio.Event()
            stream = engine.generate(request(ids=ids, max_new_tokens=lengths[i]))
            stop_after = 2 + i % 4 if i % 3 == 2 else None
            tasks.append(asyncio.create_task(collect(stream, stop_after=stop_after, progress=progress)))
            if i % 2:
                await progress.wait()
        results = await asyncio.gather(*tasks)
    for got, want in zip(results, expected, strict=True):
        assert got.tokens == want[: len(got.tokens)]
        if got.last.finished:
            assert got.tokens == want


async def test_grown_buffers_are_reused_by_later_requests(tiny_lm):
    """A reply longer than the first buffer grows it mid-decode; later requests join the grown cache."""
    model, tokenizer = tiny_lm
    short, wide = tokenizer("Hello").input_ids, tokenizer(PROMPTS[1] + " " + PROMPTS[4]).input_ids
    async with running_engine(model, tokenizer, max_batch_size=3) as engine:
        first = await collect(engine.generate(request(ids=short, max_new_tokens=150, ignore_eos=True)))
        second = await collect(engine.generate(request(ids=short, max_new_tokens=150, ignore_eos=True)))
        long_one = engine.generate(request(ids=short, max_new_tokens=150, ignore_eos=True))
        progress = asyncio.Event()
        running = asyncio.create_task(collect(long_one, progress=progress))
        while not running.done() and engine.stats().generated_tokens_total < 2 * 150 + 100:
            progress.clear()  # wait until it is well past its first buffer before a wider prompt joins
            waiter = asyncio.create_task(progress.wait())
            await asyncio.wait({waiter, running}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        joined = await collect(engine.generate(request(ids=wide, max_new_tokens=30, ignore_eos=True)))
        third = await running
    expected = reference(model, short, 150)
    assert first.tokens[: len(expected)] == expected
    assert second.tokens == first.tokens and third.tokens == first.tokens
    assert joined.tokens[:30] == reference(model, wide, 30)[:30]
    assert all(r.last.finish_reason == "length" for r in (first, second, third, joined))


async def test_each_prefill_group_is_logged_at_debug(tiny_lm, caplog):
    """The debug line per group accounts for every request and prompt token, however they grouped."""
    model, tokenizer = tiny_lm
    prompts = [tokenizer(p).input_ids for p in PROMPTS]
    caplog.set_level("DEBUG", logger="chatstream.engine")
    async with running_engine(model, tokenizer, max_batch_size=6) as engine:
        streams = [engine.generate(request(ids=ids, max_new_tokens=3)) for ids in prompts]
        await asyncio.gather(*(collect(s) for s in streams))
    groups = [r.args for r in caplog.records if r.getMessage().startswith("prefill group:")]
    assert groups
    assert sum(g[0] for g in groups) == len(prompts)
    assert sum(g[1] for g in groups) == sum(len(p) for p in prompts)
    assert all(0 <= g[2] < len(prompts) for g in groups)
