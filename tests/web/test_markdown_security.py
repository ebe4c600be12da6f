"""Replies render as Markdown; HTML or script in a reply or a user message never runs; nothing loads
from outside the server."""

from __future__ import annotations

import httpx
import pytest

from .helpers import open_page, send_message, texts, wait_reply_done, watch

MARKDOWN = """## Shopping list

Some **bold** words, some *emphasis* and a [link](https://example.com/docs).

- apples
- pears

1. first
2. second

| fruit | colour |
|-------|--------|
| apple | red    |

```python
print("hello")
```"""

PAYLOADS = (
    '<img src=x onerror="window.__xss += 1">'
    "<script>window.__xss += 10</script>"
    '<svg onload="window.__xss += 100"></svg>'
    '<iframe srcdoc="<script>parent.__xss += 1000</script>"></iframe>'
    " [click me](javascript:window.__xss+=10000)"
    ' <a href="javascript:window.__xss+=10000">raw link</a>'
    ' <form action="javascript:alert(1)"><button id="input">clobber</button></form>'
)


def test_reply_markdown_renders_as_html(new_page, sql_server):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    open_page(page, sql_server.url)
    send_message(page, MARKDOWN)
    wait_reply_done(page, 1)
    reply = page.locator("#log .msg.assistant .text")
    assert reply.locator("h2").inner_text() == "Shopping list"
    assert reply.locator("strong").inner_text() == "bold"
    assert reply.locator("em").inner_text() == "emphasis"
    assert reply.locator("ul > li").all_inner_texts() == ["apples", "pears"]
    assert reply.locator("ol > li").all_inner_texts() == ["first", "second"]
    assert reply.locator("table th").all_inner_texts() == ["fruit", "colour"]
    assert reply.locator("table td").all_inner_texts() == ["apple", "red"]
    assert reply.locator("pre code.language-python").inner_text().strip() == 'print("hello")'
    link = reply.locator("a")
    assert link.get_attribute("href") == "https://example.com/docs"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel")
    # the user's own message stays plain text
    assert page.locator("#log .msg.user strong").count() == 0
    assert texts(page, "user") == [MARKDOWN]

    reply.locator(".code-block .copy").click()
    page.wait_for_selector(".code-block .copy[data-copied='true']")
    assert page.evaluate("() => navigator.clipboard.readText()").strip() == 'print("hello")'

    # a stored reply renders the same after a reload
    open_page(page, sql_server.url)
    assert page.locator("#log .msg.assistant pre code").inner_text().strip() == 'print("hello")'
    assert page.locator("#log .msg.assistant li").count() == 4


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_html_and_script_never_run(new_page, sql_server, csp):
    # "bypassed" switches the page's CSP off, so the sanitizer alone must hold.
    page = new_page(bypass_csp=csp == "bypassed")
    seen = watch(page)
    open_page(page, sql_server.url)
    send_message(page, PAYLOADS)
    wait_reply_done(page, 1)
    page.wait_for_timeout(300)  # give an image error or a frame load time to fire
    checks = (
        "#log [onerror], #log [onload], #log script, #log iframe, #log svg, #log form,"
        " #log a[href^='javascript'], #log .msg.user img, #log #input"
    )
    assert page.locator(checks).count() == 0
    assert seen.xss_flag() == 0
    assert page.locator("#log .msg.user .text").inner_text() == PAYLOADS
    assert page.locator("#input").evaluate("e => e.tagName") == "TEXTAREA"  # no clobbered id

    # restored from the store, the same reply is sanitized again
    open_page(page, sql_server.url)
    page.wait_for_timeout(300)
    assert page.locator(checks).count() == 0
    assert seen.xss_flag() == 0


def test_page_sends_csp_and_loads_nothing_from_outside(page, sql_server):
    headers = httpx.get(sql_server.url + "/", timeout=5).headers
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy

    seen = watch(page)
    open_page(page, sql_server.url)
    # a reply that names outside images and styles: none of them may load
    send_message(page, "![tracker](https://example.com/pixel.png) " + MARKDOWN)
    wait_reply_done(page, 1)
    page.click("#new-chat")
    send_message(page, "second conversation")
    wait_reply_done(page, 1)
    page.locator("#conversation-list .open").last.click()
    page.wait_for_selector("#log .msg.assistant pre")
    assert seen.requests, "no requests recorded"
    assert seen.foreign(sql_server.url) == []
    # the page itself needs no inline script or style: nothing was blocked on the way
    assert seen.violations() == []
    assert page.evaluate("() => typeof marked.parse === 'function' && DOMPurify.isSupported")
    # the outside image is offered as a link instead
    image_link = page.locator("#log .msg.assistant a", has_text="[image: tracker]")
    assert image_link.get_attribute("href") == "https://example.com/pixel.png"
