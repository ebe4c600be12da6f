"""The seed's ``ChatStream.handle_console_input``: shape of what it yields and its in-memory history."""

from __future__ import annotations

import pytest

from chatstream import ChatStream
from chatstream.console.local import ConsoleError
from chatstream.console.params import parse_params
from chatstream.engine.mock import ROUND_REPLIES
from chatstream.scheduler import QueueFullError

ROUND_1, ROUND_2 = ROUND_REPLIES[:2]


def make(**kwargs) -> ChatStream:
    params = {"type": "round", "time_per_token_sec": 0.0}
    return ChatStream(use_mock_response=True, mock_params=params, metrics_enabled=False, **kwargs)


async def collect(chat_stream: ChatStream, text: str) -> list[tuple[str, str, str]]:
    return [item async for item in chat_stream.handle_console_input(text)]


async def test_yields_begin_mid_end_with_growing_text() -> None:
    chat_stream = make()
    items = await collect(chat_stream, "hello")
    positions = [pos for _, _, pos in items]
    assert positions[0] == "begin" and positions[-1] == "end"
    assert set(positions[1:-1]) == {"mid"} and len(positions) > 3
    assert "".join(piece for _, piece, _ in items) == items[-1][0] == ROUND_1
    for (text, piece, _), (before, _, _) in zip(items[1:-1], items[:-2], strict=True):
        assert text == before + piece
    await chat_stream.shutdown()


async def test_keeps_one_users_history_in_memory() -> None:
    chat_stream = make()
    await collect(chat_stream, "hello")
    second = await collect(chat_stream, "and again")
    assert second[-1][0] == ROUND_2
    messages = chat_stream.chat_prompt_for_single_user_on_console.to_messages()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == "and again" and messages[3]["content"] == ROUND_2
    await chat_stream.shutdown()


async def test_full_queue_raises_and_records_nothing() -> None:
    chat_stream = make(num_of_concurrent_executions=1, max_queue_size=0)
    await chat_stream.start_queue_worker()
    holder = chat_stream.service.reserve()  # someone else holds the only slot
    with pytest.raises(QueueFullError):
        await collect(chat_stream, "hello")
    assert chat_stream.chat_prompt_for_single_user_on_console.to_messages() == []
    holder.release()
    assert (await collect(chat_stream, "hello"))[-1][0] == ROUND_1
    await chat_stream.shutdown()


def test_parse_params() -> None:
    allowed = ("temperature", "top_k", "top_p")
    assert parse_params("temperature=0.7 top_k=40 top_p=none", allowed) == {
        "temperature": 0.7,
        "top_k": 40,
        "top_p": None,
    }
    with pytest.raises(ConsoleError, match="unknown parameter"):
        parse_params("seed=1", allowed)
    with pytest.raises(ConsoleError, match="name=value"):
        parse_params("temperature", allowed)
    with pytest.raises(ConsoleError, match="not a number"):
        parse_params("temperature=hot", allowed)
