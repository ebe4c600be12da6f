"""The chat service: admission, prompt fitting and turn orchestration for every front end.

Routes, the OpenAI API, the console and the server hold a :class:`ChatService` (from ``app.state``
or the facade) and ask it for turns; it owns the scheduler (N running, M waiting), the engine, the
history handler and the metrics, and exposes what probes and the drain need (:attr:`started`,
:attr:`draining`, :meth:`load`). It knows nothing of HTTP wire formats.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ..engine.base import Engine, GenerationRequest, SamplingParams
from ..errors import ChatStreamError, unavailable
from ..history.base import CONVERSATION_HEADER, MESSAGE_ID_HEADER, RequestHandler, Turn, TurnInput
from ..prompts.base import AbstractChatPrompt
from ..scheduler import DrainingError, Scheduler
from ..settings import GENERATION_DEFAULTS
from .generation import GenerationOptions, used_params
from .prompt_fitting import fit_prompt
from .turn_stream import FinishCallback, TurnStream, wait_background


@dataclass(frozen=True)
class ServiceLimits:
    """Admission and request limits (the seed's constructor options and the server's guards)."""

    max_running: int = 2
    max_waiting: int = 5
    too_many_request_as_http_error: bool = False
    max_input_chars: int = 16_000
    retry_after_sec: int = 1
    context_len: int = GENERATION_DEFAULTS.context_len
    add_special_tokens: bool | None = None

    def __post_init__(self) -> None:
        if self.max_running < 1 or self.max_waiting < 0:
            raise ValueError("num_of_concurrent_executions >= 1 and max_queue_size >= 0 are required")


@dataclass(frozen=True)
class Load:
    """Generations running and waiting (waiting includes what the engine holds back for KV budget)."""

    running: int
    waiting: int
    max_running: int
    max_waiting: int


class ChatService:
    """Queue, limit and run chat turns; one instance per process serves every front end."""

    def __init__(
        self,
        engine: Engine,
        request_handler: RequestHandler,
        chat_prompt_clazz: type[AbstractChatPrompt],
        *,
        limits: ServiceLimits | None = None,
        generation: GenerationOptions | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits or ServiceLimits()
        self.generation = generation or GenerationOptions()
        self.logger = logger or logging.getLogger("chatstream")
        self.chat_prompt_clazz = chat_prompt_clazz
        self.request_handler = request_handler
        request_handler.chat_prompt_clazz = chat_prompt_clazz
        request_handler.logger = self.logger
        self.scheduler = Scheduler(self.limits.max_running, self.limits.max_waiting)
        #: a :class:`~chatstream.metrics.ServiceMetrics`, attached by the composition root
        self.metrics: Any = None
        self._started = False

    # --- life cycle -----------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """The engine runs and the history store is open."""
        return self._started

    @property
    def draining(self) -> bool:
        return self.scheduler.draining

    async def start(self) -> None:
        """Start the engine worker and open the history store (idempotent)."""
        if self._started:
            return
        await self.engine.start()
        await self.request_handler.startup()
        self._started = True

    def start_draining(self) -> None:
        """Refuse new turns from now on (503 ``shutting_down``); admitted ones run to their end."""
        self.scheduler.start_draining()

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until nothing runs or waits; False when ``timeout`` passed first."""
        return await self.scheduler.wait_idle(timeout)

    async def shutdown(self, drain_timeout: float = 0.0) -> bool:
        """Refuse new work, let admitted work finish for up to ``drain_timeout`` s, then stop."""
        self.start_draining()
        drained = await self.wait_idle(drain_timeout)
        await self.engine.stop()
        await wait_background(5.0)
        await self.request_handler.shutdown()
        self._started = False
        return drained

    # --- load -----------------------------------------------------------------------------------
    def load(self) -> Load:
        engine_waiting = self.engine.stats().waiting
        scheduler = self.scheduler
        return Load(
            running=max(scheduler.running - engine_waiting, 0),
            waiting=scheduler.waiting + engine_waiting,
            max_running=self.limits.max_running,
            max_waiting=self.limits.max_waiting,
        )

    def load_pair(self) -> tuple[int, int]:
        """(running, waiting), as the metrics collector reads it on every scrape."""
        load = self.load()
        return load.running, load.waiting

    # --- refusals are counted where they are decided ----------------------------------------------
    def count_rejected(self) -> None:
        if self.metrics is not None:
            self.metrics.request_finished("rejected", None)

    def count_refused(self, error: ChatStreamError) -> None:
        """A 4xx answer (not overload) counts as an invalid request."""
        if self.metrics is not None and 400 <= error.status < 500 and error.status != 429:
            self.metrics.request_finished("invalid", None)

    # --- turns ----------------------------------------------------------------------------------
    def sampling_params(self, overrides: dict[str, Any] | None = None) -> SamplingParams:
        return self.generation.sampling_params(overrides)

    def fit(
        self, prompt: AbstractChatPrompt, params: SamplingParams, extra_stop: list[str] | None = None
    ) -> GenerationRequest:
        """The engine request for ``prompt``, fitted to ``context_len`` (CPU work: see fit_prompt)."""
        return fit_prompt(
            self.engine,
            prompt,
            params,
            context_len=self.limits.context_len,
            add_special_tokens=self.limits.add_special_tokens,
            extra_stop=extra_stop,
        )

    def reserve(self) -> Any:
        """A place in the queue now, or :class:`QueueFullError`; 503 while draining."""
        try:
            return self.scheduler.reserve()
        except DrainingError:
            raise unavailable(
                "server is shutting down; retry on another replica", code="shutting_down"
            ) from None

    async def open_turn(
        self,
        request: Any,
        turn_input: TurnInput,
        overrides: dict[str, Any] | None = None,
        stop: list[str] | None = None,
        callback: FinishCallback | None = None,
    ) -> TurnStream:
        """Reserve a place, start the turn in the history and return the stream to iterate.

        Raises :class:`QueueFullError` (refused: nothing written), :class:`ChatStreamError` (4xx/503:
        nothing written) — in both cases no place stays reserved.
        """
        ticket = self.reserve()
        turn = None
        try:
            turn = await self.request_handler.begin_turn(request, turn_input)
            params = self.sampling_params({**turn.generation_params, **(overrides or {})})
            generation_request = await asyncio.to_thread(self.fit, turn.chat_prompt, params, stop)
            turn.used_params = used_params(params)
        except BaseException:
            ticket.release()
            if turn is not None:
                await turn.discard()
            raise
        headers = {MESSAGE_ID_HEADER: turn.message_id, **turn.response_headers}
        if turn.conversation_id:
            headers.setdefault(CONVERSATION_HEADER, turn.conversation_id)
        return TurnStream(
            engine=self.engine,
            ticket=ticket,
            turn=turn,
            generation_request=generation_request,
            prompt=turn.chat_prompt,
            request=request,
            callback=callback,
            metrics=self.metrics,
            headers=headers,
        )

    def open_local_turn(self, prompt: AbstractChatPrompt, message_id: str = "local") -> TurnStream:
        """A turn on a prompt object the caller keeps (the single console user): no history store."""
        ticket = self.reserve()
        try:
            generation_request = self.fit(prompt, self.sampling_params())
        except BaseException:
            ticket.release()
            raise
        return TurnStream(
            engine=self.engine,
            ticket=ticket,
            turn=Turn(chat_prompt=prompt, message_id=message_id),
            generation_request=generation_request,
            prompt=prompt,
            metrics=self.metrics,
        )
