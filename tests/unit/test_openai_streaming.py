"""OpenAI SSE streaming helpers: the content-chunk template and the keep-alive pump."""

from __future__ import annotations

import asyncio
import json

import pytest

from chatstream.api.openai.protocol import Delta
from chatstream.api.openai.stream import content_template, dump_chunk, with_keepalive
from chatstream.core.turn_stream import TurnEvent

TEXTS = [
    "plain",
    'quote " and \\ backslash',
    "line\nbreak\ttab",
    "日本語の文章です。",
    "\u0000\u001f",
    "😀 {}",
]


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("text", TEXTS)
def test_template_equals_the_schema_dump(text: str, include_usage: bool) -> None:
    prefix, suffix = content_template("chatcmpl-x", 1700000000, 'model "q"', include_usage)
    rendered = prefix + json.dumps(text, ensure_ascii=False) + suffix
    assert rendered == dump_chunk(
        "chatcmpl-x", 1700000000, 'model "q"', Delta(content=text), None, include_usage
    )
    payload = json.loads(rendered.removeprefix("data: "))
    assert payload["choices"][0]["delta"] == {"content": text}
    assert ("usage" in payload) is include_usage


def _events(texts: list[str], fail: bool = False, closed: list[bool] | None = None):
    async def gen():
        try:
            shown = ""
            for i, text in enumerate(texts):
                shown += text
                yield TurnEvent(text, shown, finished=i == len(texts) - 1, completion_tokens=i + 1)
            if fail:
                raise RuntimeError("engine broke")
        finally:
            if closed is not None:
                closed.append(True)

    return gen()


def test_merged_event_joins_the_deltas_and_keeps_the_newer_state() -> None:
    first = TurnEvent("Hel", "Hel", prompt_tokens=5, completion_tokens=1)
    second = TurnEvent(
        "lo", "Hello", finished=True, finish_reason="length", prompt_tokens=5, completion_tokens=2
    )
    merged = TurnEvent.merged(first, second)
    assert merged == TurnEvent(
        "Hello", "Hello", finished=True, finish_reason="length", prompt_tokens=5, completion_tokens=2
    )
    assert (first.delta, second.delta) == ("Hel", "lo")  # neither input is changed


def test_keepalive_merges_a_backlog_but_never_past_the_last_event() -> None:
    async def main():
        seen = []
        async for event in with_keepalive(_events(["a", "b", "c", "d"]), every=10):
            seen.append(event)
            await asyncio.sleep(0.05)  # a slow client: the rest queues up meanwhile
        return seen

    seen = asyncio.run(main())
    assert "".join(e.delta for e in seen) == "abcd"
    assert seen[-1].finished and seen[-1].text == "abcd" and seen[-1].completion_tokens == 4
    assert not any(e.finished for e in seen[:-1]) and len(seen) < 4


def test_keepalive_marks_idle_time_passes_errors_and_closes_the_source() -> None:
    async def slow():
        await asyncio.sleep(0.25)
        async for event in _events(["x"], fail=True):
            yield event

    async def main():
        seen = []
        with pytest.raises(RuntimeError, match="engine broke"):
            async for event in with_keepalive(slow(), every=0.1):
                seen.append(event)
        closed: list[bool] = []
        stream = with_keepalive(_events(["p", "q"], closed=closed), every=10)
        await anext(stream)
        await stream.aclose()
        return seen, closed

    seen, closed = asyncio.run(main())
    assert seen[:2] == [None, None] and seen[-1].delta == "x"
    assert closed == [True]
