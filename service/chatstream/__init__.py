"""chatstream: stream chat replies from a HuggingFace causal LM to many users at once.

The seed's public API (every public name of ChatStream 0.3.0): ``ChatStream``, the prompt classes
and presets, the request handlers, the token samplers and ``LoadTime``.
"""

from .chat_stream import ChatStream
from .history.base import RequestHandler, Turn, TurnInput
from .history.session import SimpleSessionRequestHandler
from .load_time import LoadTime
from .prompts import (
    AbstractChatPrompt,
    ChatContent,
    ChatPromptCyberAgentOpenCalm,
    ChatPromptDatabricksDolly,
    ChatPromptLineCorpJpLargeLmInstSft,
    ChatPromptMatsuoLabJpGptNeoxInstSft,
    ChatPromptMetaLlamaLlama2Chat,
    ChatPromptMosaicmlMptChat,
    ChatPromptOpenlmrOpenLlama,
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptRinnaJpGptNeoxInstSft,
    ChatPromptStabilityAiJpGptNeoxInstSft,
    ChatPromptStockmarkGptNeoxJp,
    ChatPromptTogetherRedPajamaINCITEChat,
    ChatTemplatePrompt,
)
from .session import MemoryStore, SessionMiddleware
from .version import __version__

#: upstream's name for the request-handler interface
AbstractRequestHandler = RequestHandler

#: names imported on first use: the SQL handler pulls in SQLAlchemy, the samplers torch
_LAZY = {
    "PostgresRequestHandler": "history.sql",
    "SQLRequestHandler": "history.sql",
    "TokenSamplerBase": "engine.token_samplers",
    "TokenSamplerHft": "engine.token_samplers",
    "TokenSamplerIsok": "engine.token_samplers",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = [
    "AbstractChatPrompt",
    "AbstractRequestHandler",
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
    "ChatStream",
    "ChatTemplatePrompt",
    "LoadTime",
    "MemoryStore",
    "PostgresRequestHandler",
    "RequestHandler",
    "SQLRequestHandler",
    "SessionMiddleware",
    "SimpleSessionRequestHandler",
    "TokenSamplerBase",
    "TokenSamplerHft",
    "TokenSamplerIsok",
    "Turn",
    "TurnInput",
    "__version__",
]
