"""``chatstream chat`` backends behind one small interface (``reply``, ``regenerate``, ``clear``,
``history``, ``get_params``, ``set_params``, ``close``):

* :class:`LocalBackend` — a model (or the mock) in this process, one user;
* :class:`ChatStreamBackend` — a running service's ``/chat_stream`` (SSE), history kept by the server
  in the session cookie's conversation;
* :class:`OpenAIBackend` — a running service's ``/v1/chat/completions``, history kept here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from ..core.service import ChatService
from ..prompts.base import AbstractChatPrompt
from ..scheduler import QueueFullError
from .local import ConsoleError, console_regenerate, console_turn

BUSY = "server is busy (too_many_requests): every slot and queue place is taken; try again in a moment"


class LocalBackend:
    """The model or the mock in this process, one user, history in memory."""

    allowed = ("temperature", "top_k", "top_p", "max_new_tokens", "repetition_penalty", "seed")

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.prompt: AbstractChatPrompt = service.chat_prompt_clazz()

    def describe(self) -> str:
        return f"model {self.service.engine.model_name} in this process"

    async def reply(self, user_input: str) -> AsyncIterator[str]:
        try:
            async with aclosing(console_turn(self.service, self.prompt, user_input)) as pieces:
                async for _, updated, pos in pieces:
                    if pos != "end":
                        yield updated
        except QueueFullError:
            raise ConsoleError(BUSY) from None

    async def regenerate(self) -> AsyncIterator[str]:
        async with aclosing(console_regenerate(self.service, self.prompt)) as pieces:
            async for _, updated, pos in pieces:
                if pos != "end":
                    yield updated

    async def clear(self) -> None:
        self.prompt.clear()

    async def history(self) -> list[dict[str, str]]:
        return self.prompt.to_messages()

    async def get_params(self) -> dict[str, Any]:
        values = self.service.generation.values
        return {k: values.get(k) for k in self.allowed if k in values}

    async def set_params(self, values: dict[str, Any]) -> dict[str, Any]:
        self.service.generation.update(values)  # validated before anything changes
        return await self.get_params()

    async def close(self) -> None:
        if self.service.started:
            await self.service.shutdown(0.0)


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
        data = json_or_none(response.content)
        self.raise_for_error(response, data)
        return data or {}

    def connection_message(self, exc: Exception) -> str:
        detail = str(exc) or type(exc).__name__
        return f"connection to {self.url} failed ({detail}); is the server running and reachable?"

    def raise_for_error(self, response: httpx.Response, data: Any) -> None:
        code, detail = error_of(data)
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
                    self.raise_for_error(response, json_or_none(content))
                    raise ConsoleError(f"server answered HTTP {response.status_code} without a stream")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = json_or_none(data.encode())
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
                    raise ConsoleError(f"server error: {error_of(chunk)[1] or chunk['error']}")
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


def json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None


def error_of(data: Any) -> tuple[str | None, str | None]:
    """(code, message) from the seed's ``{"error": code, "detail": ...}`` or OpenAI's error object."""
    if not isinstance(data, dict) or not data.get("error"):
        return None, None
    error = data["error"]
    if isinstance(error, dict):
        return error.get("code") or error.get("type"), error.get("message")
    return str(error), data.get("detail")
