"""``/docs`` and ``/redoc`` work without internet: every asset comes from the server itself (the
installed fastapi-offline package), answers 200, needs no API key, and Swagger UI renders in Chromium
with every request to another host refused."""

from __future__ import annotations

import re
import shutil
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.server import run_server

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    args = ("--mock", "--history", "memory", "--api-keys", "docs-test-key")
    with run_server(*args, log_dir=tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_their_own_assets(keyed_server, page):
    response = httpx.get(keyed_server.url + page)
    assert response.status_code == 200
    assets = ASSET.findall(response.text)
    assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
    assert "http" not in response.headers["content-security-policy"]
    for url in assets:
        asset = httpx.get(keyed_server.url + url)  # no API key: the docs stay open
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text


def test_the_oauth2_redirect_page_and_schema_are_served(keyed_server):
    assert httpx.get(keyed_server.url + "/docs/oauth2-redirect").status_code == 200
    assert "/chat_stream" in httpx.get(keyed_server.url + "/openapi.json").json()["paths"]
    key = {"Authorization": "Bearer docs-test-key"}  # names outside the open list stay protected
    assert httpx.get(keyed_server.url + "/docs/assets/other.js").status_code == 401
    assert httpx.get(keyed_server.url + "/docs/assets/other.js", headers=key).status_code == 404


def test_swagger_ui_renders_offline_under_its_csp(keyed_server):
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    problems: list[str] = []

    def only_this_server(route):
        if urlsplit(route.request.url).netloc == urlsplit(keyed_server.url).netloc:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_this_server)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(keyed_server.url + "/docs")
            page.wait_for_selector("#operations-chat-chat_stream_chat_stream_post", timeout=20_000)
        finally:
            browser.close()
    assert not refused, refused
    assert not [p for p in problems if "Content Security Policy" in p], problems
