"""Prometheus metrics: the autoscaling signal, token counters and latency histograms.

Names are a contract shared with the Helm chart, the Grafana dashboard, the alert rules and the
autoscaler configs (docs/metrics.md lists them). Each :class:`ServiceMetrics` owns its registry, so
several apps can live in one process (tests). Live state (queue depth, running, the token counters,
engine gauges) is read from the scheduler and engine at scrape time by a custom collector, so it can
never drift from the truth; latencies are observed as they happen by the turn runner.

Every series carries a constant ``model`` label (the served model name) and nothing of high
cardinality: no user, conversation or request ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .engine.base import EngineStats

#: the values of ``chatstream_requests_total{outcome}``; all are exported from the start (at 0)
OUTCOMES = ("success", "rejected", "client_disconnected", "invalid", "error")

# Bucket layouts follow vLLM's (reference: serving-anchors.md) so our panels compare with the
# production-stack dashboards, extended where our service needs finer or longer steps.
#: vLLM's time-to-first-token layout, unchanged
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
#: vLLM's inter-token layout plus sub-10 ms steps (a small model on a GPU decodes in a few ms)
ITL_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
#: vLLM's end-to-end layout plus short steps (the mock and tiny models answer in well under 0.3 s)
REQUEST_BUCKETS = (
    0.05, 0.1, 0.25, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
    50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
#: queue wait: from sub-10 ms (admitted straight into a free slot) to ten minutes of backlog
QUEUE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
    60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
#: history writes: a memory store takes microseconds, a database round trip milliseconds
WRITE_BUCKETS = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _LiveStateCollector(Collector):
    """Queue depth, running, engine gauges and token counters, read at scrape time."""

    def __init__(
        self,
        model: str,
        max_concurrency: int,
        max_queue_size: int,
        load_fn: Callable[[], tuple[int, int]],
        engine_stats_fn: Callable[[], EngineStats],
        info: dict[str, str],
    ) -> None:
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_queue_size = max_queue_size
        self.load_fn = load_fn
        self.engine_stats_fn = engine_stats_fn
        self.info = info

    def _families(self, running: float, waiting: float, stats: EngineStats) -> Iterable[Metric]:
        labels = ["model"]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=labels)
            family.add_metric([self.model], value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=labels)
            family.add_metric([self.model], value)
            return family

        yield gauge(
            "chatstream_queue_depth",
            "Requests admitted and waiting for a generation slot (the autoscaling signal).",
            waiting,
        )
        yield gauge("chatstream_requests_running", "Requests generating now.", running)
        yield gauge(
            "chatstream_max_concurrency",
            "Generation slots of this pod (num_of_concurrent_executions).",
            self.max_concurrency,
        )
        yield gauge(
            "chatstream_max_queue_size", "Waiting places of this pod (max_queue_size).", self.max_queue_size
        )
        yield gauge(
            "chatstream_engine_step_seconds", "Duration of the last engine step.", stats.last_step_seconds
        )
        yield gauge(
            "chatstream_kv_cache_tokens_used",
            "KV cache tokens reserved by running sequences.",
            stats.kv_cache_tokens_used,
        )
        yield gauge(
            "chatstream_kv_cache_tokens_budget",
            "KV cache token budget across running sequences (0 = no limit).",
            stats.kv_cache_tokens_budget,
        )
        yield counter("chatstream_generated_tokens", "Tokens generated.", stats.generated_tokens_total)
        yield counter("chatstream_prompt_tokens", "Prompt tokens processed.", stats.prompt_tokens_total)
        yield counter("chatstream_engine_steps", "Engine steps run.", stats.steps_total)
        yield from _prefix_cache_families(stats, gauge, counter)
        info = InfoMetricFamily("chatstream_model", "Served model, device, dtype, engine and version.")
        info.add_metric([], self.info)
        yield info

    def describe(self) -> Iterable[Metric]:
        # Lets the registry check names without calling load_fn/engine_stats_fn at registration.
        return list(self._families(0, 0, EngineStats()))

    def collect(self) -> Iterable[Metric]:
        running, waiting = self.load_fn()
        return list(self._families(running, waiting, self.engine_stats_fn()))


def _prefix_cache_families(stats: EngineStats, gauge: Callable, counter: Callable) -> Iterable[Metric]:
    """The KV prefix cache, in tokens (named like vLLM's ``prefix_cache_queries`` / ``_hits``)."""
    yield counter(
        "chatstream_prefix_cache_queries",
        "Prompt tokens looked up in the KV prefix cache.",
        stats.prefix_cache_queries_total,
    )
    yield counter(
        "chatstream_prefix_cache_hits",
        "Prompt tokens whose KV came from the prefix cache (not prefilled again).",
        stats.prefix_cache_hits_total,
    )
    yield counter(
        "chatstream_prefix_cache_evictions",
        "Prefix-cache entries evicted (least recently used, or idle past the TTL).",
        stats.prefix_cache_evictions_total,
    )
    yield gauge(
        "chatstream_prefix_cache_tokens", "Tokens held by the prefix cache.", stats.prefix_cache_tokens
    )
    yield gauge(
        "chatstream_prefix_cache_tokens_budget",
        "Token budget of the prefix cache (prefix_cache_tokens; 0 = off).",
        stats.prefix_cache_tokens_budget,
    )


class ServiceMetrics:
    """The service's metrics (see the module docstring for the naming contract)."""

    def __init__(
        self,
        *,
        model_name: str,
        engine_info: dict[str, str],
        max_concurrency: int,
        max_queue_size: int,
        load_fn: Callable[[], tuple[int, int]],
        engine_stats_fn: Callable[[], EngineStats],
        version: str,
    ) -> None:
        self.registry = CollectorRegistry()
        self.model = model_name
        info = {
            "model": model_name,
            "device": str(engine_info.get("device", "none")),
            "dtype": str(engine_info.get("dtype", "none")),
            "engine": str(engine_info.get("engine", "unknown")),
            "version": version,
        }
        self.registry.register(
            _LiveStateCollector(model_name, max_concurrency, max_queue_size, load_fn, engine_stats_fn, info)
        )
        self._requests = Counter(
            "chatstream_requests",
            "Finished chat requests by outcome (success, rejected, client_disconnected, invalid, error).",
            ["model", "outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:  # exported at 0 so rate() and ratios work from the first scrape
            self._requests.labels(model_name, outcome)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, ["model"], buckets=buckets, registry=self.registry).labels(model_name)

        self._ttft = histogram(
            "chatstream_time_to_first_token_seconds",
            "Arrival of the request to its first generated token (queue wait included).",
            TTFT_BUCKETS,
        )
        self._itl = histogram(
            "chatstream_inter_token_latency_seconds", "Gap between consecutive token deltas.", ITL_BUCKETS
        )
        self._duration = histogram(
            "chatstream_request_duration_seconds",
            "Arrival to end of an admitted request (any outcome).",
            REQUEST_BUCKETS,
        )
        self._queue = histogram(
            "chatstream_queue_wait_seconds", "Arrival to the start of generation.", QUEUE_BUCKETS
        )
        self._history = histogram(
            "chatstream_history_write_seconds", "Time to record the end of a turn.", WRITE_BUCKETS
        )

    def request_finished(self, outcome: str, duration_s: float | None = None) -> None:
        """Count a finished request; ``duration_s`` (admitted requests only) feeds the duration histogram."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
        self._requests.labels(self.model, outcome).inc()
        if duration_s is not None:
            self._duration.observe(duration_s)

    def queue_wait(self, seconds: float) -> None:
        """Time from arrival until the request got a generation slot."""
        self._queue.observe(seconds)

    def first_token(self, seconds: float) -> None:
        """Time from arrival to the first token."""
        self._ttft.observe(seconds)

    def inter_token(self, seconds: float) -> None:
        """Gap between two token deltas of one stream."""
        self._itl.observe(seconds)

    def history_write(self, seconds: float) -> None:
        """Time the history store took to record the end of a turn."""
        self._history.observe(seconds)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition and its content type: OpenMetrics when ``accept`` asks for it, else text 0.0.4."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
