"""The seed's page options (``ui_init_params``), as the server puts them into the page."""

from __future__ import annotations

import pytest

from tests.fixtures.server import run_server

from .helpers import (
    list_api,
    open_page,
    screenshot,
    send_message,
    sql_server_args,
    texts,
    titles,
    ui_params_env,
    wait_reply_done,
    wait_streaming,
    watch,
)

# a 1x1 PNG as a data: URL (the page's CSP allows images from the server itself and data: only)
DOT = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
OPTIONS = {
    "developMode": True,
    "clearContextOnReload": True,
    "welcomeMessage": "Welcome! Ask me anything.",
    "style_name": "casual_white",
    "style_opts": {
        "show_ai_icon": True,
        "show_human_icon": True,
        "show_human_icon_on_input": True,
        "ai_icon_url": DOT,
        "regenerate_enabled": False,
        "button_label_send": "Go",
        "button_label_stop_generating": "Halt",
        "button_label_regenerate": "Again",
        "button_label_clear": "Wipe",
        "button_label_new_chat": "Start over",
        "label_input_placeholder": "Ask the bot",
    },
}
LONG = " ".join(f"token{i}" for i in range(40))


@pytest.fixture(scope="module")
def options_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("web-options") / "chat.db"
    args = sql_server_args(f"sqlite+aiosqlite:///{database}", 0.03)
    with run_server(*args, env=ui_params_env(OPTIONS)) as server:
        yield server


def test_defaults_without_options(page, sql_server):
    open_page(page, sql_server.url)
    assert page.locator("#send").inner_text() == "Send"
    assert page.locator("#new-chat").inner_text() == "New chat"
    assert page.locator("#regenerate").is_visible()
    assert page.locator("#welcome").is_hidden()
    assert page.locator("#debug").is_hidden()
    assert page.locator("body").get_attribute("data-style") == "default"
    assert "Enter sends" in page.locator("#input").get_attribute("placeholder")


def test_options_configure_the_page(page, options_server):
    seen = watch(page)
    open_page(page, options_server.url)
    assert page.locator("body").get_attribute("data-style") == "casual_white"
    assert page.locator("#welcome").inner_text() == "Welcome! Ask me anything."
    assert page.locator("#send").inner_text() == "Go"
    assert page.locator("#clear").inner_text() == "Wipe"
    assert page.locator("#new-chat").inner_text() == "Start over"
    assert page.locator("#input").get_attribute("placeholder") == "Ask the bot"
    assert page.locator("#input-icon").is_visible()
    assert page.locator("#regenerate").is_hidden()  # regenerate_enabled: false

    send_message(page, LONG)
    wait_streaming(page)
    assert page.locator("#stop").inner_text() == "Halt"
    wait_reply_done(page, 1)
    assert page.locator("#welcome").is_hidden()  # the welcome makes way for the conversation
    assert page.locator("#log .msg.assistant .avatar img").get_attribute("src") == DOT
    assert page.locator("#log .msg.user .avatar").inner_text() == "You"  # no URL: initials
    assert page.locator("#regenerate").is_hidden()
    # developMode: the debug panel shows the last turn
    assert page.locator("#debug").is_visible()
    page.locator("#debug summary").click()
    assert "conversation_id" in page.locator("#debug-log").inner_text()
    assert seen.violations() == []
    screenshot(page, "web-options")

    # clearContextOnReload: a reload starts a new chat; the stored conversation stays in the list
    open_page(page, options_server.url)
    assert texts(page, "user") == []
    assert page.locator("#welcome").is_visible()
    assert titles(page) == [LONG[:79] + "…"]
    assert len(list_api(page, options_server.url)) == 1


def test_clear_context_on_reload_with_session_history(page):
    args = ("--mock", "--history", "memory", "--mock-params", '{"type": "echo", "time_per_token_sec": 0.01}')
    with run_server(*args, env=ui_params_env({"clearContextOnReload": True})) as server:
        open_page(page, server.url)
        assert page.locator("#conversations").is_hidden()  # no store: no list
        send_message(page, "remember me")
        wait_reply_done(page, 1)
        open_page(page, server.url)
        assert texts(page, "user") == []
        prompt = page.context.request.get(server.url + "/get_prompt").json()
        assert prompt["messages"] == []
