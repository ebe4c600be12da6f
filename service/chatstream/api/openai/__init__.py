"""OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` on the same queue, engine and history.

Every answer, errors included, is in OpenAI's shapes so the official SDKs, LangChain and Open WebUI
work unchanged. Laid out like vLLM's entrypoints: :mod:`.protocol` (wire models, request checks,
the error format), :mod:`.stream` (SSE chunks and keep-alive), :mod:`.serving` (a request → a
service turn → a response) and :mod:`.router` (the routes).
"""

from .router import openai_router
from .serving import OpenAIServing

__all__ = ["OpenAIServing", "openai_router"]
