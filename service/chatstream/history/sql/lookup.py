"""Who is asking and which conversation they mean: every lookup is scoped to the caller.

Someone else's conversation answers 404 exactly as one that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ...errors import not_found
from ..base import get_principal, get_session_dict, save_session, session_key
from ..models import utcnow
from .store import SqlStore
from .tables import CONVERSATION_COLUMNS, SESSION_CONVERSATION, conversations, new_id


@dataclass
class Identity:
    """The caller: the owner of its conversations and, for a browser, its session's stable key."""

    owner: str
    session_key: str | None


class SqlLookups(SqlStore):
    """Finding (or starting) the caller's conversation, shared by turns and the conversation API."""

    def identity(self, request: Request) -> Identity:
        owner = get_principal(request)
        session = get_session_dict(request)
        if session is not None and owner.startswith("s-") and not session.get("history_owner"):
            # The owner is the cookie's session: make sure the response carries that cookie.
            session["history_owner"] = True
            save_session(request)
        return Identity(owner=owner, session_key=session_key(request))

    async def owned(self, db: AsyncConnection, conversation_id: str, owner: str) -> Row:
        """The caller's conversation, or 404 — the same answer whether it is someone else's or absent."""
        conversation = (
            await db.execute(
                select(*CONVERSATION_COLUMNS).where(
                    conversations.c.id == conversation_id, conversations.c.owner == owner
                )
            )
        ).first()
        if conversation is None:
            raise not_found()
        return conversation

    async def session_conversation(
        self, db: AsyncConnection, request: Request, who: Identity, create: bool
    ) -> Row | None:
        """A browser's current conversation: named in its session, else its newest one, else a new one."""
        session = get_session_dict(request)
        remembered = session.get(SESSION_CONVERSATION) if session is not None else None
        conversation = None
        if remembered:
            conversation = (
                await db.execute(
                    select(*CONVERSATION_COLUMNS).where(
                        conversations.c.id == remembered, conversations.c.owner == who.owner
                    )
                )
            ).first()
        if conversation is None and who.session_key is not None:
            conversation = (
                await db.execute(
                    select(*CONVERSATION_COLUMNS)
                    .where(conversations.c.owner == who.owner, conversations.c.session_key == who.session_key)
                    .order_by(conversations.c.updated_at.desc())
                    .limit(1)
                )
            ).first()
        if conversation is None and create:
            conversation = await self.insert_conversation(db, who.owner, who.session_key, None)
        if conversation is not None and session is not None and remembered != conversation.id:
            session[SESSION_CONVERSATION] = conversation.id
            save_session(request)
        return conversation

    async def insert_conversation(
        self, db: AsyncConnection, owner: str, key: str | None, system: str | None
    ) -> Row:
        """A new, empty conversation row (returned with ``CONVERSATION_COLUMNS``)."""
        now = utcnow()
        values = {
            "id": new_id(),
            "owner": owner,
            "session_key": key,
            "title": "",
            "system_text": system,
            "generation_params": {},
            "active_message_id": None,
            "lease_until": None,
            "created_at": now,
            "updated_at": now,
        }
        return (
            await db.execute(insert(conversations).values(**values).returning(*CONVERSATION_COLUMNS))
        ).one()

    async def resolve(
        self, db: AsyncConnection, request: Request, conversation_id: str | None, create: bool
    ) -> Row | None:
        """The conversation a request names, else the browser's current one (created when asked)."""
        who = self.identity(request)
        if conversation_id:
            return await self.owned(db, conversation_id, who.owner)
        return await self.session_conversation(db, request, who, create)
