"""The composition root: engine, history handler, metrics and chat service, built from options.

The facade (``ChatStream``'s constructor options) and the app factory (:class:`Settings`) both come
here, so a service is assembled one way whichever door it was asked for through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

from .core.generation import SAMPLING_KEYS, GenerationOptions
from .core.service import ChatService, ServiceLimits
from .engine.base import Engine
from .engine.factory import build_engine
from .history.base import RequestHandler
from .history.session import SimpleSessionRequestHandler
from .prompts.base import AbstractChatPrompt
from .prompts.chat_template import ChatTemplatePrompt
from .prompts.registry import resolve_prompt_class
from .settings import GENERATION_DEFAULTS, Settings
from .version import __version__

D = GENERATION_DEFAULTS


def bind_prompt_class(
    chat_prompt_clazz: type[AbstractChatPrompt] | None, tokenizer: Any
) -> type[AbstractChatPrompt]:
    """No class, or a chat-template class without a tokenizer: the model's own chat template."""
    if chat_prompt_clazz is None or (
        isinstance(chat_prompt_clazz, type)
        and issubclass(chat_prompt_clazz, ChatTemplatePrompt)
        and chat_prompt_clazz.tokenizer is None
    ):
        return (chat_prompt_clazz or ChatTemplatePrompt).bind(tokenizer)
    return chat_prompt_clazz


@dataclass(frozen=True)
class ServiceOptions:
    """The seed's constructor options and ours, named exactly like the :class:`Settings` fields."""

    device: str | None = None
    num_of_concurrent_executions: int = 2
    max_queue_size: int = 5
    too_many_request_as_http_error: bool = False
    use_mock_response: bool = False
    mock_params: dict[str, Any] | None = None
    max_new_tokens: int = D.max_new_tokens
    context_len: int = D.context_len
    temperature: float = D.temperature
    top_k: int | None = D.top_k
    top_p: float | None = D.top_p
    repetition_penalty: float | None = D.repetition_penalty
    repetition_penalty_method: str = D.repetition_penalty_method
    add_special_tokens: bool | None = None
    kv_cache_tokens: int = 0
    prefix_cache_tokens: int | None = None
    prefill_chunk_tokens: int = 512
    max_new_tokens_cap: int = 4096
    max_input_chars: int = 16_000
    retry_after_sec: int = 1
    model_name: str | None = None
    metrics_enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceOptions:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def build_service(
    options: ServiceOptions,
    *,
    model: Any = None,
    tokenizer: Any = None,
    chat_prompt_clazz: type[AbstractChatPrompt] | None = None,
    request_handler: RequestHandler | None = None,
    engine: Engine | None = None,
    logger: logging.Logger | None = None,
    token_sampler: Any = None,
) -> ChatService:
    """A ready-to-start service: the given engine, or one built for ``model`` (or the mock)."""
    o = options
    if engine is None:
        engine = build_engine(
            model,
            tokenizer,
            o.device,
            use_mock_response=o.use_mock_response,
            mock_params=dict(o.mock_params) if o.mock_params else {"type": "round"},
            max_batch_size=o.num_of_concurrent_executions,
            kv_cache_tokens=o.kv_cache_tokens,
            prefix_cache_tokens=o.prefix_cache_tokens,
            prefill_chunk_tokens=o.prefill_chunk_tokens,
            model_name=o.model_name,
            token_sampler=token_sampler,
        )
    service = ChatService(
        engine,
        request_handler or SimpleSessionRequestHandler(),
        bind_prompt_class(chat_prompt_clazz, tokenizer),
        limits=ServiceLimits(
            max_running=o.num_of_concurrent_executions,
            max_waiting=o.max_queue_size,
            too_many_request_as_http_error=o.too_many_request_as_http_error,
            max_input_chars=o.max_input_chars,
            retry_after_sec=o.retry_after_sec,
            context_len=o.context_len,
            add_special_tokens=o.add_special_tokens,
        ),
        generation=GenerationOptions(
            **{key: getattr(o, key) for key in SAMPLING_KEYS},
            max_new_tokens=o.max_new_tokens,
            max_new_tokens_cap=o.max_new_tokens_cap,
        ),
        logger=logger,
    )
    if o.metrics_enabled:
        service.metrics = build_metrics(service)
    return service


def build_metrics(service: ChatService) -> Any:
    """The Prometheus metrics of ``service`` (its own registry: services in one process never clash)."""
    from .metrics import ServiceMetrics

    engine = service.engine
    return ServiceMetrics(
        model_name=engine.model_name,
        engine_info={k: str(v) for k, v in engine.info().items()},
        max_concurrency=service.limits.max_running,
        max_queue_size=service.limits.max_waiting,
        load_fn=service.load_pair,
        engine_stats_fn=engine.stats,
        version=__version__,
    )


def make_request_handler(settings: Settings) -> RequestHandler:
    """'memory' → sessions; 'sql'/'auto' → the SQL store (PostgreSQL or the embedded SQLite file)."""
    if settings.history == "memory":
        return SimpleSessionRequestHandler()
    from .history.sql import PostgresRequestHandler

    return PostgresRequestHandler(settings=settings)


def service_from_settings(settings: Settings, request_handler: RequestHandler | None = None) -> ChatService:
    """Load the model the settings name (unless mock mode) and build the service around it."""
    model = tokenizer = None
    if not settings.use_mock_response:
        if not settings.model:
            raise ValueError("no model: pass --model DIR_OR_HUB_ID (or --mock to run without one)")
        from .engine.loader import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(
            settings.model,
            tokenizer_id=settings.tokenizer,
            device=settings.device,
            dtype=settings.dtype,
            trust_remote_code=settings.trust_remote_code,
            num_gpus=settings.num_gpus,
            max_gpu_memory=settings.max_gpu_memory,
        )
    return build_service(
        ServiceOptions.from_settings(settings),
        model=model,
        tokenizer=tokenizer,
        chat_prompt_clazz=resolve_prompt_class(settings.chat_prompt_clazz),
        request_handler=request_handler or make_request_handler(settings),
    )
