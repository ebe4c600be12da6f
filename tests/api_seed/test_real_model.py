"""A real (tiny, random-weight) model generating through /chat_stream, off the event loop."""

from __future__ import annotations

import asyncio
import time

import httpx
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.fixtures.server import run_server

from .helpers import last_text, sse_events


def test_make_tiny_model_cli_writes_a_loadable_model(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m"
    subprocess.run(
        [sys.executable, "-m", "chatstream", "make-tiny-model", str(out), "--hidden-size", "32"],
        check=True,
        capture_output=True,
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.hidden_size == 32
    assert tokenizer.decode(tokenizer("日本語 text").input_ids) == "日本語 text"


def test_greedy_reply_through_http_matches_model_generate(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = (
        "--model",
        str(tiny_model_dir),
        "--history",
        "memory",
        "--dev-mode",
        "--temperature",
        "0",
        "--max-new-tokens",
        "24",
    )
    with run_server(*args) as server, server.client() as client:
        response = client.post(
            "/chat_stream", json={"user_input": "hello"}, headers={"Accept": "text/event-stream"}
        )
        final = sse_events(response.text)[-2]
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
        )
        inputs = tokenizer(prompt, return_tensors="pt")
        expected_ids = model.generate(**inputs, max_new_tokens=24, do_sample=False)[
            0, inputs.input_ids.shape[1] :
        ]
        eos = (
            expected_ids.tolist().index(tokenizer.eos_token_id)
            if tokenizer.eos_token_id in expected_ids
            else None
        )
        expected = tokenizer.decode(expected_ids[:eos], skip_special_tokens=True).lstrip()
        assert final["text"] == expected
        assert final["usage"]["completion_tokens"] == (eos + 1 if eos is not None else 24)
        second = client.post("/chat_stream", json={"user_input": "more"})
        assert second.status_code == 200 and last_text(second.text) is not None


def test_health_stays_responsive_while_streams_generate(tiny_model_dir):
    args = (
        "--model",
        str(tiny_model_dir),
        "--history",
        "memory",
        "--dev-mode",
        "--max-new-tokens",
        "200",
        "--num-of-concurrent-executions",
        "4",
        "--context-len",
        "1024",
    )

    async def scenario(url: str) -> list[float]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def stream(i: int) -> None:
                body = {"user_input": f"tell me story number {i}"}
                async with client.stream("POST", "/chat_stream", json=body) as response:
                    async for _ in response.aiter_text():
                        pass

            tasks = [asyncio.create_task(stream(i)) for i in range(4)]
            await asyncio.sleep(0.5)
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
            await asyncio.gather(*tasks)
            return latencies

    with run_server(*args) as server:
        latencies = asyncio.run(scenario(server.url))
    # Generation runs in the engine thread: the event loop answers while the model computes.
    assert sorted(latencies)[len(latencies) // 2] < 0.25
