"""Rows as the JSON the API answers with: conversation summaries and messages with their status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from ..models import GENERATING, INTERRUPTED
from ..prompting import ASSISTANT
from .tables import lease_is_live


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
