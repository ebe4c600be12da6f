"""``ChatStream(token_sampler=...)``: the engine picks every token with the user's sampler."""

from __future__ import annotations

from contextlib import aclosing

import torch

from chatstream import ChatStream, TokenSamplerHft, TokenSamplerIsok
from chatstream.engine.token_samplers import custom_sampler


class LowestLogit:
    """A sampler no built-in rule matches: always the least likely token (and it counts its calls)."""

    def __init__(self) -> None:
        self.calls = 0
        self.past_lengths: list[int] = []

    def do_sample(self, logits, top_k=None, top_p=None, temperature=1.0, past_tokens=None, penalty=None,
                  penalty_method="multiplicative"):  # fmt: skip
        self.calls += 1
        self.past_lengths.append(len(past_tokens))
        return int(torch.argmin(logits))


async def _reply_ids(chat: ChatStream, text: str) -> list[int]:
    prompt = chat.chat_prompt_clazz()
    prompt.add_requester_msg(text)
    prompt.add_responder_msg(None)
    await chat.start_queue_worker()
    try:
        stream = chat.service.open_local_turn(prompt)
        async with aclosing(stream.events()) as events:
            async for event in events:
                if event.finished:
                    break
        return stream.generation_request.prompt_token_ids
    finally:
        await chat.shutdown()


async def test_the_engine_samples_every_token_with_the_given_sampler(tiny_pair):
    model, tokenizer = tiny_pair
    sampler = LowestLogit()
    chat = ChatStream(
        model=model, tokenizer=tokenizer, device="cpu", metrics_enabled=False, max_new_tokens=6,
        token_sampler=sampler,
    )  # fmt: skip
    prompt_ids = await _reply_ids(chat, "Hello there")
    assert sampler.calls >= 1
    # each call sees the prompt and every token picked before it
    assert sampler.past_lengths == list(range(len(prompt_ids), len(prompt_ids) + sampler.calls))


def test_the_engines_own_order_needs_no_per_row_sampler():
    assert custom_sampler(None) is None
    assert custom_sampler(TokenSamplerHft()) is None
    isok = TokenSamplerIsok()
    assert custom_sampler(isok) is isok
