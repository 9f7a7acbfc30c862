"""Steps that die from outside, hang past their timeout, or leave processes behind."""

from __future__ import annotations

import marshal
import os
import re
import signal
import time

import pytest

from fault_support import footer_lines, kill_run_processes, read_pid, run_processes
from support import parent_of, parse_time, pid_alive, processes_with_args, status_of, wait_for


@pytest.fixture
def reaped(ws):
    """The workspace, cleaned of processes after the test."""
    yield ws
    kill_run_processes(ws.scratch)


def test_step_killed_from_outside_fails(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "outside-kill"
        jobs = 2

        [defaults]
        kill_grace = "2s"

        [steps.victim]
        command = 'echo $$ > "$T/victim.pid"; sleep 351; echo survived'

        [steps.after-victim]
        command = 'echo ran > "$T/after-victim.ran"'
        needs = ["victim"]
    """)
    process = ws.launch("run")
    assert wait_for(lambda: read_pid(ws.scratch / "victim.pid"), timeout=30)
    os.kill(read_pid(ws.scratch / "victim.pid"), signal.SIGKILL)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    step = ws.steps()["victim"]
    assert step["status"] == "failed"
    assert step["signal"] == "SIGKILL"
    assert step["exit_code"] is None
    assert step["reason"] == "killed by SIGKILL"
    assert ws.steps()["after-victim"]["status"] == "skipped"
    assert not (ws.scratch / "after-victim.ran").exists()
    run_id = ws.record()["run_id"]
    assert "Failed: victim, killed by SIGKILL (see logs/%s/victim.log)" % run_id in output.splitlines()
    assert not any(line.startswith("Finished: victim") for line in output.splitlines())
    assert "\nsurvived\n" not in ws.log("victim")
    assert footer_lines(ws.log("victim"))[0].startswith("[seedrun] killed by SIGKILL after ")
    # The step's sleep outlived its shell; the step runner killed it.
    assert "[seedrun] killed 1 leftover process that the step started" in footer_lines(ws.log("victim"))
    assert processes_with_args("sleep 351") == []
    assert run_processes(ws.scratch) == []


def test_timeout_kills_step_ignoring_signals(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "hang"
        jobs = 2

        [steps.hang]
        command = '''echo $$ > "$T/hang.pid"; trap '' TERM INT HUP; while :; do sleep 1; done'''
        timeout = "2s"
        kill_grace = "2s"

        [steps.needs-hang]
        command = 'echo ran > "$T/needs-hang.ran"'
        needs = ["hang"]

        [steps.needs-needs-hang]
        command = 'echo ran > "$T/needs-needs-hang.ran"'
        needs = ["needs-hang"]
    """)
    started = time.monotonic()
    result = ws.run("run", timeout=60)
    seconds = time.monotonic() - started

    assert result.code == 1, result.out + result.err
    assert seconds < 12, "the run took %.1fs for a 2s timeout and a 2s kill_grace" % seconds
    steps = ws.steps()
    hang = steps["hang"]
    assert hang["status"] == "timed_out"
    assert hang["signal"] == "SIGKILL"
    assert hang["exit_code"] is None
    assert hang["reason"] == "timed out after 2s"
    took = parse_time(hang["finished_at"]) - parse_time(hang["started_at"])
    assert 3.8 <= took <= 6, "timeout plus kill_grace took %.1fs" % took
    assert footer_lines(ws.log("hang"))[0] == (
        "[seedrun] timed out after 2s; stopped with SIGTERM, then SIGKILL after 2s; ended by SIGKILL")
    assert steps["needs-hang"]["status"] == "skipped"
    assert steps["needs-hang"]["reason"] == "needs hang, which timed out"
    assert steps["needs-needs-hang"]["status"] == "skipped"
    assert steps["needs-needs-hang"]["blocked_by"] == "hang"
    assert steps["needs-needs-hang"]["reason"] == "needs needs-hang, which was skipped because hang timed out"
    assert not (ws.scratch / "needs-hang.ran").exists()
    run_id = ws.record()["run_id"]
    assert "Failed: hang, timed out after 2s (see logs/%s/hang.log)" % run_id in result.lines
    assert "Skipped: needs-hang (needs hang, which timed out)" in result.lines
    assert not pid_alive(read_pid(ws.scratch / "hang.pid"))
    assert run_processes(ws.scratch) == []


LEFTOVERS = """
    [pipeline]
    name = "leftovers"
    jobs = 2

    [defaults]
    kill_grace = "2s"

    [steps.escape]      # the child leaves the step's session and process group
    command = 'setsid sleep 361 & echo launched'

    [steps.after-escape]
    command = 'echo after-escape-ran'
    needs = ["escape"]

    [steps.holder]      # the child keeps the log open as its stdout
    command = 'sleep 362 & echo launched'

    [steps.after-holder]
    command = 'echo after-holder-ran'
    needs = ["holder"]
"""


@pytest.mark.parametrize("step, child", [("escape", "sleep 361"), ("holder", "sleep 362")])
def test_step_ends_when_its_shell_exits(reaped, step, child):
    ws = reaped
    ws.write(LEFTOVERS)
    started = time.monotonic()
    result = ws.run("run", timeout=60)
    seconds = time.monotonic() - started

    assert result.code == 0, result.out + result.err
    assert seconds < 10, "the run took %.1fs although every shell exits at once" % seconds
    steps = ws.steps()
    record = steps[step]
    assert record["status"] == "succeeded"
    assert record["duration_s"] < 1.5
    assert record["leftovers_killed"] == 1
    follower = steps["after-" + step]
    assert follower["status"] == "succeeded"
    gap = parse_time(follower["started_at"]) - parse_time(record["finished_at"])
    assert gap < 1.5, "the next step started %.1fs after %s finished" % (gap, step)
    log = ws.log(step)
    assert "\nlaunched\n" in log
    assert footer_lines(log) == [footer_lines(log)[0], "[seedrun] killed 1 leftover process that the step started"]
    assert footer_lines(log)[0].startswith("[seedrun] exit code 0 after ")
    assert processes_with_args(child) == []
    assert run_processes(ws.scratch) == []


def test_step_closing_stdout_still_waited_for(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "closer"

        [steps.closer]
        command = 'echo bye; exec >&- 2>&-; sleep 4; exit 6'
    """)
    result = ws.run("run", timeout=60)

    assert result.code == 1, result.out + result.err
    step = ws.steps()["closer"]
    assert step["status"] == "failed"
    assert step["exit_code"] == 6
    assert step["signal"] is None
    assert 3.9 <= step["duration_s"] < 6
    log = ws.log("closer")
    assert "\nbye\n[seedrun] exit code 6 after 4" in log
    run_id = ws.record()["run_id"]
    assert "Failed: closer, exit code 6 (see logs/%s/closer.log)" % run_id in result.lines
    assert run_processes(ws.scratch) == []


def test_escaped_deaf_child_killed_within_grace(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "deaf-escape"

        [steps.deaf-escape]   # ignores SIGTERM, and so does the child it moves to a new session
        command = '''trap '' TERM INT HUP; setsid sleep 366 & echo $! > "$T/escapee.pid"; while :; do sleep 1; done'''
        timeout = "2s"
        kill_grace = "3s"
    """)
    process = ws.launch("run")
    assert wait_for(lambda: read_pid(ws.scratch / "escapee.pid"), timeout=30)
    started = time.monotonic()
    escapee = read_pid(ws.scratch / "escapee.pid")
    while pid_alive(escapee) and time.monotonic() - started < 30:
        time.sleep(0.05)
    lived = time.monotonic() - started
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    assert ws.steps()["deaf-escape"]["status"] == "timed_out"
    # SIGKILL is due kill_grace after the timeout, for every process of the step.
    assert lived <= 2 + 3 + 1, "the escaped child lived %.1fs; timeout 2s, kill_grace 3s" % lived
    assert processes_with_args("sleep 366") == []
    assert run_processes(ws.scratch) == []


def test_footer_shows_wait_for_deaf_leftover(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "deaf-leftover"

        [steps.quick]   # exits at once, leaving a child that ignores SIGTERM in a session of its own
        command = '''setsid sh -c 'trap "" TERM; sleep 367' & sleep 0.2'''
        kill_grace = "2s"
    """)
    result = ws.run("run", timeout=60)

    assert result.code == 0, result.out + result.err
    step = ws.steps()["quick"]
    assert step["duration_s"] < 1.5
    # The deaf shell and its sleep, which SIGTERM ends.
    assert step["leftovers_killed"] == 2
    last = footer_lines(ws.log("quick"))[-1]
    # SIGKILL comes kill_grace (2s) after the command ended; format_duration shows tenths below a minute.
    assert re.fullmatch(r"\[seedrun\] killed 2 leftover processes that the step started, 2(\.\d)?s after the "
                        r"command ended \(SIGTERM, then SIGKILL after kill_grace\)", last), last
    assert processes_with_args("sleep 367") == []
    assert run_processes(ws.scratch) == []


def test_second_interrupt_while_killing_leftover(reaped):
    # The command succeeded and left a child that ignores SIGTERM. The second
    # Ctrl-C comes while the step runner waits to kill that child: the child
    # dies at once, and the step keeps its success and one footer.
    ws = reaped
    ws.write("""
        [pipeline]
        name = "deaf-leftover-twice"

        [steps.quick]
        command = \'\'\'setsid sh -c 'trap "" TERM; exec sleep 368' & sleep 0.2; touch "$T/exiting"\'\'\'
        kill_grace = "30s"

        [steps.later]
        command = 'echo ran >> "$T/later.ran"'
        needs = ["quick"]
    """)
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "exiting").exists(), timeout=30)
    # The footer gives the time spent on the leftover from 1s on.
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    assert "Killing the running steps now" in output.splitlines()
    assert any(line.startswith("Finished: quick in ") for line in output.splitlines()), output
    assert ws.record()["status"] == "interrupted"
    steps = ws.steps()
    quick = steps["quick"]
    assert quick["status"] == "succeeded"
    assert quick["exit_code"] == 0
    assert quick["reason"] is None
    assert quick["attempts"] == 1
    assert quick["leftovers_killed"] == 1
    # The step's duration is its command's, not the wait for the leftover.
    assert quick["duration_s"] < 10
    assert [attempt["outcome"] for attempt in quick["attempt_history"]] == ["succeeded"]
    assert steps["later"]["status"] == "not_run"
    footer = footer_lines(ws.log("quick"))
    assert len(footer) == 2, footer
    assert re.fullmatch(r"\[seedrun\] exit code 0 after \d+(\.\d)?s", footer[0]), footer
    assert re.fullmatch(r"\[seedrun\] killed 1 leftover process that the step started, \d+(\.\d)?s after the "
                        r"command ended \(SIGTERM, then SIGKILL at once on a second interrupt\)", footer[1]), footer
    assert processes_with_args("sleep 368") == []
    assert run_processes(ws.scratch) == []

    # A resume keeps the step that succeeded and runs the one that was not started.
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert ws.steps()["quick"]["carried_over"]
    assert (ws.scratch / "later.ran").read_text() == "ran\n"
    assert ws.log("quick").count("[seedrun] step quick, attempt ") == 1


def test_second_interrupt_kills_escaped_grandchildren(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "escaped"
        jobs = 4

        [defaults]
        kill_grace = "30s"

        [steps.one]
        command = 'setsid sh -c "trap \\"\\" TERM; sleep 341" & echo started >> "$T/started"; sleep 342'

        [steps.two]
        command = 'setsid sh -c "trap \\"\\" TERM; sleep 341" & echo started >> "$T/started"; sleep 342'
    """)
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "started").exists() and
                    len((ws.scratch / "started").read_text().split()) == 2, timeout=30)
    assert wait_for(lambda: len(processes_with_args("sleep 341")) == 2)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    assert "Killing the running steps now" in output.splitlines()
    # The setsid'd sleeps ignore SIGTERM and left the step's session. They
    # re-parent to seedrun only once their shells die, and must die too.
    assert wait_for(lambda: processes_with_args("sleep 341") == [], timeout=2)
    assert processes_with_args("sleep 342") == []
    assert run_processes(ws.scratch) == []


def test_killed_step_runner_leaves_no_command(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "runner-killed"
        jobs = 2

        [steps.a]
        command = 'echo $$ > "$T/a.pid"; sleep 343; echo a-done'
    """)
    process = ws.launch("run")
    assert wait_for(lambda: read_pid(ws.scratch / "a.pid"), timeout=30)
    command = read_pid(ws.scratch / "a.pid")
    step_runner = parent_of(command)
    os.kill(step_runner, signal.SIGKILL)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    assert ws.steps()["a"]["status"] == "failed"
    assert processes_with_args("sleep 343") == []
    assert not pid_alive(command)
    assert run_processes(ws.scratch) == []


def test_killed_step_runner_leaves_no_escaped_child(reaped):
    # The command's escaped child must go when the step ends, not when the
    # run ends: the other step keeps the run going for a while.
    ws = reaped
    ws.write("""
        [pipeline]
        name = "runner-killed"
        jobs = 2

        [defaults]
        kill_grace = "1s"

        [steps.a]
        command = 'setsid sleep 344 & echo $$ > "$T/a.pid"; sleep 345'

        [steps.b]
        command = 'while [ ! -f "$T/b.stop" ]; do sleep 0.1; done'
    """)
    process = ws.launch("run")
    assert wait_for(lambda: read_pid(ws.scratch / "a.pid"), timeout=30)
    assert wait_for(lambda: processes_with_args("sleep 344"), timeout=10)
    command = read_pid(ws.scratch / "a.pid")
    step_runner = parent_of(command)
    os.kill(step_runner, signal.SIGKILL)
    try:
        assert wait_for(lambda: status_of(ws, "a") == "failed", timeout=30)
        assert wait_for(lambda: processes_with_args("sleep 344") == [], timeout=5)
    finally:
        (ws.scratch / "b.stop").touch()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert processes_with_args("sleep 345") == []
    assert run_processes(ws.scratch) == []


def test_interrupt_counts_adopted_orphans(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "orphan-count"

        [steps.parent]
        command = 'sh -c "setsid sleep 391 &"; echo ready > "$T/ready"; exec sleep 392'
    """)
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "ready").exists() and processes_with_args("sleep 391"), timeout=30)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    record = ws.steps()["parent"]
    assert record["status"] == "interrupted"
    # sleep 391 lost its parent before the interrupt, and the SIGTERM that
    # stopped the step ended it too. It still counts as a leftover.
    assert record["leftovers_killed"] == 1
    assert "[seedrun] killed 1 leftover process that the step started" in footer_lines(ws.log("parent"))
    assert processes_with_args("sleep 391") == []
    assert processes_with_args("sleep 392") == []


def test_leftover_children_counted(reaped):
    # Each background shell has a sleep of its own, which dies with the shell's
    # process group before it could be adopted: four leftovers in all.
    ws = reaped
    ws.write("""
        [pipeline]
        name = "leftover-children"

        [steps.parent]
        kill_grace = "2s"
        command = '''
            sh -c 'sleep 3711 & touch "$T/a"; wait' &
            sh -c 'sleep 3712 & touch "$T/b"; wait' &
            while [ ! -e "$T/a" ] || [ ! -e "$T/b" ]; do sleep 0.05; done
            echo started
        '''
    """)
    result = ws.run("run", timeout=60)

    assert result.code == 0, result.out + result.err
    assert ws.steps()["parent"]["leftovers_killed"] == 4, ws.log("parent")
    assert "[seedrun] killed 4 leftover processes that the step started" in footer_lines(ws.log("parent"))
    assert processes_with_args("sleep 3711") == []
    assert processes_with_args("sleep 3712") == []


def test_interrupt_counts_orphan_children(reaped):
    ws = reaped
    ws.write("""
        [pipeline]
        name = "orphan-children"

        [steps.parent]
        command = '''sh -c 'sh -c "sleep 3721 & wait" &'; echo ready > "$T/ready"; exec sleep 3722'''
    """)
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "ready").exists() and processes_with_args("sleep 3721"), timeout=30)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    record = ws.steps()["parent"]
    assert record["status"] == "interrupted"
    # The inner shell lost its parent before the interrupt, and its sleep
    # died with it on the SIGTERM that stopped the step: both are leftovers.
    assert record["leftovers_killed"] == 2, ws.log("parent")
    assert "[seedrun] killed 2 leftover processes that the step started" in footer_lines(ws.log("parent"))
    assert processes_with_args("sleep 3721") == []
    assert processes_with_args("sleep 3722") == []

def test_interrupt_counts_only_escaped(reaped):
    ws = reaped
    steps = "".join('''
        [steps.s%d]
        command = 'sleep 39%d1 & setsid sleep 39%d2 & echo started > "$T/s%d"; sleep 39%d3'
    ''' % ((i,) * 5) for i in range(6))
    ws.write('''
        [pipeline]
        name = "escaped-count"
        jobs = 8

        [steps.plain]
        command = 'echo started > "$T/plain"; sleep 3980'
    ''' + steps)
    process = ws.launch("run")
    names = ["plain"] + ["s%d" % i for i in range(6)]
    assert wait_for(lambda: all((ws.scratch / name).exists() for name in names), timeout=30)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    steps = ws.steps()
    # Each s step left one process outside its process group (setsid); the
    # background sleep and the foreground sleep stop with the group.
    for name in names[1:]:
        assert steps[name]["leftovers_killed"] == 1, (name, ws.log(name))
    assert steps["plain"]["leftovers_killed"] == 0, ws.log("plain")
    assert processes_with_args("sleep 39") == []


def test_killed_step_runner_between_attempts(reaped):
    # The step runner dies in the retry delay, after its first command ended. The
    # command's PID is free for reuse by then, so nothing may signal it as the step's.
    ws = reaped
    ws.write("""
        [pipeline]
        name = "runner-killed"

        [steps.a]
        command = 'echo $PPID > "$T/runner.pid"; sleep 0.3; exit 1'
        retries = 1
        retry_delay = "5s"
    """)
    process = ws.launch("run")
    assert wait_for(lambda: read_pid(ws.scratch / "runner.pid"), timeout=30)
    step_runner = read_pid(ws.scratch / "runner.pid")
    # The step runner saves the record without the PID before it waits to retry.
    record = ws.run_dir / ".seedrun" / "records" / "a"
    assert wait_for(lambda: "[seedrun] exit code 1 after " in (ws.run_dir / "a.log").read_text(), timeout=10)
    assert wait_for(lambda: marshal.loads(record.read_bytes()).get("pid") is None, timeout=10)
    os.kill(step_runner, signal.SIGKILL)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    step = ws.steps()["a"]
    assert step["status"] == "failed"
    assert step["reason"] == ("the step runner (PID %d) died with SIGKILL; its command had already ended"
                              % step_runner)
    assert "sent SIGTERM to its command" not in (ws.run_dir / "make.log").read_text()
    assert run_processes(ws.scratch) == []
