"""The facade renders and tokenises a prompt once and hands the engine its token ids."""

from __future__ import annotations

from typing import Any

from chatstream.chat_stream import ChatStream
from chatstream.prompts.chat_template import ChatTemplatePrompt


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
