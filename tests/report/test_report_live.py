"""reports/latest.html while a real run is still going."""

from __future__ import annotations

import time
from pathlib import Path

from support import Workspace, wait_for

PIPELINE = '''
    [pipeline]
    name = "live-report"

    [steps.quick]
    command = "echo done"
    [steps.long]
    command = "sleep 9"
'''


def test_live_report_during_long_step(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(PIPELINE)
    earlier = ws.run("run", "quick")
    assert earlier.code == 0, earlier.out + earlier.err
    earlier_id = ws.record()["run_id"]
    latest = ws.path / "reports" / "latest.html"
    assert earlier_id in latest.read_text()
    time.sleep(1.1)  # Run ids have a resolution of one second.

    process = ws.launch("run")
    try:
        assert wait_for(lambda: ws.run_dir.name != earlier_id and (ws.run_dir / "run.json").exists(), timeout=5)
        run_id = ws.run_dir.name
        # Every step record changes in the first second, then nothing
        # changes until the long step ends.
        updated = wait_for(lambda: run_id in latest.read_text(), timeout=7.5, interval=0.2)
        page = latest.read_text()
        assert updated, "latest.html still shows the earlier run"
        assert "RUNNING" in page
        assert 'http-equiv="refresh"' in page
    finally:
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "SUCCEEDED" in latest.read_text()
    assert 'http-equiv="refresh"' not in latest.read_text()
