"""Tests for the HTML run report, latest.html and index.html."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import RUN_ID, SECRET, sample_run

from seedrun import history, timeline
from seedrun.report import render_index, render_run
from seedrun.step import format_duration as console_duration

MakeRun = Callable[..., tuple[dict[str, Any], Path]]
MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]


class ReportParser(HTMLParser):
    """Collects the elements that the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[str] = []
        self.failures: list[str] = []
        self.refresh: list[str] = []
        self.section_order: list[str] = []
        self.scripts = 0
        self.links: list[str] = []
        self.critical: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        classes = values.get("class", "").split()
        if "bar" in classes:
            self.bars.append(values["data-step"])
            if "critical" in classes:
                self.critical.append(values["data-step"])
        if tag == "article" and "failure" in classes:
            self.failures.append(values["data-step"])
        if tag == "meta" and values.get("http-equiv") == "refresh":
            self.refresh.append(values.get("content", ""))
        if tag == "section":
            self.section_order.append(values["id"])
        if tag == "script":
            self.scripts += 1
        if tag == "a" and "href" in values:
            self.links.append(values["href"])


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def render(run: dict[str, Any], run_dir: Path, **options: Any) -> Path:
    options.setdefault("history_db", None)
    options.setdefault("live", False)
    return render_run(run, run_dir, run_dir.parent.parent / "reports", **options)


def test_report_written_with_latest_and_index(make_run: MakeRun, project: Path) -> None:
    run, run_dir = make_run()
    path = render(run, run_dir)
    assert path == project / "reports" / f"{RUN_ID}.html"
    assert (project / "reports" / "latest.html").read_text() == path.read_text()
    assert (project / "reports" / "index.html").exists()
    assert not list((project / "reports").glob(".*.tmp"))


def test_report_escapes_markup(make_run: MakeRun) -> None:
    run = sample_run()
    attack = "<script>alert(1)</script>"
    run["steps"][2]["command"] = f"echo '{attack}'"
    run["steps"][2]["reason"] = attack
    run["steps"][5]["reason"] = attack
    run["pipeline"] = f"vendor-sync{attack}"
    run, run_dir = make_run(run)
    with open(run_dir / "seed-quadratec.log", "a", encoding="utf-8") as log:
        log.write(f"{attack}\nerror: {attack}\n")
    path = render(run, run_dir)
    text = path.read_text(encoding="utf-8")
    assert attack not in text
    assert html.escape(attack, quote=False) in text
    assert parse(path).scripts == 0


def test_report_masks_secrets_everywhere(make_run: MakeRun, project: Path) -> None:
    run = sample_run()
    run["steps"][0]["command"] = f"curl -H 'Authorization: {SECRET}' https://vendor.example/api"
    run["steps"][5]["reason"] = f"needs {SECRET}"
    run, run_dir = make_run(run)
    render(run, run_dir, secret_values=[SECRET])
    for name in (f"{RUN_ID}.html", "latest.html", "index.html"):
        assert SECRET not in (project / "reports" / name).read_text(encoding="utf-8")
    report = (project / "reports" / f"{RUN_ID}.html").read_text(encoding="utf-8")
    assert "Client Error for token ***" in report
    assert "needs ***" in report


def test_report_failures_first(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    parsed = parse(render(run, run_dir))
    assert parsed.section_order == ["failures", "warnings", "timeline", "steps"]
    # Blocking failures come first in step order, allowed failures after them.
    assert parsed.failures == ["seed-quadratec", "seed-turn14", "seed-keystone"]


def test_report_failure_details(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert "exit code <strong>1</strong>" in text
    assert "signal <strong>SIGKILL</strong>" in text
    assert "2 attempts" in text
    assert "attempt 2: failed, exit code 1, 55s" in text
    assert "requests.exceptions.HTTPError" in text
    assert "allowed failure (failed)" in text
    assert f'href="../logs/{RUN_ID}/seed-quadratec.log"' in text
    assert f"full log: logs/{RUN_ID}/seed-quadratec.log" in text


def test_report_skipped_names_blocker(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert 'waited for <a href="#step-2">seed-quadratec</a>' in text
    assert "needs seed-quadratec, which failed" in text
    assert "the run stopped after a failure" in text


def test_report_interrupted_listed(make_run: MakeRun) -> None:
    run = sample_run()
    run["status"] = "interrupted"
    run["steps"][1].update(status="interrupted", finished_at=None, duration_s=None, exit_code=None)
    run, run_dir = make_run(run)
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert "<h3>Interrupted (1)</h3>" in text
    assert "INTERRUPTED" in text


def test_report_warnings_and_carried_over(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert "succeeded with warnings" in text
    assert "pairs fell to 120, below half its median of 3412 over the last 5 successful runs" in text
    assert "carried over from an earlier attempt" in text


def test_report_failed_run_not_green(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert '<header class="run failed">' in text
    assert '<p class="status-badge failed" id="run-status"><span aria-hidden="true">✗</span> FAILED</p>' in text


def test_report_timeline_bars(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    parsed = parse(render(run, run_dir))
    ran = [step["name"] for step in run["steps"] if step["started_at"] and not step["carried_over"]]
    assert sorted(parsed.bars) == sorted(ran)
    assert parsed.critical == ["seed-allProducts", "seed-turn14"]


def test_report_makespans(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    text = render(run, run_dir).read_text(encoding="utf-8")
    # The last step ends 12m 00.7s after the first starts. seed-turn14 has no
    # needs, so alone it sets the dependency-only makespan of 10 minutes.
    assert "Makespan: <strong>12m01s</strong>" in text
    assert "it would be <strong>10m00s</strong>" in text


def test_report_live_refresh_only_while_running(make_run: MakeRun, project: Path) -> None:
    running = sample_run()
    running.update(status="running", finished_at=None, exit_code=None)
    running["steps"][1].update(status="running", finished_at=None, duration_s=None)
    running, run_dir = make_run(running)
    path = render(running, run_dir, live=True)
    latest = project / "reports" / "latest.html"
    assert parse(latest).refresh == ["5"]
    assert "this page reloads every 5 s" in latest.read_text(encoding="utf-8")
    assert parse(path).refresh == []

    render(running, run_dir, live=False)
    assert parse(latest).refresh == []

    finished = sample_run()
    render(finished, run_dir, live=True)
    assert parse(latest).refresh == []
    assert parse(path).refresh == []


def test_report_latest_only_for_newest(make_run: MakeRun, project: Path) -> None:
    newer, newer_dir = make_run()
    render(newer, newer_dir)
    older = sample_run()
    older["run_id"] = "20261203T100000Z-vendor-sync"
    older, older_dir = make_run(older)
    render(older, older_dir)
    latest = (project / "reports" / "latest.html").read_text(encoding="utf-8")
    assert RUN_ID in latest
    assert "20261203T100000Z-vendor-sync</dd>" not in latest


def test_report_latest_follows_resumed_run(make_run: MakeRun, project: Path) -> None:
    newer, newer_dir = make_run()
    render(newer, newer_dir)
    older = sample_run()
    older["run_id"] = "20261203T100000Z-vendor-sync"
    older, older_dir = make_run(older)
    # seedrun resume points logs/latest at the older run it continues.
    (older_dir.parent / "latest").symlink_to(older_dir.name)
    render(older, older_dir)
    latest = (project / "reports" / "latest.html").read_text(encoding="utf-8")
    assert "20261203T100000Z-vendor-sync</dd>" in latest


def test_index_newest_first_from_logs(make_run: MakeRun, project: Path) -> None:
    ids = ["20261201T100000Z-vendor-sync", "20261203T100000Z-vendor-sync", "20261202T100000Z-vendor-sync"]
    for run_id in ids:
        run = sample_run()
        run["run_id"] = run_id
        make_run(run, logs=False)
    render(*make_run())
    index = project / "reports" / "index.html"
    text = index.read_text(encoding="utf-8")
    positions = [text.index(f'data-run="{run_id}"') for run_id in [RUN_ID, *sorted(ids, reverse=True)]]
    assert positions == sorted(positions)
    assert f"{RUN_ID}.html" in parse(index).links
    assert "20261201T100000Z-vendor-sync <span class=\"muted\">(no report)</span>" in text
    assert "seed-quadratec, seed-turn14; <span class=\"allowed-failures\">allowed failure: seed-keystone</span>" in text


def test_index_from_history_after_logs_deleted(make_run: MakeRun, project: Path) -> None:
    db = project / "var" / "history.db"
    run, run_dir = make_run()
    history.record_run(db, run)
    render(run, run_dir, history_db=db)
    shutil.rmtree(project / "logs")
    path = render_index(project / "reports", project / "logs", db)
    text = path.read_text(encoding="utf-8")
    assert f'<a href="{RUN_ID}.html">{RUN_ID}</a>' in text
    assert "12m02s" in text


def test_report_uses_history(make_run: MakeRun, project: Path) -> None:
    db = project / "var" / "history.db"
    for day in range(1, 4):
        old = sample_run()
        old["run_id"] = f"2026110{day}T100000Z-vendor-sync"
        old["status"] = "succeeded"
        old["steps"][1]["duration_s"] = 100.0
        history.record_run(db, old)
    run, run_dir = make_run()
    text = render(run, run_dir, history_db=db).read_text(encoding="utf-8")
    assert "3 of the last 4 finished runs succeeded (75%)" in text
    # 252.1 s against a median of 100 s.
    assert ">+152%</td>" in text
    assert '<svg class="spark"' in text


def test_resumed_run_header(make_run: MakeRun, project: Path) -> None:
    run = sample_run()
    run["resumed_at"] = ["2026-12-04T19:45:00.000Z", "2026-12-04T19:47:30.000Z"]
    text = render(*make_run(run)).read_text(encoding="utf-8")
    assert "<dt>Duration</dt><dd>12m02s since the first start</dd>" in text
    assert "<dt>Resumed</dt><dd>2 times, last at 2026-12-04 19:47:30 UTC</dd>" in text

    plain = render(*make_run()).read_text(encoding="utf-8")
    assert "<dt>Duration</dt><dd>12m02s</dd>" in plain
    assert "<dt>Resumed</dt>" not in plain


def test_change_style_only_for_succeeded(make_run: MakeRun, project: Path) -> None:
    db = project / "var" / "history.db"
    for day in range(1, 4):
        old = sample_run()
        old["run_id"] = f"2026110{day}T100000Z-vendor-sync"
        for step in old["steps"]:
            step.update(status="succeeded", duration_s=1000.0)
        history.record_run(db, old)
    run, run_dir = make_run()
    text = render(run, run_dir, history_db=db).read_text(encoding="utf-8")
    # seed-meyer succeeded in 252.1 s and seed-quadratec failed after 107.5 s,
    # both against a median of 1000 s. Only a success ran faster.
    assert '<td class="num faster" title="median of the last 3 successful runs: 16m40s">-75%</td>' in text
    assert '<td class="num " title="median of the last 3 successful runs: 16m40s">-89%</td>' in text


def test_report_hostile_logs(make_run: MakeRun, project: Path) -> None:
    run = sample_run()
    for index, log in ((2, "one-line.log"), (3, "many.log"), (4, "binary.log")):
        run["steps"][index]["log"] = log
    run["steps"][6].update(status="failed", exit_code=1, warnings=[], log="missing.log")
    run["steps"][1].update(status="failed", exit_code=1, log="dir.log")
    run, run_dir = make_run(run)

    with open(run_dir / "one-line.log", "wb") as log:
        log.write(b"[seedrun] attempt 1\n")
        for _ in range(64):
            log.write(b"x" * MIB)
        log.write(b" Error: end of the long line\n")
    with open(run_dir / "many.log", "wb") as log:
        block = b"".join(b"output line %d\n" % number for number in range(10_000))
        for _ in range(200):
            log.write(block)
    (run_dir / "binary.log").write_bytes(b"\xff\xfe\x00\x1b[1;31mred error\x1b[0m\r\nok\x00\n")
    (run_dir / "missing.log").unlink()
    (run_dir / "dir.log").unlink()
    (run_dir / "dir.log").mkdir()

    started = time.perf_counter()
    path = render(run, run_dir)
    assert time.perf_counter() - started < 2

    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 10 * MIB
    assert "bytes omitted, full log: logs/" in text
    assert "Error: end of the long line" in text
    assert "output line 9999" in text
    assert "\ufffd\ufffd\u2400red error" in text
    assert "\x00" not in text
    assert "\x1b" not in text
    assert f"log not found: logs/{RUN_ID}/missing.log" in text
    assert f"log is not a regular file: logs/{RUN_ID}/dir.log" in text


def test_report_custom_templates_dir(make_run: MakeRun, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.html.j2").write_text("<p>{{ run.run_id }} {{ steps | length }}</p>")
    (templates / "index.html.j2").write_text("<p>{{ rows | length }} runs</p>")
    run, run_dir = make_run()
    path = render(run, run_dir, templates_dir=templates)
    assert path.read_text() == f"<p>{RUN_ID} 9</p>"


def test_report_rejects_unsafe_run_id(make_run: MakeRun) -> None:
    run, run_dir = make_run()
    run["run_id"] = "../escape"
    with pytest.raises(ValueError, match="invalid run id"):
        render(run, run_dir)


SCALE_SCRIPT = """
import json, sys, time
from pathlib import Path
from seedrun.report import render_run
root = Path(sys.argv[1])
run = json.loads((root / "run.json").read_text())
started = time.perf_counter()
render_run(run, root / "logs" / run["run_id"], root / "reports", history_db=root / "history.db", live=False)
elapsed = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking
# process (here pytest, which grows over a long session) across exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "max_rss_kib": peak}))
"""


def scale_run(root: Path, steps: int, log_bytes: int, failed: int) -> dict[str, Any]:
    """Write a run of `steps` steps with sparse logs of log_bytes each."""
    run_id = "20261204T193712Z-scale"
    run_dir = root / "logs" / run_id
    run_dir.mkdir(parents=True)
    records = []
    for number in range(steps):
        name = f"step-{number:04d}"
        with open(run_dir / f"{name}.log", "wb") as log:
            log.write(b"[seedrun] attempt 1 started\n")
            log.truncate(log_bytes - 40)
            log.seek(0, os.SEEK_END)
            log.write(b"\nerror: failed\n[seedrun] attempt 1 done\n")
        status = "failed" if number < failed else "succeeded"
        minute = number % 50
        records.append({
            "name": name, "phase": f"phase-{number // 100}", "command": "python -m vendor_sync x",
            "status": status, "exit_code": 1 if status == "failed" else 0, "signal": None, "attempts": 1,
            "queued_at": f"2026-12-04T20:{minute:02d}:00.000Z", "started_at": f"2026-12-04T20:{minute:02d}:01.000Z",
            "finished_at": f"2026-12-04T20:{minute + 5:02d}:00.000Z", "duration_s": 299.0, "log": f"{name}.log",
            "reason": None, "blocked_by": None, "on_failure": "skip-dependents", "allowed_failure": False,
            "metrics": {"products": number}, "metric_floors": {}, "warnings": [],
            "needs": [f"step-{number - 1:04d}"] if number % 10 else [], "after": [],
            "waits_for_phase": f"phase-{number // 100 - 1}" if number >= 100 else None, "pool": None,
            "attempt_history": [], "carried_over": False,
        })
    run = sample_run()
    run.update(run_id=run_id, pipeline="scale", steps=records, phases=[])
    (root / "run.json").write_text(json.dumps(run))
    return run


def test_report_scale_1000_steps_5_gb(tmp_path: Path) -> None:
    run = scale_run(tmp_path, steps=1000, log_bytes=5_000_000, failed=100)
    for day in range(1, 11):
        old = json.loads(json.dumps(run))
        old["run_id"] = f"202611{day:02d}T100000Z-scale"
        history.record_run(tmp_path / "history.db", old)
    total = sum(path.stat().st_size for path in (tmp_path / "logs").rglob("*.log"))
    assert total >= 5_000_000_000
    result = subprocess.run(
        [sys.executable, "-c", SCALE_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    measured = json.loads(result.stdout)
    assert measured["seconds"] < 2.0, measured
    assert measured["max_rss_kib"] < 150 * 1024, measured
    report = tmp_path / "reports" / "20261204T193712Z-scale.html"
    assert report.stat().st_size < 10 * MIB
    assert len(parse(report).bars) == 1000


def test_durations_match_console_format():
    for seconds in (0.4, 9.96, 12.34, 59.9, 252.0, 3599.6, 7500.0):
        assert timeline.format_duration(seconds) == console_duration(seconds)
    assert timeline.format_duration(252.0) == "4m12s"
    assert timeline.format_duration(None) == ""


def test_report_singular_slot_and_carried_step(make_run: MakeRun) -> None:
    run = sample_run()
    run["jobs"] = 1
    run, run_dir = make_run(run)
    text = render(run, run_dir).read_text(encoding="utf-8")
    assert "1 job slot</dd>" in text
    assert "1 step was carried over from an earlier attempt. It did not run again and is not drawn." in text
