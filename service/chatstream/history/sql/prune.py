"""``chatstream prune``: delete conversations that have not been touched for a while."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select

from ..database import create_engine
from ..models import utcnow
from .tables import conversations, feedback_table, messages_table

#: ids per DELETE statement (keeps each statement's parameter list small)
CHUNK = 500


async def prune_conversations(url: str, older_than_seconds: float, timeout: float = 10.0) -> int:
    """Delete conversations not updated for ``older_than_seconds`` (never one with a live turn)."""
    engine = create_engine(url, pool_size=1, timeout=timeout)
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    try:
        async with engine.begin() as db:
            old = select(conversations.c.id).where(
                conversations.c.updated_at < cutoff,
                or_(conversations.c.lease_until.is_(None), conversations.c.lease_until < now),
            )
            ids = list(await db.scalars(old))
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                in_chunk = select(messages_table.c.message_id).where(
                    messages_table.c.conversation_id.in_(chunk)
                )
                await db.execute(delete(feedback_table).where(feedback_table.c.message_id.in_(in_chunk)))
                await db.execute(delete(messages_table).where(messages_table.c.conversation_id.in_(chunk)))
                await db.execute(delete(conversations).where(conversations.c.id.in_(chunk)))
            return len(ids)
    finally:
        await engine.dispose()
