"""Every documented way to launch the service starts it, streams a reply, and stops cleanly on SIGTERM.

docs/launch.md shows these exact command lines; a mock engine stands in for the model.
"""

from __future__ import annotations

import json
import signal
import sys

import httpx
import pytest

from tests.fixtures.server import ServerHandle, run_server

MOCK_PARAMS = '{"type": "round", "time_per_token_sec": 0.01}'
FIRST_REPLY = "Hello! I am a mock model. I answer instantly so you can try the service without a GPU."
ENV = {
    "CHATSTREAM_USE_MOCK_RESPONSE": "true",
    "CHATSTREAM_MOCK_PARAMS": MOCK_PARAMS,
    "CHATSTREAM_HISTORY": "memory",
    "CHATSTREAM_DRAIN_TIMEOUT_SEC": "5",
}
PY = sys.executable

MODES = {
    "chatstream-serve": dict(cli_args=("--mock", "--history", "memory", "--mock-params", MOCK_PARAMS)),
    "uvicorn-factory": dict(
        command=[PY, "-m", "uvicorn", "chatstream.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", "{port}"],
        env=ENV,
    ),
    "gunicorn-uvicorn-worker": dict(
        command=[PY, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", "1"]
        + ["-b", "127.0.0.1:{port}", "chatstream.app:create_app()"],
        env=ENV,
    ),
    "gunicorn-conf": dict(
        command=[
            PY,
            "-m",
            "gunicorn",
            "-c",
            "python:chatstream.gunicorn_conf",
            "chatstream.app:create_app()",
        ],
        env={**ENV, "CHATSTREAM_HOST": "127.0.0.1", "CHATSTREAM_PORT": "{port}", "WEB_CONCURRENCY": "2"},
        workers=2,
    ),
    # The seed-era spelling: still works on uvicorn 0.54 but deprecated in favour of uvicorn-worker.
    "gunicorn-uvicorn.workers": dict(
        command=[PY, "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker"]
        + ["-b", "127.0.0.1:{port}", "chatstream.app:create_app()"],
        env=ENV,
    ),
}


def stream_one_reply(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        deltas, events = [], []
        with client.stream(
            "POST", "/chat_stream", json={"user_input": "hi"}, headers={"Accept": "text/event-stream"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    break
                event = json.loads(line[6:])
                events.append(event)
                deltas.append(event["delta"])
        assert len(events) > 5, "the reply came in one piece, not streamed"
        assert events[-1]["finished"] is True and events[-1]["finish_reason"] == "stop"
        assert "".join(deltas) == events[-1]["text"] == FIRST_REPLY


@pytest.mark.parametrize("mode", list(MODES))
def test_launch_mode_streams_a_reply(mode: str) -> None:
    spec = MODES[mode]
    env = spec.get("env")
    command = spec.get("command")
    if env and "{port}" in env.get("CHATSTREAM_PORT", ""):
        command, env = _port_via_env(command, env)
    with run_server(*spec.get("cli_args", ()), command=command, env=env) as server:
        stream_one_reply(server)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too.
        assert server.stop() in (0, -signal.SIGTERM), server.log()
    log = server.log()
    # Each worker process built its own app (and so would load its own copy of the model) ...
    assert log.count("ready: model=chatstream-mock") == spec.get("workers", 1), log
    # ... and ran the lifespan shutdown: the engine stopped after the (idle) drain.
    assert log.count("chatstream stopped (drained=True)") == spec.get("workers", 1), log


def _port_via_env(command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """run_server fills ``{port}`` only in the command: wrap it in ``env`` so the port reaches the env."""
    return ["env", "CHATSTREAM_PORT={port}", *command], {
        k: v for k, v in env.items() if k != "CHATSTREAM_PORT"
    }
