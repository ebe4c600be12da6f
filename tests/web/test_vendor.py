"""The page's files as shipped: vendored libraries unchanged from npm, no inline script or handlers."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from importlib import resources

WEB = resources.files("chatstream.web")
UI_INIT_ELEMENT = '<script type="application/json" id="chatstream-ui-init"></script>'


def test_vendored_files_match_the_manifest():
    manifest = json.loads(WEB.joinpath("vendor/manifest.json").read_text(encoding="utf-8"))
    names = {package["name"]: package["version"] for package in manifest["packages"]}
    assert names == {"marked": "18.3.0", "dompurify": "3.5.0"}
    for package in manifest["packages"]:
        assert any("LICENSE" in name for name in package["files"]), package["name"]
        for name, entry in package["files"].items():
            data = WEB.joinpath("vendor", name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
    assert "marked v18.3.0" in WEB.joinpath("vendor/marked.umd.js").read_text(encoding="utf-8")[:200]
    assert "DOMPurify 3.5.0" in WEB.joinpath("vendor/purify.min.js").read_text(encoding="utf-8")[:200]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.in_script = False
        self.script_text = ""

    def handle_starttag(self, tag, attrs):
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self.in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            self.script_text += data.strip()


def test_page_has_no_inline_script_style_or_outside_url():
    html = WEB.joinpath("index.html").read_text(encoding="utf-8")
    assert html.count(UI_INIT_ELEMENT) == 1  # the element the server fills with the page options
    page = _Page()
    page.feed(html)
    for script in page.scripts:
        assert script.get("src") or script.get("type") == "application/json", script
    assert page.script_text == ""
    for tag, name, value in page.attributes:
        assert not name.startswith("on"), (tag, name)
        assert name != "style", tag
        if name in ("src", "href"):
            assert not re.match(r"(https?:)?//", value or ""), (tag, value)
    own_scripts = [entry for entry in WEB.iterdir() if entry.name.endswith(".js")]
    assert len(own_scripts) >= 6
    for script in own_scripts:
        text = script.read_text(encoding="utf-8")
        assert ".innerHTML" not in text and "eval(" not in text and "new Function" not in text, script.name
        assert not re.search(r"https?://", text), script.name
