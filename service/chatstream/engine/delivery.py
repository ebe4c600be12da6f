"""Deltas from the engine's worker thread to each stream's event loop, and reading them there."""

from __future__ import annotations

import asyncio

from .base import TokenDelta
from .batch import Sequence


class Outbox:
    """The deltas of one engine step, by event loop: one wake-up per loop per step."""

    def __init__(self) -> None:
        self._items: dict[asyncio.AbstractEventLoop, list[tuple[Sequence, TokenDelta]]] = {}

    @property
    def pending(self) -> bool:
        """Some delta was sent since the last flush."""
        return bool(self._items)

    def send(self, seq: Sequence, delta: TokenDelta) -> None:
        self._items.setdefault(seq.loop, []).append((seq, delta))

    def fail(self, seq: Sequence, exc: BaseException) -> None:
        """End ``seq`` with an error delta saying why; other sequences are not affected."""
        self.send(seq, seq.fail(exc))

    def flush(self) -> None:
        """Hand every loop its deltas, however many streams got one."""
        items, self._items = self._items, {}
        for loop, batch in items.items():
            try:
                loop.call_soon_threadsafe(deliver, batch)
            except RuntimeError:  # that event loop is closed: nobody is listening any more
                pass


def deliver(items: list[tuple[Sequence, TokenDelta]]) -> None:
    """On the stream's event loop: queue each delta for its stream."""
    for seq, delta in items:
        seq.out.put_nowait(delta)


async def next_delta(out: asyncio.Queue) -> TokenDelta:
    """The next delta of a stream; a consumer that fell behind gets one delta, not a backlog."""
    delta = await out.get()
    while not delta.finished and not out.empty():
        delta = TokenDelta.merged(delta, out.get_nowait())
    return delta
