"""The conversation list beside the transcript, over /v1/conversations, against the SQL history."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.server import run_server

from .helpers import (
    conversation_button,
    current_title,
    list_api,
    open_page,
    screenshot,
    send_message,
    sql_server_args,
    texts,
    titles,
    wait_idle,
    wait_reply_done,
    wait_streaming,
)

APPLES = "apples are red and crisp"
BANANAS = "bananas are yellow and soft"
LONG = " ".join(f"word{i}" for i in range(60))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
        return
    # Playwright's sync API keeps an event loop running in this thread: the cluster's asyncio
    # helpers run in a worker thread instead.
    cluster = request.getfixturevalue("pg_cluster")
    with ThreadPoolExecutor(1) as pool:
        name = pool.submit(cluster.create_database).result()
        try:
            yield cluster.url(name)
        finally:
            pool.submit(cluster.drop_database, name).result()


def show(page, title: str) -> None:
    """Open the conversation whose title starts with ``title`` and wait until it has loaded."""
    conversation_button(page, title).first.click()
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li.current .open')?.textContent.startsWith(t)"
        " && document.querySelector('#status').dataset.state === 'idle'",
        arg=title,
    )


def test_two_conversations_listed_switched_and_deleted(page, database_url):
    with run_server(*sql_server_args(database_url, 0.01)) as server:
        open_page(page, server.url)
        assert page.locator("#conversations").is_visible()
        assert titles(page) == []  # a first visit starts a new chat; nothing is stored until it is used

        send_message(page, APPLES)
        assert wait_reply_done(page, 1) == APPLES
        page.click("#new-chat")
        page.wait_for_function("() => document.querySelectorAll('#log .msg').length === 0")
        send_message(page, BANANAS)
        assert wait_reply_done(page, 1) == BANANAS
        page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 2")

        # after a reload both are listed, newest first, and the one last used is open again
        open_page(page, server.url)
        assert titles(page) == [BANANAS, APPLES]
        assert current_title(page) == BANANAS
        assert texts(page, "user") == [BANANAS]

        # switching shows each conversation's own messages
        show(page, APPLES)
        assert texts(page, "user") == [APPLES]
        assert texts(page, "assistant") == [APPLES]
        show(page, BANANAS)
        assert texts(page, "user") == [BANANAS]
        assert texts(page, "assistant") == [BANANAS]

        # a later message in the older one continues it, and moves it to the top
        show(page, APPLES)
        send_message(page, "and green ones too")
        assert wait_reply_done(page, 2) == "and green ones too"
        page.wait_for_function(
            "t => document.querySelector('#conversation-list .open').textContent === t", arg=APPLES
        )
        screenshot(page, "web-conversations")

        # delete, after a confirmation: Cancel keeps it, Delete removes it for good
        page.locator("#conversation-list li", has_text=BANANAS).locator(".delete").click()
        assert page.locator("#confirm").is_visible()
        assert BANANAS in page.locator("#confirm-text").inner_text()
        page.click("#confirm-cancel")
        assert titles(page) == [APPLES, BANANAS]
        page.locator("#conversation-list li", has_text=BANANAS).locator(".delete").click()
        page.click("#confirm-delete")
        page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 1")
        assert [c["title"] for c in list_api(page, server.url)] == [APPLES]
        open_page(page, server.url)
        assert titles(page) == [APPLES]
        assert texts(page, "user") == [APPLES, "and green ones too"]


def test_rename_persists(page, sql_server):
    open_page(page, sql_server.url)
    send_message(page, APPLES)
    wait_reply_done(page, 1)
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li .open')?.textContent === t", arg=APPLES
    )

    item = page.locator("#conversation-list li.current")
    item.locator(".rename").click()
    field = item.locator(".rename-input")
    assert field.input_value() == APPLES
    field.fill("Fruit notes")
    field.press("Enter")
    page.wait_for_function("() => !document.querySelector('.rename-input')")
    assert titles(page) == ["Fruit notes"]  # shown at once, while the save is still in flight
    page.wait_for_function("() => !document.querySelector('#conversation-list li[aria-busy]')")
    assert [c["title"] for c in list_api(page, sql_server.url)] == ["Fruit notes"]

    # Escape cancels an edit
    item.locator(".rename").click()
    item.locator(".rename-input").fill("never saved")
    item.locator(".rename-input").press("Escape")
    assert titles(page) == ["Fruit notes"]

    open_page(page, sql_server.url)
    assert titles(page) == ["Fruit notes"]
    assert texts(page, "user") == [APPLES]


def test_load_more_pages_through_the_list(page, sql_server):
    open_page(page, sql_server.url)
    api = page.context.request
    for number in range(25):
        created = api.post(sql_server.url + "/v1/conversations", data={}).json()
        reply = api.post(
            sql_server.url + "/chat_stream",
            data={"user_input": f"topic {number:02d}", "conversation_id": created["id"]},
        )
        assert reply.ok
    open_page(page, sql_server.url)
    # 20 a page (the default), newest first
    assert titles(page) == [f"topic {n:02d}" for n in range(24, 4, -1)]
    assert page.locator("#load-more").is_visible()
    page.click("#load-more")
    page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 25")
    assert titles(page) == [f"topic {n:02d}" for n in range(24, -1, -1)]
    assert page.locator("#load-more").is_hidden()
    show(page, "topic 00")
    assert texts(page, "user") == ["topic 00"]


def test_switching_while_streaming_stops_that_stream(page, slow_sql_server):
    server = slow_sql_server
    open_page(page, server.url)
    send_message(page, APPLES)
    wait_reply_done(page, 1)
    page.click("#new-chat")
    send_message(page, "**bold** first " + LONG)
    # Markdown renders while the reply streams, not only at the end
    page.wait_for_selector("#log .msg.assistant.streaming strong")
    assert page.locator("#log .msg.assistant.streaming").get_attribute("aria-busy") == "true"
    wait_streaming(page, 40)

    show(page, APPLES)
    wait_idle(server, 3)  # the aborted fetch cancelled the generation on the server
    assert texts(page, "user") == [APPLES]
    assert texts(page, "assistant") == [APPLES]
    page.wait_for_timeout(600)  # nothing of the stopped stream arrives in this transcript
    assert texts(page, "assistant") == [APPLES]
    assert page.locator("#log .msg.assistant.streaming").count() == 0
    assert page.locator("#stop").is_hidden()

    # the cut-off reply is stored and marked as interrupted
    show(page, "**bold** first")
    reply = page.locator("#log .msg.assistant")
    assert reply.count() == 1
    assert reply.get_attribute("data-status") == "interrupted"
    assert "Interrupted" in reply.locator(".status-note").inner_text()
    assert 0 < len(reply.locator(".text").inner_text()) < len("bold first " + LONG)
    screenshot(page, "web-interrupted")


def test_rename_editor_sends_patch_and_reverts_on_failure(page, sql_server):
    """The page's side of rename, whatever the server build: the PATCH it sends, and a refusal."""
    sent = []
    answer = {"status": 200}

    def on_patch(route):
        if route.request.method != "PATCH":
            route.continue_()
            return
        body = route.request.post_data_json
        sent.append(body)
        conversation_id = route.request.url.rsplit("/", 1)[1]
        summary = {"id": conversation_id, "title": body["title"], "updated_at": "2026-01-01T00:00:00+00:00"}
        route.fulfill(status=answer["status"], json=summary if answer["status"] == 200 else {"error": "x"})

    page.route("**/v1/conversations/*", on_patch)
    open_page(page, sql_server.url)
    send_message(page, APPLES)
    wait_reply_done(page, 1)
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li .open')?.textContent === t", arg=APPLES
    )
    item = page.locator("#conversation-list li.current")
    item.locator(".rename").click()
    item.locator(".rename-input").fill("  Fruit notes  ")
    item.locator(".rename-input").press("Enter")
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li .open').textContent === t", arg="Fruit notes"
    )
    assert sent == [{"title": "Fruit notes"}]

    answer["status"] = 500
    item.locator(".rename").click()
    item.locator(".rename-input").fill("Refused")
    item.locator(".rename-input").press("Enter")
    page.wait_for_selector("#status[data-state='error']")
    assert "rename" in page.locator("#status-text").inner_text().lower()
    assert titles(page) == ["Fruit notes"]
    assert sent[-1] == {"title": "Refused"}
