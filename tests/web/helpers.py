"""Shared steps for the chat page tests: open, send, wait, read the transcript, watch the page."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DOCS = REPO / "docs"
CHROMIUM = "/usr/bin/chromium"
#: set to 1 to (re)write the screenshots that docs/web.md shows
DOCS_SCREENSHOTS_ENV = "CHATSTREAM_DOCS_SCREENSHOTS"
#: the page options (ui_init_params) the server puts into the page
UI_PARAMS_ENV = "CHATSTREAM_WEB_UI_PARAMS"

# Runs before the page's own scripts: records CSP violations and gives injected code a flag to set.
WATCH_SCRIPT = """
window.__xss = 0;
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample});
});
"""


def sql_server_args(database_url: str, time_per_token_sec: float) -> tuple[str, ...]:
    params = json.dumps({"type": "echo", "time_per_token_sec": time_per_token_sec})
    return ("--mock", "--history", "sql", "--database-url", database_url, "--mock-params", params)


def ui_params_env(params: dict) -> dict[str, str]:
    return {UI_PARAMS_ENV: json.dumps(params)}


def open_page(page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='true']")


def send_message(page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def wait_reply_done(page, count: int) -> str:
    """Wait for ``count`` finished replies; the text of the last one."""
    page.wait_for_function(
        "n => document.querySelectorAll('#log .msg.assistant').length === n"
        " && !document.querySelector('#log .msg.assistant.streaming')"
        " && document.querySelector('#status').dataset.state !== 'streaming'",
        arg=count,
    )
    return page.locator("#log .msg.assistant .text").nth(count - 1).inner_text()


def wait_streaming(page, min_chars: int = 1) -> None:
    page.wait_for_function(
        "n => (document.querySelector('#log .msg.assistant.streaming .text') || {}).textContent?.length >= n",
        arg=min_chars,
    )


def texts(page, role: str) -> list[str]:
    return page.locator(f"#log .msg.{role} .text").all_inner_texts()


def titles(page) -> list[str]:
    return page.locator("#conversation-list li.conversation .open").all_inner_texts()


def current_title(page) -> str:
    return page.locator("#conversation-list li.current .open").inner_text()


def conversation_button(page, title: str):
    return page.locator("#conversation-list li.conversation .open", has_text=title)


def focused(page) -> str:
    """A short description of the focused element: ``#id``, or ``tag.class`` when it has no id."""
    return page.evaluate(
        "() => { const e = document.activeElement; if (!e) return '';"
        " return e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + [...e.classList].join('.'); }"
    )


def tab_to(page, selector: str, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab (Shift+Tab) until the focused element matches ``selector``, as a keyboard user does."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} never got the focus with {key} (last: {focused(page)})")


def list_api(page, url: str) -> list[dict]:
    """The conversations the server keeps for this page's session (same cookies as the page)."""
    response = page.context.request.get(url + "/v1/conversations?limit=100")
    assert response.ok, response.status
    return response.json()["data"]


def wait_idle(server, timeout: float = 5) -> None:
    """Until no generation runs on the server (a stopped stream frees its slot)."""
    deadline = time.monotonic() + timeout
    while httpx.get(server.url + "/get_load", timeout=5).json()["processing"] != 0:
        assert time.monotonic() < deadline, "a generation kept running"
        time.sleep(0.05)


@dataclass
class PageWatch:
    """Every URL the page requested, and the CSP violations it reported."""

    page: object
    requests: list[str] = field(default_factory=list)

    def violations(self) -> list[dict]:
        return self.page.evaluate("() => window.__cspViolations")

    def xss_flag(self) -> int:
        return self.page.evaluate("() => window.__xss")

    def foreign(self, origin: str) -> list[str]:
        return [url for url in self.requests if not (url.startswith(origin + "/") or url.startswith("data:"))]


def watch(page) -> PageWatch:
    """Start watching ``page`` (call before it loads)."""
    record = PageWatch(page)
    page.add_init_script(WATCH_SCRIPT)
    page.on("request", lambda request: record.requests.append(request.url))
    return record


def screenshot(page, name: str, docs: bool = False) -> Path:
    """Save into test-artifacts/; with ``docs`` and CHATSTREAM_DOCS_SCREENSHOTS=1 into docs/ too."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get(DOCS_SCREENSHOTS_ENV) == "1":
        page.screenshot(path=str(DOCS / f"{name}.png"))
    return path
