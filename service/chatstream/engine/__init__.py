"""Generation engines behind one interface: the mock and the continuous-batching transformers engine."""

from .base import Engine, EngineStats, GenerationRequest, SamplingParams, TokenDelta
from .mock import MockEngine

__all__ = [
    "Engine",
    "EngineStats",
    "GenerationRequest",
    "MockEngine",
    "SamplingParams",
    "TokenDelta",
]
