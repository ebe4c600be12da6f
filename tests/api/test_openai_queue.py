"""Overload and disconnects on /v1/chat/completions: the same queue as the seed's routes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from .conftest import MODEL

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "tell me a long story"}]}


def _processing(server) -> int:
    return httpx.get(server.url + "/get_load", timeout=5).json()["processing"]


def _wait_until_idle(server, within: float) -> float:
    """Seconds until no generation runs; fails when one still runs after ``within`` seconds."""
    started = time.monotonic()
    while _processing(server) != 0:
        assert time.monotonic() - started < within, "generation kept running after the client left"
        time.sleep(0.02)
    return time.monotonic() - started


def test_overload_is_429_rate_limit_error_and_retried(busy_server):
    client = openai.OpenAI(base_url=busy_server.url + "/v1", api_key="unused", max_retries=0)
    with client.chat.completions.create(model=MODEL, messages=BODY["messages"], stream=True) as running:
        first = next(iter(running))
        assert first.choices[0].delta.role == "assistant"
        assert _processing(busy_server) == 1
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=MODEL, messages=BODY["messages"])
        assert info.value.status_code == 429
        assert info.value.response.headers["retry-after"] == "1"
        assert info.value.body["type"] == "rate_limit_error"
        assert info.value.body["code"] == "too_many_requests"
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=MODEL, messages=BODY["messages"], stream=True)
    # The first stream was closed by the client: its slot is free again soon.
    _wait_until_idle(busy_server, within=5)


def test_sdk_retries_429_until_a_slot_frees(busy_server):
    holder = threading.Thread(
        target=lambda: httpx.post(busy_server.url + "/v1/chat/completions", json=BODY, timeout=60)
    )
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while _processing(busy_server) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client = openai.OpenAI(base_url=busy_server.url + "/v1", api_key="unused", max_retries=10)
        result = client.chat.completions.create(model=MODEL, messages=BODY["messages"], max_tokens=3)
        assert result.usage.completion_tokens == 3
    finally:
        holder.join(60)
    assert "429" in busy_server.log()


def test_streaming_disconnect_cancels_generation(busy_server):
    with httpx.Client(base_url=busy_server.url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json={**BODY, "stream": True}) as response:
            lines = response.iter_lines()
            while "content" not in next(lines):
                pass
            assert _processing(busy_server) == 1
    # The long reply takes ~3 s at 30 ms/token; the slot must come back well before that.
    assert _wait_until_idle(busy_server, within=1.5) < 1.5
    ok = httpx.post(busy_server.url + "/v1/chat/completions", json={**BODY, "max_tokens": 2}, timeout=30)
    assert ok.status_code == 200


def test_non_streaming_disconnect_cancels_generation(busy_server):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(busy_server.url + "/v1/chat/completions", json=BODY, timeout=0.5)
    assert _wait_until_idle(busy_server, within=1.5) < 1.5
    ok = httpx.post(busy_server.url + "/v1/chat/completions", json={**BODY, "max_tokens": 2}, timeout=30)
    assert ok.status_code == 200
    assert ok.json()["choices"][0]["message"]["content"] == "Streaming chat"


def _read_stream(server, body: dict, lines: list[str]) -> None:
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        lines.extend(line for line in response.iter_lines() if line)


def _content(lines: list[str]) -> str:
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_queued_stream_gets_keepalive_comments_then_its_whole_reply(keepalive_server):
    body = {**BODY, "stream": True, "max_tokens": 60}
    first: list[str] = []
    holder = threading.Thread(target=_read_stream, args=(keepalive_server, body, first))
    holder.start()
    deadline = time.monotonic() + 10
    while _processing(keepalive_server) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queued: list[str] = []
    _read_stream(keepalive_server, body, queued)  # waits in the queue for ~1 s first
    holder.join()
    comments = [line for line in queued if line.startswith(":")]
    assert comments and set(comments) == {": keep-alive"}
    # the comments come before the reply starts; the running stream (no wait) got none
    first_text = next(i for i, line in enumerate(queued) if _content([line]))
    assert max(i for i, line in enumerate(queued) if line.startswith(":")) < first_text
    assert not [line for line in first if line.startswith(":")]
    assert _content(queued) == _content(first) != ""
    assert queued[-1] == "data: [DONE]" and first[-1] == "data: [DONE]"


def test_openai_client_reads_through_keepalive_comments(keepalive_server):
    client = openai.OpenAI(base_url=keepalive_server.url + "/v1", api_key="unused", max_retries=0)
    body = {**BODY, "stream": True, "max_tokens": 30}
    holder = threading.Thread(target=_read_stream, args=(keepalive_server, body, []))
    holder.start()
    deadline = time.monotonic() + 10
    while _processing(keepalive_server) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stream = client.chat.completions.create(
        model=MODEL, messages=BODY["messages"], stream=True, max_tokens=30
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    holder.join()
    assert len(text.split()) >= 10
