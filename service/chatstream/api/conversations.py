"""``/v1/conversations``: a caller's own stored conversations (list, create, read, rename, delete).

Only present when the request handler keeps history in a store. Every lookup is scoped to the
caller (API key principal or browser session): someone else's conversation answers 404, exactly as
one that does not exist.

The list pages by keyset: ``next_before`` is an opaque cursor naming the last row returned (its
``updated_at`` and ``id``), so the next page starts right after it and conversations updated at the
same instant are neither skipped nor repeated. ``before`` also still takes a plain ISO time.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, TypeAdapter, ValidationError

from ..errors import bad_request
from .http import validation_error

TITLE_MAX = 200
BAD_BEFORE = "before: an ISO 8601 time or the next_before cursor of a previous page"
_TIMES = TypeAdapter(datetime)


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str | None = Field(None, max_length=16_000, description="System text for this conversation.")


class RenameConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]


def encode_cursor(summary: dict[str, Any]) -> str:
    """The position right after ``summary`` in the listing (opaque to clients)."""
    raw = f"{summary['updated_at']}|{summary['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_before(value: str | None) -> tuple[datetime | None, str | None]:
    """``before`` as (time, id): a cursor gives both; a plain time (the older form) gives no id."""
    if value is None:
        return None, None
    try:
        return _TIMES.validate_python(value), None
    except ValidationError:
        pass
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        when, _, conversation_id = raw.partition("|")
        moment = datetime.fromisoformat(when)
    except ValueError:
        raise bad_request(BAD_BEFORE, param="before") from None
    if not conversation_id or len(conversation_id) > 64 or moment.tzinfo is None:
        raise bad_request(BAD_BEFORE, param="before")
    return moment, conversation_id


def conversations_router(handler: Any) -> APIRouter:
    router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

    @router.get("", summary="The caller's conversations, newest first, a page at a time")
    async def list_conversations(
        request: Request,
        limit: int = Query(50, ge=1, le=500),
        before: str | None = Query(
            None, description="The previous page's next_before, or an ISO time: only older conversations."
        ),
    ) -> JSONResponse:
        when, after_id = parse_before(before)
        rows = await handler.list_conversations(request, limit=limit + 1, before=when, before_id=after_id)
        data, has_more = rows[:limit], len(rows) > limit
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "has_more": has_more,
                "next_before": encode_cursor(data[-1]) if has_more else None,
            }
        )

    @router.post("", summary="Start an empty conversation (its id continues it from any client)")
    async def create_conversation(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = NewConversation.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise validation_error(exc) from None
        created = await handler.create_conversation(request, system=body.system)
        return JSONResponse(created, status_code=201)

    @router.get("/{conversation_id}", summary="One conversation with its messages and their status")
    async def get_conversation(request: Request, conversation_id: str) -> JSONResponse:
        _check_id(conversation_id)
        return JSONResponse(await handler.get_conversation(request, conversation_id))

    @router.patch("/{conversation_id}", summary="Rename a conversation (its place in the list stays)")
    async def rename_conversation(request: Request, conversation_id: str) -> JSONResponse:
        _check_id(conversation_id)
        try:
            body = RenameConversation.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            raise validation_error(exc) from None
        return JSONResponse(await handler.rename_conversation(request, conversation_id, body.title))

    @router.delete("/{conversation_id}", summary="Delete a conversation and everything in it")
    async def delete_conversation(request: Request, conversation_id: str) -> JSONResponse:
        _check_id(conversation_id)
        await handler.delete_conversation(request, conversation_id)
        return JSONResponse({"id": conversation_id, "deleted": True})

    return router


def _check_id(conversation_id: str) -> None:
    if len(conversation_id) > 64:
        raise bad_request("conversation id is too long", param="conversation_id")
