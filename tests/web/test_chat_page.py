"""The chat page at ``/`` in a real browser against a real server."""

from __future__ import annotations

import threading
import time

import httpx

from tests.fixtures.server import run_server

from .helpers import open_page, screenshot, send_message, texts, wait_reply_done

FIRST = "hello there my good friend how are you today"
SECOND = "tell me something about streaming chat servers"


def test_chat_stream_feedback_regenerate_reload_clear(page):
    with run_server(
        "--mock", "--history", "memory", "--mock-params", '{"type": "echo", "time_per_token_sec": 0.06}'
    ) as server:
        open_page(page, server.url)
        assert page.locator("#regenerate").is_disabled()

        send_message(page, FIRST)
        # The reply streams in: part of it is visible while the bubble is still streaming.
        page.wait_for_function(
            "full => { const el = document.querySelector('#log .msg.assistant.streaming .text');"
            " return el && el.textContent.length > 0 && el.textContent.length < full.length; }",
            arg=FIRST,
        )
        assert page.locator("#status").get_attribute("data-state") == "streaming"
        assert page.locator("#stop").is_visible()
        assert wait_reply_done(page, 1) == FIRST
        assert page.locator("#status").get_attribute("data-state") == "idle"

        send_message(page, SECOND)
        assert wait_reply_done(page, 2) == SECOND
        assert texts(page, "user") == [FIRST, SECOND]

        # like, then change to dislike
        last = page.locator("#log .msg.assistant").nth(1)
        assert last.get_attribute("data-message-id")
        last.locator("button.like").click()
        page.wait_for_selector("#log .msg.assistant >> nth=1 >> .feedback[data-feedback='like']")
        last.locator("button.dislike").click()
        page.wait_for_selector("#log .msg.assistant >> nth=1 >> .feedback[data-feedback='dislike']")
        assert last.locator("button.like").get_attribute("aria-pressed") == "false"

        # regenerate replaces the last reply (the echo mock repeats the last user message)
        page.click("#regenerate")
        assert wait_reply_done(page, 2) == SECOND
        assert texts(page, "assistant") == [FIRST, SECOND]
        screenshot(page, "web-chat-conversation")

        # a reload restores the conversation kept on the server
        open_page(page, server.url)
        assert texts(page, "user") == [FIRST, SECOND]
        assert texts(page, "assistant") == [FIRST, SECOND]
        assert page.locator("#regenerate").is_enabled()

        page.click("#clear")
        page.wait_for_function("() => document.querySelectorAll('#log .msg').length === 0")
        open_page(page, server.url)
        assert page.locator("#log .msg").count() == 0


def _hold_slot(server, started: threading.Event, release: threading.Event) -> None:
    body = {"user_input": "occupy the only slot"}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        with http.stream("POST", "/chat_stream", json=body) as response:
            for _ in response.iter_bytes():
                started.set()
                if release.is_set():
                    return


def _processing(server) -> int:
    return httpx.get(server.url + "/get_load", timeout=5).json()["processing"]


def test_busy_state_then_retry_and_stop(page):
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--num-of-concurrent-executions",
        "1",
        "--max-queue-size",
        "0",
        "--mock-params",
        '{"type": "long", "time_per_token_sec": 0.03}',
    ) as server:
        open_page(page, server.url)
        started, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_slot, args=(server, started, release))
        holder.start()
        try:
            assert started.wait(10)
            send_message(page, "are you there?")
            page.wait_for_selector("#status[data-state='busy']")
            assert page.locator("#retry").is_visible()
            assert "busy" in page.locator("#status-text").inner_text().lower()
            assert page.locator("#log .msg.user.unsent").count() == 1
            assert page.locator("#log .msg.assistant").count() == 0
            screenshot(page, "web-chat-busy")
        finally:
            release.set()
            holder.join(30)
        deadline = time.monotonic() + 10
        while _processing(server) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        page.click("#retry")
        page.wait_for_function(
            "() => (document.querySelector('#log .msg.assistant.streaming .text') || {})"
            ".textContent?.length > 0"
        )
        assert page.locator("#log .msg.user.unsent").count() == 0
        assert page.locator("#retry").is_hidden()
        # Stop aborts the stream; the server frees the slot (the disconnect cancels generation).
        page.click("#stop")
        page.wait_for_selector("#status[data-state='stopped']")
        deadline = time.monotonic() + 3
        while _processing(server) != 0:
            assert time.monotonic() < deadline, "generation kept running after Stop"
            time.sleep(0.05)
        screenshot(page, "web-chat-stopped")


def test_conversation_survives_server_restart_with_sql_history(page, tmp_path):
    args = (
        "--mock",
        "--history",
        "sql",
        "--database-url",
        f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "--session-secret",
        "web-test-secret-0123456789abcdef",
    )
    with run_server(*args, "--mock-params", '{"type": "echo", "time_per_token_sec": 0.01}') as server:
        open_page(page, server.url)
        send_message(page, FIRST)
        assert wait_reply_done(page, 1) == FIRST
    with run_server(*args, "--mock-params", '{"type": "echo", "time_per_token_sec": 0.01}') as server:
        # cookies are per host, not per port: the restarted server sees the same session cookie
        open_page(page, server.url)
        assert texts(page, "user") == [FIRST]
        assert texts(page, "assistant") == [FIRST]
        # a restored reply takes feedback, stored against the message it names
        restored = page.locator("#log .msg.assistant").first
        restored.locator("button.like").click()
        page.wait_for_selector("#log .msg.assistant >> nth=0 >> .feedback[data-feedback='like']")
        screenshot(page, "web-chat-restored-sql")
