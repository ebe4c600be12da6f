"""KV budget queueing and error isolation: one bad request fails alone, the engine keeps serving."""

from __future__ import annotations

import asyncio

from .helpers import collect, reference, request, running_engine


async def test_kv_budget_queues_what_does_not_fit(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = [tokenizer(f"item {i} value {i * 7}").input_ids for i in range(4)]
    need = max(len(p) for p in prompts) + 30
    # room for two sequences at a time, although four slots are free
    async with running_engine(model, tokenizer, max_batch_size=4, kv_cache_tokens=2 * need + 1) as engine:
        peak_running, peak_waiting, peak_used = 0, 0, 0
        progress = asyncio.Event()

        async def watch() -> None:
            nonlocal peak_running, peak_waiting, peak_used
            while True:
                await progress.wait()
                progress.clear()
                stats = engine.stats()
                peak_running = max(peak_running, stats.running)
                peak_waiting = max(peak_waiting, stats.waiting)
                peak_used = max(peak_used, stats.kv_cache_tokens_used)

        watcher = asyncio.create_task(watch())
        streams = [engine.generate(request(ids=ids, max_new_tokens=30, ignore_eos=True)) for ids in prompts]
        results = await asyncio.gather(*(collect(s, progress=progress) for s in streams))
        watcher.cancel()
        too_big = await collect(engine.generate(request("Hello", max_new_tokens=10 * need)))
    for got, ids in zip(results, prompts, strict=True):
        assert got.tokens == reference(model, ids, 30)[: len(got.tokens)] and len(got.tokens) == 30
    assert peak_running <= 2 and peak_waiting >= 1
    assert 0 < peak_used <= engine.stats().kv_cache_tokens_budget
    assert too_big.last.finish_reason == "error" and "KV cache" in too_big.last.error


async def test_a_failing_request_ends_alone(tiny_lm):
    model, tokenizer = tiny_lm
    ids = tokenizer("Hello, how are you today?").input_ids
    expected = reference(model, ids, 20)
    async with running_engine(model, tokenizer, max_batch_size=4) as engine:
        good = asyncio.create_task(collect(engine.generate(request(ids=ids, max_new_tokens=20))))
        bad_ids = collect(engine.generate(request(ids=[5, 10**6], max_new_tokens=5)))
        # sampling from infinite logits fails inside the batched step: only this row may end
        bad_sampling = collect(
            engine.generate(request("Hello", temperature=1.0, repetition_penalty=0.0, max_new_tokens=5))
        )
        empty = collect(engine.generate(request(ids=[], max_new_tokens=5)))
        failed = await asyncio.gather(bad_ids, bad_sampling, empty)
        ok = await good
        after = await collect(engine.generate(request(ids=ids, max_new_tokens=20)))
    for result in failed:
        assert result.last.finished and result.last.finish_reason == "error" and result.last.error
    assert "vocabulary" in failed[0].last.error
    assert ok.tokens == expected and after.tokens == expected
    assert engine.stats().running == 0


async def test_the_prompt_reaches_the_model_whole(tiny_lm):
    """Fitting the prompt to the context is the service's job, done once: the engine never cuts it."""
    model, tokenizer = tiny_lm
    ids = tokenizer(" ".join(["the robot paints the sea at night"] * 40)).input_ids
    assert len(ids) > 200
    async with running_engine(model, tokenizer, prefill_chunk_tokens=64) as engine:
        got = await collect(engine.generate(request(ids=ids, max_new_tokens=6, ignore_eos=True)))
        special = request("Hello", max_new_tokens=2)
        special.add_special_tokens = False
        plain = await collect(engine.generate(special))
    assert got.last.prompt_tokens == len(ids)
    assert got.tokens == reference(model, ids, 6)
    assert plain.last.prompt_tokens == len(tokenizer.encode("Hello", add_special_tokens=False))
