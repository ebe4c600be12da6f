"""The prefix cache's counters reach ``/metrics``: a regenerate shows up as hits, in tokens."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from chatstream.metrics import ServiceMetrics

from .helpers import collect, request, running_engine


def scrape(metrics: ServiceMetrics) -> dict[str, tuple[str, float]]:
    """{sample name: (family type, value)} of the ``chatstream_prefix_cache_*`` families."""
    body, _ = metrics.render()
    return {
        sample.name: (family.type, sample.value)
        for family in text_string_to_metric_families(body.decode())
        if family.name.startswith("chatstream_prefix_cache")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_queries_hits_evictions_and_tokens_are_exported(tiny_lm):
    model, tokenizer = tiny_lm
    ids = tokenizer("Tell me a story about a small robot who learned to paint the sea").input_ids
    async with running_engine(model, tokenizer, prefix_cache_tokens=len(ids) + 20) as engine:
        metrics = ServiceMetrics(
            model_name="tiny",
            engine_info=engine.info(),
            max_concurrency=2,
            max_queue_size=4,
            load_fn=lambda: (0, 0),
            engine_stats_fn=engine.stats,
            version="0",
        )
        before = scrape(metrics)
        first = await collect(engine.generate(request(ids=ids, max_new_tokens=8, ignore_eos=True)))
        again = await collect(engine.generate(request(ids=ids, max_new_tokens=8, ignore_eos=True)))
        other = tokenizer("item 7 value 49 code x0007 and more numbers 1 2 3 4 5 6 7 8 9").input_ids
        await collect(engine.generate(request(ids=other * 2, max_new_tokens=4, ignore_eos=True)))
        after = scrape(metrics)
    assert before["chatstream_prefix_cache_queries_total"] == ("counter", 0)
    assert before["chatstream_prefix_cache_tokens_budget"] == ("gauge", len(ids) + 20)
    assert again.last.cached_tokens == len(ids) - 1 and first.last.cached_tokens == 0
    assert after["chatstream_prefix_cache_queries_total"] == ("counter", 2 * len(ids) + 2 * len(other))
    assert after["chatstream_prefix_cache_hits_total"] == ("counter", len(ids) - 1)
    assert after["chatstream_prefix_cache_evictions_total"][1] >= 1  # the other prompt needed the room
    kind, held = after["chatstream_prefix_cache_tokens"]
    assert kind == "gauge" and 0 < held <= len(ids) + 20
