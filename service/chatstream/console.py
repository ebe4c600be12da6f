"""Console chat: the seed's ``handle_console_input`` and the ``chatstream chat`` terminal client.

``chatstream chat`` talks to one of three backends behind the same small interface (``reply``,
``regenerate``, ``clear``, ``history``, ``get_params``, ``set_params``):

* :class:`LocalBackend` — a model (or the mock) in this process, through ``handle_console_input``;
* :class:`ChatStreamBackend` — a running service's ``/chat_stream`` (SSE), history kept by the server
  in the session cookie's conversation;
* :class:`OpenAIBackend` — a running service's ``/v1/chat/completions``, history kept here.

One event loop runs the whole session; each reply is a task, so Ctrl-C cancels that task (closing
the engine stream or the HTTP stream) and the prompt comes back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import httpx

from .scheduler import QueueFullError

if TYPE_CHECKING:
    from .chat_stream import ChatStream
    from .prompts.base import AbstractChatPrompt

PROMPT = "you> "
AI_PREFIX = "ai> "
HELP = (
    "commands: /clear  /regenerate  /params [name=value ...]  /history  /help  /quit"
    "  (Ctrl-C stops a reply, Ctrl-D or /quit leaves)"
)
BUSY = "server is busy (too_many_requests): every slot and queue place is taken; try again in a moment"


class ConsoleError(Exception):
    """A failure to show the user in one line; the prompt comes back after it."""


# --- the seed's handle_console_input -----------------------------------------------------------
async def console_turn(chat_stream: ChatStream, user_input: str) -> AsyncIterator[tuple[str, str, str]]:
    """Yield ``(response_text, updated_text, pos)`` with pos ``begin`` (first piece), ``mid``, ``end``.

    ``response_text`` is the whole reply so far, ``updated_text`` the piece added by this step. The
    single console user's history lives on ``chat_stream.chat_prompt_for_single_user_on_console``.
    Raises :class:`QueueFullError` when every slot and queue place is taken (nothing is recorded).
    """
    prompt = _console_prompt(chat_stream)
    prompt.add_requester_msg(user_input)
    prompt.add_responder_msg(None)
    try:
        async for item in _generate(chat_stream, prompt):
            yield item
    except QueueFullError:
        prompt.chat_contents[-2:] = []
        prompt.responder_messages.pop()
        prompt.requester_messages.pop()
        raise


async def console_regenerate(chat_stream: ChatStream) -> AsyncIterator[tuple[str, str, str]]:
    """Generate the last reply again (same shape as :func:`console_turn`)."""
    prompt = _console_prompt(chat_stream)
    if not prompt.responder_messages:
        raise ConsoleError("nothing to regenerate yet")
    prompt.remove_last_responder_message()
    async for item in _generate(chat_stream, prompt):
        yield item


def _console_prompt(chat_stream: ChatStream) -> AbstractChatPrompt:
    if chat_stream.chat_prompt_for_single_user_on_console is None:
        chat_stream.chat_prompt_for_single_user_on_console = chat_stream.chat_prompt_clazz()
    return chat_stream.chat_prompt_for_single_user_on_console


async def _generate(
    chat_stream: ChatStream, prompt: AbstractChatPrompt
) -> AsyncIterator[tuple[str, str, str]]:
    from .history.base import Turn
    from .turns import TurnStream

    await chat_stream.start_queue_worker()
    ticket = chat_stream._ensure_scheduler().reserve()
    stream = TurnStream(
        engine=chat_stream.engine,
        ticket=ticket,
        turn=Turn(chat_prompt=prompt, message_id="console"),
        generation_request=chat_stream.build_generation_request(prompt, chat_stream.sampling_params({})),
        prompt=prompt,
        metrics=chat_stream.metrics,
    )
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


# --- parameters ---------------------------------------------------------------------------------
def parse_params(text: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``temperature=0.7 top_k=40`` → ``{"temperature": 0.7, "top_k": 40}``; ``none`` unsets."""
    values: dict[str, Any] = {}
    for item in text.split():
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not raw:
            raise ConsoleError(f"write parameters as name=value, e.g. temperature=0.7 (got {item!r})")
        if name not in allowed:
            raise ConsoleError(f"unknown parameter {name!r}; known: {', '.join(allowed)}")
        values[name] = _parse_value(raw)
    return values


def _parse_value(raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    raise ConsoleError(f"not a number: {raw!r}")


def _format_params(params: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in params.items()) or "(none)"


# --- backends -----------------------------------------------------------------------------------
class LocalBackend:
    """The model or the mock in this process, one user, history in memory."""

    allowed = ("temperature", "top_k", "top_p", "max_new_tokens", "repetition_penalty", "seed")

    def __init__(self, chat_stream: ChatStream) -> None:
        self.chat_stream = chat_stream

    def describe(self) -> str:
        return f"model {self.chat_stream.engine.model_name} in this process"

    async def reply(self, user_input: str) -> AsyncIterator[str]:
        try:
            async with aclosing(self.chat_stream.handle_console_input(user_input)) as pieces:
                async for _, updated, pos in pieces:
                    if pos != "end":
                        yield updated
        except QueueFullError:
            raise ConsoleError(BUSY) from None

    async def regenerate(self) -> AsyncIterator[str]:
        async with aclosing(console_regenerate(self.chat_stream)) as pieces:
            async for _, updated, pos in pieces:
                if pos != "end":
                    yield updated

    async def clear(self) -> None:
        prompt = self.chat_stream.chat_prompt_for_single_user_on_console
        if prompt is not None:
            prompt.clear()

    async def history(self) -> list[dict[str, str]]:
        prompt = self.chat_stream.chat_prompt_for_single_user_on_console
        return prompt.to_messages() if prompt is not None else []

    async def get_params(self) -> dict[str, Any]:
        return {k: self.chat_stream.params.get(k) for k in self.allowed if k in self.chat_stream.params}

    async def set_params(self, values: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.chat_stream.params, **values}
        self.chat_stream.sampling_params(merged)  # validates types before anything changes
        self.chat_stream.params.update(values)
        return await self.get_params()

    async def close(self) -> None:
        if self.chat_stream._started:
            await self.chat_stream.shutdown(0.0)


class HTTPBackend:
    """Shared HTTP plumbing: one client (keeps the session cookie), errors turned into one line."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def request_json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ConsoleError(self.connection_message(exc)) from None
        data = _json_or_none(response.content)
        self.raise_for_error(response, data)
        return data or {}

    def connection_message(self, exc: Exception) -> str:
        detail = str(exc) or type(exc).__name__
        return f"connection to {self.url} failed ({detail}); is the server running and reachable?"

    def raise_for_error(self, response: httpx.Response, data: Any) -> None:
        code, detail = _error_of(data)
        if response.status_code == 429 or code == "too_many_requests":
            retry = response.headers.get("retry-after")
            raise ConsoleError(BUSY + (f" (retry after {retry}s)" if retry else ""))
        if response.status_code >= 400 or code:
            text = detail or response.text[:200] or response.reason_phrase
            raise ConsoleError(f"server answered HTTP {response.status_code} {code or ''}: {text}".strip())

    async def stream_sse(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST ``body`` and yield each SSE ``data:`` JSON object until ``[DONE]``."""
        headers = {"Accept": "text/event-stream"}
        try:
            async with self.client.stream("POST", path, json=body, headers=headers) as response:
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    content = await response.aread()
                    self.raise_for_error(response, _json_or_none(content))
                    raise ConsoleError(f"server answered HTTP {response.status_code} without a stream")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = _json_or_none(data.encode())
                    if isinstance(event, dict):
                        yield event
            raise ConsoleError("the server closed the stream before the reply was complete")
        except httpx.HTTPError as exc:
            raise ConsoleError(self.connection_message(exc)) from None


class ChatStreamBackend(HTTPBackend):
    """``/chat_stream`` with SSE; the server keeps the conversation under the session cookie."""

    allowed = ("temperature", "top_k", "top_p")

    def describe(self) -> str:
        return f"{self.url} through /chat_stream"

    async def _reply(self, body: dict[str, Any]) -> AsyncIterator[str]:
        async for event in self.stream_sse("/chat_stream", body):
            if event.get("error") and not event.get("finished"):
                raise ConsoleError(f"server error: {event.get('detail') or event['error']}")
            if event.get("delta"):
                yield event["delta"]
            if event.get("finished") and event.get("error"):
                raise ConsoleError(f"generation failed: {event['error']}")

    def reply(self, user_input: str) -> AsyncIterator[str]:
        return self._reply({"user_input": user_input})

    def regenerate(self) -> AsyncIterator[str]:
        return self._reply({"regenerate": True})

    async def clear(self) -> None:
        await self.request_json("POST", "/clear_context", {})

    async def history(self) -> list[dict[str, str]]:
        return (await self.request_json("GET", "/get_prompt")).get("messages", [])

    async def get_params(self) -> dict[str, Any]:
        return (await self.request_json("GET", "/get_generation_params")).get("generation_params", {})

    async def set_params(self, values: dict[str, Any]) -> dict[str, Any]:
        data = await self.request_json("POST", "/set_generation_params", values)
        return data.get("generation_params", values)


class OpenAIBackend(HTTPBackend):
    """``/v1/chat/completions`` with ``stream: true``; the conversation is kept here and resent."""

    allowed = ("temperature", "top_p", "max_tokens", "seed")

    def __init__(self, url: str, api_key: str | None, timeout: float = 600.0) -> None:
        super().__init__(url, api_key, timeout)
        self.messages: list[dict[str, str]] = []
        self.params: dict[str, Any] = {}
        self.model: str | None = None

    def describe(self) -> str:
        return f"{self.url} through /v1/chat/completions"

    async def _model(self) -> str:
        if self.model is None:
            models = (await self.request_json("GET", "/v1/models")).get("data") or []
            self.model = models[0]["id"] if models else "default"
        return self.model

    async def _complete(self) -> AsyncIterator[str]:
        body = {"model": await self._model(), "messages": self.messages, "stream": True, **self.params}
        text = ""
        try:
            async for chunk in self.stream_sse("/v1/chat/completions", body):
                if chunk.get("error"):
                    raise ConsoleError(f"server error: {_error_of(chunk)[1] or chunk['error']}")
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        text += piece
                        yield piece
        finally:
            if text:  # keep what was shown, also when the reply was stopped half-way
                self.messages.append({"role": "assistant", "content": text})

    async def reply(self, user_input: str) -> AsyncIterator[str]:
        self.messages.append({"role": "user", "content": user_input})
        produced = False
        try:
            async for piece in self._complete():
                produced = True
                yield piece
        finally:
            if not produced:  # refused or failed before any text: forget the unanswered message
                self.messages.pop()

    async def regenerate(self) -> AsyncIterator[str]:
        if not self.messages or self.messages[-1]["role"] != "assistant":
            raise ConsoleError("nothing to regenerate yet")
        previous = self.messages.pop()
        produced = False
        try:
            async for piece in self._complete():
                produced = True
                yield piece
        finally:
            if not produced:
                self.messages.append(previous)

    async def clear(self) -> None:
        self.messages.clear()

    async def history(self) -> list[dict[str, str]]:
        return list(self.messages)

    async def get_params(self) -> dict[str, Any]:
        return dict(self.params) or {"(server defaults)": "in force"}

    async def set_params(self, values: dict[str, Any]) -> dict[str, Any]:
        for name, value in values.items():
            if value is None:
                self.params.pop(name, None)
            else:
                self.params[name] = value
        return await self.get_params()


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None


def _error_of(data: Any) -> tuple[str | None, str | None]:
    """(code, message) from the seed's ``{"error": code, "detail": ...}`` or OpenAI's error object."""
    if not isinstance(data, dict) or not data.get("error"):
        return None, None
    error = data["error"]
    if isinstance(error, dict):
        return error.get("code") or error.get("type"), error.get("message")
    return str(error), data.get("detail")


# --- the interactive loop -------------------------------------------------------------------------
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
            _out(f"[params] {_format_params(current)}")
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


def make_backend(args: argparse.Namespace) -> Any:
    if args.url:
        cls = OpenAIBackend if args.api == "openai" else ChatStreamBackend
        return cls(args.url, args.api_key)
    from .app import chat_stream_from_settings
    from .cli import settings_from_args

    # One user in this process: history in memory, no Prometheus registry.
    settings = settings_from_args(args).model_copy(update={"history": "memory", "metrics_enabled": False})
    return LocalBackend(chat_stream_from_settings(settings))


def run_console(args: argparse.Namespace) -> int:
    """``chatstream chat``: build the backend, chat until /quit, then close it."""
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    backend = make_backend(args)
    loop = asyncio.new_event_loop()
    try:
        return chat_loop(backend, loop)
    finally:
        loop.run_until_complete(backend.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
