"""The chat history schema: conversations, their messages, and feedback on generated messages.

One set of SQLAlchemy models serves PostgreSQL (production) and the embedded SQLite file (the
zero-setup default); Alembic's migrations in ``migrations/`` create exactly these tables. Times are
stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: assistant message states; ``generating`` rows whose turn lease expired read as ``interrupted``
GENERATING, COMPLETE, INTERRUPTED, FAILED = "generating", "complete", "interrupted", "failed"

UTC = timezone.utc


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    """A chat owned by one principal (API key name or browser session).

    ``active_message_id``/``lease_until`` claim the conversation for one running turn: a second turn
    is refused (409) while the lease is fresh; the replica running the turn renews it, so a killed
    pod's claim simply expires.
    """

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    session_key: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    system_text: Mapped[str | None] = mapped_column(Text)
    generation_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active_message_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_conversations_owner_updated", "owner", "updated_at"),
        Index("ix_conversations_session", "owner", "session_key", "updated_at"),
        Index("ix_conversations_updated", "updated_at"),
    )


class Message(Base):
    """One message; assistant messages carry their status, usage and the parameters that made them."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=COMPLETE)
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    queue_wait_seconds: Mapped[float | None] = mapped_column(Float)
    time_to_first_token_seconds: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    generation_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    feedback: Mapped[Feedback | None] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("conversation_id", "ordinal", name="uq_messages_conversation_ordinal"),
        UniqueConstraint("message_id", name="uq_messages_message_id"),
    )


class Feedback(Base):
    """Like/dislike and free-form feedback on one generated message (the latest answer wins)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.message_id", ondelete="CASCADE"))
    is_like: Mapped[bool | None] = mapped_column(Boolean)
    form_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    message: Mapped[Message] = relationship(back_populates="feedback")

    __table_args__ = (UniqueConstraint("message_id", name="uq_feedback_message_id"),)
