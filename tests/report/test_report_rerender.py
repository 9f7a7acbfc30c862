"""`seedrun report` rendering the report of a real run again."""

from __future__ import annotations

import time
from pathlib import Path

from support import Workspace

STEP_TOKEN = "tok_step_5d4c3b2a1f0e"

PIPELINE = f'''
    [pipeline]
    name = "rerender"

    [steps.upload]
    command = 'echo "Error: upload rejected token $UPLOAD_TOKEN"; exit 2'
    env = {{ UPLOAD_TOKEN = "{STEP_TOKEN}" }}
'''


def test_report_again_masks_step_env(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(PIPELINE)
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run_id = ws.record()["run_id"]
    report = ws.path / "reports" / f"{run_id}.html"
    assert "Error: upload rejected token ***" in report.read_text()

    # The token now lives only in the run's own files, as after an edit
    # of the pipeline file or a rotation of the token.
    ws.write(PIPELINE.replace(STEP_TOKEN, "tok_rotated_0000"))
    again = ws.run("report", run_id)
    assert again.code == 0, again.out + again.err
    page = report.read_text()
    assert "Error: upload rejected token ***" in page
    assert STEP_TOKEN not in page
    assert STEP_TOKEN not in (ws.path / "reports" / "latest.html").read_text()


KEEP_GOING = '''
    [pipeline]
    name = "latest-link"

    [steps.sync]
    command = 'test -z "$FAIL_SYNC"'
'''


def test_report_again_keeps_latest_of_resumed_run(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(KEEP_GOING)
    failing = dict(ws.env, FAIL_SYNC="1")
    assert ws.run("run", env=failing).code == 1
    failed_id = ws.record()["run_id"]
    time.sleep(1.1)  # Run ids have a resolution of one second.
    assert ws.run("run").code == 0
    newest_id = ws.record()["run_id"]
    assert newest_id > failed_id

    resumed = ws.run("resume", failed_id, env=failing)
    assert resumed.code == 1, resumed.out + resumed.err
    assert ws.run_dir.name == failed_id
    latest = ws.path / "reports" / "latest.html"
    assert f"FAILED · latest-link · {failed_id}" in latest.read_text()

    # Without a run id, seedrun report renders the newest run, which is not
    # the one that logs/latest points to.
    again = ws.run("report")
    assert again.code == 0, again.out + again.err
    assert f"{newest_id}.html" in again.out
    assert ws.run_dir.name == failed_id
    assert f"FAILED · latest-link · {failed_id}" in latest.read_text()
