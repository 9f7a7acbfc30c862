"""Run the benchmark harness on its --quick sizes for one round, as `make bench` would run it in full."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("## W0:", "## W1 -j2:", "## W1 -j8:", "## W2:", "## W3 barriers:", "## W3 true deps:", "## W4:",
            "## W5:", "## W6:")


def test_quick_round_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    env = {name: value for name, value in os.environ.items() if not name.startswith("MAKE")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=170, stdin=subprocess.DEVNULL)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert out.exists(), done.stderr[-3000:]
    page = out.read_text()
    for heading in SECTIONS:
        assert heading in page
    assert "not judged: --quick sizes" in page
    assert "Results: %s" % out in done.stdout

    summary, _, rounds = page.partition("## Every round")
    assert rounds, "the page has no per-round tables"
    assert "seedrun.report.render_run | " in rounds
    assert "| `seedrun plan` wall time, s |" in summary
    seedrun_rows = [line for line in summary.splitlines() if line.startswith("| seedrun |")]
    assert len(seedrun_rows) == 7, seedrun_rows
    for line in seedrun_rows:
        assert "skipped" not in line

    failures = [line for line in summary.splitlines() if "failed in round" in line]
    assert failures == []
