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

from sqlalchemy import Row, case, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
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

# The hot path (every turn) uses SQLAlchemy Core on a connection, not ORM sessions: two short
# transactions per turn whose cost is the database round trips, not Python object bookkeeping.
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
    lease = conversation.lease_until
    return conversation.active_message_id is not None and lease is not None and lease >= (now or utcnow())


def message_status(status: str, message_id: str, conversation: Row, now: datetime | None = None) -> str:
    """The status to report: a ``generating`` row whose turn no longer holds a live lease was cut off."""
    if status != GENERATING:
        return status
    live = conversation.active_message_id == message_id and lease_is_live(conversation, now)
    return GENERATING if live else INTERRUPTED


def conversation_summary(conversation: Row, message_count: int | None = None) -> dict[str, Any]:
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


def message_view(row: Row, conversation: Row, now: datetime) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.message_id,
        "role": row.role,
        "content": row.text,
        "created_at": row.created_at.isoformat(),
    }
    if row.role == ASSISTANT:
        view.update(
            status=message_status(row.status, row.message_id, conversation, now),
            finish_reason=row.finish_reason,
            usage={"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens},
            timings={
                "queue_wait_seconds": row.queue_wait_seconds,
                "time_to_first_token_seconds": row.time_to_first_token_seconds,
                "duration_seconds": row.duration_seconds,
            },
            generation_params=row.generation_params,
        )
        if row.feedback_id is not None:
            view["feedback"] = {"is_like": row.is_like, "form_data": row.form_data}
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
        self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.active: dict[str, SqlTurn] = {}
        self.expected_revision = head_revision()
        self.schema_ok = False
        self._schema_lock = asyncio.Lock()
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
        """Auto-migrate when enabled; otherwise check that the migration job has run.

        Only until it succeeds once, and one attempt at a time: while the database is down at start,
        concurrent requests wait for the attempt in progress instead of each starting a migration.
        """
        async with self._schema_lock:
            if not self.schema_ok:
                await self._check_schema()

    async def _check_schema(self) -> None:
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
    async def transaction(self, autocommit: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction (or autocommitting each statement: fewer round trips)."""
        if not self.schema_ok:
            await self._ensure_schema()
            if not self.schema_ok:
                raise unavailable(DATABASE_DOWN, code="database_unavailable")
        try:
            if autocommit:
                async with self.autocommit_engine.connect() as db:
                    yield db
            else:
                async with self.engine.begin() as db:
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

    async def _owned(self, db: AsyncConnection, conversation_id: str, owner: str) -> Row:
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

    async def _session_conversation(
        self, db: AsyncConnection, request: Request, who: _Identity, create: bool
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
            conversation = await self._create(db, who.owner, who.session_key, None)
        if conversation is not None and session is not None and remembered != conversation.id:
            session[SESSION_CONVERSATION] = conversation.id
            save_session(request)
        return conversation

    async def _create(self, db: AsyncConnection, owner: str, key: str | None, system: str | None) -> Row:
        now = utcnow()
        values = {
            "id": new_id(),
            "owner": owner,
            "session_key": key,
            "title": "",
            "prompt_class": getattr(self.chat_prompt_clazz, "__name__", ""),
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

    async def _resolve(
        self, db: AsyncConnection, request: Request, conversation_id: str | None, create: bool
    ) -> Row | None:
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
            claim = (
                update(conversations)
                .where(
                    conversations.c.id == conversation.id,
                    or_(conversations.c.active_message_id.is_(None), conversations.c.lease_until < now),
                )
                .values(active_message_id=message_id, lease_until=now + self.lease, updated_at=now)
            )
            if not conversation.title and turn.messages is None and not turn.regenerate:
                claim = claim.values(title=_title(turn.user_input or ""))
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
            rows = list(
                (
                    await db.execute(
                        select(messages_table.c.id, messages_table.c.role, messages_table.c.text)
                        .where(messages_table.c.conversation_id == conversation.id)
                        .order_by(messages_table.c.ordinal)
                    )
                ).all()
            )
            history = [(row.role, row.text) for row in rows]
            new: list[dict[str, Any]] = []
            system = conversation.system_text
            if turn.messages is not None:
                history, new, system = await self._sync_messages(db, conversation, history, turn.messages)
            elif turn.regenerate:
                if not rows:
                    raise bad_request("nothing to regenerate yet", param="regenerate")
                if rows[-1].role == ASSISTANT:
                    await db.execute(delete(messages_table).where(messages_table.c.id == rows[-1].id))
                    history.pop()
            else:
                new.append(self._message(conversation.id, len(history), USER, turn.user_input or "", now))
                history.append((USER, turn.user_input or ""))
            reply = self._message(conversation.id, len(history), ASSISTANT, "", now, message_id, GENERATING)
            new.append(reply)
            inserted = (
                await db.execute(
                    insert(messages_table).returning(messages_table.c.id, messages_table.c.message_id), new
                )
            ).all()
            ids = {row.message_id: row.id for row in inserted}
            prompt = self._prompt(system, history)
            prompt.add_responder_msg(None)
            sql_turn = SqlTurn(
                self,
                row_id=ids[message_id],
                created_row_ids=list(ids.values()),
                chat_prompt=prompt,
                message_id=message_id,
                conversation_id=conversation.id,
                generation_params=dict(conversation.generation_params or {}),
                response_headers={CONVERSATION_HEADER: conversation.id},
            )
        self.active[message_id] = sql_turn
        return sql_turn

    def _message(
        self,
        conversation_id: str,
        ordinal: int,
        role: str,
        body: str,
        now: datetime,
        message_id: str = "",
        status: str = COMPLETE,
    ) -> dict[str, Any]:
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

    def _prompt(self, system: str | None, history: list[tuple[str, str]]) -> AbstractChatPrompt:
        prompt = self.chat_prompt_clazz()
        if system is not None:
            prompt.set_system(system)
        for role, body in history:
            if role == USER:
                prompt.add_requester_msg(body)
            else:
                prompt.add_responder_msg(body)
        return prompt

    async def _sync_messages(
        self,
        db: AsyncConnection,
        conversation: Row,
        stored: list[tuple[str, str]],
        messages: list[dict[str, str]],
    ) -> tuple[list[tuple[str, str]], list[dict[str, Any]], str | None]:
        """OpenAI clients resend the whole history: store what is new, or replace a history they edited."""
        now = utcnow()
        system = "\n".join(m["content"] for m in messages if m["role"] in ("system", "developer")) or None
        wanted = [(m["role"], m["content"]) for m in messages if m["role"] in (USER, ASSISTANT)]
        changes: dict[str, Any] = {}
        if system != conversation.system_text:
            changes["system_text"] = system
        if not conversation.title:
            changes["title"] = _title(next((body for role, body in wanted if role == USER), ""))
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
            self._message(conversation.id, ordinal, role, body, now)
            for ordinal, (role, body) in enumerate(wanted)
            if ordinal >= len(stored)
        ]
        return wanted, new, system

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

    # --- the seed's other endpoints -------------------------------------------------------
    async def clear_context(self, request: Request, conversation_id: str | None = None) -> None:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return
            if lease_is_live(conversation):
                raise conflict(TURN_BUSY)
            await self._delete_messages(db, conversation.id)
            await db.execute(
                update(conversations)
                .where(conversations.c.id == conversation.id)
                .values(title="", updated_at=utcnow())
            )

    async def _delete_messages(self, db: AsyncConnection, conversation_id: str) -> None:
        # Explicit deletes (not only ON DELETE CASCADE): SQLite enforces foreign keys per connection.
        ids = select(messages_table.c.message_id).where(messages_table.c.conversation_id == conversation_id)
        await db.execute(delete(feedback_table).where(feedback_table.c.message_id.in_(ids)))
        await db.execute(delete(messages_table).where(messages_table.c.conversation_id == conversation_id))

    async def get_prompt(
        self, request: Request, conversation_id: str | None = None
    ) -> AbstractChatPrompt | None:
        async with self.transaction() as db:
            conversation = await self._resolve(db, request, conversation_id, create=False)
            if conversation is None:
                return None
            rows = (
                await db.execute(
                    select(messages_table.c.role, messages_table.c.text, messages_table.c.message_id)
                    .where(messages_table.c.conversation_id == conversation.id)
                    .order_by(messages_table.c.ordinal)
                )
            ).all()
            prompt = self._prompt(conversation.system_text, [(row.role, row.text) for row in rows])
            prompt.message_ids = [row.message_id for row in rows]  # type: ignore[attr-defined]
            return prompt

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

    # --- /v1/conversations -----------------------------------------------------------------
    async def create_conversation(self, request: Request, system: str | None = None) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self._create(db, who.owner, None, system)
        return conversation_summary(conversation, 0)

    async def list_conversations(
        self, request: Request, limit: int = 50, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        who = self.identity(request)
        async with self.transaction() as db:
            counts = (
                select(messages_table.c.conversation_id, func.count(messages_table.c.id).label("n"))
                .group_by(messages_table.c.conversation_id)
                .subquery()
            )
            query = (
                select(*CONVERSATION_COLUMNS, func.coalesce(counts.c.n, 0).label("message_count"))
                .select_from(conversations.outerjoin(counts, counts.c.conversation_id == conversations.c.id))
                .where(conversations.c.owner == who.owner)
                .order_by(conversations.c.updated_at.desc(), conversations.c.id)
                .limit(limit)
            )
            if before is not None:
                query = query.where(conversations.c.updated_at < before)
            rows = (await db.execute(query)).all()
            return [conversation_summary(row, row.message_count) for row in rows]

    async def get_conversation(self, request: Request, conversation_id: str) -> dict[str, Any]:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self._owned(db, conversation_id, who.owner)
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

    async def delete_conversation(self, request: Request, conversation_id: str) -> None:
        who = self.identity(request)
        async with self.transaction() as db:
            conversation = await self._owned(db, conversation_id, who.owner)
            if lease_is_live(conversation):
                raise conflict(TURN_BUSY)
            await self._delete_messages(db, conversation.id)
            await db.execute(delete(conversations).where(conversations.c.id == conversation.id))


#: the name the seed's docs promise, and a backend-neutral alias
SQLRequestHandler = PostgresRequestHandler


def _title(user_input: str) -> str:
    line = " ".join(user_input.split())
    return line if len(line) <= 80 else line[:79] + "…"


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
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                in_chunk = select(messages_table.c.message_id).where(
                    messages_table.c.conversation_id.in_(chunk)
                )
                await db.execute(delete(feedback_table).where(feedback_table.c.message_id.in_(in_chunk)))
                await db.execute(delete(messages_table).where(messages_table.c.conversation_id.in_(chunk)))
                await db.execute(delete(conversations).where(conversations.c.id.in_(chunk)))
            return len(ids)
    finally:
        await engine.dispose()
