"""End to end against a real Prometheus: two service pods under load, scraped every second.

Two ``chatstream serve --mock`` processes stand in for two pods (2 slots, 4 waiting places each, 50 ms
per token). Prometheus scrapes them with the labels Kubernetes service discovery would add
(namespace, pod, service) and loads the chart's rules. Concurrent httpx clients (one per stream, so
each has its own session) fill every slot and waiting place, two more per pod are refused, and all
of them count the tokens they receive. Then:

* the adapter's seriesQuery finds both pods and its metricsQuery, filled the way the adapter fills it
  for ``pods/*``, returns each pod's queue depth; the KEDA query returns their sum;
* every query of every dashboard panel (template variables filled) returns finite data;
* the generated-token counter equals the clients' count, and ``increase()``/``rate()`` agree with it
  within 10 %;
* the queue depth rose above zero and came back to zero; the recording rules evaluate cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.fixtures.prometheus import PrometheusHandle, Target, run_prometheus
from tests.fixtures.server import ServerHandle, run_server

from .artifacts import RULES_DIR, dashboard_targets, fill_adapter_template, fill_dashboard_variables

pytestmark = pytest.mark.slow

SLOTS, QUEUE = 2, 4
STREAMS_PER_POD = SLOTS + QUEUE  # takes every slot and waiting place
REFUSED_PER_POD = 2
TIME_PER_TOKEN = 0.05  # the long mock reply (124 tokens) takes ~6 s: 3 waves of 2 per pod
NAMESPACE = SERVICE = JOB = "chatstream"  # the KEDA example's namespace and Service
MODEL = "chatstream-mock"
PODS = ("chatstream-0", "chatstream-1")
SSE = {"Accept": "text/event-stream"}


@dataclass
class Stream:
    pod: str
    status: int = 0
    token_times: list[float] = field(default_factory=list)
    usage_tokens: int | None = None
    error: str | None = None


async def stream_chat(url: str, pod: str) -> Stream:
    """One client: POST /chat_stream, read the SSE deltas, time-stamp each token as it arrives."""
    record = Stream(pod)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            async with client.stream("POST", "/chat_stream", json={"user_input": "hi"}, headers=SSE) as resp:
                record.status = resp.status_code
                async for line in resp.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[len("data: ") :])
                    if event.get("delta"):
                        record.token_times.append(time.time())
                    if event.get("usage"):
                        record.usage_tokens = event["usage"]["completion_tokens"]
    except Exception as exc:  # reported by the test, never swallowed
        record.error = repr(exc)
    return record


class Load:
    """Runs the streaming clients on an event loop in a thread, so the test can poll meanwhile."""

    def __init__(self, servers: list[tuple[str, ServerHandle]]) -> None:
        self.servers = servers
        self.streams: list[Stream] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        jobs = [stream_chat(server.url, pod) for pod, server in self.servers for _ in range(STREAMS_PER_POD)]
        self.streams = list(await asyncio.gather(*jobs))

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> list[Stream]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the load did not finish in time"
        return self.streams


def load_of(server: ServerHandle) -> tuple[int, int]:
    data = httpx.get(server.url + "/get_load", timeout=5).json()
    return data["processing"], data["waiting"]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def latest_sample_time(prom: PrometheusHandle, selector: str, after: float) -> float:
    """Wait until every series of ``selector`` has a sample newer than ``after``; the newest such time.

    Evaluating at that time sees, for each series, a sample taken after ``after``.
    """
    result = prom.wait_for(
        f"timestamp({selector})",
        lambda r: len(r) == len(PODS) and all(float(s["value"][1]) > after for s in r),
        timeout=30,
    )
    return max(float(s["value"][1]) for s in result)


def finite(result: list[dict]) -> bool:
    return bool(result) and all(math.isfinite(float(s["value"][1])) for s in result)


@pytest.fixture
def stack():
    with contextlib.ExitStack() as stack:
        yield stack


def test_dashboard_adapter_keda_and_token_rate_against_real_prometheus(
    stack, dashboard, adapter_rule, keda_scaledobject
):
    mock = json.dumps({"type": "long", "time_per_token_sec": TIME_PER_TOKEN})
    servers = [
        (
            pod,
            stack.enter_context(
                run_server(
                    "--mock",
                    "--mock-params",
                    mock,
                    "--history",
                    "memory",
                    "--num-of-concurrent-executions",
                    str(SLOTS),
                    "--max-queue-size",
                    str(QUEUE),
                    "--too-many-request-as-http-error",
                )
            ),
        )
        for pod in PODS
    ]
    targets = [
        Target(f"127.0.0.1:{server.port}", {"namespace": NAMESPACE, "pod": pod, "service": SERVICE})
        for pod, server in servers
    ]
    rule_files = sorted(RULES_DIR.glob("*.yaml"))
    prom = stack.enter_context(run_prometheus(targets, job=JOB, rule_files=rule_files))
    prom.wait_until_targets_up(len(PODS))

    # An idle sample of both pods before any load: counters at zero.
    idle_at = latest_sample_time(prom, "chatstream_generated_tokens_total", time.time())
    assert prom.values("chatstream_generated_tokens_total", at=idle_at, key="pod") == dict.fromkeys(PODS, 0)

    # --- fill every slot and waiting place of both pods ------------------------------------------
    load = Load(servers)
    load.start()
    wait_until(
        lambda: all(load_of(server) == (SLOTS, QUEUE) for _, server in servers),
        timeout=30,
        what="the pods never reached 2 running + 4 waiting",
    )
    full_at = time.time()
    for _, server in servers:
        for _ in range(REFUSED_PER_POD):
            response = httpx.post(server.url + "/chat_stream", json={"user_input": "hi"}, headers=SSE)
            assert response.status_code == 429, response.text
    # Once full, waiting can only shrink (every newcomer is refused); (2, 4) before and after the
    # sample proves Prometheus scraped the full state.
    sampled_at = latest_sample_time(prom, "chatstream_queue_depth", full_at)
    assert all(load_of(server) == (SLOTS, QUEUE) for _, server in servers), (
        "the first replies ended before Prometheus scraped the full queue (machine overloaded?)"
    )

    # --- prometheus-adapter: seriesQuery discovery, metricsQuery as filled for pods/* and one pod ----
    series = prom.series(adapter_rule["seriesQuery"])
    assert {(s["namespace"], s["pod"]) for s in series} == {(NAMESPACE, pod) for pod in PODS}
    assert all(re.fullmatch(adapter_rule["name"]["matches"], s["__name__"]) for s in series)
    every_pod = fill_adapter_template(
        adapter_rule["metricsQuery"],
        series="chatstream_queue_depth",
        label_matchers=f'namespace="{NAMESPACE}",pod=~"{"|".join(PODS)}"',
        group_by="pod",
    )
    assert prom.values(every_pod, at=sampled_at, key="pod") == dict.fromkeys(PODS, QUEUE)
    one_pod = fill_adapter_template(
        adapter_rule["metricsQuery"],
        series="chatstream_queue_depth",
        label_matchers=f'namespace="{NAMESPACE}",pod="{PODS[1]}"',
        group_by="pod",
    )
    assert prom.values(one_pod, at=sampled_at, key="pod") == {PODS[1]: QUEUE}

    # --- KEDA: the query returns one number, the total waiting ------------------------------------
    (trigger,) = keda_scaledobject["spec"]["triggers"]
    keda_value = prom.scalar(trigger["metadata"]["query"], at=sampled_at)
    assert keda_value == QUEUE * len(PODS)
    # KEDA's AverageValue target: ceil(8 / 2) = 4 replicas wanted
    assert math.ceil(keda_value / float(trigger["metadata"]["threshold"])) == 4

    # --- let the load finish; every client got its whole reply -------------------------------------
    streams = load.join(timeout=120)
    assert len(streams) == STREAMS_PER_POD * len(PODS)
    for stream in streams:
        assert stream.error is None and stream.status == 200, stream
        assert stream.usage_tokens == len(stream.token_times) > 100, stream
    client_tokens = sum(len(s.token_times) for s in streams)
    successes = len(streams)
    prom.wait_for(
        f'sum(chatstream_requests_total{{outcome="success"}}) == {successes}', lambda r: bool(r), timeout=30
    )
    end_at = latest_sample_time(prom, "chatstream_generated_tokens_total", time.time())

    # --- tokens: the counter is exact, increase() and rate() within 10 % ------------------------------
    assert prom.scalar("sum(chatstream_generated_tokens_total)", at=end_at) == client_tokens
    whole = math.ceil(end_at - idle_at) + 2  # a window holding the idle zero sample and the end
    increase = prom.scalar(f"sum(increase(chatstream_generated_tokens_total[{whole}s]))", at=end_at)
    assert increase == pytest.approx(client_tokens, rel=0.10)

    # rate() over the stretch where all 4 slots were generating, against the clients' own count
    starts = sorted(s.token_times[0] for s in streams)
    ends = sorted(s.token_times[-1] for s in streams)
    busy_from, busy_to = starts[len(PODS) * SLOTS - 1] + 0.5, ends[-len(PODS) * SLOTS] - 0.5
    window = math.floor(busy_to - busy_from)
    assert window >= 8, f"only {window}s of full load"
    prom_rate = prom.scalar(f"sum(rate(chatstream_generated_tokens_total[{window}s]))", at=busy_to)
    client_rate = sum(busy_to - window < t <= busy_to for s in streams for t in s.token_times) / window
    assert prom_rate == pytest.approx(client_rate, rel=0.10), (prom_rate, client_rate)
    assert client_rate > 0.5 * len(PODS) * SLOTS / TIME_PER_TOKEN  # the load really was running

    # --- queue depth rose above zero and came back to zero -----------------------------------------
    (queue,) = prom.query_range("sum(chatstream_queue_depth)", idle_at, end_at, step=1)
    depths = [float(v) for _, v in queue["values"]]
    assert depths[0] == 0 and max(depths) == QUEUE * len(PODS) and depths[-1] == 0, depths
    assert prom.scalar("sum(chatstream_queue_depth)", at=end_at) == 0

    # --- every dashboard panel query returns finite data over the load -----------------------------
    variables = {
        "namespace": NAMESPACE,
        "job": JOB,
        "model": MODEL,
        "__rate_interval": f"{whole}s",
        "datasource": "prometheus",
    }
    for title, expr in dashboard_targets(dashboard):
        filled = fill_dashboard_variables(expr, variables)
        assert "$" not in filled, filled
        assert finite(prom.query(filled, at=end_at)), f"panel {title!r}: no data for {filled}"
    # the template variables' label_values() queries list our namespace, job and model
    for var in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", var.get("definition", ""))
        if match:
            selector, label = fill_dashboard_variables(match.group(1), variables), match.group(2)
            assert variables[var["name"]] in prom.label_values(label, selector), var["name"]
    # spot-check panel values that are known exactly
    panel = {}
    for title, expr in dashboard_targets(dashboard):
        panel.setdefault(title, []).append(fill_dashboard_variables(expr, variables))
    assert prom.scalar(panel["Replicas"][0], at=end_at) == len(PODS)
    assert prom.scalar(panel["Replicas"][1], at=end_at) == 0
    refused = REFUSED_PER_POD * len(PODS)
    ratio = prom.scalar(panel["Rejection ratio"][0], at=end_at)
    assert ratio == pytest.approx(refused / (refused + successes), abs=0.01)

    # --- the chart's rules evaluate without error and the recording rules hold data ----------------
    rules = [rule for group in prom.rule_groups() for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]
    for rule in rules:
        if rule["type"] == "recording":
            assert finite(prom.query(rule["name"], at=end_at)), rule["name"]
    assert prom.scalar("chatstream:replicas:count", at=end_at) == len(PODS)
    assert prom.scalar(f"max_over_time(chatstream:queue_depth:sum[{whole}s])", at=end_at) == QUEUE * len(PODS)
