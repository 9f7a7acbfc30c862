"""The skipped and not-run steps of a real run in its report."""

from __future__ import annotations

import html
import re
from pathlib import Path

from support import Workspace

PIPELINE = '''
    [pipeline]
    name = "abort-report"
    jobs = 1

    [steps.load]
    command = "echo 'Error: load failed'; exit 1"
    on_failure = "abort"
    [steps.publish]
    command = "echo publish"
    needs = ["load"]
    [steps.unrelated]
    command = "echo unrelated"
'''


def skipped_items(page: str) -> dict[str, str]:
    """Return the text of each item of the report's skipped and not-run list, by step name."""
    items = re.findall(r'<li class="skipped-step" data-step="([^"]+)">(.*?)</li>', page, re.S)
    return {name: html.unescape(re.sub(r"<[^>]+>", "", text)) for name, text in items}


def test_not_run_step_names_what_stopped_it(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(PIPELINE)
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    steps = ws.steps()
    assert steps["publish"]["status"] == "skipped"
    assert steps["unrelated"]["status"] == "not_run"
    assert steps["unrelated"]["blocked_by"] == "load"
    page = (ws.path / "reports" / ("%s.html" % ws.record()["run_id"])).read_text()
    items = skipped_items(page)
    assert "publish: waited for load" in items["publish"]
    # unrelated does not depend on load: the abort stopped it from starting.
    assert "waited for" not in items["unrelated"]
    assert "unrelated: stopped by load" in items["unrelated"]
