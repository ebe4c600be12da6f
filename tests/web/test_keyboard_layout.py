"""Keyboard only, screen-reader markup, the phone-width layout, and the screenshots docs/web.md shows."""

from __future__ import annotations

from .helpers import (
    current_title,
    focused,
    open_page,
    screenshot,
    send_message,
    tab_to,
    texts,
    titles,
    wait_idle,
    wait_reply_done,
    wait_streaming,
)

FIRST = "plan the garden for spring"
SECOND = "write a haiku about rain"
LONG = "a long answer " + " ".join(f"part{i}" for i in range(50))


def wait_current_title(page, title: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li.current .open')?.textContent === t", arg=title
    )


def wait_first_user_message(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('#log .msg.user .text')?.textContent === t", arg=text)


def type_and_send(page, text: str) -> None:
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_keyboard_only(page, slow_sql_server):
    server = slow_sql_server
    open_page(page, server.url)
    assert focused(page) == "#input"  # the message box has the focus from the start

    type_and_send(page, FIRST)
    assert wait_reply_done(page, 1) == FIRST
    assert focused(page) == "#input"

    # regenerate: Tab to the button, Enter
    tab_to(page, "#regenerate")
    page.keyboard.press("Enter")
    page.wait_for_selector("#log .msg.assistant.streaming")
    assert wait_reply_done(page, 1) == FIRST

    # stop: Escape while a reply streams (from the message box)
    tab_to(page, "#input", backwards=True)
    type_and_send(page, LONG)
    wait_streaming(page, 20)
    page.keyboard.press("Escape")
    page.wait_for_selector("#status[data-state='stopped']")
    wait_idle(server, 3)
    assert page.locator("#log .msg.assistant").last.get_attribute("data-status") == "stopped"

    # a new chat from the list's button
    tab_to(page, "#new-chat", backwards=True)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#log .msg').length === 0")
    assert focused(page) == "#input"
    type_and_send(page, SECOND)
    assert wait_reply_done(page, 1) == SECOND
    page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 2")

    # switch: into the list, arrow down to the other conversation, Enter
    tab_to(page, "#conversation-list li.current .open", backwards=True)
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.textContent") == FIRST
    page.keyboard.press("Enter")
    wait_first_user_message(page, FIRST)
    assert current_title(page) == FIRST
    assert texts(page, "user") == [FIRST, LONG]

    # delete: the Delete key asks first; Escape keeps it, confirming removes it
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Delete")
    assert page.locator("#confirm").is_visible()
    assert focused(page) == "#confirm-cancel"
    page.keyboard.press("Escape")
    assert page.locator("#confirm").is_hidden()
    assert titles(page) == [SECOND, FIRST]
    page.keyboard.press("Delete")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "#confirm-delete"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 1")
    assert titles(page) == [FIRST]
    assert focused(page) == "button.open"

    page.keyboard.press("F2")  # F2 renames
    assert focused(page) == "input.rename-input"
    page.keyboard.press("Control+a")
    page.keyboard.type("Garden")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('.rename-input')")
    assert titles(page) == ["Garden"]


def test_screen_reader_markup(page, sql_server):
    open_page(page, sql_server.url)
    log = page.locator("#log")
    assert log.get_attribute("role") == "log"
    assert log.get_attribute("aria-live") == "polite"
    assert page.locator("#status").get_attribute("role") == "status"
    assert page.locator("#conversations").get_attribute("aria-label") == "Conversations"
    send_message(page, FIRST)
    wait_reply_done(page, 1)
    assert page.locator("#log .msg.assistant").get_attribute("aria-busy") == "false"
    wait_current_title(page, FIRST)  # the list learns the stored title once the reply is done
    # every control has a name a screen reader can say
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, textarea, input')]
             .filter((e) => e.offsetParent !== null)
             .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels?.length))
             .map((e) => e.outerHTML)"""
    )
    assert unnamed == []
    assert page.locator("#conversation-list li.current .open").get_attribute("aria-current") == "true"
    delete = page.locator("#conversation-list li.current .delete")
    assert delete.get_attribute("aria-label") == f"Delete “{FIRST}”"


def test_phone_width_layout(new_page, sql_server):
    width = 390
    page = new_page(viewport={"width": width, "height": 780}, is_mobile=True, has_touch=True)
    open_page(page, sql_server.url)
    send_message(page, FIRST)
    wait_reply_done(page, 1)
    toggle = page.locator("#toggle-conversations")
    assert toggle.is_visible()
    assert page.locator("#conversations").is_hidden()  # the list is folded away
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scrolling
    assert page.locator("#send").is_visible() and page.locator("#input").is_visible()

    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#conversations").is_visible()
    page.click("#new-chat")
    assert page.locator("#conversations").is_hidden()
    send_message(page, SECOND)
    wait_reply_done(page, 1)
    toggle.click()
    page.locator("#conversation-list .open", has_text=FIRST).click()
    wait_first_user_message(page, FIRST)
    assert page.locator("#conversations").is_hidden()
    assert toggle.get_attribute("aria-expanded") == "false"


SHOWCASE = """## Watering plan

Water **early in the morning**; the soil keeps the moisture longer.

- tomatoes: every *second* day
- herbs: when the top soil is dry

| bed | plants | litres |
|-----|--------|--------|
| A | tomatoes | 4 |
| B | basil, thyme | 1.5 |

```python
def litres(bed: str) -> float:
    return {"A": 4.0, "B": 1.5}[bed]
```"""


def test_screenshots(new_page, sql_server):
    """The pictures in docs/web.md (CHATSTREAM_DOCS_SCREENSHOTS=1 writes them into docs/)."""
    page = new_page(viewport={"width": 1200, "height": 800})
    open_page(page, sql_server.url)
    for text in ("Which vegetables grow well in shade?", "Suggest a name for a garden blog"):
        send_message(page, text)
        wait_reply_done(page, 1)
        page.click("#new-chat")
    send_message(page, SHOWCASE)
    wait_reply_done(page, 1)
    page.locator("#input").blur()
    screenshot(page, "web-desktop", docs=True)

    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.context.add_cookies(page.context.cookies())
    open_page(phone, sql_server.url)
    phone.locator("#input").blur()
    screenshot(phone, "web-phone", docs=True)
    phone.click("#toggle-conversations")
    screenshot(phone, "web-phone-list", docs=True)
    phone.mouse.click(375, 400)  # a tap beside the list closes it
    assert phone.locator("#conversations").is_hidden()
