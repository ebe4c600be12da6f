"""chatstream: stream chat replies from a HuggingFace causal LM to many users at once.

The seed's public API: ``ChatStream``, the prompt classes and the default session request handler.
"""

from .chat_stream import ChatStream  # noqa: E402
from .history.base import RequestHandler, Turn, TurnInput  # noqa: E402
from .history.session import SimpleSessionRequestHandler  # noqa: E402
from .prompts import (  # noqa: E402
    AbstractChatPrompt,
    ChatContent,
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptTogetherRedPajamaINCITEChat,
    ChatTemplatePrompt,
)
from .session import MemoryStore, SessionMiddleware  # noqa: E402
from .version import __version__  # noqa: E402


def __getattr__(name: str):
    # The SQL handler pulls in SQLAlchemy; import it only when asked for.
    if name in ("PostgresRequestHandler", "SQLRequestHandler"):
        from .history import sql

        return getattr(sql, name)
    raise AttributeError(name)


__all__ = [
    "AbstractChatPrompt",
    "ChatContent",
    "ChatPromptRinnaJapaneseGPTNeoxInst",
    "ChatPromptTogetherRedPajamaINCITEChat",
    "ChatStream",
    "ChatTemplatePrompt",
    "MemoryStore",
    "PostgresRequestHandler",
    "RequestHandler",
    "SQLRequestHandler",
    "SessionMiddleware",
    "SimpleSessionRequestHandler",
    "Turn",
    "TurnInput",
    "__version__",
]
