"""The report in a real browser: Debian's headless Chromium opens it from a file URL with the
network off, logs no console error, and shows the dialogue count and the charts. A screenshot is
saved under test-artifacts/ (gitignored) for a person to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sparring.graphs.runtime.store import REPORT
from tests.graphs.test_runner import FlakyWorld
from tests.traces.scripted_run import scripted_run

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]


@pytest.mark.browser
async def test_report_opens_offline_without_console_errors(tmp_path):
    async_api = pytest.importorskip("playwright.async_api", reason="pip install 'sparring[dev]' (playwright)")
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install chromium (scripts/install.sh dev does it)"
    world = FlakyWorld({"topic 2"}, violating_turns={1: ["privacy.no-doxxing"]})
    run_dir = tmp_path / "run"
    await scripted_run(run_dir, world.backend(), n=4)
    report = run_dir / REPORT
    problems: list[str] = []
    requests: list[str] = []
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(report.as_uri(), wait_until="load")
            assert await page.text_content("#stat-dialogues b") == "3"
            charts = page.locator("figure.chart svg")
            assert await charts.count() >= 1 and await charts.first.is_visible()
            assert await page.locator("figure.chart rect").count() > 0
            # The filter works: only the failed dialogue stays visible.
            await page.check("input[name=show][value=failed]")
            assert await page.text_content("#shown-count") == "1 shown"
            await page.check("input[name=show][value=all]")
            await page.locator("details.dlg summary").first.click()
            await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            await browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "report.png", ARTIFACTS / "report.png")
    assert problems == []
    assert all(url.startswith("file://") for url in requests), requests
