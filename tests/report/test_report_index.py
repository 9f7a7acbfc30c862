"""The run index of real runs: which steps a run lists as failed and which as allowed failures."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

from support import Workspace

from seedrun.report import render_index

PIPELINE = '''
    [pipeline]
    name = "index"

    [steps.lint]
    command = "exit 3"
    on_failure = "ignore"

    [steps.build]
    command = "BUILD"
'''


def failed_cells(reports: Path) -> dict[str, str]:
    """Return the text of the failed-steps cell of each row of reports/index.html, by run id."""
    page = (reports / "index.html").read_text()
    rows = re.findall(r'<tr class="[a-z_]+" data-run="([^"]+)">(.*?)</tr>', page, re.S)
    cells = {}
    for run_id, row in rows:
        last = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[-1]
        cells[run_id] = html.unescape(re.sub(r"<[^>]+>", "", last)).strip()
    return cells


def test_index_lists_allowed_failures_apart(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(PIPELINE.replace("BUILD", "true"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    succeeded = ws.record()["run_id"]
    ws.write(PIPELINE.replace("BUILD", "exit 4"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    failed = ws.record()["run_id"]

    cells = failed_cells(ws.path / "reports")
    assert cells[succeeded] == "allowed failure: lint"
    assert cells[failed] == "build; allowed failure: lint"


def test_index_of_older_history_row(tmp_path: Path) -> None:
    # Earlier versions listed allowed failures among failed_steps in the history.
    ws = Workspace(tmp_path)
    ws.write(PIPELINE.replace("BUILD", "true"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    run_id = ws.record()["run_id"]
    db = ws.path / "logs" / "history.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE runs SET failed_steps = '[\"lint\"]' WHERE run_id = ?", (run_id,))

    render_index(ws.path / "reports", ws.path / "logs", db)
    assert failed_cells(ws.path / "reports")[run_id] == "allowed failure: lint"
