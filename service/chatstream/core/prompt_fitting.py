"""Fit a conversation into the model's context, once, before it reaches the engine.

Whole old turns are dropped first (a model sees a shorter but coherent history); a single message
still too long keeps its newest tokens. The engine gets the token ids and never cuts again.
"""

from __future__ import annotations

import uuid
import zlib

from ..engine.base import Engine, GenerationRequest, SamplingParams
from ..prompts.base import AbstractChatPrompt


def prompt_template_name(prompt: AbstractChatPrompt) -> str:
    """What keeps one prompt format's cached KV apart from another's (the class and, for the chat
    template, the tokenizer's template text)."""
    name = f"{type(prompt).__module__}.{type(prompt).__qualname__}"
    template = getattr(getattr(prompt, "tokenizer", None), "chat_template", None)
    return f"{name}:{zlib.crc32(template.encode()):08x}" if isinstance(template, str) else name


def fit_prompt(
    engine: Engine,
    prompt: AbstractChatPrompt,
    params: SamplingParams,
    *,
    context_len: int,
    add_special_tokens: bool | None,
    extra_stop: list[str] | None = None,
) -> GenerationRequest:
    """Render and tokenise ``prompt`` (a copy: the stored one keeps its history) to fit the budget.

    CPU work that grows with the history (template rendering, one tokenisation per dropped turn):
    callers on the event loop run it in a worker thread.
    """
    working = type(prompt).from_dict(prompt.to_dict())
    budget = max(context_len - params.max_new_tokens, 1)
    while True:
        text = working.create_prompt()
        ids = engine.encode_prompt(text, add_special_tokens)
        size = len(ids) if ids is not None else engine.count_tokens(text)
        if size <= budget or not working.drop_oldest_turn():
            break
    if ids is not None:
        ids = ids[-budget:]
    stops = list(working.get_final_stop_strs() or []) + list(extra_stop or [])
    params.stop = [s for s in dict.fromkeys(stops + params.stop) if s]
    return GenerationRequest(
        request_id=uuid.uuid4().hex,
        prompt=text,
        params=params,
        prompt_token_ids=ids,
        add_special_tokens=add_special_tokens,
        template=prompt_template_name(working),
        last_user_message=working.undo_input_replacement(working.get_requester_last_msg() or ""),
        turn=working.get_turn(),
    )
