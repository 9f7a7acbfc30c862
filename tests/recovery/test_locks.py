"""One run of a pipeline per logs directory: the lock, its message, and taking over a dead run's lock."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from datetime import datetime, timezone

import pytest

from support import SEEDRUN, parse_time, pid_alive, processes_with_args, wait_for
from recovery_support import kill_runner, lines, overlapping_starts, processes_of_run, run_dirs, wait_all

# The EXIT trap writes the end line also when seedrun stops the step with SIGTERM.
SLOW = '''
    [pipeline]
    name = "locks"
    jobs = 2

    [defaults]
    kill_grace = "3s"

    [steps.slow]
    command = \'\'\'trap 'echo "end $$" >> "$T/slow.events"' EXIT; trap 'exit 143' TERM; echo "start $$" >> "$T/slow.events"; sleep SECONDS\'\'\'
'''

LOCKED_MESSAGE = re.compile(r"^seedrun: error: another run of pipeline 'locks' holds the lock (\S+): "
                            r"run (\S+), PID (\d+), started (\S+); wait for it to finish, or stop it with: "
                            r"kill -TERM (\d+)$")


def test_two_runs_at_once_one_runs(ws):
    ws.write(SLOW.replace("SECONDS", "1.1"))
    for round_number in range(10):
        before = run_dirs(ws)
        events_before = len(lines(ws.scratch / "slow.events"))
        launched = time.monotonic()
        processes = [ws.launch("run"), ws.launch("run")]
        ends = wait_all(processes)
        outputs = [p.stdout.read() for p in processes]
        codes = [p.returncode for p in processes]
        context = (round_number, codes, outputs)

        assert sorted(codes) == [0, 75], context
        winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
        assert ends[loser] - launched < 2.0, context
        for output in outputs:
            assert "Traceback" not in output, context

        after = run_dirs(ws)
        assert len(after) == len(before) + 1, context
        run_dir = after[-1]
        assert ws.run_dir == run_dir
        record = ws.record(run_dir)
        assert record["status"] == "succeeded", context

        events = lines(ws.scratch / "slow.events")[events_before:]
        assert [e.split()[0] for e in events] == ["start", "end"], context

        message = LOCKED_MESSAGE.match(outputs[loser].strip())
        assert message, context
        assert message.group(2) == record["run_id"], context
        assert int(message.group(3)) == processes[winner].pid, context
        assert int(message.group(5)) == processes[winner].pid, context
        lock_started = datetime.strptime(message.group(4), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert abs(lock_started.timestamp() - parse_time(record["started_at"])) < 2.0, context
    assert processes_with_args("sleep 1.1") == []


def run_while_locked(ws, lock_path):
    """Run seedrun while this process holds the lock, as a run that has just taken it does."""
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return ws.run("run")
    finally:
        os.close(fd)


def test_locked_message_skips_finished_run(ws):
    ws.write(SLOW.replace("SECONDS", "0.1"))
    assert ws.run("run").code == 0
    finished = ws.record()

    # The test takes the lock as a starting run does, before that run has
    # written its own details into the lock file.
    lock_path = ws.path / "logs" / ".seedrun" / "locks.lock"
    result = run_while_locked(ws, lock_path)
    assert result.code == 75, result.out + result.err
    assert result.err.startswith("seedrun: error: another run of pipeline 'locks' holds the lock ")
    assert finished["run_id"] not in result.err
    assert "PID %d," % finished["pid"] not in result.err
    assert len(run_dirs(ws)) == 1


@pytest.mark.parametrize("pid", [99999999999999999999, -1])
def test_locked_message_survives_odd_holder_pid(ws, pid):
    # A lock file edited by hand can name any number as its holder's PID.
    ws.write(SLOW.replace("SECONDS", "0.1"))
    lock_path = ws.path / "logs" / ".seedrun" / "locks.lock"
    lock_path.parent.mkdir(parents=True)
    lock_path.write_text('{"run_id": "x", "pid": %d}' % pid)
    result = run_while_locked(ws, lock_path)
    assert result.code == 75, result.out + result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("seedrun: error: another run of pipeline 'locks' holds the lock ")


def kill_and_run_again(ws):
    """SIGKILL the seedrun process of a run while its step runs, then start a new run at once.

    Return the killed run's directory and PID, and the new run's result.
    """
    ws.write(SLOW.replace("SECONDS", "2.6"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    old_dir = ws.run_dir
    kill_runner(process)
    return old_dir, process.pid, ws.run("run")


def test_stale_lock_is_taken_over(ws):
    old_dir, pid, result = kill_and_run_again(ws)
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID %d) ended without finishing; taking over its lock"
            % (old_dir.name, pid)) in result.lines
    assert "Traceback" not in result.out + result.err

    events = lines(ws.scratch / "slow.events")
    assert [e.split()[0] for e in events] == ["start", "end", "start", "end"]
    assert overlapping_starts(events) == []

    new_dir = ws.run_dir
    assert new_dir != old_dir
    assert ws.steps(new_dir)["slow"]["status"] == "succeeded"
    old = ws.record(old_dir)
    assert old["status"] == "interrupted"
    assert old["finished_at"] is not None
    assert ws.steps(old_dir)["slow"]["status"] == "interrupted"
    assert processes_of_run(old_dir) == []
    assert processes_with_args("sleep 2.6") == []


def test_take_over_records_steps_interrupted_with_run(ws):
    # Taking over stops the step that the dead run left running. The run
    # had ended, so the step was not stopped alone while the run went on.
    ws.write(SLOW.replace("SECONDS", "30") + '[steps.quick]\ncommand = "true"\n')
    process = ws.launch("run", "slow")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    old_dir = ws.run_dir
    kill_runner(process)
    result = ws.run("run", "quick")
    assert result.code == 0, result.out + result.err
    assert "Waiting for the steps of run %s to stop" % old_dir.name in result.lines

    old_step = ws.steps(old_dir)["slow"]
    assert old_step["status"] == "interrupted"
    assert "while the run went on" not in old_step["reason"], old_step
    assert old_step["reason"].startswith("interrupted after "), old_step


def dead_holder(ws, run_dir) -> int:
    """Write the lock details of a seedrun that died holding the lock for run_dir; return its PID."""
    exited = subprocess.Popen(["true"])
    exited.wait()
    lock = ws.path / "logs" / ".seedrun" / "locks.lock"
    lock.write_text(json.dumps({"run_id": run_dir.name, "run_dir": str(run_dir), "pid": exited.pid,
                                "host": os.uname().nodename, "started_at": "2026-12-04T00:00:00Z"}))
    return exited.pid


def test_take_over_run_without_run_json(ws):
    # What a seedrun killed after it wrote plan.json and before its first
    # run.json leaves: a planned run with no record at all.
    ws.write(SLOW.replace("SECONDS", "0.1"))
    assert ws.run("run").code == 0
    old_dir = ws.run_dir
    (old_dir / "run.json").unlink()
    pid = dead_holder(ws, old_dir)

    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID %d) ended without finishing; taking over its lock"
            % (old_dir.name, pid)) in result.lines
    old = ws.record(old_dir)
    assert old["status"] == "interrupted"
    assert old["exit_code"] == 130


def test_take_over_deletes_unplanned_run(ws):
    # What a seedrun killed before it wrote plan.json leaves: a directory
    # that no command lists or cleans up, and in which no step ran.
    ws.write(SLOW.replace("SECONDS", "0.1"))
    assert ws.run("run").code == 0
    unplanned = ws.path / "logs" / "20261204T000000Z-locks"
    (unplanned / ".seedrun" / "stamps").mkdir(parents=True)
    (unplanned / "rules.mk").write_text("all:\n")
    dead_holder(ws, unplanned)
    assert ws.run("run").code == 0
    assert not unplanned.exists()

    # Killed in the middle of an atomic write, it leaves temporary files too.
    (unplanned / ".seedrun" / "records").mkdir(parents=True)
    (unplanned / ".plan.json.123.tmp").write_text("{")
    (unplanned / ".seedrun" / "specs").write_bytes(b"")
    dead_holder(ws, unplanned)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID" % unplanned.name) in result.out
    assert not unplanned.exists()

    # A directory with anything else in it stays, at any depth.
    for extra in ("notes.txt", ".seedrun/notes.txt"):
        (unplanned / ".seedrun").mkdir(parents=True)
        (unplanned / extra).write_text("mine\n")
        dead_holder(ws, unplanned)
        assert ws.run("run").code == 0
        assert (unplanned / extra).read_text() == "mine\n"
        shutil.rmtree(unplanned)


def test_take_over_ignores_runs_outside_logs(ws):
    # A workspace copied with its logs keeps a lock file that names the
    # original's runs. They are not this workspace's to finish or delete.
    ws.write(SLOW.replace("SECONDS", "0.1"))
    assert ws.run("run").code == 0
    elsewhere = ws.path / "original" / "logs"
    planned = elsewhere / "20261204T000000Z-locks"
    (planned / ".seedrun").mkdir(parents=True)
    (planned / "plan.json").write_text((ws.run_dir / "plan.json").read_text())
    unplanned = elsewhere / "20261204T000001Z-locks"
    (unplanned / ".seedrun").mkdir(parents=True)
    for run_dir in (planned, unplanned):
        dead_holder(ws, run_dir)
        result = ws.run("run")
        assert result.code == 0, result.out + result.err
        assert "the lock names %s, which is not a run directory in %s" % (run_dir, ws.path / "logs") in result.err
        assert run_dir.is_dir()
    assert not (planned / "run.json").exists()


@pytest.mark.parametrize("details", ["[]", "null", '"x"', '{"taking_over": "x"}', '{"run_dir": 123}'])
def test_take_over_survives_garbled_lock(ws, details):
    ws.write(SLOW.replace("SECONDS", "0.1"))
    (ws.path / "logs" / ".seedrun").mkdir(parents=True)
    (ws.path / "logs" / ".seedrun" / "locks.lock").write_text(details)
    for _ in range(2):
        result = ws.run("run")
        assert result.code == 0, result.out + result.err
        assert "Traceback" not in result.err


def test_take_over_leaves_unreadable_plan(ws):
    # It used to fail every later run and resume with a traceback.
    ws.write(SLOW.replace("SECONDS", "0.1"))
    assert ws.run("run").code == 0
    old_dir = ws.run_dir
    (old_dir / "run.json").unlink()
    (old_dir / "plan.json").write_text("")
    pid = dead_holder(ws, old_dir)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID %d) ended without finishing, and its plan.json cannot be read; leaving its "
            "directory logs/%s as it is" % (old_dir.name, pid, old_dir.name)) in result.lines
    assert (old_dir / "plan.json").read_text() == ""
    assert not (old_dir / "run.json").exists()
    assert ws.run("resume").code == 0


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 130), (signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_take_over_interrupted_is_taken_over_later(ws, number, code):
    # deaf ignores SIGTERM, so taking over its run waits for its kill_grace.
    ws.write('''
        [pipeline]
        name = "deaf-lock"

        [steps.deaf]
        command = 'trap "" TERM; echo $$ > "$T/deaf.pid"; while :; do sleep 0.1; done'
        kill_grace = "3s"

        [steps.q]
        command = 'echo q >> "$T/q"'
    ''')
    process = ws.launch("run", "deaf")
    assert wait_for(lambda: lines(ws.scratch / "deaf.pid"), timeout=30)
    old_dir = ws.run_dir
    kill_runner(process)

    taker = ws.launch("run", "q")
    waiting = "Waiting for the steps of run %s to stop" % old_dir.name
    seen = []
    while waiting not in seen:
        line = taker.stdout.readline()
        assert line, "the run ended before it took over: %s" % seen
        seen.append(line.rstrip("\n"))
    os.killpg(taker.pid, number)
    output, _ = taker.communicate(timeout=60)
    assert taker.returncode == code, "\n".join(seen) + output
    assert not (ws.scratch / "q").exists()

    result = ws.run("run", "q")
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID %d) ended without finishing; taking over its lock"
            % (old_dir.name, process.pid)) in result.lines
    assert ws.record(old_dir)["status"] == "interrupted"
    assert lines(ws.scratch / "q") == ["q"]
    assert processes_of_run(old_dir) == []


def test_taken_over_run_in_history_and_report(ws):
    old_dir, _, result = kill_and_run_again(ws)
    assert result.code == 0, result.out + result.err
    with closing(sqlite3.connect(ws.path / "logs" / "history.sqlite3")) as connection:
        statuses = dict(connection.execute("SELECT run_id, status FROM runs"))
    assert statuses.get(old_dir.name) == "interrupted"
    report = (ws.path / "reports" / ("%s.html" % old_dir.name)).read_text()
    assert "<title>INTERRUPTED · locks · %s</title>" % old_dir.name in report
    assert processes_with_args("sleep 2.6") == []


def test_resume_while_run_holds_lock(ws):
    ws.write(SLOW.replace("SECONDS", "2.2"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    run_dir = ws.run_dir
    plan = (run_dir / "plan.json").read_bytes()

    result = ws.run("resume")
    assert result.code == 75, result.out + result.err
    message = LOCKED_MESSAGE.match(result.err.strip())
    assert message, result.err
    assert message.group(2) == run_dir.name
    assert int(message.group(3)) == process.pid
    assert "Traceback" not in result.err
    assert (run_dir / "plan.json").read_bytes() == plan

    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert [e.split()[0] for e in lines(ws.scratch / "slow.events")] == ["start", "end"]
    assert processes_with_args("sleep 2.2") == []


def test_locked_hint_stops_background_run(ws):
    # A script's background job ignores SIGINT, so the hint must name a signal that still stops it.
    ws.write(SLOW.replace("SECONDS", "30"))
    background = ws.call(["/bin/sh", "-c", '"$0" run > "$T/background.out" 2>&1 & echo $!', SEEDRUN])
    pid = int(background.out.strip())
    try:
        assert wait_for(lambda: lines(ws.scratch / "slow.events"))
        result = ws.run("run")
        assert result.code == 75, result.out + result.err
        message = LOCKED_MESSAGE.match(result.err.strip())
        assert message, result.err
        assert int(message.group(5)) == pid
        subprocess.run(["kill", "-TERM", message.group(5)], check=True)
        assert wait_for(lambda: not pid_alive(pid), timeout=30)
    finally:
        # A failed check must not leave the background run going on after the test.
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), timeout=30)
    assert ws.record()["status"] == "interrupted"
    assert "Interrupted by SIGTERM" in (ws.scratch / "background.out").read_text()


def test_lock_probe_does_not_refuse_a_run(tmp_path):
    # holder_is_live() holds a shared lock for a moment. A run that starts
    # then must still get the lock, and a real holder must still refuse it.
    from seedrun.errors import LockedError
    from seedrun.lock import PROBE_SECONDS, PipelineLock

    lock = PipelineLock(tmp_path, "probe")
    lock.path.parent.mkdir(parents=True)
    lock.path.write_text("")
    probe = os.open(lock.path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    release = threading.Timer(PROBE_SECONDS / 4, os.close, (probe,))
    release.start()
    try:
        lock.acquire()
        assert PipelineLock(tmp_path, "probe").holder_is_live()
        with pytest.raises(LockedError):
            PipelineLock(tmp_path, "probe").acquire()
    finally:
        release.join()
        lock.release()
    assert not PipelineLock(tmp_path, "probe").holder_is_live()
