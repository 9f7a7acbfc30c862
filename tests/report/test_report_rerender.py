"""`seedrun report` rendering the report of a real run again."""

from __future__ import annotations

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
