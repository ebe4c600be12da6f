"""No secrets and no prompt text in a server's log after real traffic (API keys, cookies, prompts)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures.server import run_server

SECRET = "session-secret-NEVER-LOG-7f3a9c"
API_KEY = "sk-live-NEVER-LOG-4b1d2e"
PROMPT = "my card number is PROMPT-MARKER-5555 please remember"


@pytest.mark.parametrize("level", ["info", "debug"])
@pytest.mark.parametrize("json_lines", [False, True])
def test_log_holds_no_secrets_or_prompts(tmp_path, level, json_lines):
    args = [
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        json.dumps({"type": "echo"}),
        "--log-level",
        level,
    ]
    if json_lines:
        args.append("--log-json")
    env = {"CHATSTREAM_SESSION_SECRET": SECRET, "CHATSTREAM_API_KEYS": API_KEY}
    with run_server(*args, env=env, log_dir=tmp_path) as server:
        auth = {"Authorization": f"Bearer {API_KEY}"}
        with server.client(headers=auth) as client:
            seed = client.post("/chat_stream", json={"user_input": PROMPT})
            assert PROMPT in seed.text  # the echo mock really processed the prompt
            assert client.post(
                "/chat_stream", json={"user_input": PROMPT}, headers={"Accept": "text/event-stream"}
            )
            openai = client.post(
                "/v1/chat/completions",
                json={"model": "chatstream-mock", "messages": [{"role": "user", "content": PROMPT}]},
            )
            assert openai.status_code == 200
            # refusals and errors: wrong key, a secret in the query string, a bad body containing the prompt
            assert httpx.get(server.url + f"/get_load?api_key={API_KEY}").status_code == 401
            assert client.post("/chat_stream", content=PROMPT.encode()).status_code == 400
            assert client.post("/chat_stream", json={"user_input": PROMPT * 2000}).status_code == 413
            assert client.post("/set_feedback", json={"message_id": PROMPT[:60]}).status_code == 404
        log = server.log()
    assert "POST /chat_stream 200" in log or '"POST /chat_stream 200' in log  # access lines were written
    for needle in (SECRET, API_KEY, "PROMPT-MARKER", "card number"):
        assert needle not in log, f"{needle!r} leaked into the {level} log"
