"""The tables as SQLAlchemy Core handles, and the small row rules every part of the store shares.

The hot path (every turn) uses Core on a connection, not ORM sessions: two short transactions per
turn whose cost is the database round trips, not Python object bookkeeping.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case

from ..models import COMPLETE, Conversation, Feedback, Message, utcnow

DATABASE_DOWN = "the chat history database is unavailable; retry shortly"
TURN_BUSY = "a reply is already being generated in this conversation; wait for it to finish"
#: the session key naming a browser's current conversation
SESSION_CONVERSATION = "conversation_id"
#: automatic titles (the first user message) are cut to this many characters
TITLE_LENGTH = 80

conversations = Conversation.__table__
messages_table = Message.__table__
feedback_table = Feedback.__table__
CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.owner,
    conversations.c.title,
    conversations.c.system_text,
    conversations.c.generation_params,
    conversations.c.active_message_id,
    conversations.c.lease_until,
    conversations.c.created_at,
    conversations.c.updated_at,
)


def new_id() -> str:
    return uuid.uuid4().hex


def lease_is_live(conversation: Row, now: datetime | None = None) -> bool:
    """True while a turn holds the conversation (its claim is set and not yet expired)."""
    lease = conversation.lease_until
    return conversation.active_message_id is not None and lease is not None and lease >= (now or utcnow())


def make_title(user_input: str) -> str:
    """The automatic title: the first user message on one line, cut to ``TITLE_LENGTH``."""
    line = " ".join(user_input.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def title_if_empty(user_input: str) -> ColumnElement[Any]:
    """A SET value that titles an untitled conversation and keeps any title it has.

    Decided in the UPDATE itself, so a rename that lands between reading the row and writing it wins.
    """
    return case((conversations.c.title == "", make_title(user_input)), else_=conversations.c.title)


def message_values(
    conversation_id: str,
    ordinal: int,
    role: str,
    body: str,
    now: datetime,
    message_id: str = "",
    status: str = COMPLETE,
) -> dict[str, Any]:
    """The column values of a new ``messages`` row."""
    return {
        "conversation_id": conversation_id,
        "ordinal": ordinal,
        "role": role,
        "text": body,
        "message_id": message_id or new_id(),
        "status": status,
        "created_at": now,
        "updated_at": now,
    }
