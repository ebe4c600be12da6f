"""Generation engines behind one interface: the mock and the continuous-batching transformers engine."""

from .base import Engine, EngineError, EngineStats, GenerationRequest, SamplingParams, TokenDelta
from .mock import MockEngine

__all__ = [
    "Engine",
    "EngineError",
    "EngineStats",
    "GenerationRequest",
    "MockEngine",
    "SamplingParams",
    "TokenDelta",
]
