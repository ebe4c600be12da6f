"""Console chat: the seed's ``handle_console_input`` (one user, history in memory)."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .scheduler import QueueFullError

if TYPE_CHECKING:
    from .chat_stream import ChatStream


async def console_turn(chat_stream: ChatStream, user_input: str) -> AsyncIterator[tuple[str, str, str]]:
    """Yield ``(response_text, updated_text, pos)`` with pos ``begin`` (first piece), ``mid``, ``end``."""
    if chat_stream.chat_prompt_for_single_user_on_console is None:
        chat_stream.chat_prompt_for_single_user_on_console = chat_stream.chat_prompt_clazz()
    prompt = chat_stream.chat_prompt_for_single_user_on_console
    prompt.add_requester_msg(user_input)
    prompt.add_responder_msg(None)
    await chat_stream.start_queue_worker()
    scheduler = chat_stream._ensure_scheduler()
    try:
        ticket = scheduler.reserve()
    except QueueFullError:
        prompt.chat_contents.pop()
        prompt.responder_messages.pop()
        raise
    from .history.base import Turn
    from .turns import TurnStream

    params = chat_stream.sampling_params({})
    stream = TurnStream(
        engine=chat_stream.engine,
        ticket=ticket,
        turn=Turn(chat_prompt=prompt, message_id="console"),
        generation_request=chat_stream.build_generation_request(prompt, params),
        prompt=prompt,
        metrics=chat_stream.metrics,
    )
    first = True
    async for event in stream.events():
        if event.delta:
            yield event.text, event.delta, "begin" if first else "mid"
            first = False
        if event.finished:
            yield event.text, "", "end"


def run_console(args: argparse.Namespace) -> int:
    raise SystemExit("chatstream chat: not available in this build yet")
