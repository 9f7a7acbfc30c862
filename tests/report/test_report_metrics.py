"""Metric values of a real run in run.json."""

from __future__ import annotations

import json
from pathlib import Path

from support import Workspace

PIPELINE = '''
    [pipeline]
    name = "metric-values"

    [steps.rates]
    command = "echo 'rate: nan'; echo 'peak: inf'; echo 'rows: 1,204'"
    metrics = { rate = 'rate: (\\S+)', peak = 'peak: (\\S+)', rows = 'rows: (\\S+)' }
'''


def reject_constant(name: str) -> None:
    raise ValueError(f"run.json contains {name}, which is not JSON")


def test_non_finite_metric_left_out(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write(PIPELINE)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    text = (ws.run_dir / "run.json").read_text()
    run = json.loads(text, parse_constant=reject_constant)
    assert run["steps"][0]["metrics"] == {"rows": 1204}
