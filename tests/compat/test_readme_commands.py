"""The README's commands, typed as a new user types them, in a fresh copy of the checkout: the tiny
model is made and served, the mock is served, both answer, and ``git status`` stays clean (runtime
files go to the data directory, ``./tiny`` is ignored)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_seed.helpers import EOS
from tests.fixtures.server import REPO, ServerHandle, free_port, wait_ready

pytestmark = pytest.mark.slow

MAKE_TINY = "chatstream make-tiny-model ./tiny"
SERVE_TINY = "chatstream serve --model ./tiny"
SERVE_MOCK = "chatstream serve --mock"


def git(*args: str, cwd: Path) -> str:
    identity = ["-c", "user.name=readme-test", "-c", "user.email=readme-test@localhost"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh repository holding the working tree as it is (tracked and new files, nothing ignored)."""
    clone = tmp_path_factory.mktemp("readme") / "chatstream"
    for name in git("ls-files", "-z", "-co", "--exclude-standard", cwd=REPO).split("\0"):
        source = REPO / name
        if name and source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    git("init", "-q", cwd=clone)
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "fresh clone", cwd=clone)
    return clone


def user_env(checkout: Path, port: int | None = None) -> dict[str, str]:
    """A new user's shell: a home of its own, no CHATSTREAM_* settings, this checkout's code."""
    prefixes = ("CHATSTREAM_", "XDG_", "KUBERNETES_")  # a laptop, not a pod
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(HOME=str(checkout.parent / "home"), PYTHONPATH=str(checkout / "service"), PYTHONUNBUFFERED="1")
    if port is not None:
        env["CHATSTREAM_PORT"] = str(port)  # the command stays as written; the port must be free
    return env


def command(line: str) -> list[str]:
    readme = (REPO / "README.md").read_text()
    assert f"`{line}`" in readme or f"{line}\n" in readme, f"the README no longer says {line!r}"
    words = shlex.split(line)
    executable = shutil.which(words[0])
    if executable is None:
        pytest.skip(f"{words[0]} is not on PATH (pip install -e . installs it)")
    return [executable, *words[1:]]


@contextlib.contextmanager
def serving(line: str, checkout: Path) -> Iterator[ServerHandle]:
    port = free_port()
    log_path = checkout.parent / f"serve-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command(line), cwd=checkout, env=user_env(checkout, port), stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerHandle(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_ready(server.url, process, 180, log_path)
        yield server
    finally:
        assert server.stop() == 0, server.log()


def answers(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        reply = client.post("/chat_stream", json={"user_input": "hi"})
        assert reply.status_code == 200 and reply.text.endswith(EOS), reply.text
        assert client.get("/").status_code == 200


def test_readme_commands_serve_and_leave_the_checkout_clean(checkout: Path) -> None:
    made = subprocess.run(
        command(MAKE_TINY), cwd=checkout, env=user_env(checkout), capture_output=True, text=True, timeout=600
    )
    assert made.returncode == 0, made.stderr
    assert (checkout / "tiny" / "config.json").is_file()
    with serving(SERVE_TINY, checkout) as server:
        answers(server)
        assert "generated key kept in" in server.log()
    with serving(SERVE_MOCK, checkout) as server:
        answers(server)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=checkout) == ""
    data = checkout.parent / "home" / ".local" / "share" / "chatstream"
    assert (data / "chatstream.db").is_file()
    assert (data / "chatstream.session-secret").stat().st_mode & 0o777 == 0o600
