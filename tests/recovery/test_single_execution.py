"""A step requested several ways in one run runs once, with one log, in one run directory."""

from __future__ import annotations

import re

from support import REPO
from recovery_support import lines, run_dirs

FETCH = '''
    [pipeline]
    name = "once"
    jobs = 4

    [steps.fetch]
    command = 'echo "run $$" >> "$T/fetch.count"; echo "fetch pid $$"; sleep 1'

    [steps.parse-a]
    command = "echo pa"
    needs = ["fetch"]

    [steps.parse-b]
    command = "echo pb"
    needs = ["fetch"]

    [steps.codes-1]
    command = 'echo "codes $$" >> "$T/codes.count"; echo codes'

    [steps.codes-2]
    command = 'echo "codes $$" >> "$T/codes.count"; echo codes'
'''


def test_step_with_two_dependents_runs_once(ws):
    ws.write(FETCH)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    counted = lines(ws.scratch / "fetch.count")
    assert len(counted) == 1
    log = ws.log("fetch")
    assert re.findall(r"^fetch pid (\d+)$", log, re.M) == [counted[0].split()[1]]
    assert [line for line in result.lines if line == "Starting: fetch"] == ["Starting: fetch"]
    assert [s["name"] for s in ws.record()["steps"]].count("fetch") == 1
    assert len(lines(ws.scratch / "codes.count")) == 2
    assert "\ncodes\n" in ws.log("codes-1")
    assert "\ncodes\n" in ws.log("codes-2")


def test_named_and_needed_step_runs_once(ws):
    ws.write(FETCH)
    assert ws.run("run", "fetch").code == 0
    first_dir = ws.run_dir
    first_log = (first_dir / "fetch.log").read_bytes()

    result = ws.run("run", "fetch", "parse-a", "parse-b", "--with-needs")
    assert result.code == 0, result.out + result.err
    assert len(lines(ws.scratch / "fetch.count")) == 2
    assert ws.log("fetch").count("\nfetch pid ") == 1
    assert ws.run_dir != first_dir
    assert (first_dir / "fetch.log").read_bytes() == first_log


def test_make_with_two_goals_starts_one_run(ws):
    ws.write(FETCH)
    command = ["make", "-C", str(REPO), "fetch", "parse-a", "PIPELINE=%s" % (ws.path / "pipeline.toml")]
    result = ws.call(command)
    assert result.code == 0, result.out + result.err
    assert len(run_dirs(ws)) == 1
    assert len(lines(ws.scratch / "fetch.count")) == 1
    assert "holds the lock" not in result.out + result.err
    assert sorted(s["name"] for s in ws.record()["steps"]) == ["fetch", "parse-a"]


def test_duplicate_step_in_phase_is_invalid(ws):
    ws.write(FETCH + '''
    [[phases]]
    name = "dup"
    steps = ["fetch", "fetch"]
    ''')
    result = ws.run("plan")
    assert result.code == 2
    assert "phase 'dup': duplicate step 'fetch' in phase dup; list each step once" in result.err
    assert not (ws.path / "logs").exists()
