"""The report's second line of defence: its Content-Security-Policy.

A run on the loopback server whose every free field holds hostile HTML and JavaScript (persona turns,
critiques, revisions, topics, persona names, principle titles, texts and guidance) is opened in real
Chromium: nothing executes (no ``window.pwned``), nothing is fetched (a loopback listener the payload
points at receives no request; the page asks for its own file only), no console error, and the
payload shows as text. Then the same report with the payload pasted in raw, as an escaping bug would
leave it: the policy alone still stops every script and request, while the page's own script works (a
meta refresh is a navigation, which no policy given in a page can stop: that one is the escaping's alone)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparring.traces.report_page import content_security_policy
from tests.cli import run_cli
from tests.fakeserver import FakeOpenAIServer
from tests.graphs.test_hostile_text import hostile_config, replies_with
from tests.traces.test_report_browser import ARGS, CHROMIUM

TEMPLATE = Path(__file__).resolve().parents[2] / "traces" / "templates" / "report.html"


def payload(port: int, *, refresh: bool = True) -> str:
    """HTML and JavaScript that would run or fetch from 127.0.0.1:``port`` if a page let it. ``refresh``: with a
    meta refresh to it (a navigation: no Content-Security-Policy stops one, only the escaping does)."""
    base = f"http://127.0.0.1:{port}"
    meta = f'<meta http-equiv="refresh" content="0;url={base}/refresh">' if refresh else ""
    return (f'<script>window.pwned=1;fetch("{base}/script")</script>'
            f'<img src="{base}/img" onerror="window.pwned=2">'
            f'"><svg onload="window.pwned=3"></svg><a id="js" href="javascript:window.pwned=4">x</a>'
            f'<iframe src="{base}/frame"></iframe><link rel="stylesheet" href="{base}/css">'
            f'<style>body{{background:url({base}/bg)}}</style><div style="background:url({base}/attr)">d</div>'
            f'{meta}<object data="{base}/obj"></object>'
            f"'; window.pwned=5; '</textarea></title></style></script>")


class Listener:
    """An HTTP server on loopback that records every request it gets."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory, listener: Listener) -> Path:
    folder = tmp_path_factory.mktemp("csp")
    text = payload(listener.port)
    (folder / "hostile.yaml").write_text(yaml.safe_dump({"id": "hostile", "title": f"T {text}", "principles": [
        {"id": "hostile.a", "category": "honesty", "text": f"Be honest {text}", "critique": text,
         "revision": text}]}), encoding="utf-8")
    with FakeOpenAIServer(responder=replies_with(text), record_requests=False) as server:
        config = hostile_config(folder, server.base_url, text=text, principles=["hostile.yaml"])
        result = run_cli("run", str(config), "--out", str(folder / "run"), "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run" / "report.html"


class StyleAttributes(HTMLParser):
    """The tags of a page that carry a style attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if any(name == "style" for name, _ in attrs):
            self.tags.append(tag)

    @classmethod
    def find(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.tags


def _hash(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def test_the_policy_allows_only_the_pages_own_blocks(hostile_report: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert meta is not None and html.index(meta.group(0)) < html.index("<style>"), "the policy comes first"
    policy = meta.group(1)
    assert policy == content_security_policy(TEMPLATE.read_text(encoding="utf-8"))
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["base-uri"] == "'none'"
    blocks = re.findall(r"<(script|style)>(.*?)</\1>", html, re.S)
    assert sorted(kind for kind, _ in blocks) == ["script", "style"], "the payload added no block"
    for kind, body in blocks:
        assert directives[f"{kind}-src"] == _hash(body)
    assert not StyleAttributes.find(html), "no style attribute (the policy refuses them)"


async def _open(report: Path, listener: Listener) -> dict[str, Any]:
    """Open ``report`` in Chromium, open every dialogue, click the javascript: link; what happened."""
    async_api = pytest.importorskip("playwright.async_api", reason="pip install 'sparring[dev]' (playwright)")
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install chromium (scripts/install.sh dev does it)"
    seen: dict[str, Any] = {"console": [], "requests": [], "fetched": []}
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page()
            page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen["console"].append(f"page error: {e}"))
            page.on("request", lambda r: seen["requests"].append(r.url))  # asked for, refused ones included
            page.on("requestfinished", lambda r: seen["fetched"].append(r.url))
            await page.goto(report.as_uri(), wait_until="load")
            await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            if await page.locator("a#js").count():
                await page.locator("a#js").first.click()
            await page.check("input[name=show][value=failed]")
            seen["shown"] = await page.text_content("#shown-count")
            await page.wait_for_timeout(1500)  # a refresh or a late fetch would land meanwhile
            seen["pwned"] = await page.evaluate("window.pwned === undefined ? null : window.pwned")
            seen["text"] = await page.text_content("body")
            seen["url"] = page.url
        finally:
            await browser.close()
    seen["hits"] = list(listener.hits)
    return seen


@pytest.mark.browser
async def test_hostile_run_renders_as_text_and_nothing_runs(hostile_report: Path, listener: Listener) -> None:
    seen = await _open(hostile_report, listener)
    assert seen["pwned"] is None and seen["hits"] == []
    assert all(url.startswith("file://") for url in seen["requests"]), seen["requests"]
    assert seen["url"] == hostile_report.as_uri()
    assert [m for m in seen["console"] if not m.startswith(("log:", "info:", "debug:"))] == []
    assert "<script>window.pwned=1" in seen["text"], "the payload shows as text"
    assert seen["shown"] == "0 shown", "the page's own script runs"


@pytest.mark.browser
async def test_the_policy_alone_stops_a_payload_left_unescaped(hostile_report: Path, listener: Listener,
                                                               tmp_path: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    raw = payload(listener.port, refresh=False)
    broken = tmp_path / "report.html"  # as an escaping bug would leave it: in the head, the body and a dialogue
    broken.write_text(html.replace("<title>", raw + "<title>", 1).replace("<main>", "<main>" + raw, 1)
                      .replace('<div id="dialogue-list">', '<div id="dialogue-list">' + raw, 1), encoding="utf-8")
    seen = await _open(broken, listener)
    assert seen["pwned"] is None, "a script ran"
    assert seen["hits"] == [], f"the listener was reached: {seen['hits']}"
    assert all(url.startswith("file://") for url in seen["fetched"]), seen["fetched"]
    assert seen["url"] == broken.as_uri(), "the page was navigated away"
    assert any("Content Security Policy" in m for m in seen["console"]), "the policy refused something"
    assert seen["shown"] == "0 shown", "the page's own script still runs"
