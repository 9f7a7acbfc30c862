"""Run the benchmark harness on its --quick sizes for one round, as `make bench` would run it in full."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("## W1 -j2:", "## W1 -j8:", "## W2:", "## W3 barriers:", "## W3 true deps:", "## W4:", "## W5:", "## W6:")


def test_quick_round_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    env = {name: value for name, value in os.environ.items() if not name.startswith("MAKE")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=170, stdin=subprocess.DEVNULL)

    assert done.returncode == 0, done.stderr[-3000:]
    assert out.exists(), done.stdout
    page = out.read_text()
    for heading in SECTIONS:
        assert heading in page
    assert "not judged: --quick sizes" in page
    assert "failed in round" not in page
    seedrun_rows = [line for line in page.splitlines() if line.startswith("| seedrun |")]
    assert len(seedrun_rows) == 6, seedrun_rows
    for line in seedrun_rows:
        assert "skipped" not in line
    assert "seedrun.report.render_run | " in page
    assert "| `seedrun plan` wall time, s |" in page
    assert "Results: %s" % out in done.stdout
