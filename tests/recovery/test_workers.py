"""The launcher's workers: one process serves step after step, and each step still starts clean."""

from __future__ import annotations

import os
import signal
import time

from support import parent_of, parse_time, pid_alive, processes_with_args, status_of, wait_for
from recovery_support import lines, processes_of_run

CHAIN_LENGTH = 20


def chain_pipeline(length: int) -> str:
    steps = []
    for number in range(length):
        name = "s%02d" % number
        # Every third step sets FOO; no other step may see it.
        env = '\nenv = { FOO = "from-%s" }' % name if number % 3 == 0 else ""
        needs = '\nneeds = ["s%02d"]' % (number - 1) if number else ""
        steps.append('[steps.%s]\ncommand = \'echo "$PPID $SEEDRUN_STEP ${FOO:-none}" >> "$T/runners"\'%s%s\n'
                     % (name, needs, env))
    return '[pipeline]\nname = "chain"\njobs = 2\n\n' + "\n".join(steps)


def test_chain_reuses_workers(ws):
    ws.write(chain_pipeline(CHAIN_LENGTH))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err

    rows = [line.split() for line in lines(ws.scratch / "runners")]
    assert [row[1] for row in rows] == ["s%02d" % number for number in range(CHAIN_LENGTH)]
    expected_foo = ["from-s%02d" % number if number % 3 == 0 else "none" for number in range(CHAIN_LENGTH)]
    assert [row[2] for row in rows] == expected_foo
    # $PPID of a step's shell is the step runner: fewer runners than steps means workers were reused.
    assert len({row[0] for row in rows}) < CHAIN_LENGTH
    assert processes_of_run(ws.run_dir) == []


def test_interrupt_reaches_reused_worker(ws):
    # x and y run at once, so two workers exist, and gap runs on one of
    # them. slow starts 0.3 s after gap, when at least one of the three has
    # been idle that long, so slow runs in a worker that served a step before.
    ws.write('''
        [pipeline]
        name = "reused"
        jobs = 2

        [defaults]
        kill_grace = "5s"

        [steps.x]
        command = 'echo $PPID >> "$T/earlier"; sleep 0.3'

        [steps.y]
        command = 'echo $PPID >> "$T/earlier"; sleep 0.3'

        [steps.gap]
        command = 'echo $PPID >> "$T/earlier"; sleep 0.3'
        needs = ["x", "y"]

        [steps.slow]
        command = \'\'\'trap 'echo end >> "$T/slow.events"; exit 143' TERM; echo $PPID > "$T/slow.runner"; sleep 60 & wait\'\'\'
        needs = ["gap"]
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "slow.runner"), timeout=30)
    assert lines(ws.scratch / "slow.runner")[0] in lines(ws.scratch / "earlier")

    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert lines(ws.scratch / "slow.events") == ["end"]
    steps = ws.steps()
    assert steps["slow"]["status"] == "interrupted"
    assert [steps[name]["status"] for name in ("x", "y", "gap")] == ["succeeded"] * 3
    assert processes_of_run(ws.run_dir) == []


def test_idle_worker_killed_is_replaced(ws):
    # x and gate both wait for a file, so each runs in a worker of its own.
    ws.write('''
        [pipeline]
        name = "replaced"
        jobs = 2

        [steps.x]
        command = 'echo $PPID > "$T/x.runner"; while ! test -f "$T/x.go"; do sleep 0.05; done'

        [steps.gate]
        command = 'echo $PPID > "$T/gate.runner"; while ! test -f "$T/gate.go"; do sleep 0.05; done'

        [steps.last]
        command = 'echo last >> "$T/last"'
        needs = ["gate"]
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "x.runner") and lines(ws.scratch / "gate.runner"), timeout=30)
    x_runner = int(lines(ws.scratch / "x.runner")[0])
    assert x_runner != int(lines(ws.scratch / "gate.runner")[0])

    (ws.scratch / "x.go").touch()
    # Once x finished, its worker waits idle for the next request; kill it there.
    assert wait_for(lambda: (ws.run_dir / ".seedrun" / "stamps" / "x.done").exists(), timeout=30)
    time.sleep(0.3)
    os.kill(x_runner, signal.SIGKILL)
    (ws.scratch / "gate.go").touch()

    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert lines(ws.scratch / "last") == ["last"]
    assert {name: step["status"] for name, step in ws.steps().items()} == {
        "x": "succeeded", "gate": "succeeded", "last": "succeeded"}
    assert processes_of_run(ws.run_dir) == []


def running(ws, name):
    """Return whether run.json shows the step running."""
    return status_of(ws, name) == "running"


def kill_step_runner(ws, name):
    """SIGKILL the step runner of a running step and return its PID.

    The step's command writes $PPID, its step runner, to $T/NAME.runner. The
    command can start before its step runner records it running, so this
    waits for that record first.
    """
    assert wait_for(lambda: lines(ws.scratch / (name + ".runner")), timeout=30)
    assert wait_for(lambda: running(ws, name), timeout=30)
    runner = int(lines(ws.scratch / (name + ".runner"))[0])
    os.kill(runner, signal.SIGKILL)
    return runner


def test_dead_worker_command_stopped_at_once(ws):
    ws.write('''
        [pipeline]
        name = "orphan"
        jobs = 2

        [steps.a]
        command = 'echo $$ > "$T/a.pid"; echo $PPID > "$T/a.runner"; sleep 347'

        [steps.after-a]
        command = 'echo ran > "$T/after-a.ran"'
        needs = ["a"]

        [steps.b]
        command = 'echo started > "$T/b.started"; sleep 6'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "b.started").exists(), timeout=30)
    runner = kill_step_runner(ws, "a")
    command = int(lines(ws.scratch / "a.pid")[0])
    # The run goes on with b, but a's command must not run on unsupervised until the run ends.
    assert wait_for(lambda: not pid_alive(command), timeout=3)
    assert process.poll() is None

    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    steps = ws.steps()
    reason = "the step runner (PID %d) died with SIGKILL; its command was stopped with SIGTERM" % runner
    assert steps["a"]["status"] == "failed"
    assert steps["a"]["reason"] == reason
    # a ended when its runner died, not when b ended the run.
    assert parse_time(steps["b"]["finished_at"]) - parse_time(steps["a"]["finished_at"]) > 3
    assert "Failed: a, %s (see logs/%s/a.log)" % (reason, ws.run_dir.name) in output.splitlines()
    assert ws.log("a").splitlines()[-1].startswith("[seedrun] failed after ")
    assert ws.log("a").splitlines()[-1].endswith(": " + reason)
    # Its dependent reads the failure, as after any failed step.
    assert steps["after-a"]["status"] == "skipped"
    assert steps["after-a"]["blocked_by"] == "a"
    assert not (ws.scratch / "after-a.ran").exists()
    assert steps["b"]["status"] == "succeeded"
    assert "sent SIGTERM to its command" in (ws.run_dir / "make.log").read_text()
    assert processes_with_args("sleep 347") == []


def test_dead_worker_command_killed_after_grace(ws):
    ws.write('''
        [pipeline]
        name = "deaf-orphan"
        jobs = 2

        [steps.deaf]
        command = 'trap "" TERM; echo $$ > "$T/deaf.pid"; echo $PPID > "$T/deaf.runner"; while :; do echo tick; sleep 0.1; done'
        kill_grace = "1s"

        [steps.b]
        command = 'echo started > "$T/b.started"; sleep 8'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "b.started").exists(), timeout=30)
    runner = kill_step_runner(ws, "deaf")
    command = int(lines(ws.scratch / "deaf.pid")[0])
    # SIGTERM is ignored, so SIGKILL follows after the step's kill_grace of 1 s.
    assert wait_for(lambda: not pid_alive(command), timeout=5)
    assert process.poll() is None
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    step = ws.steps()["deaf"]
    assert step["status"] == "failed"
    assert step["reason"] == ("the step runner (PID %d) died with SIGKILL; its command was stopped with "
                              "SIGTERM, then SIGKILL after 1s" % runner)
    # The command wrote on for its kill_grace; the footer still comes last.
    assert ws.log("deaf").splitlines()[-1].endswith(": " + step["reason"])


def test_dead_worker_of_last_step_gets_grace(ws):
    ws.write('''
        [pipeline]
        name = "last-orphan"

        [steps.only]
        command = \'\'\'trap 'echo cleaning >> "$T/clean"; sleep 1; echo cleaned >> "$T/clean"; exit 1' TERM; echo $PPID > "$T/only.runner"; sleep 30 & wait\'\'\'
        kill_grace = "5s"
    ''')
    process = ws.launch("run")
    kill_step_runner(ws, "only")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    # The run waited for the command's own cleanup instead of ending with the step runner.
    assert lines(ws.scratch / "clean") == ["cleaning", "cleaned"]
    assert ws.steps()["only"]["status"] == "failed"
    assert processes_with_args("sleep 30") == []


def test_step_that_kills_its_runner_at_once(ws):
    # The command kills its step runner before the runner may have saved the
    # command's PID; the launcher still finds the command and ends the step.
    # The command notes the runner's PID first: after the kill, the launcher
    # may stop the command before it runs another line.
    ws.write('''
        [pipeline]
        name = "self-kill"

        [steps.killer]
        command = 'echo $PPID > "$T/killer.runner"; kill -KILL $PPID; sleep 1; echo orphan-done > "$T/orphan"'

        [steps.dep]
        command = 'echo ran > "$T/dep.ran"'
        needs = ["killer"]
    ''')
    for _ in range(3):
        result = ws.run("run")
        assert result.code == 1, result.out + result.err
        runner = int(lines(ws.scratch / "killer.runner")[0])
        steps = ws.steps()
        reason = "the step runner (PID %d) died with SIGKILL; its command was stopped with SIGTERM" % runner
        assert steps["killer"]["status"] == "failed"
        assert steps["killer"]["reason"] == reason
        assert "Failed: killer, %s (see logs/%s/killer.log)" % (reason, ws.run_dir.name) in result.lines
        assert ws.log("killer").splitlines()[-1].endswith(": " + reason)
        assert steps["dep"]["status"] == "skipped"
        assert steps["dep"]["blocked_by"] == "killer"
        assert not (ws.scratch / "dep.ran").exists()
        assert not (ws.scratch / "orphan").exists()
        assert processes_of_run(ws.run_dir) == []


def test_runner_killed_while_waiting_for_pool(ws):
    ws.write('''
        [pipeline]
        name = "pool-wait-killed"
        jobs = 3

        [pools.one]
        size = 1

        [steps.holder]
        command = 'echo $PPID > "$T/holder.runner"; sleep 3'
        pool = "one"

        [steps.gate]    # lets waiter ask for the pool's slot only once holder has it
        command = 'while ! test -s "$T/holder.runner"; do sleep 0.05; done'

        [steps.waiter]
        command = 'echo ran > "$T/waiter.ran"'
        pool = "one"
        needs = ["gate"]

        [steps.dep]
        command = 'echo ran > "$T/dep.ran"'
        needs = ["waiter"]
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "holder.runner"), timeout=30)
    assert wait_for(lambda: status_of(ws, "waiter") == "waiting", timeout=30)
    holder_runner = int(lines(ws.scratch / "holder.runner")[0])
    launcher = parent_of(holder_runner)
    # A busy worker joins make's process group, as holder's has; an idle one waits in the launcher's.
    busy = os.getpgid(holder_runner)
    waiter_runner = [pid for pid in children_of(launcher) if pid != holder_runner and os.getpgid(pid) == busy]
    assert len(waiter_runner) == 1
    os.kill(waiter_runner[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    steps = ws.steps()
    reason = ("the step runner (PID %d) died with SIGKILL; it was waiting for a slot of pool one"
              % waiter_runner[0])
    assert steps["waiter"]["status"] == "failed"
    assert steps["waiter"]["reason"] == reason
    # waiter never started a log, so nothing points to one.
    assert "Failed: waiter, %s" % reason in output.splitlines()
    assert not (ws.run_dir / "waiter.log").exists()
    junit = (ws.run_dir / "junit.xml").read_text()
    assert 'message="%s"' % reason in junit
    assert "exit code None" not in junit
    assert steps["dep"]["status"] == "skipped"
    assert steps["dep"]["blocked_by"] == "waiter"
    assert steps["holder"]["status"] == "succeeded"
    assert not (ws.scratch / "waiter.ran").exists()
    assert processes_of_run(ws.run_dir) == []


def children_of(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(word) for word in f.read().split()]
