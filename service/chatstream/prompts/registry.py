"""Prompt classes by name, for settings and the command line (``--chat-prompt-clazz``)."""

from __future__ import annotations

import importlib

from .base import AbstractChatPrompt
from .chat_template import ChatTemplatePrompt
from .presets import (
    ChatPromptDatabricksDolly,
    ChatPromptMetaLlamaLlama2Chat,
    ChatPromptMosaicmlMptChat,
    ChatPromptOpenlmrOpenLlama,
    ChatPromptTogetherRedPajamaINCITEChat,
)
from .presets_ja import (
    ChatPromptCyberAgentOpenCalm,
    ChatPromptLineCorpJpLargeLmInstSft,
    ChatPromptMatsuoLabJpGptNeoxInstSft,
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptRinnaJpGptNeoxInstSft,
    ChatPromptStabilityAiJpGptNeoxInstSft,
    ChatPromptStockmarkGptNeoxJp,
)

PROMPT_PRESETS: dict[str, type[AbstractChatPrompt]] = {
    "chat_template": ChatTemplatePrompt,
    "redpajama": ChatPromptTogetherRedPajamaINCITEChat,
    "rinna": ChatPromptRinnaJapaneseGPTNeoxInst,
    "llama2": ChatPromptMetaLlamaLlama2Chat,
    "dolly": ChatPromptDatabricksDolly,
    "mpt": ChatPromptMosaicmlMptChat,
    "open_llama": ChatPromptOpenlmrOpenLlama,
    "open_calm": ChatPromptCyberAgentOpenCalm,
    "line": ChatPromptLineCorpJpLargeLmInstSft,
    "weblab": ChatPromptMatsuoLabJpGptNeoxInstSft,
    "stablelm_ja": ChatPromptStabilityAiJpGptNeoxInstSft,
    "stockmark": ChatPromptStockmarkGptNeoxJp,
}

#: the classes by their own names too (ChatStream 0.3.0's), so a seed user's setting needs no lookup
PROMPT_CLASSES: dict[str, type[AbstractChatPrompt]] = {
    **{cls.__name__: cls for cls in PROMPT_PRESETS.values()},
    "ChatPromptRinnaJpGptNeoxInstSft": ChatPromptRinnaJpGptNeoxInstSft,
}


def resolve_prompt_class(name: str) -> type[AbstractChatPrompt] | None:
    """'auto' or '' → None (the chat template), a preset key or class name, or 'package.module:Class'."""
    if name in ("", "auto"):
        return None
    if name in PROMPT_PRESETS:
        return PROMPT_PRESETS[name]
    if name in PROMPT_CLASSES:
        return PROMPT_CLASSES[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    known = ", ".join(sorted(PROMPT_PRESETS))
    raise ValueError(f"unknown prompt class {name!r}: use auto, one of {known}, or package.module:Class")
