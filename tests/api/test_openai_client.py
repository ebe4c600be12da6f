"""The real ``openai`` SDK (sync and async) against a real mock-mode server."""

from __future__ import annotations

import asyncio

import openai
import pytest

from .conftest import MODEL

HELLO = "hello big wide world"


def _client(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", **kwargs)


def _async_client(server, **kwargs) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", **kwargs)


_IMAGE = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_models_list_and_retrieve(echo_server):
    client = _client(echo_server)
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].owned_by == "chatstream"
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_non_streaming_completion_with_usage(echo_server):
    client = _client(echo_server)
    result = client.chat.completions.create(model=MODEL, messages=_user(HELLO))
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == MODEL
    assert len(result.choices) == 1
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == HELLO
    assert choice.finish_reason == "stop"
    assert result.usage.completion_tokens == 4
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_streaming_role_then_content_then_finish(echo_server):
    client = _client(echo_server)
    chunks = list(client.chat.completions.create(model=MODEL, messages=_user(HELLO), stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].finish_reason is None
    content_chunks = [c for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 4, "one chunk per token, streamed"
    assert "".join(c.choices[0].delta.content for c in content_chunks) == HELLO
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_streaming_include_usage_last_chunk(echo_server):
    client = _client(echo_server)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=_user(HELLO), stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 4
    assert last.usage.total_tokens == last.usage.prompt_tokens + 4
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_include_usage_wire_format(echo_server):
    """Other chunks carry ``"usage": null`` on the wire; the stream ends with ``[DONE]``."""
    body = {
        "model": MODEL,
        "messages": _user("hi there"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with echo_server.client() as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block[len("data: ") :] for block in response.text.split("\n\n") if block.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all('"usage":null' in event for event in events[:-2])
    assert '"choices":[]' in events[-2]


@pytest.mark.parametrize("stop", [" big", [" wide", "zzz"]])
def test_stop_sequences(echo_server, stop):
    client = _client(echo_server)
    expected = HELLO.split(stop if isinstance(stop, str) else stop[0])[0]
    result = client.chat.completions.create(model=MODEL, messages=_user(HELLO), stop=stop)
    assert result.choices[0].message.content == expected
    assert result.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model=MODEL, messages=_user(HELLO), stop=stop, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == expected


def test_max_tokens_and_cap(echo_server):
    client = _client(echo_server)
    result = client.chat.completions.create(model=MODEL, messages=_user(HELLO), max_tokens=2)
    assert result.choices[0].message.content == "hello big"
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == 2
    result = client.chat.completions.create(model=MODEL, messages=_user(HELLO), max_completion_tokens=3)
    assert result.usage.completion_tokens == 3
    # the server's cap (8) wins over a larger request
    long_text = " ".join(f"w{i}" for i in range(20))
    result = client.chat.completions.create(model=MODEL, messages=_user(long_text), max_tokens=1000)
    assert result.usage.completion_tokens == 8
    assert result.choices[0].finish_reason == "length"
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=_user(HELLO), max_tokens=1, stream=True)
    )
    assert chunks[-1].choices[0].finish_reason == "length"


def test_sampling_fields_and_history_shapes_accepted(echo_server):
    client = _client(echo_server)
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "part"}]},
    ]
    result = client.chat.completions.create(
        model=MODEL, messages=messages, temperature=0, top_p=0.9, seed=7, user="u-1", n=1
    )
    assert result.choices[0].message.content == "second part"
    result = client.chat.completions.create(model=MODEL, messages=_user("x y"), temperature=2.0)
    assert result.choices[0].message.content == "x y"


def test_openai_requests_leave_the_session_alone(echo_server):
    with echo_server.client() as http:
        http.get("/get_prompt")
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": _user("one two")})
        assert response.status_code == 200
        assert response.headers["x-chatstream-last-generated-message-id"]
        assert http.get("/get_prompt").json()["messages"] == []


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temperature": 2.5}, "temperature"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_unsupported_parameters_are_bad_requests(echo_server, extra, param):
    client = _client(echo_server, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=_user("hi"), **extra)
    assert info.value.status_code == 400
    assert info.value.body["type"] == "invalid_request_error"
    assert info.value.body["param"] == param


def test_unknown_model_is_bad_request(echo_server):
    client = _client(echo_server, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=_user("hi"), stream=True)
    assert info.value.body["code"] == "model_not_found"
    assert info.value.body["param"] == "model"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "assistant", "content": "hi"}], "messages"),
        ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}], "messages.1.role"),
        (_IMAGE, "messages.0.content"),
        ([{"role": "user"}], "messages.0.content"),
        ([], "messages"),
    ],
)
def test_invalid_messages(echo_server, messages, param):
    client = _client(echo_server, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=messages)
    assert info.value.body["param"] == param


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'{"messages": []}'])
def test_invalid_body_in_openai_error_format(echo_server, raw):
    with echo_server.client() as http:
        headers = {"Content-Type": "application/json"}
        response = http.post("/v1/chat/completions", content=raw, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]


async def test_async_client_streaming_and_not(echo_server):
    async with _async_client(echo_server) as client:
        result = await client.chat.completions.create(model=MODEL, messages=_user(HELLO))
        assert result.choices[0].message.content == HELLO

        async def streamed(text: str) -> str:
            stream = await client.chat.completions.create(model=MODEL, messages=_user(text), stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        texts = [f"request number {i}" for i in range(4)]
        assert await asyncio.gather(*(streamed(t) for t in texts)) == texts
