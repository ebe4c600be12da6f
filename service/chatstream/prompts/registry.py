"""Prompt classes by name, for settings and the command line (``--chat-prompt-clazz``)."""

from __future__ import annotations

import importlib

from .base import AbstractChatPrompt
from .chat_template import ChatTemplatePrompt
from .presets import ChatPromptRinnaJapaneseGPTNeoxInst, ChatPromptTogetherRedPajamaINCITEChat

PROMPT_PRESETS: dict[str, type[AbstractChatPrompt]] = {
    "chat_template": ChatTemplatePrompt,
    "redpajama": ChatPromptTogetherRedPajamaINCITEChat,
    "rinna": ChatPromptRinnaJapaneseGPTNeoxInst,
}


def resolve_prompt_class(name: str) -> type[AbstractChatPrompt] | None:
    """'auto' → None (the chat template), a preset name, or 'package.module:ClassName'."""
    if name in ("", "auto"):
        return None
    if name in PROMPT_PRESETS:
        return PROMPT_PRESETS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    raise ValueError(f"unknown prompt class {name!r}")
