"""keep_runs and seedrun clean: which run directories and reports go, and what the history keeps."""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing

import pytest

from support import INVOKE, REPO, SEEDRUN
from recovery_support import run_dirs

KEEP_TWO = '''
    [pipeline]
    name = "keep"
    keep_runs = 2

    [steps.a]
    command = 'test ! -f "$T/fail"'
'''


def history_run_ids(ws) -> list[str]:
    with closing(sqlite3.connect(ws.path / "logs" / "history.sqlite3")) as connection:
        return sorted(row[0] for row in connection.execute("SELECT run_id FROM runs"))


def report_of(ws, run_id: str):
    return ws.path / "reports" / ("%s.html" % run_id)


def dead_index_links(ws) -> list[str]:
    """Links in reports/index.html to report files that do not exist."""
    reports = ws.path / "reports"
    links = re.findall(r'href="([^"]+\.html)"', (reports / "index.html").read_text())
    return [link for link in links if not (reports / link).exists()]


def test_keep_runs_keeps_newest_and_failed(ws):
    ws.write(KEEP_TWO)
    (ws.scratch / "fail").touch()
    assert ws.run("run").code == 1
    (ws.scratch / "fail").unlink()
    for _ in range(3):
        assert ws.run("run").code == 0
    assert len(history_run_ids(ws)) == 4
    ids = history_run_ids(ws)
    failed, deleted, kept_1, kept_2 = ids

    assert [d.name for d in run_dirs(ws)] == [failed, kept_1, kept_2]
    for run_id in (failed, kept_1, kept_2):
        assert (ws.path / "logs" / run_id / "run.json").exists(), run_id
        assert report_of(ws, run_id).exists(), run_id
    assert not report_of(ws, deleted).exists()
    assert ws.record(ws.path / "logs" / failed)["status"] == "failed"

    result = ws.run("clean", "--keep", "1")
    assert result.code == 0, result.err
    assert result.lines == ["Deleted 1 old run: %s" % kept_1]
    assert [d.name for d in run_dirs(ws)] == [failed, kept_2]
    assert not report_of(ws, kept_1).exists()
    assert report_of(ws, kept_2).exists()
    assert history_run_ids(ws) == ids


@pytest.mark.parametrize("tool", ["seedrun", "make", "invoke"])
def test_clean_defaults_to_keep_runs(ws, tool):
    # An operator who lowers keep_runs cleans up with a bare clean.
    ws.write(KEEP_TWO.replace("keep_runs = 2", "keep_runs = 5"))
    for _ in range(4):
        assert ws.run("run").code == 0
    ids = history_run_ids(ws)
    ws.write(KEEP_TWO)
    pipeline = str(ws.path / "pipeline.toml")
    command = {"seedrun": [SEEDRUN, "clean"],
               "make": ["make", "-C", str(REPO), "--no-print-directory", "clean", "PIPELINE=" + pipeline],
               "invoke": [INVOKE, "--search-root", str(REPO), "clean", "--pipeline", pipeline]}[tool]
    result = ws.call(command)
    assert result.code == 0, result.out + result.err
    assert result.lines == ["Deleted 2 old runs: %s, %s" % (ids[0], ids[1])]
    assert [d.name for d in run_dirs(ws)] == ids[2:]


@pytest.mark.parametrize("how", ["keep_runs", "clean"])
def test_index_has_no_links_to_deleted_reports(ws, how):
    ws.write(KEEP_TWO.replace("keep_runs = 2", "keep_runs = 1" if how == "keep_runs" else "keep_runs = 30"))
    assert ws.run("run").code == 0
    first = ws.record()["run_id"]
    assert ws.run("run").code == 0
    if how == "clean":
        assert ws.run("clean", "--keep", "1").code == 0
    assert not report_of(ws, first).exists()
    assert dead_index_links(ws) == []


def test_clean_repoints_latest_of_deleted_run(ws):
    # A resume of the oldest run points logs/latest at it; clean then deletes it.
    ws.write(KEEP_TWO.replace("keep_runs = 2", "keep_runs = 30"))
    (ws.scratch / "fail").touch()
    assert ws.run("run").code == 1
    oldest = ws.record()["run_id"]
    (ws.scratch / "fail").unlink()
    assert ws.run("run").code == 0
    assert ws.run("run").code == 0
    newest = ws.record()["run_id"]
    assert ws.run("resume", oldest).code == 0
    latest = ws.path / "logs" / "latest"
    assert latest.resolve().name == oldest

    result = ws.run("clean", "--keep", "1")
    assert result.code == 0, result.err
    assert [d.name for d in run_dirs(ws)] == [newest]
    assert latest.is_symlink()
    assert latest.resolve().name == newest
    assert latest.exists()
    assert newest in (ws.path / "reports" / "latest.html").read_text()


def test_clean_skips_run_without_record(ws):
    # The newest run has a plan but no run.json and no report, as a run killed before its
    # first refresh, so latest.html is still the older run's report when clean deletes that run.
    ws.write(KEEP_TWO.replace("keep_runs = 2", "keep_runs = 30"))
    for _ in range(2):
        assert ws.run("run").code == 0
    older, newest = [d.name for d in run_dirs(ws)]
    (ws.path / "logs" / newest / "run.json").unlink()
    report_of(ws, newest).unlink()
    shutil.copyfile(report_of(ws, older), ws.path / "reports" / "latest.html")
    report = ws.run("report", newest)
    assert report.code == 2, report.out + report.err
    assert "seedrun: error: cannot render the report of run %s: cannot read " % newest in report.err
    assert "Traceback" not in report.err

    result = ws.run("clean", "--keep", "1")
    assert result.code == 0, result.out + result.err
    assert result.lines == ["Deleted 1 old run: %s" % older]
    assert "Traceback" not in result.err
    assert "cannot render the report of run %s as latest.html" % newest in result.err
    assert not (ws.path / "reports" / "latest.html").exists()
    assert dead_index_links(ws) == []


def test_earlier_big_runs_stay_cheap(ws):
    """A one-step run next to earlier runs of many steps reads only the head of each earlier run.json.

    Retention and the catch-up of the run history look only at a run's own
    fields (pipeline, status, finish time), which come before its steps.
    Parsing every step of every earlier run at each run's end took seconds
    with a few dozen runs of thousands of steps.
    """
    import json
    import os
    import time

    from seedrun import history

    ws.write('[pipeline]\nname = "small"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    step = {"name": "s", "phase": None, "command": "true", "status": "succeeded", "outcome": "succeeded",
            "exit_code": 0, "attempts": 1, "log": "s.log", "needs": [], "after": [], "attempt_history": []}
    run = {"run_id": "20250101T000000Z-other", "pipeline": "other", "selection": "seed-all",
           "status": "succeeded", "started_at": "2025-01-01T00:00:00.000Z",
           "finished_at": "2025-01-01T00:01:00.000Z", "exit_code": 0, "jobs": 4, "resumed_at": [],
           "mask_env": [], "phases": [], "counts": {"succeeded": 1},
           "steps": [dict(step, name="s%d" % i, log="s%d.log" % i) for i in range(40000)]}
    big = ws.scratch / "run.json"
    big.write_text(json.dumps(run))
    assert big.stat().st_size > 5 * 1024 * 1024
    logs = ws.path / "logs"
    for number in range(20):
        run_id = "20250101T0000%02dZ-other" % number
        (logs / run_id).mkdir()
        # Hard links: one file's disk space for twenty runs.
        os.link(big, logs / run_id / "run.json")
        history.record_run(logs / "history.sqlite3", dict(run, run_id=run_id, steps=[]))

    started = time.monotonic()
    result = ws.run("run")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert elapsed < 3.0, "a one-step run took %.1fs" % elapsed
    assert len([d for d in logs.iterdir() if d.name.endswith("-other")]) == 20
