"""``/v1/conversations``: a caller's own stored conversations (list, create, read, delete).

Only present when the request handler keeps history in a store. Every lookup is scoped to the
caller (API key principal or browser session): someone else's conversation answers 404, exactly as
one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import bad_request
from .http import validation_error


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str | None = Field(None, max_length=16_000, description="System text for this conversation.")


def conversations_router(handler: Any) -> APIRouter:
    router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

    @router.get("", summary="The caller's conversations, newest first")
    async def list_conversations(
        request: Request,
        limit: int = Query(50, ge=1, le=500),
        before: datetime | None = Query(None, description="Only conversations updated before this time."),
    ) -> JSONResponse:
        data = await handler.list_conversations(request, limit=limit, before=before)
        return JSONResponse({"object": "list", "data": data})

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

    @router.delete("/{conversation_id}", summary="Delete a conversation and everything in it")
    async def delete_conversation(request: Request, conversation_id: str) -> JSONResponse:
        _check_id(conversation_id)
        await handler.delete_conversation(request, conversation_id)
        return JSONResponse({"id": conversation_id, "deleted": True})

    return router


def _check_id(conversation_id: str) -> None:
    if len(conversation_id) > 64:
        raise bad_request("conversation id is too long", param="conversation_id")
