"""Prompt objects from stored or client-sent messages: one builder for every request handler.

The in-memory sessions, the SQL store and OpenAI-style requests all turn a list of messages into the
configured prompt class; doing it in one place keeps their prompts identical for the same history.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..prompts.base import AbstractChatPrompt

#: message roles, as stored and as sent (the prompt class's own role names differ per model family)
USER, ASSISTANT = "user", "assistant"
SYSTEM_ROLES = ("system", "developer")


def split_messages(messages: list[dict[str, str]]) -> tuple[str | None, list[tuple[str, str]]]:
    """OpenAI-style messages as (system text or None, [(role, text)] of the user/assistant turns)."""
    system = [m["content"] for m in messages if m["role"] in SYSTEM_ROLES]
    history = [(m["role"], m["content"]) for m in messages if m["role"] in (USER, ASSISTANT)]
    return ("\n".join(system) if system else None), history


def build_prompt(
    prompt_clazz: type[AbstractChatPrompt],
    system: str | None,
    history: Iterable[tuple[str, str]],
    *,
    open_reply: bool,
) -> AbstractChatPrompt:
    """A prompt holding ``history``; ``system`` None keeps the class's own system text.

    ``open_reply`` adds the empty responder message the next reply is generated into.
    """
    prompt = prompt_clazz()
    if system is not None:
        prompt.set_system(system)
    for role, body in history:
        if role == USER:
            prompt.add_requester_msg(body)
        else:
            prompt.add_responder_msg(body)
    if open_reply:
        prompt.add_responder_msg(None)
    return prompt


def messages_to_prompt(
    prompt_clazz: type[AbstractChatPrompt], messages: list[dict[str, str]]
) -> AbstractChatPrompt:
    """Build a prompt object from OpenAI-style messages (system, user, assistant), open reply last."""
    system, history = split_messages(messages)
    return build_prompt(prompt_clazz, system, history, open_reply=True)
