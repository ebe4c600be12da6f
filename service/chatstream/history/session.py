"""The seed's default request handler: one conversation per HTTP session, kept in memory."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from ..errors import bad_request, not_found
from ..prompts.base import AbstractChatPrompt
from .base import RequestHandler, Turn, TurnInput, get_session_dict, save_session
from .prompting import messages_to_prompt

SESSION_REQUIRED = (
    "No session middleware: every request is a new single-turn chat. Add chatstream's "
    "SessionMiddleware (or fastsession's FastSessionMiddleware) to keep multi-turn conversations."
)


class _SessionTurn(Turn):
    """Writes the reply into the session's prompt object and saves the session when it ends."""

    def __init__(self, request: Request, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._request = request

    async def finish(self, status: str, text: str, usage: dict[str, Any]) -> None:
        await super().finish(status, text, usage)
        session = get_session_dict(self._request)
        if session is not None:
            messages = session.setdefault("message_ids", [])
            messages.append(self.message_id)
            del messages[:-100]
            save_session(self._request)


class SimpleSessionRequestHandler(RequestHandler):
    """Keeps ``chat_prompt`` (and generation params) in ``request.state.session``.

    Nothing survives a restart and a second replica cannot see it: use ``PostgresRequestHandler``
    for that. ``session_attr_name`` is the seed's option naming the ``request.state`` attribute.
    """

    def __init__(self, session_attr_name: str = "session") -> None:
        self.session_attr = session_attr_name
        self._warned = False

    def _session(self, request: Request, required: bool = True) -> dict[str, Any] | None:
        """The session dict; without a session middleware, a throwaway dict (single-turn chat)."""
        manager = getattr(request.state, self.session_attr, None)
        if manager is None:
            if not self._warned:
                self._warned = True
                self.logger.warning(SESSION_REQUIRED)
            return {} if required else None
        return manager.get_session()

    def _prompt(self, session: dict[str, Any], create: bool) -> AbstractChatPrompt | None:
        prompt = session.get("chat_prompt")
        if prompt is None and create:
            prompt = self.chat_prompt_clazz()
            prompt.build_initial_prompt(prompt)  # the class's initial context (0.3.0 does the same)
            session["chat_prompt"] = prompt
        return prompt

    async def begin_turn(self, request: Request, turn: TurnInput) -> Turn:
        session = self._session(request)
        prompt = self._prompt(session, create=True)
        if turn.messages is not None:
            # OpenAI-style request: the client sent the whole history; the session is not touched.
            prompt = messages_to_prompt(self.chat_prompt_clazz, turn.messages)
        elif turn.regenerate:
            if not prompt.responder_messages or prompt.get_requester_last_msg() is None:
                raise bad_request("nothing to regenerate yet", param="regenerate")
            prompt.remove_last_responder_message()
            if prompt.chat_contents and not prompt.chat_contents[-1].is_responder():
                prompt.add_responder_msg(None)
        else:
            prompt.add_requester_msg(turn.user_input)
            prompt.add_responder_msg(None)
        return _SessionTurn(
            request,
            chat_prompt=prompt,
            message_id=uuid.uuid4().hex,
            generation_params=dict(session.get("generation_params", {})),
        )

    async def clear_context(self, request: Request, conversation_id: str | None = None) -> None:
        session = self._session(request)
        prompt = self._prompt(session, create=False)
        if prompt is not None:
            prompt.clear()
            prompt.build_initial_prompt(prompt)  # a cleared conversation starts as a new one does
        save_session(request)

    async def get_prompt(self, request: Request, conversation_id: str | None = None):
        session = self._session(request, required=False)
        return None if session is None else self._prompt(session, create=False)

    async def get_generation_params(self, request: Request, conversation_id: str | None = None):
        session = self._session(request, required=False)
        return {} if session is None else dict(session.get("generation_params", {}))

    async def set_generation_params(
        self, request: Request, params: dict[str, Any], conversation_id: str | None = None
    ) -> dict[str, Any]:
        session = self._session(request)
        current = dict(session.get("generation_params", {}))
        current.update(params)
        session["generation_params"] = current
        save_session(request)
        return current

    async def set_feedback(
        self,
        request: Request,
        message_id: str,
        is_like: bool | None,
        form_data: dict[str, Any] | None,
        conversation_id: str | None = None,
    ) -> None:
        session = self._session(request)
        if message_id not in session.get("message_ids", []):
            raise not_found("no such message in this session")
        session.setdefault("feedback", {})[message_id] = {"is_like": is_like, "form_data": form_data}
        save_session(request)
