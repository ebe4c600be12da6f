"""Prompt classes: the seed's abstract builder, its presets, and the chat-template prompt."""

from .base import AbstractChatPrompt
from .chat_template import ChatTemplatePrompt
from .content import ChatContent, PromptTTL, RoleType
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

__all__ = [
    "AbstractChatPrompt",
    "ChatContent",
    "ChatPromptCyberAgentOpenCalm",
    "ChatPromptDatabricksDolly",
    "ChatPromptLineCorpJpLargeLmInstSft",
    "ChatPromptMatsuoLabJpGptNeoxInstSft",
    "ChatPromptMetaLlamaLlama2Chat",
    "ChatPromptMosaicmlMptChat",
    "ChatPromptOpenlmrOpenLlama",
    "ChatPromptRinnaJapaneseGPTNeoxInst",
    "ChatPromptRinnaJpGptNeoxInstSft",
    "ChatPromptStabilityAiJpGptNeoxInstSft",
    "ChatPromptStockmarkGptNeoxJp",
    "ChatPromptTogetherRedPajamaINCITEChat",
    "ChatTemplatePrompt",
    "PromptTTL",
    "RoleType",
]
