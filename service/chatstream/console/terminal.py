"""``chatstream chat``: the interactive loop in a terminal.

One event loop runs the whole session; each reply is a task, so Ctrl-C cancels that task (closing
the engine stream or the HTTP stream) and the prompt comes back.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from ..bootstrap import service_from_settings
from ..settings import Settings
from .backends import ChatStreamBackend, LocalBackend, OpenAIBackend
from .local import ConsoleError
from .params import format_params, parse_params

PROMPT = "you> "
AI_PREFIX = "ai> "
HELP = (
    "commands: /clear  /regenerate  /params [name=value ...]  /history  /help  /quit"
    "  (Ctrl-C stops a reply, Ctrl-D or /quit leaves)"
)


def _out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


async def _stream_reply(pieces: AsyncIterator[str], shown: list[bool]) -> None:
    async with aclosing(pieces) as stream:
        async for piece in stream:
            if not shown:
                shown.append(True)
                _out(AI_PREFIX, end="")
            _out(piece, end="")
    if shown:
        _out()


def _run_cancellable(loop: asyncio.AbstractEventLoop, pieces: AsyncIterator[str]) -> None:
    """Stream one reply; Ctrl-C cancels it (the engine or HTTP stream closes) and returns."""
    shown: list[bool] = []
    task = loop.create_task(_stream_reply(pieces, shown))
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        _out(("\n" if shown else "") + "[stopped]")
    except ConsoleError as exc:
        _out(("\n" if shown else "") + f"[{exc}]")
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _interruptible(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    """Run a command's request; Ctrl-C abandons it (ConsoleError) instead of ending the program."""
    task = loop.create_task(coro)
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise ConsoleError("interrupted") from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _run_command(loop: asyncio.AbstractEventLoop, backend: Any, line: str) -> bool:
    """Handle one ``/command``; False means leave."""
    name, _, rest = line.partition(" ")
    name = name.lower()
    try:
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            _out(HELP)
        elif name == "/clear":
            _interruptible(loop, backend.clear())
            _out("[history cleared]")
        elif name == "/regenerate":
            _run_cancellable(loop, backend.regenerate())
        elif name == "/history":
            messages = _interruptible(loop, backend.history())
            if not messages:
                _out("[history is empty]")
            for message in messages:
                role = {"user": "you", "assistant": "ai"}.get(message["role"], message["role"])
                _out(f"{role}: {message['content']}")
        elif name == "/params":
            if rest.strip():
                values = parse_params(rest, backend.allowed)
                current = _interruptible(loop, backend.set_params(values))
            else:
                current = _interruptible(loop, backend.get_params())
            _out(f"[params] {format_params(current)}")
        else:
            _out(f"[unknown command {name}] {HELP}")
    except ConsoleError as exc:
        _out(f"[{exc}]")
    except (ValueError, TypeError) as exc:
        _out(f"[invalid: {exc}]")
    return True


def chat_loop(backend: Any, loop: asyncio.AbstractEventLoop) -> int:
    """Read lines until /quit or end of input; every failure prints one line and the prompt returns."""
    _out(f"chatstream chat: {backend.describe()}")
    _out(HELP)
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            _out()
            return 0
        except KeyboardInterrupt:
            _out("\n[Ctrl-C: type /quit or press Ctrl-D to leave]")
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            if not _run_command(loop, backend, line):
                return 0
            continue
        _run_cancellable(loop, backend.reply(line))


def make_backend(args: argparse.Namespace, settings: Settings) -> Any:
    if args.url:
        cls = OpenAIBackend if args.api == "openai" else ChatStreamBackend
        return cls(args.url, args.api_key)
    # One user in this process: history in memory, no Prometheus registry.
    settings = settings.model_copy(update={"history": "memory", "metrics_enabled": False})
    return LocalBackend(service_from_settings(settings))


def run_console(args: argparse.Namespace, settings: Settings) -> int:
    """``chatstream chat``: build the backend, chat until /quit, then close it."""
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    backend = make_backend(args, settings)
    loop = asyncio.new_event_loop()
    try:
        return chat_loop(backend, loop)
    finally:
        loop.run_until_complete(backend.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
