"""The status page's routes and files (agent/status_page.py, agent/ui/): served by every agent, no
external asset, small, read-only, accessible markup; the browser test (tests/integration/
test_status_page_browser.py) shows it working."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
    assert tags.count("table") == tags.count("caption") == 5
    assert all(a.get("scope") in ("col", "row") for t, a in parser.tags if t == "th")
    assert not any("style" in a or a.get("onclick") for _, a in parser.tags)  # no inline style or handler
    assert "<script>" not in html and "<style" not in html
    assert ("html", {"lang": "en"}) in parser.tags
    assert any(t == "a" and a.get("class") == "skip" for t, a in parser.tags)
    labelled = {a.get("for") for t, a in parser.tags if t == "label"}
    assert {a.get("id") for t, a in parser.tags if t == "input"} <= labelled
    css = (UI / "status.css").read_text()
    assert "prefers-color-scheme: dark" in css and ":focus-visible" in css


# ---- the page's rendering of diverged pods and their archives (agent/ui/status.js under Node) -----------

NODE = shutil.which("node")
PAGE_DOM = Path(__file__).with_name("page_dom.js")


class _Tables(HTMLParser):
    """Each table's id and its header's column count, as index.html declares them."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: dict[str, int] = {}
        self._table = ""
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.columns[self._table] = 0
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head:
            self.columns[self._table] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False


def _render(doc: dict, tmp_path: Path) -> dict:
    """What status.js writes into the page for one status document (one poll, in a minimal DOM)."""
    if NODE is None:
        pytest.skip("node is not installed: the page's script cannot run outside a browser without it")
    tables = _Tables()
    tables.feed((UI / "index.html").read_text())
    (tmp_path / "doc.json").write_text(json.dumps({**doc, "answered_by": "memgraph-0"}))
    (tmp_path / "tables.json").write_text(json.dumps(tables.columns))
    done = subprocess.run([NODE, str(PAGE_DOM), str(UI / "status.js"), str(tmp_path / "doc.json"),
                           str(tmp_path / "tables.json")], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["fetched"] == [{"url": "api/v1/status", "method": "GET"}]
    return out["elements"]


def _texts(table: dict) -> list[list[str]]:
    return [[c["text"] for c in row["cells"]] for row in table["rows"]]


def test_the_page_shows_each_archive_the_refusal_and_the_reseed_under_way(tmp_path):
    from tests.unit.test_status import ARCHIVE_G3, reseed_document

    page = _render(reseed_document(), tmp_path)
    assert page["diverged"]["text"] == "memgraph-1, memgraph-2 (quarantined)"
    assert page["reseed"]["text"] == ("Re-seed of memgraph-2 (generation 3): registered ASYNC, recovering "
                                      "from the MAIN")
    archives = page["archives"]
    rows = _texts(archives)
    assert rows[0] == ["memgraph-1", "re-seed refused: volume has 1024 bytes free, a fresh copy needs 4096"]
    assert archives["rows"][0]["cells"][1] == {"text": rows[0][1], "className": "error", "colSpan": 5}
    name, size, generation, _created, holds = rows[1][1:]
    assert (rows[1][0], name, size, generation, holds) == (
        "memgraph-2", ARCHIVE_G3, "4.0 KiB", "3", "snapshots, wal, replication")
    assert rows[2] == ["memgraph-2", "3 older archive(s) not listed; 3.0 MiB archived in all"]
    assert [r["data"]["pod"] for r in archives["rows"]] == ["memgraph-1", "memgraph-2", "memgraph-2"]
    warning = "diverged (quarantined): memgraph-1, memgraph-2; re-seed of memgraph-2: catchup"
    assert warning in page["warnings"]["text"]


def test_the_page_says_none_when_no_pod_has_an_archive(tmp_path):
    from tests.unit.planner.builders import healthy, rec
    from tests.unit.test_status import _status

    page = _render(_status(healthy(), rec()), tmp_path)
    assert page["diverged"]["text"] == "None."
    assert page["reseed"]["text"] == "No re-seed under way."
    assert page["archives"]["rows"] == [
        {"data": {}, "cells": [{"text": "None.", "className": "", "colSpan": 6}]}]
