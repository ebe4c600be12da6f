"""Where conversations live: in-memory sessions (the seed's default) or a SQL store."""

from .base import CONVERSATION_HEADER, MESSAGE_ID_HEADER, RequestHandler, Turn, TurnInput, get_principal
from .session import SimpleSessionRequestHandler

__all__ = [
    "CONVERSATION_HEADER",
    "MESSAGE_ID_HEADER",
    "RequestHandler",
    "SimpleSessionRequestHandler",
    "Turn",
    "TurnInput",
    "get_principal",
]
