"""What a request handler is: where a conversation comes from and where its turns are written.

The facade (``ChatStream``) calls :meth:`RequestHandler.begin_turn` after admission has reserved a
place and before generation starts; the returned :class:`Turn` is told about progress and the final
outcome. Handlers raise :class:`~chatstream.errors.ChatStreamError` for 4xx/503 answers (unknown
conversation 404, concurrent turn 409, store down 503) and must then have written nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request

from ..prompts.base import AbstractChatPrompt

TurnStatus = Literal["complete", "interrupted", "failed"]

#: header an API client sends (and gets back) to name its conversation
CONVERSATION_HEADER = "X-ChatStream-Conversation-Id"
#: header naming the assistant message the response generates (the seed's name)
MESSAGE_ID_HEADER = "X-ChatStream-Last-Generated-Message-Id"


@dataclass
class TurnInput:
    """A validated chat request, independent of the wire format it came in."""

    user_input: str | None
    regenerate: bool = False
    conversation_id: str | None = None
    #: OpenAI-style full message list: replaces the stored history for this turn when given
    messages: list[dict[str, str]] | None = None
    persist: bool = True


@dataclass
class Turn:
    """One admitted turn. Subclasses persist progress; this base keeps it in the prompt object."""

    chat_prompt: AbstractChatPrompt
    message_id: str
    conversation_id: str | None = None
    generation_params: dict[str, Any] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    #: the sampling parameters in force for this reply (set by the facade; stored with the message)
    used_params: dict[str, Any] | None = None

    async def discard(self) -> None:
        """The turn was refused after it began (e.g. its prompt could not be built): undo its writes."""

    async def progress(self, text: str) -> None:
        """The reply so far (called on every delta; implementations throttle their writes)."""
        self.chat_prompt.set_responder_last_msg(text)

    async def finish(self, status: TurnStatus, text: str, usage: dict[str, Any]) -> None:
        """The turn ended: ``complete``, ``interrupted`` (client left) or ``failed`` (engine error)."""
        self.chat_prompt.set_responder_last_msg(text)


def get_principal(request: Request) -> str:
    """Who is asking: an authenticated API principal, else the browser session, else anonymous.

    A session is named by a hash of its signed cookie id (never the id itself, which is a bearer
    secret), so it stays the same owner after a restart or on another replica.
    """
    principal = getattr(request.state, "principal", None)
    if principal:
        return str(principal)
    key = session_key(request)
    return "s-" + key if key else "anonymous"


def session_key(request: Request) -> str | None:
    """A stable, non-secret name for the caller's browser session (None without a session)."""
    manager = getattr(request.state, "session", None)
    if manager is None:
        return None
    if hasattr(manager, "get_session_id"):
        return hashlib.sha256(str(manager.get_session_id()).encode()).hexdigest()[:32]
    session = manager.get_session()
    if not session.get("owner_id"):
        session["owner_id"] = uuid.uuid4().hex
    return str(session["owner_id"])


def get_session_dict(request: Request) -> dict[str, Any] | None:
    """The session dict from our middleware or from fastsession (``request.state.session``)."""
    manager = getattr(request.state, "session", None)
    if manager is None:
        return None
    return manager.get_session()


def save_session(request: Request) -> None:
    manager = getattr(request.state, "session", None)
    if manager is not None and hasattr(manager, "save_session"):
        manager.save_session()


class RequestHandler(ABC):
    """Keeps conversations. ``ChatStream`` sets ``chat_prompt_clazz`` and ``logger`` on it."""

    chat_prompt_clazz: type[AbstractChatPrompt]
    logger: logging.Logger = logging.getLogger("chatstream")

    async def startup(self) -> None:
        """Open connections (called from the app's lifespan / ``start_queue_worker``)."""

    async def shutdown(self) -> None:
        """Close connections."""

    async def check_ready(self) -> dict[str, Any]:
        """Readiness facts for ``/readyz``; raise or return ``{"ok": False}`` when not ready."""
        return {"ok": True}

    @abstractmethod
    async def begin_turn(self, request: Request, turn: TurnInput) -> Turn:
        """Restore the conversation, add the user message and an empty reply; return the turn."""

    @abstractmethod
    async def clear_context(self, request: Request, conversation_id: str | None = None) -> None:
        """Forget the conversation's messages."""

    @abstractmethod
    async def get_prompt(
        self, request: Request, conversation_id: str | None = None
    ) -> AbstractChatPrompt | None:
        """The conversation as a prompt object (None when there is none yet)."""

    @abstractmethod
    async def get_generation_params(
        self, request: Request, conversation_id: str | None = None
    ) -> dict[str, Any]:
        """Per-conversation overrides of temperature/top_k/top_p (empty: the server defaults)."""

    @abstractmethod
    async def set_generation_params(
        self, request: Request, params: dict[str, Any], conversation_id: str | None = None
    ) -> dict[str, Any]:
        """Store overrides (already validated) and return the ones now in force."""

    @abstractmethod
    async def set_feedback(
        self,
        request: Request,
        message_id: str,
        is_like: bool | None,
        form_data: dict[str, Any] | None,
        conversation_id: str | None = None,
    ) -> None:
        """Record like/dislike for a generated message; 404 when the caller has no such message."""
