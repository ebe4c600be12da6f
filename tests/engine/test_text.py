"""Stop strings never leak, and text comes out in whole characters (Japanese split across tokens)."""

from __future__ import annotations

from chatstream.engine.detokenize import IncrementalDetokenizer

from .helpers import collect, request, running_engine

JAPANESE = "こんにちは。猫が窓辺で眠っている。鰻丼と蕎麦を食べたい。東京、大阪、京都。"


def test_japanese_comes_out_in_whole_characters(tiny_lm):
    _, tokenizer = tiny_lm
    ids = tokenizer(JAPANESE, add_special_tokens=False).input_ids
    pieces = [tokenizer.decode([t]) for t in ids]
    assert any("\ufffd" in p for p in pieces), "the tokenizer must split some characters across tokens"
    detok = IncrementalDetokenizer(tokenizer, tokenizer("prompt").input_ids)
    out = [detok.add(t) for t in ids]
    assert all("\ufffd" not in piece for piece in out)
    assert "".join(out) == JAPANESE
    assert sum(1 for piece in out if piece) > 10  # streamed piece by piece, not at the end


async def test_stop_string_cuts_the_reply_and_is_never_emitted(tiny_lm):
    model, tokenizer = tiny_lm
    async with running_engine(model, tokenizer, max_batch_size=2) as engine:
        prompt = "The quick brown fox jumps over the lazy dog."
        full = await collect(engine.generate(request(prompt, max_new_tokens=40, ignore_eos=True)))
        text = full.text
        assert len(text) > 20
        stop = text[len(text) // 2 : len(text) // 2 + 4]
        cut = text.index(stop)
        stopped = await collect(
            engine.generate(request(prompt, max_new_tokens=40, ignore_eos=True, stop=[stop]))
        )
        # the stop string's first characters are held back until the stop is known, then dropped
        assert stopped.text == text[:cut]
        assert stopped.last.finish_reason == "stop"
        assert stopped.tokens == full.tokens[: len(stopped.tokens)]
        assert len(stopped.tokens) < len(full.tokens)


async def test_stop_token_ids_eos_and_length(tiny_lm):
    model, tokenizer = tiny_lm
    async with running_engine(model, tokenizer) as engine:
        free = await collect(engine.generate(request("Hello", max_new_tokens=12, ignore_eos=True)))
        assert free.last.finish_reason == "length" and len(free.tokens) == 12
        target = free.tokens[5]
        stopped = await collect(engine.generate(request("Hello", max_new_tokens=12, stop_token_ids=[target])))
        assert stopped.tokens == free.tokens[: free.tokens.index(target) + 1]
        assert stopped.last.finish_reason == "stop"


async def test_add_special_tokens_is_honoured_when_the_engine_tokenises(tiny_lm):
    model, tokenizer = tiny_lm
    async with running_engine(model, tokenizer) as engine:
        special = request("Hello", max_new_tokens=2)
        special.add_special_tokens = False
        plain = await collect(engine.generate(special))
        assert plain.last.prompt_tokens == len(tokenizer.encode("Hello", add_special_tokens=False))
