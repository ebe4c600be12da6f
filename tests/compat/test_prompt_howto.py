"""chat-prompt-how-to-impl.md's prompt classes in a real server (apps/custom_prompt.py, uvicorn from
the command line): the prompt text the model gets, input and output replacements, the system text,
the initial context and a stop string, seen over HTTP."""

from __future__ import annotations

import pytest

from tests.api_seed.helpers import last_text
from tests.compat.helpers import PY, run_app

SYSTEM = (
    "The chat system consists of a user and a system. The system tries to answer the user politely and "
    "accurately.<NL>"
)
TITANIC = (
    "User: Do you know about the Titanic movie?<NL>System: Yes, I am familiar with it.<NL>"
    "User: Who starred in the movie?<NL>System: Leonardo DiCaprio and Kate Winslet.<NL>"
)


@pytest.fixture(scope="module")
def prompt_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("custom-prompt")
    command = [PY, "-m", "uvicorn", "tests.compat.apps.custom_prompt:app", "--host", "127.0.0.1"]
    with run_app([*command, "--port", "{port}"], tmp) as server:
        yield server


def test_the_docs_prompt_class_renders_the_model_format(prompt_server):
    with prompt_server.client() as client:
        reply = client.post("/chat_stream", json={"user_input": "line one\nline two"})
        second = client.post("/chat_stream", json={"user_input": "next"})
        prompt = client.get("/get_prompt").json()
    assert last_text(reply.text) == "line one\nline two"  # <NL> in the output is a newline again
    assert last_text(second.text) == "next"
    assert (
        prompt["prompt"]
        == "User: line one<NL>line two<NL>System: line one\nline two<NL>User: next<NL>System: next<NL>"
    )
    assert [m["content"] for m in prompt["messages"]] == ["line one\nline two"] * 2 + ["next"] * 2


def test_system_text_and_initial_context_come_first(prompt_server):
    with prompt_server.client() as client:
        reply = client.post("/titanic/chat_stream", json={"user_input": "When was it released?"})
        prompt = client.get("/titanic/get_prompt").json()["prompt"]
    assert last_text(reply.text) == "When was it released?"
    assert prompt == SYSTEM + TITANIC + "User: When was it released?<NL>System: When was it released?<NL>"


def test_a_stop_string_ends_the_reply(prompt_server):
    with prompt_server.client() as client:
        reply = client.post("/titanic/chat_stream", json={"user_input": "say this </s> but not this"})
    assert last_text(reply.text) == "say this "


def test_append_apis_takes_the_page_options(prompt_server):
    with prompt_server.client() as client:
        page = client.get("/")
    assert page.status_code == 200 and '"welcomeMessage": "Ask the how-to\'s model"' in page.text
