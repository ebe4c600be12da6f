"""The seed's ``handle_console_input``: one console user, a prompt object kept in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from ..core.service import ChatService
from ..prompts.base import AbstractChatPrompt
from ..scheduler import QueueFullError


class ConsoleError(Exception):
    """A failure to show the user in one line; the prompt comes back after it."""


async def console_turn(
    service: ChatService, prompt: AbstractChatPrompt, user_input: str
) -> AsyncIterator[tuple[str, str, str]]:
    """Yield ``(response_text, updated_text, pos)`` with pos ``begin`` (first piece), ``mid``, ``end``.

    ``response_text`` is the whole reply so far, ``updated_text`` the piece added by this step; the
    user's history is ``prompt``. Raises :class:`QueueFullError` when every slot and queue place is
    taken (nothing is recorded).
    """
    prompt.add_requester_msg(user_input)
    prompt.add_responder_msg(None)
    try:
        async for item in generate(service, prompt):
            yield item
    except QueueFullError:
        prompt.remove_last_responder_msg()
        prompt.remove_last_requester_msg()
        raise


async def console_regenerate(
    service: ChatService, prompt: AbstractChatPrompt
) -> AsyncIterator[tuple[str, str, str]]:
    """Generate the last reply again (same shape as :func:`console_turn`)."""
    if not prompt.responder_messages:
        raise ConsoleError("nothing to regenerate yet")
    prompt.remove_last_responder_message()
    async for item in generate(service, prompt):
        yield item


async def generate(service: ChatService, prompt: AbstractChatPrompt) -> AsyncIterator[tuple[str, str, str]]:
    """Run one turn on ``prompt`` (starting the service on first use) and yield the console's triples."""
    await service.start()
    stream = service.open_local_turn(prompt, message_id="console")
    first = True
    async with aclosing(stream.events()) as events:
        async for event in events:
            if event.delta:
                yield event.text, event.delta, "begin" if first else "mid"
                first = False
            if event.finished:
                if event.error:
                    raise ConsoleError(f"generation failed: {event.error}")
                yield event.text, "", "end"
