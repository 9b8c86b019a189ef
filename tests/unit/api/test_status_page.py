"""The status page's routes and files (agent/status_page.py, agent/ui/): served by every agent, no
external asset, small, read-only, accessible markup; the browser test (tests/integration/
test_status_page_browser.py) shows it working."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[3] / "agent" / "ui"
FILES = {"/": "index.html", "/ui/status.css": "status.css", "/ui/status.js": "status.js"}


@pytest.mark.parametrize(("path", "mime"), [("/", "text/html"), ("/ui/status.css", "text/css"),
                                            ("/ui/status.js", "text/javascript")])
def test_every_page_file_is_served_with_a_strict_content_security_policy(client, path, mime):
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.mimetype == mime and resp.mimetype_params == {"charset": "utf-8"}
    assert resp.get_data() == (UI / FILES[path]).read_bytes()
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_is_open_even_when_the_status_needs_the_token(token_client):
    assert token_client.get("/").status_code == 200
    assert token_client.get("/api/v1/status").status_code == 401  # the data is not


def test_the_page_accepts_only_reads(client):
    for method in ("post", "put", "delete"):
        resp = getattr(client, method)("/")
        assert resp.status_code == 405 and resp.get_json()["error"] == "method-not-allowed"


def test_the_files_load_nothing_from_elsewhere_and_stay_small():
    total = 0
    for name in FILES.values():
        text = (UI / name).read_text()
        total += len(text.encode())
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name  # no external URL
        assert "@import" not in text and "url(" not in text, name
    assert total < 32 * 1024, total


def test_the_script_only_reads_the_status_and_never_writes_html():
    js = (UI / "status.js").read_text()
    assert re.findall(r"fetch\(\s*\"([^\"]+)\"", js) == ["api/v1/status"]
    assert "method:" not in js  # fetch's default: GET
    assert "innerHTML" not in js and "outerHTML" not in js and "insertAdjacentHTML" not in js
    assert "sessionStorage" in js and "localStorage" not in js  # the token stays in the tab
    assert re.search(r"POLL_MS = (\d+)", js).group(1) == "2000"


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_markup_is_semantic_and_keyboard_usable():
    parser = _Markup()
    html = (UI / "index.html").read_text()
    parser.feed(html)
    tags = [t for t, _ in parser.tags]
    assert tags.count("table") == tags.count("caption") == 4
    assert all(a.get("scope") in ("col", "row") for t, a in parser.tags if t == "th")
    assert not any("style" in a or a.get("onclick") for _, a in parser.tags)  # no inline style or handler
    assert "<script>" not in html and "<style" not in html
    assert ("html", {"lang": "en"}) in parser.tags
    assert any(t == "a" and a.get("class") == "skip" for t, a in parser.tags)
    labelled = {a.get("for") for t, a in parser.tags if t == "label"}
    assert {a.get("id") for t, a in parser.tags if t == "input"} <= labelled
    css = (UI / "status.css").read_text()
    assert "prefers-color-scheme: dark" in css and ":focus-visible" in css
