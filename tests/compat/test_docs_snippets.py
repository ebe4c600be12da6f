"""The upstream docs' request-handling snippets, served by uvicorn from the command line and by
gunicorn with uvicorn workers (web-server-uvicorn-externally.md, web-server-gunicorn.md), driven
over real HTTP (mock engine in echo mode: the reply is the user's words)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.api_seed.helpers import EOS, last_text
from tests.compat.helpers import PY, run_app

APP = "tests.compat.apps.docs_handlers:app"


def callbacks(log: Path, count: int, timeout: float = 10) -> list[dict]:
    """The first ``count`` finish callbacks the app wrote (they run just after the stream ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(
        f"{count} callbacks expected in {log}, got: {log.read_text() if log.exists() else ''}"
    )


@pytest.fixture(scope="module")
def uvicorn_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs-uvicorn")
    env = {"COMPAT_LOG": str(tmp / "callbacks.jsonl")}
    command = [PY, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", "{port}"]
    with run_app(command, tmp, env=env) as server:
        yield server, tmp / "callbacks.jsonl"


def test_handle_request_streams_the_seed_format(uvicorn_app):
    server, _ = uvicorn_app
    with server.client() as client:
        reply = client.post("/chat_stream", json={"user_input": "what is a queue"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    chunks = [c for c in reply.text.split(EOS) if c]
    assert chunks[-1] == "what is a queue"
    assert all(later.startswith(earlier) for earlier, later in zip(chunks, chunks[1:], strict=False))
    assert reply.headers["x-chatstream-last-generated-message-id"]


def test_intercepted_body_is_used_as_read(uvicorn_app):
    server, _ = uvicorn_app
    with server.client() as client:
        reply = client.post("/intercepted", json={"user_input": "hi there", "regenerate": False})
        edited = client.post("/edited", json={"user_input": "shout", "regenerate": False})
    assert last_text(reply.text) == "hi there"
    assert "user_input:hi there regenerate:False" in server.log()
    assert last_text(edited.text) == "SHOUT"


def test_finish_callback_sees_the_session_prompt_of_every_turn(uvicorn_app):
    server, log = uvicorn_app
    already = len(log.read_text().splitlines()) if log.exists() else 0
    with server.client() as client:  # keeps fastsession's cookie: one conversation
        for text in ("remember this", "and this"):
            assert last_text(client.post("/with_callback", json={"user_input": text}).text) == text
    first, second = callbacks(log, already + 2)[already:]
    assert first["message"] == second["message"] == "success"
    assert "<human>: remember this\n<bot>: remember this" in first["prompt"]
    assert (
        second["prompt"].count("<human>:") == 2 and "<human>: and this\n<bot>: and this" in second["prompt"]
    )


def test_finish_callback_reports_a_client_that_left(uvicorn_app):
    server, log = uvicorn_app
    already = len(log.read_text().splitlines()) if log.exists() else 0
    words = " ".join(f"word{i}" for i in range(400))  # 400 tokens at 5 ms: a 2 s stream
    with httpx.Client(base_url=server.url, timeout=30) as client:
        with client.stream("POST", "/with_callback", json={"user_input": words}) as stream:
            next(stream.iter_text())
    (entry,) = callbacks(log, already + 1)[already:]
    assert entry["message"] == "client_disconnected_while_streaming"


def test_gunicorn_with_uvicorn_workers_serves_the_snippets(tmp_path):
    log = tmp_path / "callbacks.jsonl"
    command = [PY, "-m", "gunicorn", APP, "--workers", "2", "--worker-class", "uvicorn.workers.UvicornWorker"]
    command += ["--bind", "127.0.0.1:{port}"]
    with run_app(command, tmp_path, env={"COMPAT_LOG": str(log)}) as server:
        for index in range(4):
            with server.client() as client:  # a new browser each time: workers keep their own sessions
                reply = client.post("/with_callback", json={"user_input": f"hello {index}"})
                assert reply.status_code == 200 and last_text(reply.text) == f"hello {index}"
        assert [entry["message"] for entry in callbacks(log, 4)] == ["success"] * 4
