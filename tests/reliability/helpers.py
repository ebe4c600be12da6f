"""Helpers for reliability tests: streams running in threads against a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

EOS = "<::EOS::>"


def last_text(body: str) -> str:
    """The final cumulative reply of a text/plain ``/chat_stream`` body."""
    chunks = [chunk for chunk in body.split(EOS) if chunk != ""]
    return chunks[-1] if chunks else ""


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


@dataclass
class BackgroundStream:
    """One ``POST /chat_stream`` read to its end in a thread; records status, body and first-byte time."""

    url: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    body: str = ""
    first_byte: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def start(self) -> BackgroundStream:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=120) as client:
                with client.stream(
                    "POST", "/chat_stream", json={"user_input": self.text}, headers=self.headers
                ) as response:
                    self.status = response.status_code
                    self.response_headers = dict(response.headers)
                    for chunk in response.iter_text():
                        if chunk:
                            self.first_byte.set()
                        self.body += chunk
        except BaseException as exc:  # recorded, asserted by the test
            self.error = exc
        finally:
            self.done.set()
