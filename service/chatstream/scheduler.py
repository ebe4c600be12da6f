"""Admission control: exactly N generations run, exactly M wait, the rest are refused at once.

Written by hand because no library offers this shape: a semaphore plus a bounded FIFO where a place
is *reserved* synchronously at arrival (so a burst of N+M simultaneous requests is admitted whole and
the N+M+1th is refused before any await), a waiter that leaves (client disconnect) gives its place
back, and a drain mode that refuses new work while the admitted work finishes. Everything runs on
the event loop thread, so plain counters are safe without locks.
"""

from __future__ import annotations

import asyncio
import collections
import time


class QueueFullError(Exception):
    """All N running slots and M waiting places are taken."""


class DrainingError(Exception):
    """The server is shutting down and admits no new work."""


class Ticket:
    """One admitted request: waiting for a slot, then holding it until released."""

    __slots__ = ("_scheduler", "_future", "created", "started", "released")

    def __init__(self, scheduler: Scheduler, granted: bool) -> None:
        self._scheduler = scheduler
        loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = loop.create_future()
        self.created = time.perf_counter()
        self.started: float | None = None
        self.released = False
        if granted:
            self._grant()

    def _grant(self) -> None:
        self.started = time.perf_counter()
        if not self._future.done():
            self._future.set_result(None)

    @property
    def running(self) -> bool:
        return self.started is not None and not self.released

    @property
    def queue_wait(self) -> float:
        return (self.started or time.perf_counter()) - self.created

    async def wait(self) -> None:
        """Wait (FIFO) until this ticket holds a running slot; cancellation gives the place back."""
        try:
            await asyncio.shield(self._future)
        except asyncio.CancelledError:
            self.release()
            raise

    def release(self) -> None:
        """Give back the slot or the waiting place. Idempotent."""
        if self.released:
            return
        self.released = True
        self._scheduler._on_release(self)


class Scheduler:
    """N running slots and M waiting places, FIFO."""

    def __init__(self, max_running: int, max_waiting: int) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.running = 0
        self._waiting: collections.deque[Ticket] = collections.deque()
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def reserve(self) -> Ticket:
        """Admit a request now or raise; never awaits, so simultaneous arrivals are ordered fairly."""
        if self.draining:
            raise DrainingError("server is shutting down")
        if self.running < self.max_running and not self._waiting:
            self.running += 1
            ticket = Ticket(self, granted=True)
        elif len(self._waiting) < self.max_waiting:
            ticket = Ticket(self, granted=False)
            self._waiting.append(ticket)
        else:
            raise QueueFullError("too many requests")
        self._idle.clear()
        return ticket

    def _on_release(self, ticket: Ticket) -> None:
        if ticket.started is not None:
            self.running -= 1
        else:
            try:
                self._waiting.remove(ticket)
            except ValueError:
                pass
        while self._waiting and self.running < self.max_running:
            nxt = self._waiting.popleft()
            self.running += 1
            nxt._grant()
        if self.running == 0 and not self._waiting:
            self._idle.set()

    def start_draining(self) -> None:
        self.draining = True

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until nothing runs or waits; False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
