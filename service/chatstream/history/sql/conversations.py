"""Conversation-level requests on the SQL store: the seed's endpoints and ``/v1/conversations``.

Every method is scoped to the caller through :class:`~.lookup.SqlLookups`: another owner's
conversation answers 404, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ...errors import conflict, not_found
from ...prompts.base import AbstractChatPrompt
from ..models import utcnow
from ..prompting import ASSISTANT, build_prompt
from .lookup import SqlLookups
from .tables import (
    CONVERSATION_COLUMNS,
    TURN_BUSY,
    conversations,
    feedback_table,
    lease_is_live,
    messages_table,
)
from .views import conversation_summary, message_view


def summaries() -> Select:
    """Conversations with their message counts (``message_count``)."""
    counts = (
        select(messages_table.c.conversation_id, func.count(messages_table.c.id).label("n"))
        .group_by(messages_table.c.conversation_id)
        .subquery()
    )
    return select(*CONVERSATION_COLUMNS, func.coalesce(counts.c.n, 0).label("message_count")).select_from(
        conversations.outerjoin(counts, counts.c.conversation_id == conversations.c.id)
    )


def listed_after(updated_at: datetime, conversation_id: str | None) -> ColumnElement[bool]:
    """The rows after a position in the listing order (``updated_at`` newest first, then ``id``).

    With an id this is keyset paging: the next page starts right after that row, so rows with the
    same ``updated_at`` are neither skipped nor repeated. Without one, strictly older than the time.
    """
    older = conversations.c.updated_at < updated_at
    if conversation_id is None:
        return older
    return or_(older, and_(conversations.c.updated_at == updated_at, conversations.c.id > conversation_id))


async def delete_messages(db: AsyncConnection, conversation_id: str) -> None:
    """A conversation's messages and their feedback."""
    # Explicit deletes (not only ON DELETE CASCADE): SQLite enforces foreign keys per connection.
    ids = select(messages_table.c.message_id).where(messages_table.c.conversation_id == conversation_id)
    await db.execute(delete(feedback_table).where(feedback_table.c.message_id.in_(ids)))
    await db.execute(delete(messages_table).where(messages_table.c.conversation_id == conversation_id))


class SqlConversations(SqlLookups):
    """Clear, prompt, generation params, feedback; create, list, read, rename and delete."""

    # --- the seed's endpoints ---------------------------------------------------------------
    async def clear_context(self, request: Request, conversation_id: str | None = None) -> None:
        async with self.transaction() as db:
            conversation = await self.resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return
            if lease_is_live(conversation):
                raise conflict(TURN_BUSY)
            await delete_messages(db, conversation.id)
            await db.execute(
                update(conversations)
                .where(conversations.c.id == conversation.id)
                .values(title="", updated_at=utcnow())
            )

    async def get_prompt(
        self, request: Request, conversation_id: str | None = None
    ) -> AbstractChatPrompt | None:
        async with self.transaction() as db:
            conversation = await self.resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return None
            rows = (
                await db.execute(
                    select(messages_table.c.role, messages_table.c.text, messages_table.c.message_id)
                    .where(messages_table.c.conversation_id == conversation.id)
                    .order_by(messages_table.c.ordinal)
                )
            ).all()
            history = [(row.role, row.text) for row in rows]
            prompt = build_prompt(self.chat_prompt_clazz, conversation.system_text, history, open_reply=False)
            prompt.message_ids = [row.message_id for row in rows]  # type: ignore[attr-defined]
            return prompt

    async def get_generation_params(
        self, request: Request, conversation_id: str | None = None
    ) -> dict[str, Any]:
        async with self.transaction() as db:
            conversation = await self.resolve(db, request, conversation_id, create=False)
            return dict(conversation.generation_params or {}) if conversation is not None else {}

    async def set_generation_params(
        self, request: Request, params: dict[str, Any], conversation_id: str | None = None
    ) -> dict[str, Any]:
        async with self.transaction() as db:
            conversation = await self.resolve(db, request, conversation_id, create=True)
            assert conversation is not None
            current = {**(conversation.generation_params or {}), **params}
            await db.execute(
                update(conversations)
                .where(conversations.c.id == conversation.id)
                .values(generation_params=current, updated_at=utcnow())
            )
            return current

    async def set_feedback(
        self,
        request: Request,
        message_id: str,
        is_like: bool | None,
        form_data: dict[str, Any] | None,
        conversation_id: str | None = None,
    ) -> None:
        who = self.identity(request)
        async with self.transaction() as db:
            found = await db.scalar(
                select(messages_table.c.id)
                .join(conversations, messages_table.c.conversation_id == conversations.c.id)
                .where(
                    messages_table.c.message_id == message_id,
                    messages_table.c.role == ASSISTANT,
                    conversations.c.owner == who.owner,
                )
            )
            if found is None:
                raise not_found("no such message in your conversations")
            now = utcnow()
            updated = await db.execute(
                update(feedback_table)
                .where(feedback_table.c.message_id == message_id)
                .values(is_like=is_like, form_data=form_data, updated_at=now)
            )
            if updated.rowcount == 0:
                await db.execute(
                    insert(feedback_table).values(
                        message_id=message_id,
                        is_like=is_like,
                        form_data=form_data,
                        created_at=now,
                        updated_at=now,
                    )
                )

    # --- /v1/conversations ------------------------------------------------------------------
    async def create_conversation(self, request: Request, system: str | None = None) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self.insert_conversation(db, who.owner, None, system)
        return conversation_summary(conversation, 0)

    async def list_conversations(
        self,
        request: Request,
        limit: int = 50,
        before: datetime | None = None,
        before_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The caller's conversations, newest first, after the position ``(before, before_id)``.

        Pass the last summary's ``updated_at`` and ``id`` to get the next page (see :func:`listed_after`).
        """
        who = self.identity(request)
        query = (
            summaries()
            .where(conversations.c.owner == who.owner)
            .order_by(conversations.c.updated_at.desc(), conversations.c.id)
            .limit(limit)
        )
        if before is not None:
            query = query.where(listed_after(before, before_id))
        async with self.transaction() as db:
            rows = (await db.execute(query)).all()
        return [conversation_summary(row, row.message_count) for row in rows]

    async def get_conversation(self, request: Request, conversation_id: str) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self.owned(db, conversation_id, who.owner)
            rows = (
                await db.execute(
                    select(
                        messages_table,
                        feedback_table.c.id.label("feedback_id"),
                        feedback_table.c.is_like,
                        feedback_table.c.form_data,
                    )
                    .select_from(
                        messages_table.outerjoin(
                            feedback_table, feedback_table.c.message_id == messages_table.c.message_id
                        )
                    )
                    .where(messages_table.c.conversation_id == conversation.id)
                    .order_by(messages_table.c.ordinal)
                )
            ).all()
            now = utcnow()
            return {
                **conversation_summary(conversation, len(rows)),
                "system": conversation.system_text,
                "messages": [message_view(row, conversation, now) for row in rows],
            }

    async def rename_conversation(self, request: Request, conversation_id: str, title: str) -> dict[str, Any]:
        """Set the title (already validated) and return the summary.

        ``updated_at`` is left as it is: renaming does not move a conversation in the listing, so a
        client paging through it meanwhile neither misses nor repeats it.
        """
        who = self.identity(request)
        async with self.transaction() as db:
            renamed = (
                await db.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation_id, conversations.c.owner == who.owner)
                    .values(title=title)
                    .returning(*CONVERSATION_COLUMNS)
                )
            ).first()
            if renamed is None:
                raise not_found()
            count = await db.scalar(
                select(func.count(messages_table.c.id)).where(messages_table.c.conversation_id == renamed.id)
            )
        return conversation_summary(renamed, count or 0)

    async def delete_conversation(self, request: Request, conversation_id: str) -> None:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self.owned(db, conversation_id, who.owner)
            if lease_is_live(conversation):
                raise conflict(TURN_BUSY)
            await delete_messages(db, conversation.id)
            await db.execute(delete(conversations).where(conversations.c.id == conversation.id))
