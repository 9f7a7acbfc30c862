"""The step launcher: losing it mid-run, running without it, and recipes left by a killed run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from support import parent_of, processes_with_args, record_now, wait_for
from recovery_support import kill_runner, lines, make_of_run, processes_of_run

# `slow` traps SIGTERM so that the test can see it was stopped, not killed.
PIPELINE = '''
    [pipeline]
    name = "launcher"
    jobs = 2

    [defaults]
    kill_grace = "3s"

    [steps.slow]
    command = \'\'\'trap 'echo "end $$" >> "$T/slow.events"; exit 143' TERM; echo "start $$" >> "$T/slow.events"; sleep SECONDS & wait\'\'\'

    [steps.after]
    command = 'echo after >> "$T/after.count"'
    needs = ["slow"]
'''


def command_line(pid: int) -> bytes:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def launcher_of_run(run_dir, seedrun_pid: int) -> list[int]:
    """PIDs of the launchers of a run: children of seedrun (its workers have its command line too)."""
    found = []
    for pid in processes_of_run(run_dir):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                command = f.read()
        except OSError:
            continue
        if b"seedrun.launcher" in command and parent_of(pid) == seedrun_pid:
            found.append(pid)
    return found


def workers_of(run_dir, seedrun_pid: int) -> list[int]:
    """PIDs of the workers of a run's launcher: its children (a busy one works in the step's workdir)."""
    launchers = launcher_of_run(run_dir, seedrun_pid)
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if parent_of(pid) in launchers]


def check_stopped_on_error(ws, run_dir, reason: str, output: str) -> None:
    """Check a run of PIPELINE that seedrun stopped on its own error while `slow` ran.

    `slow` got SIGTERM and is recorded interrupted, `after` never started
    and gives `reason` in run.json and on the console, the run is recorded
    failed, and nothing of it runs on.
    """
    assert "Not run: after (not started: %s)" % reason in output.splitlines()
    assert [event.split()[0] for event in lines(ws.scratch / "slow.events")] == ["start", "end"]
    steps = ws.steps(run_dir)
    assert steps["slow"]["status"] == "interrupted"
    assert steps["after"]["status"] == "not_run"
    assert steps["after"]["reason"] == "not started: " + reason
    assert not (ws.scratch / "after.count").exists()
    record = ws.record(run_dir)
    assert record["status"] == "failed"
    assert record["error"] == reason
    # The report gives the reason the run failed, not only that no step failed.
    report = (ws.path / "reports" / ("%s.html" % run_dir.name)).read_text()
    assert '<p class="run-error" id="run-error"><strong>Run error:</strong> %s. make.log' % reason in report
    assert processes_of_run(run_dir) == []
    assert processes_with_args("sleep 30") == []


def test_lost_launcher_stops_run(ws):
    ws.write(PIPELINE.replace("SECONDS", "30"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    run_dir = ws.run_dir
    launchers = launcher_of_run(run_dir, process.pid)
    assert len(launchers) == 1

    os.kill(launchers[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=30)
    # seedrun stopped the run after its own error, so the run failed and was not interrupted.
    assert process.returncode == 1, output
    assert ("Error: the step launcher (PID %d) exited unexpectedly with SIGKILL; stopping the run "
            "(see make.log in logs/%s)" % (launchers[0], run_dir.name)) in output.splitlines()

    # The step runner outlived the launcher, stopped its step and recorded it.
    check_stopped_on_error(ws, run_dir, "the step launcher exited unexpectedly with SIGKILL", output)
    assert ws.record(run_dir)["exit_code"] == 1
    # Now a child of seedrun, the step runner still prints how its step ended.
    said = [line for line in output.splitlines() if line.startswith("Interrupted: slow after ")]
    assert len(said) == 1, output


def test_lost_launcher_during_retry_wait_keeps_outcome_line(ws):
    # The step runner finds its launcher gone while it waits to retry, and
    # ends the step. seedrun still runs, so the step's line must reach the
    # console. seedrun is stopped meanwhile, so the step runner finds the
    # lost launcher before seedrun's SIGTERM reaches it.
    ws.write('''
        [pipeline]
        name = "retry-wait"
        [steps.flaky]
        command = 'echo try >> "$T/flaky.events"; exit 1'
        retries = 1
        retry_delay = "60s"
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: lines(ws.scratch / "flaky.events"), timeout=30)
        run_dir = ws.run_dir
        launchers = launcher_of_run(run_dir, process.pid)
        assert len(launchers) == 1
        os.kill(process.pid, signal.SIGSTOP)
        try:
            os.kill(launchers[0], signal.SIGKILL)
            assert wait_for(lambda: record_now(ws, "flaky").get("status") == "failed", timeout=30)
        finally:
            os.kill(process.pid, signal.SIGCONT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1, output
    assert ws.steps(run_dir)["flaky"]["status"] == "failed"
    outcome_lines = [line for line in output.splitlines() if line.startswith("Failed: flaky, ")]
    assert outcome_lines == ["Failed: flaky, exit code 1 (see logs/%s/flaky.log)" % run_dir.name], output


def recipe_of(run_dir, step: str) -> list[int]:
    """PIDs of the recipe shells of a run that wait for the reply of `step`."""
    # Only this run's processes: a run of another test or session may have a recipe of the same name.
    return [pid for pid in processes_of_run(run_dir)
            if b"/bin/sh" in command_line(pid) and b".seedrun/reply/%s;" % step.encode() in command_line(pid)]


def test_killed_recipe_stops_its_step(ws):
    # make counts a killed recipe as failed and can exit while the step it
    # asked for still runs in its worker. Nothing can use that step in this
    # run any more, so seedrun stops it as it stops the steps of a lost make.
    ws.write(PIPELINE.replace("SECONDS", "30"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    run_dir = ws.run_dir
    recipes = recipe_of(run_dir, "slow")
    assert len(recipes) == 1
    makes = make_of_run(run_dir)
    assert len(makes) == 1
    os.kill(recipes[0], signal.SIGKILL)

    output, _ = process.communicate(timeout=20)
    assert process.returncode == 1, output
    assert ("Error: make (PID %d) exited unexpectedly with exit code 2 while steps were running; stopping them "
            "(see make.log in logs/%s)" % (makes[0], run_dir.name)) in output.splitlines()
    check_stopped_on_error(ws, run_dir, "make exited unexpectedly with exit code 2", output)
    assert re.search(r"^\[seedrun\] interrupted after .*; stopped with SIGTERM", ws.log("slow"), re.M)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGKILL])
def test_killed_make_stops_running_steps(ws, number):
    # Without seedrun's handling, the step would run its 30 s to the end in
    # its launcher worker, unsupervised, with nothing on the console.
    ws.write(PIPELINE.replace("SECONDS", "30"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    run_dir = ws.run_dir
    makes = make_of_run(run_dir)
    assert len(makes) == 1
    os.kill(makes[0], number)

    output, _ = process.communicate(timeout=20)
    name = signal.Signals(number).name
    assert process.returncode == 1, output
    assert ("Error: make (PID %d) exited unexpectedly with %s while steps were running; stopping them "
            "(see make.log in logs/%s)" % (makes[0], name, run_dir.name)) in output.splitlines()
    check_stopped_on_error(ws, run_dir, "make exited unexpectedly with %s" % name, output)


def break_reply_fifos(run_dir) -> None:
    """Replace a run's folder of reply FIFOs with a file, so that a resume cannot use the launcher."""
    replies = run_dir / ".seedrun" / "reply"
    for fifo in replies.iterdir():
        fifo.unlink()
    replies.rmdir()
    replies.write_text("not a folder\n")


POOL_PIPELINE = '''
    [pipeline]
    name = "pool"
    jobs = 2

    [pools]
    single = 1

    [defaults]
    kill_grace = "3s"

    [steps.first]
    command = 'echo start >> "$T/first.events"; sleep 30'
    pool = "single"

    [steps.second]
    command = 'echo start >> "$T/second.events"; sleep 30'
    pool = "single"
'''


def test_killed_make_names_reason_for_waiting_step(ws):
    # One step waits for the pool slot that the other has when make is
    # killed. Its step runner must give the run's reason too, not a generic
    # interruption. Either step may get the slot first.
    ws.write(POOL_PIPELINE)
    process = ws.launch("run")
    def started() -> list[str]:
        return [name for name in ("first", "second") if lines(ws.scratch / ("%s.events" % name))]

    assert wait_for(started)
    running = started()[0]
    waiting = "second" if running == "first" else "first"
    assert wait_for(lambda: record_now(ws, waiting).get("status") == "waiting")
    makes = make_of_run(ws.run_dir)
    assert len(makes) == 1
    os.kill(makes[0], signal.SIGTERM)

    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1, output
    steps = ws.steps()
    assert steps[running]["status"] == "interrupted"
    assert steps[waiting]["status"] == "not_run"
    assert steps[waiting]["reason"] == "not started: make exited unexpectedly with SIGTERM"
    assert "Not run: %s (not started: make exited unexpectedly with SIGTERM)" % waiting in output.splitlines()
    assert not (ws.scratch / ("%s.events" % waiting)).exists()


def test_make_killed_after_last_step_is_no_error(ws):
    # When make dies after every step has its final record, nothing was
    # lost: the run succeeded, and nothing is stopped or reported.
    ws.write('[pipeline]\nname = "last"\n[steps.only]\ncommand = "sleep 0.3"\n')
    process = ws.launch("run")
    state = ws.path / "logs" / "latest" / ".seedrun"
    assert wait_for(lambda: (state / "records" / "only").exists(), timeout=30)
    make_pid = int((state / "make.pid").read_text())
    # Stopped, make cannot notice that the recipe ended until it is killed.
    os.kill(make_pid, signal.SIGSTOP)
    assert wait_for((state / "stamps" / "only.done").exists, timeout=30)
    os.kill(make_pid, signal.SIGKILL)

    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Error:" not in output
    assert ws.record()["status"] == "succeeded"
    assert ws.steps()["only"]["status"] == "succeeded"


def test_killed_make_without_launcher_stops_steps(ws):
    # Without a launcher each recipe runs its step runner, which the killed
    # make leaves orphaned to seedrun. seedrun must let it stop its step and
    # write its record before it kills what is left.
    ws.write(PIPELINE.replace("SECONDS", "30").replace("trap ", "test -f \"$T/fixed\" || exit 1; trap "))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run_dir = ws.run_dir
    # The resumed run then starts a step runner per recipe.
    break_reply_fifos(run_dir)
    (ws.scratch / "fixed").touch()

    process = ws.launch("resume")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    makes = make_of_run(run_dir)
    assert len(makes) == 1
    os.kill(makes[0], signal.SIGKILL)

    output, _ = process.communicate(timeout=20)
    assert process.returncode == 1, output
    assert "Error: make (PID %d) exited unexpectedly with SIGKILL while steps were running" % makes[0] in output
    assert [event.split()[0] for event in lines(ws.scratch / "slow.events")] == ["start", "end"]
    steps = ws.steps(run_dir)
    assert steps["slow"]["status"] == "interrupted"
    assert "; stopped with SIGTERM;" in ws.log("slow").splitlines()[-1]
    assert steps["after"]["status"] == "not_run"
    assert steps["after"]["reason"] == "not started: make exited unexpectedly with SIGKILL"
    assert processes_of_run(run_dir) == []
    assert processes_with_args("sleep 30") == []


def test_make_without_launcher_runs_steps(ws):
    ws.write(PIPELINE.replace("SECONDS", "0.1"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    run_dir = ws.run_dir
    stamps = run_dir / ".seedrun" / "stamps"
    for name in ("after.done", "after.ok"):
        (stamps / name).unlink()

    # make on the run's rules, without SEEDRUN_LAUNCHER=1, starts a step runner per recipe.
    done = subprocess.run(["make", "-f", "rules.mk", "-s"], cwd=run_dir, env=ws.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Starting: after" in done.stdout.splitlines()
    assert (stamps / "after.ok").exists()
    assert lines(ws.scratch / "after.count") == ["after", "after"]
    assert "[seedrun] step after, attempt 2 of 2, started " in ws.log("after")
    assert len(lines(ws.scratch / "slow.events")) == 1


def test_take_over_ends_recipes_of_killed_run(ws):
    ws.write(PIPELINE.replace("SECONDS", "1.5"))
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    run_dir = ws.run_dir
    # Kill make, the launcher and its worker (both have the
    # launcher's command line), then seedrun, stopped first so that it cannot
    # clean up. Nothing is left to reply to the recipe shell of `slow`.
    os.kill(process.pid, signal.SIGSTOP)
    makes = make_of_run(run_dir)
    assert len(makes) == 1
    os.kill(makes[0], signal.SIGKILL)
    forked = [pid for pid in processes_of_run(run_dir) if b"seedrun.launcher" in command_line(pid)]
    assert len(forked) == 2
    for pid in forked:
        os.kill(pid, signal.SIGKILL)
    kill_runner(process)
    # The step's command runs in a session of its own and ends by itself.
    assert wait_for(lambda: processes_with_args("sleep 1.5") == [], timeout=15)
    assert processes_of_run(run_dir), "the recipe shell of slow should still wait for its reply"

    # A new run takes over the lock and ends the old recipe. The new run has
    # a directory of its own, so its launcher never writes to the old FIFOs.
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert processes_of_run(run_dir) == []
    assert ws.run_dir != run_dir
    assert ws.steps(run_dir)["slow"]["status"] == "interrupted"
    assert ws.steps()["after"]["status"] == "succeeded"
    assert lines(ws.scratch / "after.count") == ["after"]


def test_resume_without_reply_fifos_falls_back(ws):
    ws.write(PIPELINE.replace("SECONDS", "0.1").replace("echo after >>", "test -f \"$T/fixed\" && echo after >>"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run_dir = ws.run_dir
    # The resumed run must start a step runner per recipe instead of failing.
    break_reply_fifos(run_dir)
    (ws.scratch / "fixed").touch()

    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.out + result.err
    steps = ws.steps()
    assert steps["slow"]["carried_over"] is True
    assert steps["after"]["status"] == "succeeded"
    assert lines(ws.scratch / "after.count") == ["after"]
    assert processes_of_run(run_dir) == []


def test_stop_reaches_launcher_that_starts_late(ws):
    ws.write(PIPELINE.replace("SECONDS", "0.1"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    # Every stamp exists, so make exits at once, usually before the launcher
    # has opened its FIFO: the stop request must still reach it.
    for _ in range(3):
        result = ws.run("resume", "--replan", timeout=60)
        assert result.code == 0, result.out + result.err
        assert processes_of_run(ws.run_dir) == []
    assert lines(ws.scratch / "after.count") == ["after"]


def test_second_interrupt_after_lost_launcher_kills_at_once(ws):
    ws.write('''
        [pipeline]
        name = "deaf"
        jobs = 2

        [defaults]
        kill_grace = "40s"

        [steps.slow]
        command = \'\'\'trap "" TERM; echo "start $$" >> "$T/slow.events"; sleep 60\'\'\'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    launchers = launcher_of_run(ws.run_dir, process.pid)
    assert len(launchers) == 1
    os.kill(launchers[0], signal.SIGKILL)
    # The step ignores SIGTERM, so seedrun waits for its kill_grace of 40 s
    # unless a second interrupt kills it at once.
    time.sleep(0.5)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert time.monotonic() - started < 20, output
    assert process.returncode == 130, output
    assert "Killing the running steps now" in output.splitlines()
    assert processes_of_run(ws.run_dir) == []
    assert processes_with_args("sleep 60") == []


def test_take_over_ends_stale_recipe_of_finished_run(ws):
    ws.write(PIPELINE.replace("SECONDS", "0.1").replace("echo after >>", "test -f \"$T/fixed\" && echo after >>"))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    run_dir = ws.run_dir
    # What a resume killed before its first record leaves: a recipe shell of
    # the old make, still trying to hand its request to a launcher, and the
    # lock details of a seedrun that is gone.
    stale = subprocess.Popen(["/bin/sh", "-c", 'exec 3<>.seedrun/reply/after; echo "$$ after after" '
                              '>.seedrun/launcher.fifo; read -r code <&3'], cwd=run_dir, start_new_session=True)
    (run_dir / ".seedrun" / "make.pid").write_text(str(stale.pid))
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = ws.path / "logs" / ".seedrun" / "launcher.lock"
    lock.write_text(json.dumps({"run_id": run_dir.name, "run_dir": str(run_dir), "pid": gone.pid,
                                "host": os.uname().nodename, "started_at": "2026-12-04T00:00:00Z"}))
    (ws.scratch / "fixed").touch()

    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert stale.wait(timeout=10) == -signal.SIGKILL
    assert lines(ws.scratch / "after.count") == ["after"]
    assert result.out.count("Starting: after") == 1
    assert processes_of_run(run_dir) == []


FAN_OUT = '''
    [pipeline]
    name = "fan-out"
    jobs = JOBS

    [steps.first]
    command = 'touch "$T/started"; sleep 3'
'''


def fan_out(count: int, jobs: int) -> str:
    text = FAN_OUT.replace("JOBS", str(jobs))
    for number in range(count):
        text += '\n    [steps.next-%d]\n    command = "true"\n    needs = ["first"]\n' % number
    return text


@pytest.mark.parametrize("jobs, workers", [(8, 4), (2, 2)])
def test_spare_workers_before_fan_out(ws, jobs, workers):
    # Four steps become ready together after `first`, so while it runs the
    # launcher forks workers beside the one that runs it: as many as the
    # steps that come next, and no more than the job limit.
    ws.write(fan_out(4, jobs))
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "started").exists())
    run_dir = ws.run_dir
    assert wait_for(lambda: len(workers_of(run_dir, process.pid)) == workers)
    time.sleep(0.3)
    assert len(workers_of(run_dir, process.pid)) == workers
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert processes_of_run(run_dir) == []


def launchers_of(seedrun_pid: int) -> list[int]:
    """PIDs of the live launchers and workers of the seedrun process seedrun_pid (its PID is their last argument)."""
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if b"seedrun.launcher" in command_line(pid)
            and command_line(pid).rstrip(b"\0").rsplit(b"\0", 1)[-1] == str(seedrun_pid).encode()]


def test_launcher_exits_when_run_not_started(ws):
    # seedrun starts its launcher before it reads the pipeline file. A run
    # that the lock or the pipeline file stops must not leave it behind.
    ws.write(PIPELINE.replace("SECONDS", "30"))
    holder = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.events"))
    locked_out = ws.launch("run")
    output, _ = locked_out.communicate(timeout=60)
    assert locked_out.returncode == 75, output
    assert launchers_of(locked_out.pid) == []

    ws.write("[steps.broken]\ncommand = 3\n", name="broken.toml")
    invalid = ws.launch("--pipeline", "broken.toml", "run")
    output, _ = invalid.communicate(timeout=60)
    assert invalid.returncode == 2, output
    assert launchers_of(invalid.pid) == []

    os.killpg(holder.pid, signal.SIGINT)
    output, _ = holder.communicate(timeout=60)
    assert holder.returncode == 130, output


@pytest.mark.parametrize("args, code, expected", [
    (("run", "--no-such-option"), 2, "unrecognized arguments: --no-such-option"),
    (("run", "--help"), 0, "usage: seedrun run"),
    (("plan", "run"), 0, "run"),
    (("validate", "resume"), 2, "unrecognized arguments: resume"),
])
def test_early_launcher_of_other_commands_exits(ws, args, code, expected):
    # seedrun starts its launcher before argparse has read the command line,
    # whenever an argument is "run" or "resume". A command line that starts
    # no run must still work and must not leave that launcher behind.
    ws.write('[steps.run]\ncommand = "true"\n')
    process = ws.launch(*args)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == code, output
    assert expected in output
    assert launchers_of(process.pid) == []


# The number of read(2) in /proc/PID/syscall, by machine.
READ_SYSCALLS = {"x86_64": "0", "aarch64": "63"}


def reads_stdin(pid: int) -> bool:
    """Tell whether a process is blocked in read() on its fd 0, from /proc/PID/syscall."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            fields = f.read().split()
    except OSError:
        return False
    return fields[:2] == [READ_SYSCALLS[os.uname().machine], "0x0"]


@pytest.mark.skipif(os.uname().machine not in READ_SYSCALLS, reason="read(2)'s number on this machine is not listed")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGKILL])
def test_early_launcher_lost_before_run_is_replaced(ws, number):
    # seedrun starts its launcher before it reads the pipeline file, which is
    # a FIFO here, so the launcher waits for its run. One that dies then is
    # only a lost head start: the run starts another and succeeds.
    fifo = ws.path / "waiting.toml"
    os.mkfifo(fifo)
    process = ws.launch("--pipeline", str(fifo), "run")
    assert wait_for(lambda: len(launchers_of(process.pid)) == 1)
    early = launchers_of(process.pid)[0]
    # Signalled while Python still starts, it would die as any Python does.
    assert wait_for(lambda: reads_stdin(early))
    os.kill(early, number)
    assert wait_for(lambda: early not in launchers_of(process.pid))
    with open(fifo, "w") as writer:
        writer.write(PIPELINE.replace("SECONDS", "0.1"))

    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "Error:" not in output
    assert ws.steps()["after"]["status"] == "succeeded"
    assert lines(ws.scratch / "after.count") == ["after"]


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_while_early_launcher_released(ws, number):
    # argparse rejects the command line, and seedrun then waits for the
    # early launcher it no longer needs. A signal in that wait is an
    # interrupt like any other: no traceback, and exit 130, or 2 if the
    # wait was already over.
    ws.write(PIPELINE.replace("SECONDS", "0.1"))
    process = ws.launch("run", "--no-such-option")
    first = process.stdout.readline()
    process.send_signal(number)
    output, _ = process.communicate(timeout=30)
    assert first.startswith("usage: seedrun "), first + output
    assert process.returncode in (2, 130), first + output
    assert "Traceback" not in output
    assert launchers_of(process.pid) == []
