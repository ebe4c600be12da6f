"""An engine error fails that one request, never the worker or the requests beside it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from chatstream.engine.mock import LONG_REPLY
from tests.fixtures.server import run_server

from .helpers import BackgroundStream, last_text, wait_for

HERE = Path(__file__).parent
UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "--app-dir",
    str(HERE),
    "faulty_app:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
]
OPENAI = {"model": "chatstream-mock", "messages": [{"role": "user", "content": "x"}]}


def error_count(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(
        float(v) for v in re.findall(r'chatstream_requests_total\{[^}]*outcome="error"[^}]*\} (\S+)', text)
    )


@pytest.fixture(scope="module")
def faulty_server(tmp_path_factory):
    with run_server(command=UVICORN, log_dir=tmp_path_factory.mktemp("faulty")) as server:
        yield server


@pytest.mark.parametrize("trigger", ["BOOM-RAISE", "BOOM-DELTA"])
def test_engine_error_fails_only_that_request(faulty_server, trigger):
    url = faulty_server.url
    errors_before = error_count(url)
    neighbours = [BackgroundStream(url, f"fine {i}").start() for i in range(2)]
    wait_for(lambda: all(s.first_byte.is_set() for s in neighbours), what="neighbours streaming")

    failed = httpx.post(url + "/chat_stream", json={"user_input": f"please {trigger}"}, timeout=30)
    assert failed.status_code == 200  # the stream had started: the error is its last chunk
    assert '"error": "generation_failed"' in failed.text

    sse = httpx.post(
        url + "/chat_stream",
        json={"user_input": trigger},
        headers={"Accept": "text/event-stream"},
        timeout=30,
    )
    assert '"finish_reason": "error"' in sse.text and sse.text.rstrip().endswith("data: [DONE]")

    streamed = httpx.post(
        url + "/v1/chat/completions",
        json={**OPENAI, "stream": True, "messages": [{"role": "user", "content": trigger}]},
        timeout=30,
    )
    assert '"code": "generation_failed"' in streamed.text and "[DONE]" in streamed.text
    plain = httpx.post(
        url + "/v1/chat/completions",
        json={**OPENAI, "messages": [{"role": "user", "content": trigger}]},
        timeout=30,
    )
    assert plain.status_code == 500 and plain.json()["error"]["code"] == "generation_failed"

    for stream in neighbours:  # the requests beside it were not disturbed
        assert stream.done.wait(30)
        assert stream.status == 200 and last_text(stream.body) == LONG_REPLY

    assert error_count(url) - errors_before == 4  # counted, one per failed request
    after = httpx.post(url + "/chat_stream", json={"user_input": "still alive?"}, timeout=30)
    assert last_text(after.text) == LONG_REPLY  # the worker keeps serving
    load = httpx.get(url + "/get_load").json()
    assert load["processing"] == 0 and load["waiting"] == 0  # the failed requests gave their slots back
    assert httpx.get(url + "/readyz").status_code == 200
    assert faulty_server.process.poll() is None
