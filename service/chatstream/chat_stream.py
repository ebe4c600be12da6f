"""``ChatStream``: the seed's public class, now a thin facade over scheduler, engine and history.

It keeps the seed's constructor options and methods (``start_queue_worker``,
``handle_starlette_request``/``handle_chat_stream_request``, ``append_apis``,
``handle_console_input``) while the work is done by :mod:`chatstream.scheduler` (admission),
:mod:`chatstream.engine` (generation) and :mod:`chatstream.history` (conversations).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from . import __version__
from .api.schemas import ChatStreamBody, validation_error
from .api.streaming import DisconnectAwareStreamingResponse
from .engine.base import Engine, GenerationRequest, SamplingParams
from .errors import ChatStreamError, bad_request, unavailable
from .history.base import CONVERSATION_HEADER, MESSAGE_ID_HEADER, RequestHandler, TurnInput
from .history.session import SimpleSessionRequestHandler
from .prompts.base import AbstractChatPrompt
from .prompts.chat_template import ChatTemplatePrompt
from .scheduler import DrainingError, QueueFullError, Scheduler
from .turns import FinishCallback, TurnStream

#: the seed's end-of-chunk marker in the text/plain stream
EOS_MARKER = "<::EOS::>"
TOO_MANY_REQUESTS = "too_many_requests"


class ChatStream:
    """Queue, limit and stream chat generations for many users at once.

    ``num_of_concurrent_executions`` generations run together (one batched engine step for all of
    them) and ``max_queue_size`` more wait; a request beyond that is refused at once with
    ``{"error": "too_many_requests"}`` — HTTP 429 with ``Retry-After`` when
    ``too_many_request_as_http_error`` is true, HTTP 200 otherwise (the seed's documented default).
    """

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        device: str | None = None,
        num_of_concurrent_executions: int = 2,
        max_queue_size: int = 5,
        too_many_request_as_http_error: bool = False,
        use_mock_response: bool = False,
        mock_params: dict[str, Any] | None = None,
        chat_prompt_clazz: type[AbstractChatPrompt] | None = None,
        max_new_tokens: int = 256,
        context_len: int = 1024,
        temperature: float = 1.0,
        top_k: int | None = 50,
        top_p: float | None = 1.0,
        repetition_penalty: float | None = None,
        repetition_penalty_method: str = "multiplicative",
        add_special_tokens: bool | None = None,
        request_handler: RequestHandler | None = None,
        logger: logging.Logger | None = None,
        *,
        engine: Engine | None = None,
        mock_type: str | None = None,
        kv_cache_tokens: int = 0,
        prefill_chunk_tokens: int = 512,
        max_new_tokens_cap: int = 4096,
        max_input_chars: int = 16_000,
        retry_after_sec: int = 1,
        model_name: str | None = None,
        metrics_enabled: bool = True,
    ) -> None:
        if repetition_penalty_method not in ("multiplicative", "subtractive"):
            raise ValueError("repetition_penalty_method must be 'multiplicative' or 'subtractive'")
        if num_of_concurrent_executions < 1 or max_queue_size < 0:
            raise ValueError("num_of_concurrent_executions >= 1 and max_queue_size >= 0 are required")
        self.logger = logger or logging.getLogger("chatstream")
        self.too_many_request_as_http_error = too_many_request_as_http_error
        self.num_of_concurrent_executions = num_of_concurrent_executions
        self.max_queue_size = max_queue_size
        self.max_input_chars = max_input_chars
        self.max_new_tokens_cap = max_new_tokens_cap
        self.retry_after_sec = retry_after_sec
        self.context_len = context_len
        self.add_special_tokens = add_special_tokens
        self.params: dict[str, Any] = {
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "repetition_penalty": repetition_penalty,
            "repetition_penalty_method": repetition_penalty_method,
            "max_new_tokens": max_new_tokens,
        }
        mock_params = dict(mock_params) if mock_params else {"type": mock_type or "round"}
        self.mock_params = mock_params
        self.use_mock_response = use_mock_response

        if engine is None:
            engine = _make_engine(
                model,
                tokenizer,
                device,
                use_mock_response=use_mock_response,
                mock_params=mock_params,
                max_batch_size=num_of_concurrent_executions,
                kv_cache_tokens=kv_cache_tokens,
                prefill_chunk_tokens=prefill_chunk_tokens,
                model_name=model_name,
            )
        self.engine = engine
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

        if chat_prompt_clazz is None or (
            isinstance(chat_prompt_clazz, type)
            and issubclass(chat_prompt_clazz, ChatTemplatePrompt)
            and chat_prompt_clazz.tokenizer is None
        ):
            chat_prompt_clazz = (chat_prompt_clazz or ChatTemplatePrompt).bind(tokenizer)
        self.chat_prompt_clazz = chat_prompt_clazz

        self.request_handler = request_handler or SimpleSessionRequestHandler()
        self.request_handler.chat_prompt_clazz = chat_prompt_clazz
        self.request_handler.logger = self.logger

        self.scheduler: Scheduler | None = None
        self.metrics = None
        self.metrics_enabled = metrics_enabled
        self._started = False
        self.chat_prompt_for_single_user_on_console: AbstractChatPrompt | None = None

    # --- life cycle -----------------------------------------------------------------------
    def _ensure_scheduler(self) -> Scheduler:
        if self.scheduler is None:
            self.scheduler = Scheduler(self.num_of_concurrent_executions, self.max_queue_size)
            if self.metrics_enabled and self.metrics is None:
                from .metrics import ServiceMetrics

                self.metrics = ServiceMetrics(
                    model_name=self.engine.model_name,
                    engine_info={k: str(v) for k, v in self.engine.info().items()},
                    max_concurrency=self.num_of_concurrent_executions,
                    max_queue_size=self.max_queue_size,
                    load_fn=self._load_pair,
                    engine_stats_fn=self.engine.stats,
                    version=__version__,
                )
        return self.scheduler

    async def start_queue_worker(self) -> None:
        """Start the engine worker and open the history store (the seed's startup hook)."""
        self._ensure_scheduler()
        if self._started:
            return
        await self.engine.start()
        await self.request_handler.startup()
        self._started = True

    async def shutdown(self, drain_timeout: float = 0.0) -> bool:
        """Refuse new work, let admitted work finish for up to ``drain_timeout`` s, then stop."""
        from .turns import wait_background

        scheduler = self._ensure_scheduler()
        scheduler.start_draining()
        drained = await scheduler.wait_idle(drain_timeout)
        await self.engine.stop()
        await wait_background(5.0)
        await self.request_handler.shutdown()
        self._started = False
        return drained

    # --- load -------------------------------------------------------------------------------
    def _load_pair(self) -> tuple[int, int]:
        """(running, waiting) — waiting includes what the engine holds back for KV budget."""
        scheduler = self.scheduler
        engine_waiting = self.engine.stats().waiting
        if scheduler is None:
            return 0, 0
        return max(scheduler.running - engine_waiting, 0), scheduler.waiting + engine_waiting

    def get_load(self) -> dict[str, Any]:
        running, waiting = self._load_pair()
        return {
            "chatstream_workers": [
                {
                    "name": "default",
                    "processing": running,
                    "waiting": waiting,
                    "max_processing": self.num_of_concurrent_executions,
                    "max_waiting": self.max_queue_size,
                }
            ],
            "processing": running,
            "waiting": waiting,
            "max_processing": self.num_of_concurrent_executions,
            "max_waiting": self.max_queue_size,
        }

    def get_stats(self) -> dict[str, Any]:
        return self.get_load()

    # --- requests ---------------------------------------------------------------------------
    def rejection_response(self) -> Response:
        """The seed's overload answer: 429 + Retry-After, or 200 with the same body by default."""
        if self.metrics is not None:
            self.metrics.request_finished("rejected", None)
        body = {"error": TOO_MANY_REQUESTS, "detail": "all slots and queue places are taken; retry later"}
        if self.too_many_request_as_http_error:
            return JSONResponse(body, status_code=429, headers={"Retry-After": str(self.retry_after_sec)})
        return JSONResponse(body, status_code=200)

    def error_response(self, error: ChatStreamError) -> Response:
        if self.metrics is not None and 400 <= error.status < 500 and error.status != 429:
            self.metrics.request_finished("invalid", None)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    def sampling_params(self, overrides: dict[str, Any], stop: list[str] | None = None) -> SamplingParams:
        merged = {**self.params, **{k: v for k, v in overrides.items() if v is not None}}
        return SamplingParams(
            temperature=float(merged["temperature"]),
            top_k=merged.get("top_k"),
            top_p=merged.get("top_p"),
            repetition_penalty=merged.get("repetition_penalty"),
            repetition_penalty_method=merged.get("repetition_penalty_method", "multiplicative"),
            max_new_tokens=min(int(merged["max_new_tokens"]), self.max_new_tokens_cap),
            seed=merged.get("seed"),
            stop=list(stop or []),
        )

    def build_generation_request(
        self, prompt: AbstractChatPrompt, params: SamplingParams, extra_stop: list[str] | None = None
    ) -> GenerationRequest:
        """Render and tokenise the prompt, dropping whole old turns until it fits ``context_len``.

        CPU work that grows with the history (template rendering, tokenising once per dropped
        turn): :meth:`open_turn` runs it in a worker thread, off the event loop.
        """
        working = type(prompt).from_dict(prompt.to_dict())
        budget = max(self.context_len - params.max_new_tokens, 1)
        while True:
            text = working.create_prompt()
            ids = self.engine.encode_prompt(text, self.add_special_tokens)
            size = len(ids) if ids is not None else self.engine.count_tokens(text)
            if size <= budget or not working.drop_oldest_turn():
                break
        stops = list(working.get_stop_strs() or []) + list(extra_stop or [])
        params.stop = [s for s in dict.fromkeys(stops + params.stop) if s]
        return GenerationRequest(
            request_id=uuid.uuid4().hex,
            prompt=text,
            params=params,
            prompt_token_ids=ids,
            add_special_tokens=self.add_special_tokens,
            context_len=self.context_len,
            last_user_message=working.undo_input_replacement(working.get_requester_last_msg() or ""),
            turn=working.get_turn(),
        )

    async def open_turn(
        self,
        request: Request,
        turn_input: TurnInput,
        overrides: dict[str, Any] | None = None,
        stop: list[str] | None = None,
        callback: FinishCallback | None = None,
    ) -> TurnStream:
        """Reserve a place, start the turn in the history and return the stream to iterate.

        Raises :class:`QueueFullError` (refused: nothing written), :class:`ChatStreamError` (4xx/503:
        nothing written) — in both cases no place stays reserved.
        """
        scheduler = self._ensure_scheduler()
        try:
            ticket = scheduler.reserve()
        except DrainingError:
            raise unavailable(
                "server is shutting down; retry on another replica", code="shutting_down"
            ) from None
        turn = None
        try:
            turn = await self.request_handler.begin_turn(request, turn_input)
            merged = {**turn.generation_params, **(overrides or {})}
            params = self.sampling_params(merged)
            generation_request = await asyncio.to_thread(
                self.build_generation_request, turn.chat_prompt, params, stop
            )
            turn.used_params = _used_params(params)
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

    async def read_body(self, request: Request, request_body: Any = None) -> ChatStreamBody:
        if request_body is None:
            raw = await request.body()
            if not raw:
                raise bad_request(
                    'request body is empty; send JSON {"user_input": "..."}', code="invalid_json"
                )
            try:
                request_body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
        elif isinstance(request_body, (bytes, str)):
            try:
                request_body = json.loads(request_body)
            except ValueError as exc:
                raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
        if not isinstance(request_body, dict):
            raise bad_request("request body must be a JSON object", code="invalid_body")
        try:
            body = ChatStreamBody.model_validate(request_body)
        except Exception as exc:
            raise validation_error(exc) from None
        if not body.regenerate:
            if body.user_input is None:
                raise bad_request("user_input is required", param="user_input")
            if not body.user_input.strip():
                raise bad_request("user_input must not be empty", param="user_input")
        if body.user_input is not None and len(body.user_input) > self.max_input_chars:
            raise ChatStreamError(
                413,
                "input_too_long",
                f"user_input is longer than {self.max_input_chars} characters",
                param="user_input",
            )
        return body

    async def handle_chat_stream_request(
        self, request: Request, request_body: Any = None, callback: FinishCallback | None = None
    ) -> Response:
        """Queue the request and stream the reply (the seed's entry point for ``/chat_stream``).

        ``request_body`` lets an endpoint pass an already-read (possibly edited) body, as in the
        seed's "intercepting the request" recipe. The reply is ``text/plain`` where each chunk is the
        whole reply so far followed by ``<::EOS::>``; with ``Accept: text/event-stream`` it is SSE
        with one JSON event per delta.
        """
        try:
            body = await self.read_body(request, request_body)
            conversation_id = request.headers.get(CONVERSATION_HEADER) or body.conversation_id
            turn_input = TurnInput(
                user_input=body.user_input, regenerate=body.regenerate, conversation_id=conversation_id
            )
            stream = await self.open_turn(request, turn_input, callback=callback)
        except QueueFullError:
            return self.rejection_response()
        except ChatStreamError as error:
            return self.error_response(error)
        except ClientDisconnect:
            return Response(status_code=499)

        sse = "text/event-stream" in request.headers.get("accept", "")
        iterator = _sse_chunks(stream) if sse else _text_chunks(stream)
        return DisconnectAwareStreamingResponse(
            iterator,
            headers={**stream.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type="text/event-stream" if sse else "text/plain",
            on_first_chunk=lambda: setattr(stream, "sent_any", True),
            on_close=stream.abandon,
        )

    handle_starlette_request = handle_chat_stream_request

    def append_apis(self, app: Any, opts: dict[str, Any] | None = None) -> None:
        """Add the seed's endpoints to ``app``.

        ``opts``: ``{"all": True}``, ``{"include": [names]}`` or ``{"exclude": [names]}``.
        """
        from .api.seed_routes import add_seed_routes

        add_seed_routes(app, self, opts or {"all": True})

    async def handle_console_input(self, user_input: str) -> AsyncIterator[tuple[str, str, str]]:
        """Single-user console chat: yields ``(response_text, updated_text, pos)``, pos begin|mid|end."""
        from .console import console_turn

        async for item in console_turn(self, user_input):
            yield item


def _make_engine(
    model: Any,
    tokenizer: Any,
    device: str | None,
    *,
    use_mock_response: bool,
    mock_params: dict[str, Any],
    max_batch_size: int,
    kv_cache_tokens: int,
    prefill_chunk_tokens: int,
    model_name: str | None,
) -> Engine:
    if use_mock_response:
        from .engine.mock import MockEngine

        return MockEngine(mock_params, model_name=model_name or "chatstream-mock")
    if model is None or tokenizer is None:
        raise ValueError("ChatStream needs model and tokenizer unless use_mock_response=True")
    from .engine.transformers import TransformersEngine

    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model"
    return TransformersEngine(
        model,
        tokenizer,
        device,
        max_batch_size=max_batch_size,
        kv_cache_tokens=kv_cache_tokens,
        prefill_chunk_tokens=prefill_chunk_tokens,
        model_name=str(name).rstrip("/").split("/")[-1],
    )


def _used_params(params: SamplingParams) -> dict[str, Any]:
    """What is worth keeping with a message to explain it later (sampling knobs, limits, seed)."""
    keep = ("temperature", "top_k", "top_p", "repetition_penalty", "repetition_penalty_method")
    used = {name: getattr(params, name) for name in keep}
    used.update(max_new_tokens=params.max_new_tokens, seed=params.seed, stop=list(params.stop))
    return used


async def _text_chunks(stream: TurnStream) -> AsyncIterator[str]:
    """The seed's format: every chunk is the whole reply so far plus the end-of-chunk marker."""
    async for event in stream.events():
        if event.finished and event.error:
            yield json.dumps({"error": "generation_failed", "detail": event.error}) + EOS_MARKER
        elif event.delta or event.finished:
            yield event.text + EOS_MARKER


async def _sse_chunks(stream: TurnStream) -> AsyncIterator[str]:
    async for event in stream.events():
        payload: dict[str, Any] = {"delta": event.delta}
        if event.finished:
            payload.update(
                finished=True,
                finish_reason=event.finish_reason,
                text=event.text,
                usage={"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens},
                message_id=stream.message_id,
            )
            if event.error:
                payload["error"] = event.error
        yield f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
