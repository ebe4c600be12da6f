"""Headless Debian Chromium driven by Playwright (no browser download), and the servers it talks to."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.fixtures.server import ServerHandle, run_server

from .helpers import CHROMIUM, sql_server_args


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One browser for tests/web, closed when the package's last test is done: Playwright's sync API
    keeps an event loop running in this thread, and tests after it call ``asyncio.run``."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable]:
    """Open pages in fresh browser contexts (each its own cookies, so its own session and list)."""
    contexts = []

    def make(**context_options):
        options = {"viewport": {"width": 900, "height": 700}, **context_options}
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="package")
def sql_server(tmp_path_factory) -> Iterator[ServerHandle]:
    """Echo mock over the SQL history (SQLite), quick tokens: shared by the tests (one list per context)."""
    database = tmp_path_factory.mktemp("web-sql") / "chat.db"
    with run_server(*sql_server_args(f"sqlite+aiosqlite:///{database}", 0.01)) as server:
        yield server


@pytest.fixture(scope="package")
def slow_sql_server(tmp_path_factory) -> Iterator[ServerHandle]:
    """Echo mock over the SQL history with slow tokens: long enough to act while a reply streams."""
    database = tmp_path_factory.mktemp("web-sql-slow") / "chat.db"
    with run_server(*sql_server_args(f"sqlite+aiosqlite:///{database}", 0.08)) as server:
        yield server
