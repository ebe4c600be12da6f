"""``chatstream chat --url``: a person in a terminal talking to a running service (real HTTP)."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.fixtures.server import free_port, run_server

from .terminal import LONG_END, LONG_START, ROUND_1, ROUND_2, quit_chat, say, spawn_chat, wait_slots_free

ROUND = ["--mock", "--history", "memory", "--mock-params", '{"type": "round", "time_per_token_sec": 0.01}']
LONG_ONE_SLOT = [
    "--mock",
    "--history",
    "memory",
    "--mock-params",
    '{"type": "long", "time_per_token_sec": 0.2}',
    "--num-of-concurrent-executions",
    "1",
    "--max-queue-size",
    "0",
]


def test_chat_stream_api_two_turns_params_regenerate_clear() -> None:
    with run_server(*ROUND) as server:
        child = spawn_chat("--url", server.url)
        try:
            assert f"ai> {ROUND_1}" in say(child, "hello")
            assert f"ai> {ROUND_2}" in say(child, "and again")  # same session cookie → turn 2
            history = say(child, "/history")
            assert "you: hello" in history and f"ai: {ROUND_2}" in history

            assert "temperature=0.7" in say(child, "/params temperature=0.7")
            assert "temperature=0.7" in say(child, "/params")  # read back from the server

            assert f"ai> {ROUND_2}" in say(child, "/regenerate")
            assert say(child, "/history").count("ai: ") == 2

            assert "[history cleared]" in say(child, "/clear")
            assert "[history is empty]" in say(child, "/history")
            assert f"ai> {ROUND_1}" in say(child, "hello after clear")
            quit_chat(child)
        finally:
            child.close(force=True)


def test_openai_api_keeps_history_client_side() -> None:
    with run_server(*ROUND) as server:
        child = spawn_chat("--url", server.url, "--api", "openai")
        try:
            assert f"ai> {ROUND_1}" in say(child, "hello")
            # The whole conversation is resent, so the server sees turn 2.
            assert f"ai> {ROUND_2}" in say(child, "and again")
            assert f"ai: {ROUND_2}" in say(child, "/history")
            assert f"ai> {ROUND_2}" in say(child, "/regenerate")
            assert "temperature=0.2" in say(child, "/params temperature=0.2")
            assert "[history cleared]" in say(child, "/clear")
            assert f"ai> {ROUND_1}" in say(child, "hello after clear")
            quit_chat(child)
        finally:
            child.close(force=True)


@pytest.mark.parametrize("api", ["chat_stream", "openai"])
def test_ctrl_c_closes_the_stream_and_frees_the_slot(api: str) -> None:
    with run_server(*LONG_ONE_SLOT) as server:
        child = spawn_chat("--url", server.url, "--api", api)
        try:
            child.sendline("tell me about streaming")
            child.expect_exact(LONG_START)
            child.sendintr()
            child.expect_exact("[stopped]")
            assert LONG_END not in child.before
            child.expect_exact("you> ")
            # The server saw the closed connection and gave the only slot back.
            wait_slots_free(server.url)
            assert "[params]" in say(child, "/params")
            quit_chat(child)
        finally:
            child.close(force=True)


def _hold_the_only_slot(url: str, admitted: threading.Event, release: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        with client.stream("POST", "/chat_stream", json={"user_input": "hold"}) as response:
            for _ in response.iter_text():
                admitted.set()
                if release.is_set():
                    return


@pytest.mark.parametrize("as_http_error", [False, True], ids=["http200-body", "http429"])
def test_too_many_requests_prints_a_message_and_the_prompt_returns(as_http_error: bool) -> None:
    extra = ["--too-many-request-as-http-error"] if as_http_error else []
    with run_server(*LONG_ONE_SLOT, *extra) as server:
        admitted, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_the_only_slot, args=(server.url, admitted, release))
        holder.start()
        child = None
        try:
            assert admitted.wait(30)
            child = spawn_chat("--url", server.url)
            out = say(child, "hello?")
            assert "server is busy (too_many_requests)" in out
            assert "ai> " not in out
            if as_http_error:
                assert "retry after 1s" in out
            release.set()
            holder.join(30)
            wait_slots_free(server.url)
            # Once the slot is free the same session gets a reply (stopped early to save time).
            child.sendline("hello again")
            child.expect_exact(LONG_START)
            child.sendintr()
            child.expect_exact("[stopped]")
            child.expect_exact("you> ")
            quit_chat(child)
        finally:
            release.set()
            holder.join(30)
            if child is not None:
                child.close(force=True)


def test_no_server_prints_a_connection_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    child = spawn_chat("--url", url)
    try:
        out = say(child, "anyone there?")
        assert f"connection to {url} failed" in out
        assert f"connection to {url} failed" in say(child, "/history")  # commands too; prompt returns
        quit_chat(child)
    finally:
        child.close(force=True)


def test_server_dies_mid_reply() -> None:
    with run_server(*LONG_ONE_SLOT) as server:
        child = spawn_chat("--url", server.url)
        try:
            child.sendline("tell me about streaming")
            child.expect_exact(LONG_START)
            server.kill()
            child.expect_exact(["failed", "closed the stream before the reply was complete"])
            child.expect_exact("you> ")
            assert f"connection to {server.url} failed" in say(child, "still there?")
            quit_chat(child)
        finally:
            child.close(force=True)
