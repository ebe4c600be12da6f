"""The facade renders and tokenises a prompt once and hands the engine its token ids."""

from __future__ import annotations

from typing import Any

from chatstream.chat_stream import ChatStream
from chatstream.prompts.chat_template import ChatTemplatePrompt
from chatstream.prompts.presets import ChatPromptTogetherRedPajamaINCITEChat

from .helpers import collect, request, running_engine


def _conversation(tokenizer: Any, turns: int) -> ChatTemplatePrompt:
    prompt = ChatTemplatePrompt.bind(tokenizer)()
    for turn in range(turns):
        prompt.add_requester_msg(f"question number {turn} about the weather in the mountains today")
        prompt.add_responder_msg(f"answer number {turn}: it is sunny and cold in the mountains")
    prompt.add_requester_msg("the newest question")
    prompt.add_responder_msg(None)
    return prompt


def test_the_engine_gets_the_ids_of_the_rendered_prompt(tiny_lm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_lm
    chat = ChatStream(model=model, tokenizer=tokenizer, device="cpu", metrics_enabled=False)
    request = chat.service.fit(_conversation(tokenizer, 2), chat.service.sampling_params({}))
    assert request.prompt_token_ids == tokenizer(request.prompt).input_ids
    assert "question number 0" in request.prompt and "the newest question" in request.prompt


def test_old_turns_are_dropped_by_token_count_until_the_prompt_fits(tiny_lm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_lm
    full = ChatStream(model=model, tokenizer=tokenizer, device="cpu", metrics_enabled=False)
    whole = full.service.fit(_conversation(tokenizer, 6), full.service.sampling_params({}))
    max_new = 16
    context_len = len(whole.prompt_token_ids) // 2 + max_new
    chat = ChatStream(
        model=model, tokenizer=tokenizer, device="cpu", metrics_enabled=False, context_len=context_len
    )
    request = chat.service.fit(
        _conversation(tokenizer, 6), chat.service.sampling_params({"max_new_tokens": max_new})
    )
    assert len(request.prompt_token_ids) <= context_len - max_new
    assert request.prompt_token_ids == tokenizer(request.prompt).input_ids
    assert "question number 0" not in request.prompt  # whole old turns went first
    assert "question number 5" in request.prompt and "the newest question" in request.prompt


async def test_a_single_message_too_long_keeps_its_newest_tokens(tiny_lm: tuple[Any, Any]) -> None:
    """Truncation happens once, in the service: the engine then generates from exactly those ids."""
    model, tokenizer = tiny_lm
    chat = ChatStream(
        model=model,
        tokenizer=tokenizer,
        device="cpu",
        metrics_enabled=False,
        context_len=10,
        chat_prompt_clazz=ChatPromptTogetherRedPajamaINCITEChat,
    )
    prompt = ChatPromptTogetherRedPajamaINCITEChat()
    prompt.add_requester_msg("Tell me a story about a small robot who learned to paint the sea at night")
    prompt.add_responder_msg(None)
    fitted = chat.service.fit(prompt, chat.service.sampling_params({"max_new_tokens": 6, "temperature": 0.0}))
    ids = tokenizer(fitted.prompt).input_ids
    assert fitted.prompt_token_ids == ids[-4:]
    fitted.params.ignore_eos = True
    async with running_engine(model, tokenizer) as engine:
        got = await collect(engine.generate(fitted))
        want = await collect(engine.generate(request(ids=ids[-4:], max_new_tokens=6, ignore_eos=True)))
    assert got.last.prompt_tokens == 4
    assert got.tokens == want.tokens
