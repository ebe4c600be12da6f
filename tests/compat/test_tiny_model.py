"""Two upstream snippets with a real (tiny, random-weight) model: the uvicorn-internal server's full
source over HTTP, and the console chat script fed by a pipe."""

from __future__ import annotations

import subprocess

import pytest

from tests.api_seed.helpers import EOS, last_text
from tests.compat.helpers import APPS, PY, app_env, run_app

pytestmark = pytest.mark.slow


def test_the_uvicorn_internal_server_streams_from_a_model(tiny_model_dir, tmp_path):
    env = {"COMPAT_MODEL": str(tiny_model_dir), "COMPAT_PORT": "{port}"}
    command = [PY, str(APPS / "tiny_model_server.py")]
    with run_app(command, tmp_path, env=env, ready_path="/openapi.json", timeout=180) as server:
        with server.client(timeout=120) as client:
            first = client.post("/chat_stream", json={"user_input": "Who is Alan Turing"})
            second = client.post("/chat_stream", json={"user_input": "Tell me more"})
            prompt = client.get("/get_prompt").json()["prompt"]
    for reply in (first, second):
        assert reply.status_code == 200 and reply.text.endswith(EOS)
        assert last_text(reply.text), reply.text  # random weights: any text, but some
    assert prompt.startswith("<human>: Who is Alan Turing\n<bot>:")
    assert "\n<human>: Tell me more\n<bot>:" in prompt
    assert last_text(second.text) in prompt


def test_the_console_chat_script_answers_and_exits(tiny_model_dir, tmp_path):
    result = subprocess.run(
        [PY, str(APPS / "console_chat.py")],
        input="Hello there\nexit\n",
        capture_output=True,
        text=True,
        timeout=240,
        env=app_env({"COMPAT_MODEL": str(tiny_model_dir)}),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("YOU: AI : "), result.stdout
    assert result.stdout.rstrip().endswith("YOU:")
