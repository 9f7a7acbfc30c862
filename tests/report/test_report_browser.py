"""Open a rendered report from file:// in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import SECRET, sample_run

from seedrun.report import render_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def test_report_in_chromium(make_run: Callable[..., tuple[dict[str, Any], Path]], project: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    run = sample_run()
    run["steps"][2]["command"] = "echo '<script>alert(1)</script>'"
    run, run_dir = make_run(run)
    with open(run_dir / "seed-quadratec.log", "a", encoding="utf-8") as log:
        log.write("<script>alert(document.title)</script>\n<img src=x onerror=alert(2)>\n")
    path = render_run(run, run_dir, project / "reports", history_db=None, live=False, secret_values=[SECRET])
    url = path.as_uri()
    ran = [step["name"] for step in run["steps"] if step["started_at"] and not step["carried_over"]]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            dialogs: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(url, wait_until="load")

            assert errors == []
            assert requests == [url]
            assert dialogs == []
            assert page.locator(".bar").count() == len(ran)
            failures = page.locator("article.failure").evaluate_all("items => items.map(item => item.dataset.step)")
            assert failures == ["seed-quadratec", "seed-turn14", "seed-keystone"]
            failures_top = page.locator("#failures").bounding_box()
            table_top = page.locator("#steps").bounding_box()
            assert failures_top is not None and table_top is not None
            assert failures_top["y"] < table_top["y"]
            assert "FAILED" in page.locator("#run-status").inner_text()
            badge = page.locator("#run-status").evaluate("item => getComputedStyle(item).backgroundColor")
            assert badge == "rgb(198, 40, 40)"
            assert "<script>alert(document.title)</script>" in page.locator("#failure-2 pre.log").inner_text()
            assert SECRET not in page.content()

            page.set_viewport_size({"width": 375, "height": 800})
            assert page.evaluate("document.documentElement.scrollWidth") <= 375

            page.set_viewport_size({"width": 1280, "height": 900})
            artifacts = REPO_ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()
