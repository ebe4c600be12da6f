"""Chat history in a SQL database (PostgreSQL in production, an embedded SQLite file by default).

Every turn reads the conversation from the store and writes back to it, so any replica can serve
any turn and a dead pod loses at most the last second of a reply:

- ``begin_turn`` claims the conversation (a lease on the conversation row, taken with one
  conditional UPDATE, so two turns never interleave — the second gets 409 — even across replicas),
  restores the prompt from its rows and commits the user message and an empty ``generating`` reply
  in the same transaction. A refused or invalid request rolls back and writes nothing.
- While the reply streams, one background task per process renews the leases of its running turns
  and writes their partial text in one statement per interval (not one write per token).
- ``finish`` stores the full text, status (``complete``/``interrupted``/``failed``), usage and
  timings, and releases the claim. A pod killed mid-reply stops renewing: its lease expires, the row
  reads as ``interrupted`` and the next turn proceeds.

A database that cannot be reached turns into 503 ``database_unavailable``; the engine's pool
(``pool_pre_ping``) reconnects by itself when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from starlette.requests import Request

from ..errors import ChatStreamError, bad_request, conflict, not_found, unavailable
from ..prompts.base import AbstractChatPrompt
from ..settings import Settings
from .base import (
    CONVERSATION_HEADER,
    RequestHandler,
    Turn,
    TurnInput,
    get_principal,
    get_session_dict,
    save_session,
    session_key,
)
from .database import backend_name, create_engine, is_unavailable, redact, sqlite_url
from .migrate import head_revision, upgrade_to_head
from .models import (
    ASSISTANT,
    COMPLETE,
    FAILED,
    GENERATING,
    INTERRUPTED,
    USER,
    Conversation,
    Feedback,
    Message,
    utcnow,
)
from .session import messages_to_prompt

logger = logging.getLogger("chatstream.history")

DATABASE_DOWN = "the chat history database is unavailable; retry shortly"
TURN_BUSY = "a reply is already being generated in this conversation; wait for it to finish"
SESSION_CONVERSATION = "conversation_id"


def new_id() -> str:
    return uuid.uuid4().hex


def message_status(message: Message, conversation: Conversation, now: datetime | None = None) -> str:
    """The status to report: a ``generating`` row whose turn no longer holds a live lease was cut off."""
    if message.status != GENERATING:
        return message.status
    now = now or utcnow()
    live = (
        conversation.active_message_id == message.message_id
        and conversation.lease_until is not None
        and conversation.lease_until >= now
    )
    return GENERATING if live else INTERRUPTED


def conversation_summary(conversation: Conversation, message_count: int | None = None) -> dict[str, Any]:
    summary = {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "generation_params": conversation.generation_params or {},
    }
    if message_count is not None:
        summary["message_count"] = message_count
    return summary


def message_view(message: Message, conversation: Conversation, now: datetime) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": message.message_id,
        "role": message.role,
        "content": message.text,
        "created_at": message.created_at.isoformat(),
    }
    if message.role == ASSISTANT:
        view.update(
            status=message_status(message, conversation, now),
            finish_reason=message.finish_reason,
            usage={"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
            timings={
                "queue_wait_seconds": message.queue_wait_seconds,
                "time_to_first_token_seconds": message.time_to_first_token_seconds,
                "duration_seconds": message.duration_seconds,
            },
            generation_params=message.generation_params,
        )
        if message.feedback is not None:
            view["feedback"] = {"is_like": message.feedback.is_like, "form_data": message.feedback.form_data}
    return view


@dataclass
class _Identity:
    owner: str
    session_key: str | None


class SqlTurn(Turn):
    """A turn whose reply lives in a ``messages`` row; progress is written by the handler's ticker."""

    def __init__(
        self, handler: PostgresRequestHandler, row_id: int, created_row_ids: list[int], **kwargs: Any
    ) -> None:
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


class PostgresRequestHandler(RequestHandler):
    """Keeps every conversation in the database (``ChatStream(request_handler=...)``).

    ``database_url``: an SQLAlchemy URL (``postgresql+asyncpg://…``; ``postgresql://`` is accepted);
    without one, ``settings.database_url``, else the embedded SQLite file ``settings.sqlite_path``.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
        turn_lease_sec: float | None = None,
        write_interval_sec: float | None = None,
    ) -> None:
        settings = settings or Settings()
        self.url = database_url or settings.database_url or sqlite_url(settings.sqlite_path)
        self.backend = backend_name(self.url)
        self.auto_migrate = settings.auto_migrate if auto_migrate is None else auto_migrate
        self.lease = timedelta(seconds=turn_lease_sec or settings.turn_lease_sec)
        self.write_interval = write_interval_sec or settings.history_write_interval_sec
        self.timeout = settings.db_timeout_sec
        self.engine = create_engine(self.url, pool_size=settings.db_pool_size, timeout=self.timeout)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.active: dict[str, SqlTurn] = {}
        self.expected_revision = head_revision()
        self.schema_ok = False
        self._ticker: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        """Migrate (when allowed) and start the ticker. A database that is down does not stop the start:
        requests get 503 and readiness says why until it is back."""
        await self._ensure_schema()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever(), name="chatstream-history-ticker")

    async def shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self.engine.dispose()

    async def check_ready(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"ok": False, "database": self.backend}
        try:
            await asyncio.wait_for(self._ping(), self.timeout)
        except Exception as exc:
            facts["error"] = "database unreachable: " + type(exc).__name__
            return facts
        if not self.schema_ok:
            await self._ensure_schema()
        if not self.schema_ok:
            facts["error"] = "database schema is not at the expected revision: run `chatstream migrate`"
            return facts
        facts["ok"] = True
        return facts

    async def _ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def _ensure_schema(self) -> None:
        """Auto-migrate when enabled; otherwise check that the migration job has run."""
        try:
            if self.auto_migrate:
                await asyncio.to_thread(upgrade_to_head, self.url, self.timeout)
                self.schema_ok = True
            else:
                self.schema_ok = await self._revision() == self.expected_revision
        except Exception as exc:
            logger.warning("chat history database %s not ready: %s", redact(self.url), exc)
            self.schema_ok = False

    async def _revision(self) -> str | None:
        if self.expected_revision is None:
            return None  # no migrations shipped with this install: nothing to compare against
        async with self.engine.connect() as connection:
            try:
                return await connection.scalar(text("SELECT version_num FROM alembic_version"))
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                return None

    # --- one place that turns database outages into 503 -------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if not self.schema_ok:
            await self._ensure_schema()
            if not self.schema_ok:
                raise unavailable(DATABASE_DOWN, code="database_unavailable")
        try:
            async with self.sessions() as db, db.begin():
                yield db
        except ChatStreamError:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                logger.warning("chat history database unavailable: %s", type(exc).__name__)
                raise unavailable(DATABASE_DOWN, code="database_unavailable") from exc
            raise

    # --- identity ---------------------------------------------------------------------------
    def identity(self, request: Request) -> _Identity:
        owner = get_principal(request)
        session = get_session_dict(request)
        if session is not None and owner.startswith("s-") and not session.get("history_owner"):
            # The owner is the cookie's session: make sure the response carries that cookie.
            session["history_owner"] = True
            save_session(request)
        return _Identity(owner=owner, session_key=session_key(request))

    async def _owned(self, db: AsyncSession, conversation_id: str, owner: str) -> Conversation:
        """The caller's conversation, or 404 — the same answer whether it is someone else's or absent."""
        conversation = await db.get(Conversation, conversation_id)
        if conversation is None or conversation.owner != owner:
            raise not_found()
        return conversation

    async def _session_conversation(
        self, db: AsyncSession, request: Request, who: _Identity, create: bool
    ) -> Conversation | None:
        """A browser's current conversation: named in its session, else its newest one, else a new one."""
        session = get_session_dict(request)
        remembered = session.get(SESSION_CONVERSATION) if session is not None else None
        conversation = await db.get(Conversation, remembered) if remembered else None
        if conversation is not None and conversation.owner != who.owner:
            conversation = None
        if conversation is None and who.session_key is not None:
            conversation = await db.scalar(
                select(Conversation)
                .where(Conversation.owner == who.owner, Conversation.session_key == who.session_key)
                .order_by(Conversation.updated_at.desc())
                .limit(1)
            )
        if conversation is None and create:
            conversation = self._new_conversation(who)
            db.add(conversation)
            await db.flush()
        if conversation is not None and session is not None and remembered != conversation.id:
            session[SESSION_CONVERSATION] = conversation.id
            save_session(request)
        return conversation

    def _new_conversation(self, who: _Identity) -> Conversation:
        now = utcnow()
        return Conversation(
            id=new_id(),
            owner=who.owner,
            session_key=who.session_key,
            title="",
            prompt_class=getattr(self.chat_prompt_clazz, "__name__", ""),
            generation_params={},
            created_at=now,
            updated_at=now,
        )

    async def _resolve(
        self, db: AsyncSession, request: Request, conversation_id: str | None, create: bool
    ) -> Conversation | None:
        who = self.identity(request)
        if conversation_id:
            return await self._owned(db, conversation_id, who.owner)
        return await self._session_conversation(db, request, who, create)

    # --- turns --------------------------------------------------------------------------------
    async def begin_turn(self, request: Request, turn: TurnInput) -> Turn:
        if turn.messages is not None and not turn.persist:
            # An OpenAI request without a conversation id: the client holds the history; store nothing.
            prompt = messages_to_prompt(self.chat_prompt_clazz, turn.messages)
            return Turn(chat_prompt=prompt, message_id=new_id())
        message_id = new_id()
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, turn.conversation_id, create=True)
            assert conversation is not None
            now = utcnow()
            claimed = await db.execute(
                update(Conversation)
                .where(
                    Conversation.id == conversation.id,
                    or_(Conversation.active_message_id.is_(None), Conversation.lease_until < now),
                )
                .values(active_message_id=message_id, lease_until=now + self.lease, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                raise conflict(TURN_BUSY)
            # Whatever an expired claim left 'generating' was cut off (a killed pod): say so.
            await db.execute(
                update(Message)
                .where(Message.conversation_id == conversation.id, Message.status == GENERATING)
                .values(status=INTERRUPTED, finish_reason="cancelled", updated_at=now)
                .execution_options(synchronize_session=False)
            )
            rows = list(
                await db.scalars(
                    select(Message)
                    .where(Message.conversation_id == conversation.id)
                    .order_by(Message.ordinal)
                )
            )
            created: list[Message] = []
            if turn.messages is not None:
                rows, created = await self._sync_messages(db, conversation, rows, turn.messages, now)
            elif turn.regenerate:
                if not rows:
                    raise bad_request("nothing to regenerate yet", param="regenerate")
                if rows[-1].role == ASSISTANT:
                    await db.execute(delete(Message).where(Message.id == rows[-1].id))
                    rows.pop()
            else:
                user = self._message(conversation.id, len(rows), USER, turn.user_input or "", now)
                rows.append(user)
                created.append(user)
                if not conversation.title:
                    await db.execute(
                        update(Conversation)
                        .where(Conversation.id == conversation.id)
                        .values(title=_title(turn.user_input or ""))
                        .execution_options(synchronize_session=False)
                    )
            reply = self._message(conversation.id, len(rows), ASSISTANT, "", now, message_id=message_id)
            reply.status = GENERATING
            created.append(reply)
            db.add_all(created)
            await db.flush()
            prompt = self._prompt(conversation, rows)
            prompt.add_responder_msg(None)
            sql_turn = SqlTurn(
                self,
                row_id=reply.id,
                created_row_ids=[row.id for row in created],
                chat_prompt=prompt,
                message_id=message_id,
                conversation_id=conversation.id,
                generation_params=dict(conversation.generation_params or {}),
                response_headers={CONVERSATION_HEADER: conversation.id},
            )
        self.active[message_id] = sql_turn
        return sql_turn

    def _message(
        self, conversation_id: str, ordinal: int, role: str, body: str, now: datetime, message_id: str = ""
    ) -> Message:
        return Message(
            conversation_id=conversation_id,
            ordinal=ordinal,
            role=role,
            text=body,
            message_id=message_id or new_id(),
            status=COMPLETE,
            created_at=now,
            updated_at=now,
        )

    def _prompt(self, conversation: Conversation, rows: list[Message]) -> AbstractChatPrompt:
        prompt = self.chat_prompt_clazz()
        if conversation.system_text is not None:
            prompt.set_system(conversation.system_text)
        for row in rows:
            if row.role == USER:
                prompt.add_requester_msg(row.text)
            else:
                prompt.add_responder_msg(row.text)
        return prompt

    async def _sync_messages(
        self,
        db: AsyncSession,
        conversation: Conversation,
        rows: list[Message],
        messages: list[dict[str, str]],
        now: datetime,
    ) -> tuple[list[Message], list[Message]]:
        """OpenAI clients resend the whole history: store what is new, or replace a history they edited."""
        system = "\n".join(m["content"] for m in messages if m["role"] in ("system", "developer")) or None
        if system != conversation.system_text:
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(system_text=system)
                .execution_options(synchronize_session=False)
            )
            conversation.system_text = system
        wanted = [(m["role"], m["content"]) for m in messages if m["role"] in (USER, ASSISTANT)]
        stored = [(row.role, row.text) for row in rows]
        if wanted[: len(stored)] != stored:
            await db.execute(delete(Message).where(Message.conversation_id == conversation.id))
            rows = []
        created = [
            self._message(conversation.id, ordinal, role, body, now)
            for ordinal, (role, body) in enumerate(wanted)
            if ordinal >= len(rows)
        ]
        if not conversation.title and wanted:
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(title=_title(next((b for r, b in wanted if r == USER), "")))
                .execution_options(synchronize_session=False)
            )
        return rows + created, created

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
                    async with self.transaction() as db:
                        now = utcnow()
                        await db.execute(
                            update(Message)
                            .where(Message.id == turn.row_id)
                            .values(**values, updated_at=now)
                            .execution_options(synchronize_session=False)
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
                await db.execute(delete(Message).where(Message.id.in_(turn.created_row_ids)))
                await self._release(db, turn, utcnow())
        finally:
            self.active.pop(turn.message_id, None)

    async def _release(self, db: AsyncSession, turn: SqlTurn, now: datetime) -> None:
        await db.execute(
            update(Conversation)
            .where(Conversation.id == turn.conversation_id, Conversation.active_message_id == turn.message_id)
            .values(active_message_id=None, lease_until=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.write_interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: the next tick retries
                logger.debug("history ticker: %s", exc)

    async def tick(self) -> None:
        """Renew the leases of this process's running turns and write their new partial text."""
        if not self.active:
            return
        turns = list(self.active.values())
        async with self.transaction() as db:
            now = utcnow()
            await db.execute(
                update(Conversation)
                .where(Conversation.active_message_id.in_([t.message_id for t in turns]))
                .values(lease_until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            changed = [t for t in turns if t.text != t.written_text]
            if changed:
                await db.execute(
                    update(Message),
                    [{"id": t.row_id, "text": t.text, "updated_at": now} for t in changed],
                )
        for t in changed:
            t.written_text = t.text

    # --- the seed's other endpoints -------------------------------------------------------
    async def clear_context(self, request: Request, conversation_id: str | None = None) -> None:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return
            if self._busy(conversation):
                raise conflict(TURN_BUSY)
            await db.execute(delete(Message).where(Message.conversation_id == conversation.id))
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(title="", updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def _busy(self, conversation: Conversation) -> bool:
        lease = conversation.lease_until
        return conversation.active_message_id is not None and lease is not None and lease >= utcnow()

    async def get_prompt(
        self, request: Request, conversation_id: str | None = None
    ) -> AbstractChatPrompt | None:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return None
            rows = list(
                await db.scalars(
                    select(Message)
                    .where(Message.conversation_id == conversation.id)
                    .order_by(Message.ordinal)
                )
            )
            return self._prompt(conversation, rows)

    async def get_generation_params(
        self, request: Request, conversation_id: str | None = None
    ) -> dict[str, Any]:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=False)
            return dict(conversation.generation_params or {}) if conversation is not None else {}

    async def set_generation_params(
        self, request: Request, params: dict[str, Any], conversation_id: str | None = None
    ) -> dict[str, Any]:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=True)
            assert conversation is not None
            current = {**(conversation.generation_params or {}), **params}
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(generation_params=current, updated_at=utcnow())
                .execution_options(synchronize_session=False)
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
            message = await db.scalar(
                select(Message)
                .join(Conversation, Message.conversation_id == Conversation.id)
                .where(
                    Message.message_id == message_id,
                    Message.role == ASSISTANT,
                    Conversation.owner == who.owner,
                )
            )
            if message is None:
                raise not_found("no such message in your conversations")
            now = utcnow()
            existing = await db.scalar(select(Feedback).where(Feedback.message_id == message_id))
            if existing is None:
                db.add(
                    Feedback(
                        message_id=message_id,
                        is_like=is_like,
                        form_data=form_data,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                existing.is_like = is_like
                existing.form_data = form_data
                existing.updated_at = now

    # --- /v1/conversations -----------------------------------------------------------------
    async def create_conversation(self, request: Request, system: str | None = None) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = self._new_conversation(_Identity(who.owner, None))
            conversation.system_text = system
            db.add(conversation)
        return conversation_summary(conversation, 0)

    async def list_conversations(
        self, request: Request, limit: int = 50, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        who = self.identity(request)
        async with self.transaction() as db:
            counts = (
                select(Message.conversation_id, func.count(Message.id).label("n"))
                .group_by(Message.conversation_id)
                .subquery()
            )
            query = (
                select(Conversation, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.conversation_id == Conversation.id)
                .where(Conversation.owner == who.owner)
                .order_by(Conversation.updated_at.desc(), Conversation.id)
                .limit(limit)
            )
            if before is not None:
                query = query.where(Conversation.updated_at < before)
            result = await db.execute(query)
            return [conversation_summary(conversation, count) for conversation, count in result.all()]

    async def get_conversation(self, request: Request, conversation_id: str) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self._owned(db, conversation_id, who.owner)
            rows = list(
                await db.scalars(
                    select(Message)
                    .where(Message.conversation_id == conversation.id)
                    .order_by(Message.ordinal)
                    .options(selectinload(Message.feedback))
                )
            )
            now = utcnow()
            return {
                **conversation_summary(conversation, len(rows)),
                "system": conversation.system_text,
                "messages": [message_view(row, conversation, now) for row in rows],
            }

    async def delete_conversation(self, request: Request, conversation_id: str) -> None:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self._owned(db, conversation_id, who.owner)
            if self._busy(conversation):
                raise conflict(TURN_BUSY)
            # Explicit deletes (not only ON DELETE CASCADE): SQLite enforces foreign keys per connection.
            ids = select(Message.message_id).where(Message.conversation_id == conversation.id)
            await db.execute(delete(Feedback).where(Feedback.message_id.in_(ids)))
            await db.execute(delete(Message).where(Message.conversation_id == conversation.id))
            await db.execute(delete(Conversation).where(Conversation.id == conversation.id))


#: the name the seed's docs promise, and a backend-neutral alias
SQLRequestHandler = PostgresRequestHandler


def _title(user_input: str) -> str:
    line = " ".join(user_input.split())
    return line if len(line) <= 80 else line[:79] + "…"


async def prune_conversations(url: str, older_than_seconds: float, timeout: float = 10.0) -> int:
    """Delete conversations not updated for ``older_than_seconds``; returns how many went."""
    engine = create_engine(url, pool_size=1, timeout=timeout)
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    try:
        async with async_sessionmaker(engine)() as db, db.begin():
            old = select(Conversation.id).where(
                Conversation.updated_at < cutoff,
                or_(Conversation.lease_until.is_(None), Conversation.lease_until < utcnow()),
            )
            ids = list(await db.scalars(old))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                messages = select(Message.message_id).where(Message.conversation_id.in_(chunk))
                await db.execute(delete(Feedback).where(Feedback.message_id.in_(messages)))
                await db.execute(delete(Message).where(Message.conversation_id.in_(chunk)))
                await db.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
            return len(ids)
    finally:
        await engine.dispose()
