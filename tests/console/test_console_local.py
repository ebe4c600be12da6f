"""``chatstream chat`` with the model in-process (the mock, and a tiny real model), driven through a pty."""

from __future__ import annotations

import pexpect
import pytest

from .terminal import LONG_END, LONG_START, ROUND_1, ROUND_2, quit_chat, say, spawn_chat

MOCK_ROUND = ["--mock", "--mock-params", '{"type": "round", "time_per_token_sec": 0.02}']
MOCK_LONG = ["--mock", "--mock-params", '{"type": "long", "time_per_token_sec": 0.2}']


def test_two_turns_history_params_regenerate_clear() -> None:
    child = spawn_chat(*MOCK_ROUND)
    try:
        assert f"ai> {ROUND_1}" in say(child, "hello")
        assert f"ai> {ROUND_2}" in say(child, "and again")

        history = say(child, "/history")
        assert "you: hello" in history and f"ai: {ROUND_1}" in history
        assert "you: and again" in history and f"ai: {ROUND_2}" in history

        assert "temperature=0.7" in say(child, "/params temperature=0.7 top_k=20")
        shown = say(child, "/params")
        assert "temperature=0.7" in shown and "top_k=20" in shown
        assert "unknown parameter 'bogus'" in say(child, "/params bogus=1")

        # Regenerate answers turn 2 again (the round mock keys its reply on the turn number).
        assert f"ai> {ROUND_2}" in say(child, "/regenerate")
        assert say(child, "/history").count("ai: ") == 2

        assert "[history cleared]" in say(child, "/clear")
        assert "[history is empty]" in say(child, "/history")
        # A fresh conversation starts the round again.
        assert f"ai> {ROUND_1}" in say(child, "hello after clear")
        quit_chat(child)
    finally:
        child.close(force=True)


def test_ctrl_c_stops_the_reply_not_the_program() -> None:
    child = spawn_chat(*MOCK_LONG)
    try:
        child.sendline("tell me about streaming")
        child.expect_exact(LONG_START)
        child.sendintr()
        child.expect_exact("[stopped]")
        assert LONG_END not in child.before
        child.expect_exact("you> ")
        # Still alive and the stopped part of the reply is kept in the history.
        history = say(child, "/history")
        assert "you: tell me about streaming" in history
        assert f"ai: {LONG_START}" in history and LONG_END not in history
        # Ctrl-C at the prompt does not leave either.
        child.sendintr()
        child.expect_exact("type /quit or press Ctrl-D to leave")
        child.expect_exact("you> ")
        assert "[params]" in say(child, "/params")
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)


def test_without_a_model_the_command_says_what_to_pass() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "chatstream", "chat"], capture_output=True, text=True, timeout=60, input=""
    )
    assert result.returncode == 2
    assert "--model" in result.stderr and "--mock" in result.stderr


def test_tiny_real_model_in_process(request: pytest.FixtureRequest) -> None:
    try:
        model_dir = request.getfixturevalue("tiny_model_dir")
    except pytest.FixtureLookupError:
        pytest.skip("tests/fixtures/tiny_model.py (fixture tiny_model_dir) is not there yet")
    child = spawn_chat("--model", str(model_dir), "--max-new-tokens", "8", "--temperature", "0", timeout=120)
    try:
        out = say(child, "hello")
        assert "failed" not in out and "[stopped]" not in out, out
        history = say(child, "/history")
        assert "you: hello" in history and "ai: " in history, history
        quit_chat(child)
    finally:
        child.close(force=True)
