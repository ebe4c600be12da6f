"""Turns in the SQL store: claim, restore and write a turn in one transaction; stream; finish.

- ``begin_turn`` claims the conversation (a lease on the conversation row, taken with one
  conditional UPDATE, so two turns never interleave — the second gets 409 — even across replicas),
  restores the prompt from its rows and commits the user message and an empty ``generating`` reply
  in the same transaction. A refused or invalid request rolls back and writes nothing.
- While the reply streams, :meth:`SqlTurns.tick` renews the leases of this process's running turns
  and writes their partial text in one statement per interval (not one write per token).
- ``finish`` stores the full text, status, usage and timings, and releases the claim. A pod killed
  mid-reply stops renewing: its lease expires, the row reads as ``interrupted`` and the next turn
  proceeds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ...errors import ChatStreamError, bad_request, conflict
from ..base import CONVERSATION_HEADER, Turn, TurnInput
from ..models import COMPLETE, FAILED, GENERATING, INTERRUPTED, utcnow
from ..prompting import ASSISTANT, USER, build_prompt, messages_to_prompt, split_messages
from .lookup import SqlLookups
from .tables import TURN_BUSY, conversations, message_values, messages_table, new_id, title_if_empty

History = list[tuple[str, str]]


class SqlTurn(Turn):
    """A turn whose reply lives in a ``messages`` row; progress is written by the handler's ticker."""

    def __init__(self, handler: SqlTurns, row_id: int, created_row_ids: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handler = handler
        self.row_id = row_id
        self.created_row_ids = created_row_ids
        self.text = ""
        self.written_text = ""

    async def progress(self, text: str) -> None:
        await super().progress(text)
        self.text = text

    async def finish(self, status: str, text: str, usage: dict[str, Any]) -> None:
        await super().finish(status, text, usage)
        self.text = text
        await self._handler.finish_turn(self, status, text, usage)

    async def discard(self) -> None:
        await self._handler.discard_turn(self)


class SqlTurns(SqlLookups):
    """Beginning, streaming and finishing turns against the store."""

    async def begin_turn(self, request: Request, turn: TurnInput) -> Turn:
        if turn.messages is not None and not turn.persist:
            # An OpenAI request without a conversation id: the client holds the history; store nothing.
            prompt = messages_to_prompt(self.chat_prompt_clazz, turn.messages)
            return Turn(chat_prompt=prompt, message_id=new_id())
        message_id = new_id()
        async with self.transaction() as db:
            conversation = await self.resolve(db, request, turn.conversation_id, create=True)
            assert conversation is not None
            now = utcnow()
            await self._claim(db, conversation, turn, message_id, now)
            system, history, new = await self._next_messages(db, conversation, turn, now)
            new.append(
                message_values(conversation.id, len(history), ASSISTANT, "", now, message_id, GENERATING)
            )
            inserted = (
                await db.execute(
                    insert(messages_table).returning(messages_table.c.id, messages_table.c.message_id), new
                )
            ).all()
            ids = {row.message_id: row.id for row in inserted}
            sql_turn = SqlTurn(
                self,
                row_id=ids[message_id],
                created_row_ids=list(ids.values()),
                chat_prompt=build_prompt(self.chat_prompt_clazz, system, history, open_reply=True),
                message_id=message_id,
                conversation_id=conversation.id,
                generation_params=dict(conversation.generation_params or {}),
                response_headers={CONVERSATION_HEADER: conversation.id},
            )
        self.active[message_id] = sql_turn
        return sql_turn

    async def _claim(
        self, db: AsyncConnection, conversation: Row, turn: TurnInput, message_id: str, now: datetime
    ) -> None:
        """Take the conversation for this turn (409 while another turn holds a live lease)."""
        claim = (
            update(conversations)
            .where(
                conversations.c.id == conversation.id,
                or_(conversations.c.active_message_id.is_(None), conversations.c.lease_until < now),
            )
            .values(active_message_id=message_id, lease_until=now + self.lease, updated_at=now)
        )
        if not conversation.title and turn.messages is None and not turn.regenerate:
            claim = claim.values(title=title_if_empty(turn.user_input or ""))
        if (await db.execute(claim)).rowcount != 1:
            raise conflict(TURN_BUSY)
        if conversation.active_message_id is not None:
            # The claim we just took over had expired (a killed pod): its reply was cut off.
            await db.execute(
                update(messages_table)
                .where(
                    messages_table.c.conversation_id == conversation.id,
                    messages_table.c.status == GENERATING,
                )
                .values(status=INTERRUPTED, finish_reason="cancelled", updated_at=now)
            )

    async def _next_messages(
        self, db: AsyncConnection, conversation: Row, turn: TurnInput, now: datetime
    ) -> tuple[str | None, History, list[dict[str, Any]]]:
        """The system text and history the reply continues, and the rows this turn adds before it."""
        rows = (
            await db.execute(
                select(messages_table.c.id, messages_table.c.role, messages_table.c.text)
                .where(messages_table.c.conversation_id == conversation.id)
                .order_by(messages_table.c.ordinal)
            )
        ).all()
        history: History = [(row.role, row.text) for row in rows]
        if turn.messages is not None:
            return await self.sync_messages(db, conversation, history, turn.messages, now)
        new: list[dict[str, Any]] = []
        if turn.regenerate:
            if not rows:
                raise bad_request("nothing to regenerate yet", param="regenerate")
            if rows[-1].role == ASSISTANT:
                await db.execute(delete(messages_table).where(messages_table.c.id == rows[-1].id))
                history.pop()
        else:
            new.append(message_values(conversation.id, len(history), USER, turn.user_input or "", now))
            history.append((USER, turn.user_input or ""))
        return conversation.system_text, history, new

    async def sync_messages(
        self,
        db: AsyncConnection,
        conversation: Row,
        stored: History,
        messages: list[dict[str, str]],
        now: datetime,
    ) -> tuple[str | None, History, list[dict[str, Any]]]:
        """OpenAI clients resend the whole history: store what is new, or replace a history they edited."""
        system, wanted = split_messages(messages)
        changes: dict[str, Any] = {}
        if system != conversation.system_text:
            changes["system_text"] = system
        if not conversation.title:
            changes["title"] = title_if_empty(next((body for role, body in wanted if role == USER), ""))
        if changes:
            await db.execute(
                update(conversations).where(conversations.c.id == conversation.id).values(**changes)
            )
        if wanted[: len(stored)] != stored:
            await db.execute(
                delete(messages_table).where(messages_table.c.conversation_id == conversation.id)
            )
            stored = []
        new = [
            message_values(conversation.id, ordinal, role, body, now)
            for ordinal, (role, body) in enumerate(wanted)
            if ordinal >= len(stored)
        ]
        return system, wanted, new

    async def finish_turn(self, turn: SqlTurn, status: str, body: str, usage: dict[str, Any]) -> None:
        """Store the outcome and release the claim; retried briefly so a database blip loses nothing."""
        values = {
            "text": body,
            "status": status if status in (COMPLETE, INTERRUPTED, FAILED) else FAILED,
            "finish_reason": usage.get("finish_reason"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "queue_wait_seconds": usage.get("queue_wait_seconds"),
            "time_to_first_token_seconds": usage.get("time_to_first_token_seconds"),
            "duration_seconds": usage.get("duration_seconds"),
            "generation_params": turn.used_params,
        }
        try:
            for attempt in range(4):
                try:
                    # Two autocommitted statements, message first: if the process dies in between, the
                    # stale claim simply expires and the finished message is left as it is.
                    async with self.transaction(autocommit=True) as db:
                        now = utcnow()
                        await db.execute(
                            update(messages_table)
                            .where(messages_table.c.id == turn.row_id)
                            .values(**values, updated_at=now)
                        )
                        await self._release(db, turn, now)
                    turn.written_text = body
                    return
                except ChatStreamError:
                    if attempt == 3:
                        raise
                    await asyncio.sleep(0.25 * 2**attempt)
        finally:
            self.active.pop(turn.message_id, None)

    async def discard_turn(self, turn: SqlTurn) -> None:
        try:
            async with self.transaction() as db:
                await db.execute(delete(messages_table).where(messages_table.c.id.in_(turn.created_row_ids)))
                await self._release(db, turn, utcnow())
        finally:
            self.active.pop(turn.message_id, None)

    async def _release(self, db: AsyncConnection, turn: SqlTurn, now: datetime) -> None:
        await db.execute(
            update(conversations)
            .where(
                conversations.c.id == turn.conversation_id,
                conversations.c.active_message_id == turn.message_id,
            )
            .values(active_message_id=None, lease_until=None, updated_at=now)
        )

    async def tick(self) -> None:
        """Write the new partial text of this process's running turns, then renew their leases.

        Two single-statement transactions, never one holding both: a finishing turn locks its message
        and then its conversation, and a tick holding conversation locks while it waited for message
        locks would deadlock with it.
        """
        if not self.active:
            return
        turns = list(self.active.values())
        changed = [t for t in turns if t.text != t.written_text]
        if changed:
            async with self.transaction(autocommit=True) as db:
                # One statement for all partial replies: the text is chosen per row with CASE on its id.
                await db.execute(
                    update(messages_table)
                    .where(
                        messages_table.c.id.in_([t.row_id for t in changed]),
                        messages_table.c.status == GENERATING,
                    )
                    .values(
                        text=case({t.row_id: t.text for t in changed}, value=messages_table.c.id),
                        updated_at=utcnow(),
                    )
                )
            for t in changed:
                t.written_text = t.text
        async with self.transaction(autocommit=True) as db:
            await db.execute(
                update(conversations)
                .where(conversations.c.active_message_id.in_([t.message_id for t in turns]))
                .values(lease_until=utcnow() + self.lease)
            )
