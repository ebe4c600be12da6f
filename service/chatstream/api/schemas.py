"""Wire formats of the seed's endpoints (pydantic models), kept apart from serving logic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from ..core.service import Load


class ChatStreamBody(BaseModel):
    """``POST /chat_stream``: ``user_input`` is required unless ``regenerate`` is true."""

    model_config = ConfigDict(extra="ignore")

    user_input: StrictStr | None = None
    regenerate: StrictBool = False
    conversation_id: StrictStr | None = Field(None, max_length=64)


class GenerationParams(BaseModel):
    """Per-conversation sampling overrides (``POST /set_generation_params``)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, le=500)
    top_p: float | None = Field(None, ge=0.0, le=1.0)


class FeedbackBody(BaseModel):
    """``POST /set_feedback``: like/dislike and free-form data for a generated message."""

    model_config = ConfigDict(extra="ignore")

    message_id: StrictStr = Field(..., min_length=1, max_length=64)
    is_like: StrictBool | None = None
    form_data: dict[str, Any] | None = None
    conversation_id: StrictStr | None = Field(None, max_length=64)


def load_body(load: Load) -> dict[str, Any]:
    """``GET /get_load``: the seed's fields, also per worker under ``chatstream_workers``."""
    fields = {
        "processing": load.running,
        "waiting": load.waiting,
        "max_processing": load.max_running,
        "max_waiting": load.max_waiting,
    }
    return {"chatstream_workers": [{"name": "default", **fields}], **fields}
