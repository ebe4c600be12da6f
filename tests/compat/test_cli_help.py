"""``chatstream serve --help`` says each setting's default (and never prints the placeholder secret)."""

from __future__ import annotations

import re
import subprocess

import pytest

from chatstream.settings import DEFAULT_SESSION_SECRET
from tests.compat.helpers import PY, app_env


@pytest.fixture(scope="module")
def help_text() -> str:
    done = subprocess.run(
        [PY, "-m", "chatstream", "serve", "--help"], capture_output=True, text=True, timeout=60, env=app_env()
    )
    assert done.returncode == 0, done.stderr
    return re.sub(r"\s+", " ", done.stdout)  # argparse wraps lines where it likes


@pytest.mark.parametrize(
    "flag, default",
    [
        ("--host HOST", "127.0.0.1"),
        ("--port PORT", "8000"),
        ("--num-of-concurrent-executions NUM_OF_CONCURRENT_EXECUTIONS", "2"),
        ("--max-queue-size MAX_QUEUE_SIZE", "5"),
        ("--max-new-tokens MAX_NEW_TOKENS", "256"),
        ("--mock-params MOCK_PARAMS", '{"type": "round"}'),
        ("--history HISTORY", "auto"),
        ("--sqlite-path SQLITE_PATH", "chatstream.db"),
        ("--web-ui, --no-web-ui", "true"),
    ],
)
def test_every_flag_shows_its_default(help_text, flag, default):
    after = help_text.split(f" {flag} ", 1)[1]
    assert f"default: {default};" in after.split(" --", 1)[0], after[:300]


def test_the_data_dir_default_follows_xdg(help_text):
    assert re.search(r"--data-dir DATA_DIR .*default: \S+/chatstream;", help_text)


def test_the_placeholder_secret_is_not_printed(help_text):
    assert DEFAULT_SESSION_SECRET not in help_text
    assert "default: unset" in help_text.split(" --session-secret SESSION_SECRET ", 1)[1][:200]
