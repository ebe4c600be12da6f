"""The mock engine: round really cycles, echo echoes, English by word, Japanese by character."""

from __future__ import annotations

from chatstream.engine.base import GenerationRequest, SamplingParams
from chatstream.engine.mock import LONG_REPLY, ROUND_REPLIES, MockEngine, split_mock_tokens


async def _reply(engine: MockEngine, **kwargs) -> tuple[list[str], str | None]:
    request = GenerationRequest(request_id="r", prompt="p", **kwargs)
    pieces, reason = [], None
    async for delta in engine.generate(request):
        if delta.text:
            pieces.append(delta.text)
        if delta.finished:
            reason = delta.finish_reason
    return pieces, reason


async def test_round_cycles_by_turn_and_default_is_round():
    engine = MockEngine(None)
    engine.time_per_token_sec = 0
    for turn in range(1, len(ROUND_REPLIES) + 2):
        pieces, reason = await _reply(engine, turn=turn)
        assert "".join(pieces) == ROUND_REPLIES[(turn - 1) % len(ROUND_REPLIES)]
        assert reason == "stop"


async def test_echo_long_and_length_limit():
    echo = MockEngine({"type": "echo", "time_per_token_sec": 0})
    pieces, _ = await _reply(echo, last_user_message="say this back")
    assert pieces == ["say", " this", " back"]
    long = MockEngine({"type": "long", "time_per_token_sec": 0})
    pieces, reason = await _reply(long, params=SamplingParams(max_new_tokens=5))
    assert len(pieces) == 5 and reason == "length"
    assert LONG_REPLY.startswith("".join(pieces))


def test_english_by_word_japanese_by_character():
    assert split_mock_tokens("a b c") == ["a", " b", " c"]
    assert split_mock_tokens("日本語です") == ["日", "本", "語", "で", "す"]
