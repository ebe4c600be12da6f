"""Every ChatStream method a 0.3.0 server calls, mounted on paths of the user's own (apps/every_endpoint.py),
run as ``python every_endpoint.py`` and driven over real HTTP: multi-turn memory from
``append_middlewares`` alone, each endpoint's answer, the page and its script, the worker coroutine."""

from __future__ import annotations

import json
import re
import time
from importlib import resources

import pytest

from tests.api_seed.helpers import last_text
from tests.compat.helpers import APPS, FIRST_REPLY, PY, SECOND_REPLY, run_app

UI_INIT = re.compile(r'<script type="application/json" id="chatstream-ui-init">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("every-endpoint")
    env = {"COMPAT_PORT": "{port}", "COMPAT_LOG": str(tmp / "feedback.jsonl")}
    with run_app([PY, str(APPS / "every_endpoint.py")], tmp, env=env, ready_path="/api/load") as server:
        yield server, tmp / "feedback.jsonl"


def test_append_middlewares_alone_keeps_a_conversation(app_server):
    server, _ = app_server
    with server.client() as client:
        first = client.post("/api/chat", json={"user_input": "hello"})
        cookie = first.headers["set-cookie"].lower()
        second = client.post("/api/chat", json={"user_input": "and then?"})
        prompt = client.get("/api/prompt").json()
    assert (last_text(first.text), last_text(second.text)) == (FIRST_REPLY, SECOND_REPLY)
    assert cookie.startswith("chatstream_session=") and "httponly" in cookie and "secure" not in cookie
    assert [m["content"] for m in prompt["messages"]] == ["hello", FIRST_REPLY, "and then?", SECOND_REPLY]
    assert prompt["prompt"].startswith("<human>: hello\n<bot>: " + FIRST_REPLY)
    with server.client() as stranger:  # another browser: its own conversation
        assert last_text(stranger.post("/api/chat", json={"user_input": "hi"}).text) == FIRST_REPLY


def test_clear_context_forgets_the_conversation(app_server):
    server, _ = app_server
    with server.client() as client:
        client.post("/api/chat", json={"user_input": "one"})
        assert client.post("/api/clear").json() == {"success": True}
        assert client.get("/api/prompt").json() == {"prompt": "", "messages": []}
        assert last_text(client.post("/api/chat", json={"user_input": "two"}).text) == FIRST_REPLY


def test_generation_params_take_0_3_0_names_and_refuse_bad_values(app_server):
    server, _ = app_server
    with server.client() as client:
        client.post("/api/chat", json={"user_input": "hi"})
        stored = client.post("/api/params", json={"temperature": 0.5, "top_k_value": 7})
        assert stored.json() == {
            "success": True,
            "generation_params": {"temperature": 0.5, "top_k": 7, "top_p": 1.0},
        }
        assert client.get("/api/params").json()["generation_params"]["top_k"] == 7
        refused = client.post("/api/params", json={"top_p_value": 2})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request" and refused.json()["param"] == "top_p"


def test_feedback_reaches_the_callback(app_server):
    server, log = app_server
    with server.client() as client:
        reply = client.post("/api/chat", json={"user_input": "rate me"})
        message_id = reply.headers["x-chatstream-last-generated-message-id"]
        body = {"message_id": message_id, "is_like": True, "form_data": {"reason": "clear"}}
        assert client.post("/api/feedback", json=body).json() == {"success": True}
        unknown = client.post("/api/feedback", json={"message_id": "nope", "is_like": False})
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    deadline = time.monotonic() + 5
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (feedback,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert feedback["target_message_id"] == message_id and feedback["is_like"] is True
    assert feedback["form_data"] == {"reason": "clear"}
    assert "<human>: rate me\n<bot>: " + FIRST_REPLY in feedback["prompt"]
    assert feedback["generation_params"] == {"temperature": 1.0, "top_k": 50, "top_p": 1.0}


def test_load_and_resource_usage(app_server):
    server, _ = app_server
    with server.client() as client:
        load = client.get("/api/load").json()
        usage = client.get("/api/resources")
    assert (load["processing"], load["waiting"], load["max_processing"], load["max_waiting"]) == (0, 0, 2, 5)
    assert load["chatstream_workers"][0]["max_processing"] == 2
    assert usage.status_code == 200 and usage.json()["memory"]["total_bytes"] > 0


@pytest.mark.parametrize("path", ["/", "/page"])
def test_index_renders_the_page_with_its_options(app_server, path):
    server, _ = app_server
    with server.client() as client:
        page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    options = json.loads(UI_INIT.search(page.text).group(1))
    assert options["welcomeMessage"] == "Welcome! Ask me anything <b>now</b>"
    assert options["style_opts"]["label_input_placeholder"] == "Type here"
    assert "<b>now" not in page.text  # the options cannot become markup
    if path == "/page":
        assert page.headers["x-from-the-route"] == "kept"


@pytest.mark.parametrize("path", ["/chatstream.js", "/app.js"])
def test_js_serves_the_page_script(app_server, path):
    server, _ = app_server
    with server.client() as client:
        script = client.get(path)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.content == resources.files("chatstream.web").joinpath("chatstream.js").read_bytes()


def test_the_worker_coroutine_stops_with_the_app(tmp_path):
    env = {"COMPAT_PORT": "{port}", "COMPAT_LOG": str(tmp_path / "feedback.jsonl")}
    with run_app([PY, str(APPS / "every_endpoint.py")], tmp_path, env=env, ready_path="/api/load") as server:
        with server.client() as client:
            assert last_text(client.post("/api/chat", json={"user_input": "hi"}).text) == FIRST_REPLY
        code = server.stop()
    # uvicorn re-raises SIGTERM after a clean shutdown (docs/launch.md): -15, not 0.
    assert code in (0, -15) and "Application shutdown complete." in server.log(), server.log()
    assert "Traceback" not in server.log() and "ERROR" not in server.log()
