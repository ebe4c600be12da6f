"""Graceful shutdown of a real ``chatstream serve`` process with streams running.

On SIGTERM: ``/readyz`` turns 503 at once, the listener keeps accepting (so a late request gets a
clear 503 JSON rather than a refused connection), running and queued streams finish, the process
exits 0. With a drain timeout shorter than the streams, the process still exits within a bound that
fits ``terminationGracePeriodSeconds``.
"""

from __future__ import annotations

import json
import signal
import time

import httpx

from chatstream.engine.mock import LONG_REPLY
from tests.fixtures.server import run_server

from .helpers import BackgroundStream, last_text, wait_for

SLOW_LONG = json.dumps({"type": "long", "time_per_token_sec": 0.04})  # ~95 words: ~3.8 s per reply


def test_sigterm_drains_running_and_queued_streams_then_exits(tmp_path):
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        SLOW_LONG,
        "--num-of-concurrent-executions",
        "2",
        "--max-queue-size",
        "2",
        "--drain-timeout-sec",
        "30",
        log_dir=tmp_path,
    ) as server:
        streams = [BackgroundStream(server.url, f"hello {i}").start() for i in range(3)]
        wait_for(lambda: sum(s.first_byte.is_set() for s in streams) == 2, what="two streams running")
        load = httpx.get(server.url + "/get_load").json()
        assert (load["processing"], load["waiting"]) == (2, 1)

        server.signal(signal.SIGTERM)
        signalled = time.monotonic()

        # Readiness fails at once (well before the streams end).
        wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 503, timeout=1.0, what="readyz 503")
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["draining"] is True
        # The listener still accepts: liveness answers, a new chat gets a clear 503.
        assert httpx.get(server.url + "/healthz").status_code == 200
        late = httpx.post(server.url + "/chat_stream", json={"user_input": "too late"})
        assert late.status_code == 503, late.text
        assert late.json()["error"] == "shutting_down"
        assert late.headers["retry-after"]
        late_openai = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "chatstream-mock", "messages": [{"role": "user", "content": "x"}]},
        )
        assert late_openai.status_code == 503
        assert late_openai.json()["error"]["code"] == "shutting_down"
        assert time.monotonic() - signalled < 3.0, "these checks ran while streams were still running"
        assert server.process.poll() is None

        # Every admitted stream (two running, one queued) runs to its end.
        for stream in streams:
            assert stream.done.wait(30), "stream did not finish"
            assert stream.error is None, stream.error
            assert stream.status == 200
            assert last_text(stream.body) == LONG_REPLY
        assert server.process.wait(15) == 0
        log = server.log()
        assert "draining" in log and "drain complete" in log


def test_drain_timeout_bounds_the_exit_and_cut_streams_end_cleanly(tmp_path):
    slow = json.dumps({"type": "long", "time_per_token_sec": 0.2})  # ~19 s per reply
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        slow,
        "--drain-timeout-sec",
        "2",
        log_dir=tmp_path,
    ) as server:
        streams = [BackgroundStream(server.url, f"hi {i}").start() for i in range(2)]
        wait_for(lambda: all(s.first_byte.is_set() for s in streams), what="streams running")
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.process.wait(30)
        took = time.monotonic() - signalled
        assert code == 0
        # drain (2 s) + 1 s to cut the streams + lifespan shutdown: fits terminationGracePeriodSeconds
        assert took < 2 + 3, f"exit took {took:.1f}s for a 2 s drain timeout"
        for stream in streams:
            assert stream.done.wait(10)
            assert stream.status == 200
            assert 0 < len(last_text(stream.body)) < len(LONG_REPLY)  # cut, not completed
        assert "drain timed out" in server.log()


def test_second_signal_exits_at_once(tmp_path):
    slow = json.dumps({"type": "long", "time_per_token_sec": 0.2})
    with run_server(
        "--mock", "--history", "memory", "--mock-params", slow, "--drain-timeout-sec", "60", log_dir=tmp_path
    ) as server:
        stream = BackgroundStream(server.url, "hi").start()
        wait_for(stream.first_byte.is_set, what="stream running")
        server.signal(signal.SIGTERM)
        wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 503, timeout=1.0, what="draining")
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.process.wait(15) == 0
        assert time.monotonic() - started < 3
