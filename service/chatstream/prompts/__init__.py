"""Prompt classes: the seed's abstract builder, its presets, and the chat-template prompt."""

from .base import AbstractChatPrompt, ChatContent
from .chat_template import ChatTemplatePrompt
from .presets import ChatPromptRinnaJapaneseGPTNeoxInst, ChatPromptTogetherRedPajamaINCITEChat

__all__ = [
    "AbstractChatPrompt",
    "ChatContent",
    "ChatTemplatePrompt",
    "ChatPromptRinnaJapaneseGPTNeoxInst",
    "ChatPromptTogetherRedPajamaINCITEChat",
]
