"""One admitted turn, from its reserved place in the queue to the last token and its bookkeeping.

Every wire format (the seed's text stream, SSE, OpenAI chunks, the console) consumes the same
:class:`TurnEvent` stream, so queueing, persistence, metrics and the seed's finish callback behave
identically whatever the client speaks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine.base import Engine, GenerationRequest, TokenDelta
from ..history.base import Turn
from ..prompts.base import AbstractChatPrompt
from ..scheduler import Ticket
from .output_filter import OutputFilter

logger = logging.getLogger("chatstream")

#: the seed's finish-callback messages
SUCCESS = "success"
DISCONNECTED_WHILE_STREAMING = "client_disconnected_while_streaming"
DISCONNECTED_BEFORE_STREAMING = "client_disconnected_before_streaming"
UNKNOWN_ERROR = "unknown_error_occurred"

FinishCallback = Callable[[Any, str], Awaitable[None] | None]


@dataclass
class TurnEvent:
    """Display text produced since the previous event, and the whole reply so far."""

    delta: str
    text: str
    finished: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    @staticmethod
    def merged(first: TurnEvent, second: TurnEvent) -> TurnEvent:
        """One event for two consecutive events of a turn (``first`` is not the finished one).

        The deltas are joined; the rest (whole text, counts, finish) is ``second``'s, the newer state.
        A consumer that fell behind (a slow client) then gets its backlog as one event.
        """
        return dataclasses.replace(second, delta=first.delta + second.delta)


@dataclass
class _Progress:
    """What one iteration of :meth:`TurnStream.events` has seen so far."""

    status: str = "interrupted"
    reason: str = "cancelled"
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None
    ended: bool = False  # the final event was produced: a consumer leaving after it changes nothing


@dataclass
class TurnStream:
    """An admitted turn ready to stream; iterate :meth:`events` exactly once."""

    engine: Engine
    ticket: Ticket
    turn: Turn
    generation_request: GenerationRequest
    prompt: AbstractChatPrompt
    request: Any = None
    callback: FinishCallback | None = None
    metrics: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: set by the response layer once a body byte went out (for the callback's message)
    sent_any: bool = False
    text: str = ""
    started: bool = False

    @property
    def message_id(self) -> str:
        return self.turn.message_id

    async def abandon(self) -> None:
        """The response ended before :meth:`events` ever ran (the client left at once): give the place
        back and record the turn as interrupted, exactly as a disconnect during the stream would."""
        if self.started:
            return
        self.started = True
        self.ticket.release()
        await _run_shielded(self._finalize("interrupted", "", self._usage(_Progress())))

    def _usage(self, seen: _Progress, queue_wait: float | None = None) -> dict[str, Any]:
        """What the history stores and the metrics observe about the turn, measured from admission."""
        created = self.ticket.created
        first = seen.first_token_at
        return {
            "prompt_tokens": seen.prompt_tokens,
            "completion_tokens": seen.completion_tokens,
            "queue_wait_seconds": queue_wait,
            "time_to_first_token_seconds": first - created if first else None,
            "duration_seconds": time.perf_counter() - created,
            "finish_reason": seen.reason,
        }

    def _observe(self, delta: TokenDelta, seen: _Progress) -> None:
        """Token counts and latency metrics for one engine delta."""
        now = time.perf_counter()
        seen.prompt_tokens = delta.prompt_tokens or seen.prompt_tokens
        seen.completion_tokens = delta.completion_tokens or seen.completion_tokens
        if not (delta.token_ids or delta.text):
            return
        if seen.first_token_at is None:
            seen.first_token_at = now
            if self.metrics is not None:
                self.metrics.first_token(now - self.ticket.created)
        elif self.metrics is not None and seen.last_token_at is not None:
            self.metrics.inter_token(now - seen.last_token_at)
        seen.last_token_at = now

    async def _final_event(self, delta: TokenDelta, out: OutputFilter, seen: _Progress) -> TurnEvent:
        shown = out.flush() if not delta.text else out.feed(delta.text) + out.flush()
        seen.reason = delta.finish_reason or "stop"
        if seen.reason == "error":
            seen.status, seen.error = "failed", delta.error or "generation failed"
        else:
            seen.status = "complete"
        self.text = out.shown
        if shown or seen.status == "complete":
            await self.turn.progress(out.shown)
        seen.ended = True
        return TurnEvent(
            shown, out.shown, True, seen.reason, seen.prompt_tokens, seen.completion_tokens, seen.error
        )

    async def events(self) -> AsyncIterator[TurnEvent]:
        if self.started:
            raise RuntimeError("a turn's events can be iterated only once")
        self.started = True
        out = OutputFilter(self.prompt.get_replacement_when_output())
        seen = _Progress()
        generator = None
        try:
            await self.ticket.wait()
            if self.metrics is not None:
                self.metrics.queue_wait(self.ticket.queue_wait)
            generator = self.engine.generate(self.generation_request)
            async for delta in generator:
                self._observe(delta, seen)
                if delta.finished:
                    yield await self._final_event(delta, out, seen)
                    break
                shown = out.feed(delta.text)
                if shown:
                    self.text = out.shown
                    await self.turn.progress(out.shown)
                    yield TurnEvent(shown, out.shown, False, None, seen.prompt_tokens, seen.completion_tokens)
            # An engine that ended without a final delta was stopped: the turn stays interrupted.
        except (asyncio.CancelledError, GeneratorExit):
            if not seen.ended:
                seen.status, seen.reason = "interrupted", "cancelled"
            raise
        except Exception as exc:  # an engine bug fails this request only
            logger.exception("generation failed")
            seen.status, seen.reason, seen.error = "failed", "error", str(exc)
            yield TurnEvent(
                "", out.shown, True, "error", seen.prompt_tokens, seen.completion_tokens, "generation failed"
            )
        finally:
            if generator is not None:
                await _close_quietly(generator)
            self.ticket.release()
            self.text = out.shown
            usage = self._usage(seen, queue_wait=self.ticket.queue_wait)
            await _run_shielded(self._finalize(seen.status, out.shown, usage))

    async def _finalize(self, status: str, text: str, usage: dict[str, Any]) -> None:
        if status == "complete":
            outcome, message = "success", SUCCESS
        elif status == "interrupted":
            outcome = "client_disconnected"
            message = DISCONNECTED_WHILE_STREAMING if self.sent_any else DISCONNECTED_BEFORE_STREAMING
        else:
            outcome, message = "error", UNKNOWN_ERROR
        started = time.perf_counter()
        try:
            await self.turn.finish(status, text, usage)
        except Exception:
            logger.exception("could not record the end of turn %s", self.turn.message_id)
        if self.metrics is not None:
            self.metrics.history_write(time.perf_counter() - started)
            self.metrics.request_finished(outcome, usage["duration_seconds"])
        if self.callback is not None:
            try:
                result = self.callback(self.request, message)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("finish callback failed")


async def _close_quietly(generator: Any) -> None:
    try:
        await asyncio.shield(generator.aclose())
    except (asyncio.CancelledError, Exception):
        pass


_background: set[asyncio.Task[Any]] = set()


async def _run_shielded(coro: Awaitable[None]) -> None:
    """Run bookkeeping to the end even when the request task is being cancelled (client gone)."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        pass


async def wait_background(timeout: float) -> None:
    """Let pending end-of-turn writes finish (used by graceful shutdown)."""
    if _background:
        await asyncio.wait(list(_background), timeout=timeout)
