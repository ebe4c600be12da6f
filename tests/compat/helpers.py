"""Run a user's server script (an upstream docs snippet) as a real process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.fixtures.server import REPO, ServerHandle, free_port, wait_ready

APPS = Path(__file__).resolve().parent / "apps"
PY = sys.executable
#: the mock's first three replies in the ``round`` order (chatstream.engine.mock.ROUND_REPLIES)
FIRST_REPLY = "Hello! I am a mock model. I answer instantly so you can try the service without a GPU."
SECOND_REPLY = "This is the second reply in the round. Each turn of a conversation gets the next sentence."


def app_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's process: no CHATSTREAM_* settings, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSTREAM_")}
    paths = [str(REPO), str(REPO / "service"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}


@contextlib.contextmanager
def run_app(
    command: list[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/openapi.json",
    timeout: float = 120,
) -> Iterator[ServerHandle]:
    """Start ``command`` (``{port}`` filled in its words and in ``env``'s values) until the block ends."""
    port = free_port()
    fill = {key: value.replace("{port}", str(port)) for key, value in (env or {}).items()}
    args = [part.replace("{port}", str(port)) for part in command]
    log_path = tmp_path / f"app-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=app_env(fill), cwd=tmp_path
        )
    handle = ServerHandle(f"http://127.0.0.1:{port}", port, process, log_path, args)
    try:
        wait_ready(handle.url, process, timeout, log_path, ready_path)
        yield handle
    finally:
        handle.stop()
