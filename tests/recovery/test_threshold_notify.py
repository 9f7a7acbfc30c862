"""max_failures stops a failing run from starting more steps, and [notify] on_failure runs after a failed run."""

from __future__ import annotations

import os
import signal
import time

import pytest

from support import REPO, processes_with_args, wait_for
from recovery_support import lines


def failing_pipeline(limit: str, count: int) -> str:
    steps = "".join('[steps.f%d]\ncommand = \'echo "$SEEDRUN_STEP" >> "$T/started"; exit 1\'\n\n' % n
                    for n in range(1, count + 1))
    return '[pipeline]\nname = "threshold"\njobs = 1\nmax_failures = %s\n\n%s' % (limit, steps)


@pytest.mark.parametrize("limit, count, failures", [("2", 6, 2), ('"30%"', 10, 3)])
def test_max_failures_stops_new_steps(ws, limit, count, failures):
    ws.write(failing_pipeline(limit, count))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err

    started = lines(ws.scratch / "started")
    assert len(started) == failures
    steps = ws.steps()
    failed = sorted(name for name, step in steps.items() if step["status"] == "failed")
    not_run = sorted(name for name, step in steps.items() if step["status"] == "not_run")
    assert failed == sorted(started)
    assert len(not_run) == count - failures
    reason = "not started: %d steps failed, which reaches max_failures (%d)" % (failures, failures)
    for name in not_run:
        assert steps[name]["reason"] == reason, name
        assert steps[name]["started_at"] is None, name
        assert "Not run: %s (%s)" % (name, reason) in result.lines
    assert ws.record()["status"] == "failed"


def test_max_failures_keeps_skip_reason_of_dependents(ws):
    ws.write('''
        [pipeline]
        name = "threshold"
        jobs = 1
        max_failures = 1

        [steps.main]
        command = "exit 1"

        [steps.dependent]
        command = 'echo ran > "$T/dependent.ran"'
        needs = ["main"]

        [steps.independent]
        command = 'echo ran > "$T/independent.ran"'
        after = ["main"]
    ''')
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert "Skipped: dependent (needs main, which failed)" in result.lines
    assert ("Not run: independent (not started: 1 step failed, which reaches max_failures (1))"
            in result.lines)
    steps = ws.steps()
    assert steps["dependent"]["status"] == "skipped"
    assert steps["independent"]["status"] == "not_run"
    assert not (ws.scratch / "independent.ran").exists()


NOTIFY = '''
    [pipeline]
    name = "notify"

    [notify]
    on_failure = 'COMMAND'

    [steps.good]
    command = "echo good"

    [steps.bad]
    command = "EXIT"
'''


def test_notify_gets_run_details(ws):
    ws.write(NOTIFY.replace("COMMAND", 'env | grep ^SEEDRUN_ > "$T/notify.env"').replace("EXIT", "exit 3"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run_id = ws.record()["run_id"]
    variables = dict(line.split("=", 1) for line in lines(ws.scratch / "notify.env"))
    assert variables["SEEDRUN_RUN_ID"] == run_id
    assert variables["SEEDRUN_STATUS"] == "failed"
    assert variables["SEEDRUN_FAILED_STEPS"] == "bad"
    assert variables["SEEDRUN_REPORT"] == str(ws.path / "reports" / ("%s.html" % run_id))
    assert (ws.path / "reports" / ("%s.html" % run_id)).exists()
    assert not any(line.startswith("Warning:") for line in result.lines)


def test_notify_under_make_gets_no_make_variables(ws):
    # Like a step, the notification command gets seedrun's environment
    # without the variables of the make that started seedrun.
    ws.write(NOTIFY.replace("COMMAND", 'env > "$T/notify.env"').replace("EXIT", "exit 3"))
    result = ws.call(["make", "-C", str(REPO), "--no-print-directory", "seed-all",
                      "PIPELINE=%s" % (ws.path / "pipeline.toml")])
    assert result.code == 1, result.out + result.err
    names = {line.split("=", 1)[0] for line in lines(ws.scratch / "notify.env") if "=" in line}
    assert "SEEDRUN_RUN_ID" in names
    for name in ("MAKEFLAGS", "MAKELEVEL", "SEEDRUN_REPLAN_ARGUMENT", "SEEDRUN_LOCKED_EXIT_CODE"):
        assert name not in names, name


def test_failing_notify_keeps_exit_code(ws):
    command = 'echo sent > "$T/notify.ran"; exit 7'
    ws.write(NOTIFY.replace("COMMAND", command).replace("EXIT", "exit 3"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert (ws.scratch / "notify.ran").exists()
    assert ("Warning: the notification command failed with exit code 7 "
            "(see notify.log in the run directory)") in result.lines
    assert ws.record()["exit_code"] == 1


def test_notify_skipped_when_run_succeeds(ws):
    ws.write(NOTIFY.replace("COMMAND", 'echo sent > "$T/notify.ran"').replace("EXIT", "true"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert not (ws.scratch / "notify.ran").exists()


def test_notify_leaves_no_processes(ws):
    command = 'sleep 371 & setsid sleep 373 & echo sent > "$T/notify.ran"'
    ws.write(NOTIFY.replace("COMMAND", command).replace("EXIT", "exit 3"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert (ws.scratch / "notify.ran").exists()
    assert not any(line.startswith("Warning:") for line in result.lines)
    assert processes_with_args("sleep 371") == []
    # setsid took this one out of the command's process group; seedrun, a subreaper, still ends it.
    assert processes_with_args("sleep 373") == []


def test_interrupt_stops_notify(ws):
    command = 'echo started > "$T/notify.started"; sleep 372'
    ws.write(NOTIFY.replace("COMMAND", command).replace("EXIT", "exit 3"))
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "notify.started").exists(), timeout=30)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert time.monotonic() - started < 10, output
    # The run had ended failed before the notification, and stays so.
    assert process.returncode == 1, output
    assert ("Warning: the notification command was stopped by an interrupt "
            "(see notify.log in the run directory)") in output.splitlines()
    assert ws.record()["status"] == "failed"
    assert processes_with_args("sleep 372") == []
