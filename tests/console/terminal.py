"""Drive ``chatstream chat`` in a real pseudo-terminal, as a person would."""

from __future__ import annotations

import os
import sys
import time

import httpx
import pexpect

PROMPT = "you> "
ROUND_1 = "Hello! I am a mock model."
ROUND_2 = "This is the second reply in the round."
LONG_START = "Streaming chat servers send"
LONG_END = "during a rolling update."


def spawn_chat(*args: str, timeout: float = 30) -> pexpect.spawn:
    """Start ``chatstream chat ARGS`` in a pty and wait for the first prompt."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "chatstream", "chat", *args],
        encoding="utf-8",
        timeout=timeout,
        env=env,
        dimensions=(50, 250),
    )
    child.expect_exact(PROMPT)
    return child


def say(child: pexpect.spawn, line: str) -> str:
    """Type a line, wait for the next prompt, return everything printed in between (minus the echo)."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return child.before.replace("\r\n", "\n").split("\n", 1)[-1]


def quit_chat(child: pexpect.spawn) -> None:
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def wait_slots_free(url: str, timeout: float = 15) -> dict:
    """Poll /get_load until nothing runs (the server noticed a closed stream)."""
    deadline = time.monotonic() + timeout
    load: dict = {}
    while time.monotonic() < deadline:
        load = httpx.get(url + "/get_load", timeout=5).json()
        if load["processing"] == 0 and load["waiting"] == 0:
            return load
        time.sleep(0.1)
    raise AssertionError(f"slot still taken after {timeout}s: {load}")
