"""A real chatstream app whose engine fails on purpose for some prompts (run with uvicorn as a process).

``BOOM-RAISE`` in the user message: the engine raises mid-stream (an engine bug).
``BOOM-DELTA`` in the user message: the engine reports ``finish_reason="error"``, as the transformers
engine does when a step fails for one sequence. Any other prompt streams normally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatstream.app import create_app
from chatstream.chat_stream import ChatStream
from chatstream.engine.base import GenerationRequest, TokenDelta
from chatstream.engine.mock import MockEngine
from chatstream.settings import Settings


class FaultyEngine(MockEngine):
    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        produced = 0
        async for delta in super().generate(request):
            if delta.text:
                produced += 1
            if produced == 3 and "BOOM-RAISE" in request.last_user_message:
                raise RuntimeError("simulated engine failure")
            if produced == 3 and "BOOM-DELTA" in request.last_user_message:
                yield TokenDelta(finished=True, finish_reason="error", error="simulated step failure")
                return
            yield delta


settings = Settings(
    use_mock_response=True, history="memory", num_of_concurrent_executions=4, max_queue_size=4
)
engine = FaultyEngine({"type": "long", "time_per_token_sec": 0.02})
app = create_app(
    settings, ChatStream(engine=engine, use_mock_response=True, num_of_concurrent_executions=4).service
)
