"""ServiceMetrics on its own: names, types, labels, buckets and content negotiation of the exposition.

The exposition is parsed with prometheus_client's own parsers (text 0.0.4 and OpenMetrics), the way a
scraper reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from chatstream.engine.base import EngineStats
from chatstream.metrics import OUTCOMES, ServiceMetrics

MODEL = "tiny-llama"
HISTOGRAMS = {
    "chatstream_time_to_first_token_seconds": "first_token",
    "chatstream_inter_token_latency_seconds": "inter_token",
    "chatstream_request_duration_seconds": None,
    "chatstream_queue_wait_seconds": "queue_wait",
    "chatstream_history_write_seconds": "history_write",
}


@dataclass
class LiveState:
    """What the scheduler and engine would report; the test changes it between scrapes."""

    running: int = 0
    waiting: int = 0
    stats: EngineStats = field(default_factory=EngineStats)
    calls: int = 0

    def load(self) -> tuple[int, int]:
        self.calls += 1
        return self.running, self.waiting

    def engine_stats(self) -> EngineStats:
        self.calls += 1
        return self.stats


def make(state: LiveState | None = None, **overrides) -> tuple[ServiceMetrics, LiveState]:
    state = state or LiveState()
    kwargs = dict(
        model_name=MODEL,
        engine_info={"model": MODEL, "device": "cuda:0", "dtype": "bfloat16", "engine": "transformers"},
        max_concurrency=4,
        max_queue_size=16,
        load_fn=state.load,
        engine_stats_fn=state.engine_stats,
        version="9.9.9",
    )
    kwargs.update(overrides)
    return ServiceMetrics(**kwargs), state


def families(metrics: ServiceMetrics) -> dict:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {family.name: family for family in parse_text(body.decode())}


def samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} over the whole exposition."""
    out = {}
    for family in families(metrics).values():
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted({"model": MODEL, **labels}.items())))]


def test_contract_names_and_types():
    metrics, _ = make()
    found = {name: family.type for name, family in families(metrics).items()}
    expected = {
        "chatstream_queue_depth": "gauge",
        "chatstream_requests_running": "gauge",
        "chatstream_max_concurrency": "gauge",
        "chatstream_max_queue_size": "gauge",
        "chatstream_generated_tokens": "counter",
        "chatstream_prompt_tokens": "counter",
        "chatstream_requests": "counter",
        "chatstream_model_info": "gauge",  # the text format shows an info metric as a gauge
        "chatstream_engine_step_seconds": "gauge",
        **{name: "histogram" for name in HISTOGRAMS},
    }
    for name, kind in expected.items():
        assert found.get(name) == kind, f"{name}: {found.get(name)} != {kind}"
    names = {sample for sample, _ in samples(metrics)}
    assert {"chatstream_generated_tokens_total", "chatstream_prompt_tokens_total"} <= names
    assert "chatstream_requests_total" in names


def test_live_state_is_read_at_every_scrape_not_at_construction():
    state = LiveState()
    metrics, _ = make(state)
    assert state.calls == 0, "load_fn/engine_stats_fn must not run before the first scrape"
    state.running, state.waiting = 3, 7
    state.stats = EngineStats(generated_tokens_total=1234, prompt_tokens_total=56, last_step_seconds=0.0125)
    assert value(metrics, "chatstream_requests_running") == 3
    assert value(metrics, "chatstream_queue_depth") == 7
    assert value(metrics, "chatstream_generated_tokens_total") == 1234
    assert value(metrics, "chatstream_prompt_tokens_total") == 56
    assert value(metrics, "chatstream_engine_step_seconds") == 0.0125
    state.running, state.waiting = 0, 0
    state.stats = EngineStats(generated_tokens_total=1300, prompt_tokens_total=60)
    assert value(metrics, "chatstream_queue_depth") == 0
    assert value(metrics, "chatstream_generated_tokens_total") == 1300
    assert value(metrics, "chatstream_max_concurrency") == 4
    assert value(metrics, "chatstream_max_queue_size") == 16


def test_every_outcome_is_exported_at_zero_before_any_request():
    metrics, _ = make()
    for outcome in OUTCOMES:
        assert value(metrics, "chatstream_requests_total", outcome=outcome) == 0
    assert set(OUTCOMES) == {"success", "rejected", "client_disconnected", "invalid", "error"}


def test_request_finished_counts_outcomes_and_observes_duration_only_when_given():
    metrics, _ = make()
    metrics.request_finished("success", 1.5)
    metrics.request_finished("success", 3.0)
    metrics.request_finished("rejected")
    metrics.request_finished("client_disconnected", 0.2)
    assert value(metrics, "chatstream_requests_total", outcome="success") == 2
    assert value(metrics, "chatstream_requests_total", outcome="rejected") == 1
    assert value(metrics, "chatstream_requests_total", outcome="client_disconnected") == 1
    assert value(metrics, "chatstream_requests_total", outcome="error") == 0
    assert value(metrics, "chatstream_request_duration_seconds_count") == 3
    assert value(metrics, "chatstream_request_duration_seconds_sum") == pytest.approx(4.7)
    assert value(metrics, "chatstream_request_duration_seconds_bucket", le="2.0") == 2


def test_unknown_outcome_is_refused():
    metrics, _ = make()
    with pytest.raises(ValueError, match="unknown outcome"):
        metrics.request_finished("timeout")


@pytest.mark.parametrize("name", [name for name, method in HISTOGRAMS.items() if method])
def test_observations_land_in_their_histogram(name):
    metrics, _ = make()
    observe = getattr(metrics, HISTOGRAMS[name])
    for seconds in (0.0004, 0.003, 0.2, 7.0):
        observe(seconds)
    assert value(metrics, f"{name}_count") == 4
    assert value(metrics, f"{name}_sum") == pytest.approx(7.2034)
    assert value(metrics, f"{name}_bucket", le="+Inf") == 4
    for other in HISTOGRAMS:
        if other != name:
            assert value(metrics, f"{other}_count") == 0


def bucket_bounds(metrics: ServiceMetrics, name: str) -> list[float]:
    bounds = [
        float(dict(labels)["le"])
        for sample, labels in samples(metrics)
        if sample == f"{name}_bucket" and dict(labels)["le"] != "+Inf"
    ]
    return sorted(bounds)


@pytest.mark.parametrize(
    "name, finest, longest",
    [
        ("chatstream_time_to_first_token_seconds", 0.001, 600),
        ("chatstream_inter_token_latency_seconds", 0.001, 10),
        ("chatstream_queue_wait_seconds", 0.001, 600),
        ("chatstream_request_duration_seconds", 0.1, 1800),
        ("chatstream_history_write_seconds", 0.0005, 5),
    ],
)
def test_buckets_resolve_milliseconds_and_reach_minutes(name, finest, longest):
    metrics, _ = make()
    bounds = bucket_bounds(metrics, name)
    assert bounds[0] <= finest, bounds
    assert bounds[-1] >= longest, bounds
    if name != "chatstream_request_duration_seconds":
        # sub-10 ms steps: at least three bounds below 10 ms
        assert len([b for b in bounds if b <= 0.01]) >= 3, bounds


def test_a_3ms_queue_wait_is_told_apart_from_a_1ms_one():
    metrics, _ = make()
    metrics.queue_wait(0.0009)
    metrics.queue_wait(0.003)
    assert value(metrics, "chatstream_queue_wait_seconds_bucket", le="0.001") == 1
    assert value(metrics, "chatstream_queue_wait_seconds_bucket", le="0.005") == 2


def test_info_metric_names_model_device_dtype_and_version():
    metrics, _ = make()
    info = [labels for (name, labels) in samples(metrics) if name == "chatstream_model_info"]
    assert len(info) == 1
    assert dict(info[0]) == {
        "model": MODEL,
        "device": "cuda:0",
        "dtype": "bfloat16",
        "engine": "transformers",
        "version": "9.9.9",
    }


def test_labels_stay_low_cardinality():
    metrics, _ = make()
    metrics.request_finished("success", 1.0)
    for obs in ("queue_wait", "first_token", "inter_token", "history_write"):
        getattr(metrics, obs)(0.01)
    allowed = {"model", "outcome", "le", "device", "dtype", "engine", "version"}
    for name, labels in samples(metrics):
        keys = {key for key, _ in labels}
        assert keys <= allowed, f"{name} has labels {keys - allowed}"
        assert ("model", MODEL) in labels, f"{name} lacks the model label"


def test_each_instance_has_its_own_registry():
    first, _ = make()
    second, _ = make(model_name="other")
    first.request_finished("error")
    assert value(first, "chatstream_requests_total", outcome="error") == 1
    assert samples(second)[("chatstream_requests_total", (("model", "other"), ("outcome", "error")))] == 0
    assert first.registry is not second.registry
    assert (
        REGISTRY.get_sample_value("chatstream_requests_total", {"model": MODEL, "outcome": "error"}) is None
    )


def test_openmetrics_is_negotiated_for_prometheus_and_parses():
    state = LiveState(running=1, waiting=2, stats=EngineStats(generated_tokens_total=10))
    metrics, _ = make(state)
    metrics.request_finished("success", 0.5)
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )  # what Prometheus 2.x sends
    body, content_type = metrics.render(accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    parsed = {family.name: family for family in parse_openmetrics(text)}
    assert parsed["chatstream_model"].type == "info"
    assert parsed["chatstream_generated_tokens"].type == "counter"
    assert parsed["chatstream_queue_depth"].samples[0].value == 2
    success = [s for s in parsed["chatstream_requests"].samples if s.labels.get("outcome") == "success"]
    assert [s.value for s in success if s.name == "chatstream_requests_total"] == [1]


@pytest.mark.parametrize("accept", [None, "", "*/*", "text/plain", "application/json"])
def test_plain_text_is_the_default(accept):
    metrics, _ = make()
    body, content_type = metrics.render(accept)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# TYPE chatstream_queue_depth gauge" in body
