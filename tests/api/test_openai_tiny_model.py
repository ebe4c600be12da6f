"""The OpenAI API on a real (tiny, random) HuggingFace model: chat template, tokens, usage, greedy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fixtures.server import ServerHandle, run_server

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chatstream.engine.transformers") is None,
    reason="the transformers engine (chatstream.engine.transformers) is not built yet",
)


@pytest.fixture(scope="module")
def model_dir(request, tmp_path_factory) -> Path:
    """The shared ``tiny_model_dir`` fixture when present, else one made with the CLI."""
    try:
        return Path(request.getfixturevalue("tiny_model_dir"))
    except pytest.FixtureLookupError:
        target = tmp_path_factory.mktemp("tiny-model")
        subprocess.run([sys.executable, "-m", "chatstream", "make-tiny-model", str(target)], check=True)
        return target


@pytest.fixture(scope="module")
def tiny_server(model_dir) -> Iterator[ServerHandle]:
    with run_server("--model", str(model_dir), "--history", "memory", "--max-new-tokens", "16") as server:
        yield server


def test_tiny_model_streaming_and_not(tiny_server):
    client = openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="unused", max_retries=0)
    (model,) = [m.id for m in client.models.list().data]
    messages = [
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "Say something."},
    ]
    result = client.chat.completions.create(model=model, messages=messages, max_tokens=6, temperature=0)
    assert isinstance(result.choices[0].message.content, str)
    assert result.choices[0].finish_reason in ("stop", "length")
    assert 1 <= result.usage.completion_tokens <= 6
    assert result.usage.prompt_tokens > 3

    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == result.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == result.usage.prompt_tokens
    # greedy decoding is deterministic: the streamed text equals the non-streamed one
    assert text == result.choices[0].message.content
