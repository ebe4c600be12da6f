"""``ChatStream``: the seed's public class, a thin facade over the chat service.

It keeps the constructor options and methods of the seed and of ChatStream 0.3.0
(``start_queue_worker``/``queue_worker``, one ``handle_*_request`` per endpoint, ``index``/``js``,
``append_apis``, ``append_middlewares``, ``handle_console_input``) and delegates:
:mod:`chatstream.bootstrap` builds the :class:`~chatstream.core.service.ChatService`,
:mod:`chatstream.api` serves HTTP (the same functions behind the mounted routes and these methods)
and :mod:`chatstream.console.local` the console. Nothing inside the package imports this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .api import seed_handlers as handlers
from .api.errors import install_error_handlers
from .api.http import SERVICE_STATE
from .api.schemas import load_body
from .api.seed_chat import chat_stream_response
from .api.seed_middlewares import append_middlewares
from .api.seed_page import PageArgument, index_response, script_response
from .api.seed_routes import seed_router, select_names
from .api.web_page import UI_INIT_STATE
from .bootstrap import ServiceOptions, build_service
from .console.local import console_turn
from .core.service import ChatService
from .core.turn_stream import FinishCallback
from .engine.base import Engine
from .history.base import RequestHandler
from .prompts.base import AbstractChatPrompt
from .settings import GENERATION_DEFAULTS as D


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
        max_new_tokens: int = D.max_new_tokens,
        context_len: int = D.context_len,
        temperature: float = D.temperature,
        top_k: int | None = D.top_k,
        top_p: float | None = D.top_p,
        repetition_penalty: float | None = D.repetition_penalty,
        repetition_penalty_method: str = D.repetition_penalty_method,
        add_special_tokens: bool | None = None,
        request_handler: RequestHandler | None = None,
        logger: logging.Logger | None = None,
        *,
        engine: Engine | None = None,
        mock_type: str | None = None,
        token_sampler: Any = None,
        **options: Any,
    ) -> None:
        """The seed's 19 options; keyword-only extras are :class:`~chatstream.bootstrap.ServiceOptions`
        fields (``kv_cache_tokens``, ``prefill_chunk_tokens``, …). ``token_sampler`` (0.3.0's option):
        a sampler with ``do_sample(logits, top_k, top_p, temperature, past_tokens, penalty, …)``
        that the engine calls for every row (``TokenSamplerHft`` is the engine's own order)."""
        self.token_sampler = token_sampler
        seed_options = ServiceOptions(
            device=device,
            num_of_concurrent_executions=num_of_concurrent_executions,
            max_queue_size=max_queue_size,
            too_many_request_as_http_error=too_many_request_as_http_error,
            use_mock_response=use_mock_response,
            mock_params=dict(mock_params) if mock_params else {"type": mock_type or "round"},
            max_new_tokens=max_new_tokens,
            context_len=context_len,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            repetition_penalty_method=repetition_penalty_method,
            add_special_tokens=add_special_tokens,
            **options,
        )
        self.service: ChatService = build_service(
            seed_options,
            model=model,
            tokenizer=tokenizer,
            chat_prompt_clazz=chat_prompt_clazz,
            token_sampler=token_sampler,
            request_handler=request_handler,
            engine=engine,
            logger=logger,
        )
        self.chat_prompt_for_single_user_on_console: AbstractChatPrompt | None = None

    # --- what the seed's users read ------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return self.service.engine

    @property
    def request_handler(self) -> RequestHandler:
        return self.service.request_handler

    @property
    def chat_prompt_clazz(self) -> type[AbstractChatPrompt]:
        return self.service.chat_prompt_clazz

    @property
    def logger(self) -> logging.Logger:
        return self.service.logger

    @property
    def metrics(self) -> Any:
        return self.service.metrics

    @property
    def params(self) -> dict[str, Any]:
        """The generation values in force (the seed's names); changing them changes what follows."""
        return self.service.generation.values

    @property
    def num_of_concurrent_executions(self) -> int:
        return self.service.limits.max_running

    @property
    def max_queue_size(self) -> int:
        return self.service.limits.max_waiting

    @property
    def too_many_request_as_http_error(self) -> bool:
        return self.service.limits.too_many_request_as_http_error

    # --- life cycle -----------------------------------------------------------------------------
    async def start_queue_worker(self) -> None:
        """Start the engine worker and open the history store (the seed's startup hook)."""
        await self.service.start()

    async def queue_worker(self) -> None:
        """0.3.0's worker coroutine: serves until its task is cancelled, then stops the service.

        ``asyncio.create_task(chat_stream.queue_worker())`` is what 0.3.0's ``start_queue_worker``
        did; here the engine runs its own worker, so this only holds the service open.
        """
        await self.service.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.service.shutdown()

    async def shutdown(self, drain_timeout: float = 0.0) -> bool:
        """Refuse new work, let admitted work finish for up to ``drain_timeout`` s, then stop."""
        return await self.service.shutdown(drain_timeout)

    def get_load(self) -> dict[str, Any]:
        return load_body(self.service.load())

    # --- HTTP -----------------------------------------------------------------------------------
    async def handle_chat_stream_request(
        self, request: Request, request_body: Any = None, callback: FinishCallback | None = None
    ) -> Response:
        """Queue the request and stream the reply (the seed's entry point for ``/chat_stream``)."""
        return await chat_stream_response(self.service, request, request_body, callback)

    handle_starlette_request = handle_chat_stream_request

    # One method per seed endpoint, so each can be mounted on a path of the user's choosing; each
    # answers exactly as the route ``append_apis`` mounts (both call api.seed_handlers).
    async def handle_clear_context_request(
        self, request: Request, request_body: Any = None, callback: Any = None
    ) -> Response:
        """Forget the conversation (``callback`` is accepted for 0.3.0's signature, never called)."""
        return await handlers.clear_context_response(self.service, request, request_body)

    async def handle_get_prompt_request(self, request: Request) -> Response:
        return await handlers.get_prompt_response(self.service, request)

    async def handle_set_generation_params_request(
        self, request: Request, request_body: Any = None
    ) -> Response:
        return await handlers.set_generation_params_response(self.service, request, request_body)

    async def handle_get_generation_params_request(self, request: Request) -> Response:
        return await handlers.get_generation_params_response(self.service, request)

    async def handle_set_feedback_request(
        self, request: Request, opts: Mapping[str, Any] | None = None, request_body: Any = None
    ) -> Response:
        """Store feedback; ``opts={"on_feedback_received": fn}`` then calls ``fn(feedback_dict)``."""
        callback = (opts or {}).get("on_feedback_received")
        return await handlers.set_feedback_response(self.service, request, request_body, callback)

    async def handle_get_load_request(self, request: Request | None = None) -> Response:
        return handlers.get_load_response(self.service)

    async def handle_get_resource_usage_request(self, request: Request | None = None) -> Response:
        return handlers.resource_usage_response()

    async def index(self, *args: PageArgument, opts: Mapping[str, Any] | None = None) -> Response:
        """The chat page: ``index(request, response, opts)`` or ``index(response, opts=...)``, with
        ``opts={"ui_init_params": {...}}`` (welcomeMessage, developMode, style_opts, …)."""
        return index_response(args, opts)

    async def js(self, *args: PageArgument) -> Response:
        """The page's script: ``js(request, response)`` or ``js(response)``."""
        return script_response(args)

    def append_apis(self, app: Any, opts: dict[str, Any] | None = None) -> None:
        """Add the seed's endpoints to ``app``: ``{"all": True}``, ``{"include": [...]}`` or
        ``{"exclude": [...]}``; ``"web_ui_params"`` (0.3.0's option) are the page's ``ui_init_params``."""
        current = getattr(app.state, SERVICE_STATE, None)
        if current is not None and current is not self.service:
            raise ValueError("this app already serves another ChatStream")
        setattr(app.state, SERVICE_STATE, self.service)
        if opts and opts.get("web_ui_params"):
            setattr(app.state, UI_INIT_STATE, dict(opts["web_ui_params"]))
        install_error_handlers(app)
        app.include_router(seed_router(select_names(opts or {"all": True})))

    def append_middlewares(self, app: Any, opts: Mapping[str, Any] | None = None) -> None:
        """Add the session middleware the endpoints need (0.3.0's ``fast_session``/``cors`` options)."""
        append_middlewares(app, opts)

    # --- console --------------------------------------------------------------------------------
    async def handle_console_input(self, user_input: str) -> AsyncIterator[tuple[str, str, str]]:
        """Single-user console chat: yields ``(response_text, updated_text, pos)``, pos begin|mid|end."""
        if self.chat_prompt_for_single_user_on_console is None:
            self.chat_prompt_for_single_user_on_console = self.chat_prompt_clazz()
        async for item in console_turn(self.service, self.chat_prompt_for_single_user_on_console, user_input):
            yield item
