"""``chatstream serve``: uvicorn in-process, with a drain on SIGTERM.

Plain uvicorn stops listening as soon as SIGTERM arrives, so requests that a load balancer still
routes get connection errors and running streams are cut after its own timeout. Here the first
SIGTERM/SIGINT only starts draining: ``/readyz`` turns 503 at once, new chat requests get 503, admitted
streams run to the end for up to ``drain_timeout_sec``; then uvicorn is told to exit. A second signal
exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvicorn

from .app import create_app, get_service_of
from .core.service import ChatService
from .settings import Settings

logger = logging.getLogger("chatstream")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_timeout: float) -> None:
        super().__init__(config)
        self.drain_timeout = drain_timeout
        self._draining = False
        self.app_ref: Any = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._draining:
            # A second signal: stop now (uvicorn's own handler would wait for the streams again).
            self.force_exit = self.should_exit = True
            return
        if self.app_ref is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        service = get_service_of(self.app_ref)
        service.start_draining()
        logger.info("signal %s: draining (up to %.0fs), readiness now fails", sig, self.drain_timeout)
        loop = asyncio.get_event_loop()
        loop.create_task(self._drain_then_exit(service))

    async def _drain_then_exit(self, service: ChatService) -> None:
        drained = await service.wait_idle(self.drain_timeout)
        logger.info("drain %s; stopping", "complete" if drained else "timed out")
        if not drained:
            # The streams had their drain time: cut them now rather than wait that long again.
            self.config.timeout_graceful_shutdown = 1
        self.should_exit = True


def serve(settings: Settings) -> int:
    """Run the service until a signal; returns the process exit code."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(int(settings.drain_timeout_sec), 1),
        lifespan="on",
    )
    server = DrainingServer(config, settings.drain_timeout_sec)
    server.app_ref = app
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, server.handle_exit)
    server.run()
    return 0
