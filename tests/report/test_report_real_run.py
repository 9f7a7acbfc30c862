"""The report of a real run, with a failure, a skip and a warning, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report_browser import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT

from support import Workspace

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

PIPELINE = '''
    [pipeline]
    name = "real-report"
    jobs = 3

    [steps.products]
    command = "echo 'Upserted 3 products'"
    metrics = { products = 'Upserted (\\d+) products' }
    metric_floors = { products = 1000 }
    [steps.vendor-a]
    command = "echo fetching; echo 'Error: vendor API answered 500' >&2; exit 3"
    needs = ["products"]
    [steps.inventory-a]
    command = "echo never"
    needs = ["vendor-a"]
    [steps.vendor-b]
    command = "sleep 0.5; echo '<script>alert(1)</script>'"
    needs = ["products"]
'''


def test_real_run_report_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    ws = Workspace(tmp_path)
    ws.write(PIPELINE)
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run = ws.record()
    assert run["steps"][0]["warnings"], "the metric floor should warn"
    assert run["steps"][0]["status"] == "succeeded"
    assert run["steps"][0]["outcome"] == "succeeded with warnings"
    assert "Warning: products succeeded with warnings: " in result.out
    report = ws.path / "reports" / ("%s.html" % run["run_id"])
    url = report.as_uri()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url, wait_until="load")

            assert errors == []
            assert requests == [url]
            assert page.locator(".bar").count() == 3
            failures = page.locator("article.failure").evaluate_all("items => items.map(item => item.dataset.step)")
            assert failures == ["vendor-a"]
            text = page.locator("body").inner_text()
            assert "Error: vendor API answered 500" in text
            assert "inventory-a" in page.locator("#failures").inner_text()
            assert "products" in page.locator("#warnings").inner_text()
            assert "FAILED" in page.locator("#run-status").inner_text()
            artifacts = REPO_ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report-real-run.png"), full_page=True)
        finally:
            browser.close()
