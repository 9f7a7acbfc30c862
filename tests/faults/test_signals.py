"""Interrupting a live run: Ctrl-C, SIGTERM and SIGHUP, through seedrun, make and invoke.

An interrupted run stops each running step with SIGTERM to its process group
and SIGKILL after kill_grace, and records it interrupted. It records the steps
it never started not_run, writes run.json and the report, and exits 130.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import sys
import time

import pytest

from support import INVOKE, REPO, SEEDRUN, parent_of, parse_time, pid_alive, processes_with_args, record_now, wait_for
from fault_support import footer_lines, kill_run_processes, read_pid, run_processes

KILL_GRACE = 2.0
# Each step that keeps running writes its shell's PID into $T/<name>.pid.
LONG_STEPS = ("stubborn", "deaf", "cleaner", "sleeper")

PARALLEL_PHASE = """
    [pipeline]
    name = "stop"
    jobs = 6

    [defaults]
    kill_grace = "2s"

    [steps.stubborn]    # notes SIGINT and carries on, but SIGTERM ends it
    command = '''echo $$ > "$T/stubborn.pid"; trap 'echo got-INT >> "$T/stubborn.sig"' INT; while :; do echo tick; sleep 1; done'''

    [steps.deaf]        # ignores every stop signal, so only SIGKILL ends it
    command = '''echo $$ > "$T/deaf.pid"; trap '' TERM INT HUP; while :; do sleep 1; done'''

    [steps.cleaner]     # cleans up on SIGTERM but leaves its own child behind
    command = '''echo $$ > "$T/cleaner.pid"; trap 'echo got-TERM >> "$T/cleaner.sig"; exit 143' TERM; sleep 371 & echo $! > "$T/cleaner-child.pid"; wait'''

    [steps.sleeper]
    command = 'echo $$ > "$T/sleeper.pid"; sleep 372'

    [steps.quick]
    command = "sleep 1; echo quick-done"

    [steps.after-stubborn]
    command = 'echo ran > "$T/after-stubborn.ran"'
    needs = ["stubborn"]

    [steps.wrap-up]
    command = 'echo ran > "$T/wrap-up.ran"'

    [[phases]]
    name = "vendors"
    steps = ["stubborn", "deaf", "cleaner", "sleeper", "quick", "after-stubborn"]

    [[phases]]
    name = "final"
    steps = ["wrap-up"]
"""


@pytest.fixture
def stoppable(ws):
    """The workspace with the parallel-phase pipeline, cleaned of processes after the test."""
    ws.write(PARALLEL_PHASE)
    yield ws
    kill_run_processes(ws.scratch)


def command_line(entry: str, ws) -> list[str]:
    pipeline = str(ws.path / "pipeline.toml")
    if entry == "make":
        return ["make", "-C", str(REPO), "--no-print-directory", "seed-all", "PIPELINE=%s" % pipeline]
    if entry == "invoke":
        return [INVOKE, "--search-root", str(REPO), "all", "--pipeline", pipeline]
    return [SEEDRUN, "run"]


def wait_until_running(ws, process) -> None:
    """Wait until every long step wrote its PID and the quick step succeeded."""
    pid_files = [ws.scratch / ("%s.pid" % name) for name in LONG_STEPS] + [ws.scratch / "cleaner-child.pid"]

    def ready() -> bool:
        if not all(read_pid(path) for path in pid_files):
            return False
        try:
            return ws.steps()["quick"]["status"] == "succeeded"
        except (OSError, ValueError, KeyError):
            return False

    assert wait_for(ready, timeout=30, interval=0.1), "the steps did not start within 30s"


def send(process, target: str, number: int) -> None:
    if target == "group":
        os.killpg(process.pid, number)
    else:
        os.kill(process.pid, number)


def read_lines_until(process, start: str) -> list[str]:
    """Read the console of a run until a line that begins with start; return the lines read."""
    seen = []
    while not any(line.startswith(start) for line in seen):
        seen.append(process.stdout.readline())
        assert seen[-1], seen
    return seen


def interrupt(ws, entry: str, target: str, number: int):
    """Start a run and interrupt it once the phase runs in parallel.

    Return the exit code, the console output, the seconds from the signal to
    the exit, and the wall-clock time of the exit.
    """
    process = ws.launch(command=command_line(entry, ws))
    wait_until_running(ws, process)
    sent = time.monotonic()
    send(process, target, number)
    output, _ = process.communicate(timeout=60)
    exited_at = time.time()
    return process.returncode, output, time.monotonic() - sent, exited_at


INTERRUPTS = [
    pytest.param("seedrun", "group", signal.SIGINT, id="ctrl-c-seedrun"),
    pytest.param("seedrun", "pid", signal.SIGINT, id="sigint-to-runner-only"),
    pytest.param("seedrun", "pid", signal.SIGTERM, id="sigterm-to-runner"),
    pytest.param("seedrun", "pid", signal.SIGHUP, id="sighup-to-runner"),
    pytest.param("make", "group", signal.SIGINT, id="ctrl-c-make"),
    pytest.param("make", "pid", signal.SIGTERM, id="sigterm-to-make-only"),
    pytest.param("invoke", "group", signal.SIGINT, id="ctrl-c-invoke"),
    pytest.param("invoke", "pid", signal.SIGTERM, id="sigterm-to-invoke"),
]


@pytest.mark.parametrize("entry, target, number", INTERRUPTS)
def test_interrupt_stops_parallel_phase(stoppable, entry, target, number):
    ws = stoppable
    code, output, seconds, exited_at = interrupt(ws, entry, target, number)

    if entry == "make":
        # make passes SIGTERM on to seedrun, waits for it, then dies by the
        # signal it got itself.
        assert code == -number, output
    else:
        assert code == 130, output
    assert seconds <= KILL_GRACE + 3, "exited %.1fs after the signal" % seconds

    record = ws.record()
    assert record["status"] == "interrupted"
    assert record["exit_code"] == 130
    steps = ws.steps()
    assert steps["quick"]["status"] == "succeeded"
    assert steps["quick"]["exit_code"] == 0
    for name in LONG_STEPS:
        assert steps[name]["status"] == "interrupted", name
    assert steps["after-stubborn"]["status"] == "not_run"
    assert steps["wrap-up"]["status"] == "not_run"
    assert not (ws.scratch / "after-stubborn.ran").exists()
    assert not (ws.scratch / "wrap-up.ran").exists()

    # Every step got SIGTERM first, and only the one that ignores it needed SIGKILL.
    assert "got-TERM" in (ws.scratch / "cleaner.sig").read_text()
    stubborn_footer = footer_lines(ws.log("stubborn"))
    assert stubborn_footer[0].startswith("[seedrun] interrupted after ")
    assert stubborn_footer[0].endswith("; stopped with SIGTERM; ended by SIGTERM")
    deaf_footer = footer_lines(ws.log("deaf"))
    assert deaf_footer[0].endswith("; stopped with SIGTERM, then SIGKILL after 2s; ended by SIGKILL")
    cleaner_footer = footer_lines(ws.log("cleaner"))
    assert cleaner_footer[0].endswith("; stopped with SIGTERM; exit code 143")

    for name in LONG_STEPS + ("cleaner-child",):
        pid = read_pid(ws.scratch / ("%s.pid" % name))
        assert not pid_alive(pid), "%s (PID %d) survived the run" % (name, pid)
    assert processes_with_args("sleep 371") == []
    assert processes_with_args("sleep 372") == []
    assert run_processes(ws.scratch) == []

    # Nothing writes to the logs after the run exited.
    mtimes = {name: (ws.run_dir / ("%s.log" % name)).stat().st_mtime for name in LONG_STEPS}
    for name, mtime in mtimes.items():
        assert mtime <= exited_at, name
    time.sleep(1.5)
    for name, mtime in mtimes.items():
        assert (ws.run_dir / ("%s.log" % name)).stat().st_mtime == mtime, name

    report = ws.path / "reports" / ("%s.html" % record["run_id"])
    assert report.exists()
    assert "interrupted" in report.read_text(encoding="utf-8")
    if entry == "seedrun":
        name = signal.Signals(number).name
        assert "Interrupted by %s: stopping the running steps (SIGTERM, then SIGKILL after their kill_grace); " \
               "send it again to kill them at once" % name in output.splitlines()
        assert any(line.startswith("Interrupted: stubborn after ") for line in output.splitlines())


def test_second_interrupt_kills_at_once(ws):
    ws.write("""
        [pipeline]
        name = "stop-twice"
        jobs = 4

        [defaults]
        kill_grace = "3s"

        [steps.deaf]
        command = '''echo $$ > "$T/deaf.pid"; trap '' TERM INT HUP; sleep 381 & echo $! > "$T/deaf-child.pid"; setsid sleep 383 & echo $! > "$T/deaf-setsid.pid"; while :; do sleep 1; done'''

        [steps.sleeper]
        command = 'echo $$ > "$T/sleeper.pid"; sleep 382'

        [steps.later]
        command = 'echo ran > "$T/later.ran"'
        needs = ["deaf"]
    """)
    try:
        process = ws.launch("run")
        pid_files = [ws.scratch / name for name in ("deaf.pid", "deaf-child.pid", "deaf-setsid.pid", "sleeper.pid")]
        assert wait_for(lambda: all(read_pid(path) for path in pid_files), timeout=30)
        polled = []
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.5)
        second = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        while process.poll() is None and time.monotonic() - second < 30:
            path = ws.path / "logs" / "latest" / "run.json"
            polled.append(json.loads(path.read_text()))
            time.sleep(0.1)
        output, _ = process.communicate(timeout=30)
        seconds = time.monotonic() - second

        assert process.returncode == 130, output
        assert seconds < 2.5, "exited %.1fs after the second Ctrl-C, kill_grace is 3s" % seconds
        assert "Killing the running steps now" in output.splitlines()
        assert all(run["run_id"] == polled[0]["run_id"] for run in polled)
        record = ws.record()
        assert record["status"] == "interrupted"
        assert record["exit_code"] == 130
        steps = ws.steps()
        assert steps["deaf"]["status"] == "interrupted"
        assert steps["deaf"]["duration_s"] == pytest.approx(
            parse_time(steps["deaf"]["finished_at"]) - parse_time(steps["deaf"]["started_at"]), abs=0.01)
        assert steps["sleeper"]["status"] == "interrupted"
        assert steps["later"]["status"] == "not_run"
        # deaf's step runner died with make's group, so seedrun ends its log.
        last = ws.log("deaf").splitlines()[-1]
        assert last.startswith("[seedrun] interrupted after "), last
        assert last.endswith(": killed at once with SIGKILL by a second interrupt"), last
        # Its step runner died before it could print how deaf ended, so seedrun prints it.
        said = [line for line in output.splitlines() if line.startswith("Interrupted: deaf after ")]
        assert len(said) == 1, output
        assert said[0].endswith(", killed at once with SIGKILL by a second interrupt (see logs/%s/deaf.log)"
                                % record["run_id"])
        assert any(line.startswith("[seedrun] interrupted after ") for line in ws.log("sleeper").splitlines())
        for path in pid_files:
            assert not pid_alive(read_pid(path)), path.name
        assert processes_with_args("sleep 381") == []
        assert processes_with_args("sleep 382") == []
        assert processes_with_args("sleep 383") == []
        # The setsid child left deaf's process group, so seedrun killed it after deaf's step runner died,
        # and counts it for deaf.
        assert steps["deaf"]["leftovers_killed"] == 1, output
        assert run_processes(ws.scratch) == []
        assert (ws.path / "reports" / ("%s.html" % record["run_id"])).exists()
    finally:
        kill_run_processes(ws.scratch)



def test_interrupt_while_run_starts(ws):
    # Enough steps that writing their specs and make rules takes a while
    # after the run directory exists.
    count = 1200
    steps = "\n".join('[steps.s%04d]\ncommand = "true"\n' % i for i in range(count))
    ws.write('[pipeline]\nname = "starting"\njobs = 2\n\n' + steps)
    logs = ws.path / "logs"

    def run_dirs() -> list[str]:
        try:
            return [entry for entry in os.listdir(logs) if entry.endswith("-starting")]
        except FileNotFoundError:
            return []

    try:
        process = ws.launch("run")
        while not run_dirs() and process.poll() is None:
            time.sleep(0.001)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)

        assert process.returncode == 130, output
        assert len(run_dirs()) == 1
        run_json = logs / run_dirs()[0] / "run.json"
        assert run_json.exists(), "the run directory has no run.json; the console said:\n" + output
        record = json.loads(run_json.read_text())
        assert record["status"] == "interrupted"
        assert record["exit_code"] == 130
        assert len(record["steps"]) == count
        assert {s["status"] for s in record["steps"]} <= {"not_run", "succeeded"}
        assert run_processes(ws.scratch) == []
    finally:
        kill_run_processes(ws.scratch)


def test_double_interrupt_leaves_every_log_finished(ws):
    # Short chained steps, so that the second interrupt often lands while
    # step runners start, end or are being finished by the launcher.
    steps = "".join('[steps.s%02d]\ncommand = "sleep 0.0%d; echo s%02d"\n%s\n'
                    % (n, n % 9 + 1, n, 'needs = ["s%02d"]' % (n - 4) if n >= 4 else "") for n in range(40))
    ws.write('[pipeline]\nname = "double"\njobs = 4\nkeep_runs = 100\n\n' + steps)
    generator = random.Random(20261205)
    for number in range(8):
        process = ws.launch("run")
        # Interrupts before the run directory exists end seedrun before any step; wait for it.
        runs = ws.path / "logs"
        assert wait_for(lambda: len([p for p in runs.glob("*/run.json") if p.parent.name != "latest"]) > number,
                        timeout=30)
        time.sleep(generator.uniform(0.0, 0.5))
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.01)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        if process.returncode == 0:
            continue  # the run ended before the interrupts
        assert process.returncode == 130, output
        console_lines = output.splitlines()
        for step in ws.steps().values():
            if "Starting: %s" % step["name"] in console_lines:
                assert step["status"] != "not_run", (step, output)
            if step["status"] == "interrupted":
                footer = ws.log(step["name"]).splitlines()[-1]
                assert footer.startswith("[seedrun] "), (step["name"], footer)
                assert not footer.startswith("[seedrun] workdir: "), (step["name"], footer)
                assert any(line.startswith("Interrupted: %s " % step["name"]) for line in console_lines), (step, output)
        assert run_processes(ws.scratch) == []


def test_second_interrupt_prints_each_interrupted_line_once(ws):
    # The first interrupt ends "quick" at once, and its step runner prints its
    # line. "slow" takes a second to end; its step runner records it
    # interrupted and then waits for the console lock the test holds. Stopped
    # there, it is killed by the second interrupt before it prints its line,
    # so seedrun must print that one, and only that one.
    ws.write('''
        [pipeline]
        name = "late-line"
        [steps.quick]
        command = 'echo $$ > "$T/quick.pid"; sleep 300'
        [steps.slow]
        command = \'\'\'trap 'sleep 1; exit 1' TERM; echo $$ > "$T/slow.pid"; sleep 300 & wait\'\'\'
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: None not in (read_pid(ws.scratch / "quick.pid"), read_pid(ws.scratch / "slow.pid")),
                        timeout=30)
        step_runner = parent_of(read_pid(ws.scratch / "slow.pid"))

        os.killpg(process.pid, signal.SIGINT)
        seen = read_lines_until(process, "Interrupted: quick ")
        assert record_now(ws, "slow").get("status") == "running"
        with open(ws.run_dir / ".seedrun" / "console.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert wait_for(lambda: record_now(ws, "slow").get("status") == "interrupted", timeout=30)
            os.kill(step_runner, signal.SIGSTOP)

        os.killpg(process.pid, signal.SIGINT)
        output = "".join(seen) + process.communicate(timeout=60)[0]
    finally:
        kill_run_processes(ws.scratch)

    assert process.returncode == 130, output
    lines = output.splitlines()
    assert "Killing the running steps now" in lines
    for name in ("quick", "slow"):
        assert len([line for line in lines if line.startswith("Interrupted: %s after " % name)]) == 1, output
        assert ws.steps()[name]["status"] == "interrupted"


def test_second_interrupt_waits_for_console_line(ws):
    # A step runner writes its Interrupted line and then marks its record, both
    # under the console lock. A second interrupt that killed it between the two
    # made seedrun print the line again, so the kill waits for the lock: here
    # the test holds it, as a step runner writing its line would. A lock that
    # stays taken (a stopped process, a console that takes no more output)
    # delays the kill by 2 s at most.
    ws.write('''
        [pipeline]
        name = "held-console"
        [steps.deaf]
        command = \'\'\'echo $$ > "$T/deaf.pid"; trap '' TERM; while :; do sleep 1; done\'\'\'
        kill_grace = "60s"
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: read_pid(ws.scratch / "deaf.pid") is not None, timeout=30)
        step_runner = parent_of(read_pid(ws.scratch / "deaf.pid"))
        os.killpg(process.pid, signal.SIGINT)
        seen = read_lines_until(process, "Interrupted by SIGINT")
        with open(ws.run_dir / ".seedrun" / "console.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            second = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            assert wait_for(lambda: not pid_alive(step_runner), timeout=30, interval=0.02)
            waited = time.monotonic() - second
        output = "".join(seen) + process.communicate(timeout=60)[0]
    finally:
        kill_run_processes(ws.scratch)

    assert waited >= 1.0, "the step runner was killed %.2fs after the second interrupt, with the lock held" % waited
    assert process.returncode == 130, output
    lines = output.splitlines()
    assert "Killing the running steps now" in lines
    assert len([line for line in lines if line.startswith("Interrupted: deaf after ")]) == 1, output
    assert ws.steps()["deaf"]["status"] == "interrupted"


@pytest.mark.parametrize("on_failure, code, after_long, later", [
    ("skip-dependents", 1, "skipped", "succeeded"),
    ("abort", 1, "skipped", "not_run"),
    ("ignore", 0, "succeeded", "succeeded"),
])
def test_signal_to_one_step_runner_fails_its_step(ws, on_failure, code, after_long, later):
    # A SIGTERM to one step's runner, not to the run, stops that step alone.
    # The run goes on, and the step counts as failed, so its on_failure
    # decides about the steps that need it and the rest of the run.
    ws.write('''
        [pipeline]
        name = "one-signal"
        [steps.long]
        command = 'echo $$ > "$T/long.pid"; sleep 300'
        on_failure = "%s"
        [steps.other]
        command = 'while [ ! -e "$T/other.go" ]; do sleep 0.05; done'
        [steps.after-long]
        command = "true"
        needs = ["long"]
        [steps.later]
        command = "true"
        needs = ["other"]
    ''' % on_failure)
    process = ws.launch("run")
    try:
        assert wait_for(lambda: read_pid(ws.scratch / "long.pid") is not None, timeout=30)
        step_runner = parent_of(read_pid(ws.scratch / "long.pid"))
        os.kill(step_runner, signal.SIGTERM)
        assert wait_for(lambda: record_now(ws, "long").get("status") == "failed", timeout=30)
        (ws.scratch / "other.go").touch()
        output = process.communicate(timeout=60)[0]
    finally:
        kill_run_processes(ws.scratch)

    assert process.returncode == code, output
    steps = ws.steps()
    assert steps["long"]["status"] == "failed"
    assert steps["long"]["allowed_failure"] == (on_failure == "ignore")
    assert "its step runner (PID %d) received SIGTERM while the run went on" % step_runner in steps["long"]["reason"]
    assert any(line.startswith("Failed: long, stopped after ") for line in output.splitlines()), output
    assert steps["other"]["status"] == "succeeded"
    assert steps["after-long"]["status"] == after_long, steps["after-long"]
    if after_long == "skipped":
        assert steps["after-long"]["reason"] == "needs long, which failed"
    assert steps["later"]["status"] == later, steps["later"]
    assert "Error: make" not in output


def test_interrupt_after_record_is_final_keeps_exit_code(ws):
    # An interrupt that arrives once the run's record is final, on the way
    # out of the process, must not turn the recorded exit code into 130.
    ws.write('[pipeline]\nname = "late"\n[steps.a]\ncommand = "true"\n')
    script = ("import os, signal, sys\n"
              "from seedrun import api\n"
              "from seedrun.graph import Selection\n"
              "code = api.run(None, Selection())\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"
              "print('returned', code)\n"
              "sys.exit(code)\n")
    result = ws.call([sys.executable, "-c", script])
    assert result.code == 0, result.out + result.err
    assert "returned 0" in result.lines
    assert ws.record()["status"] == "succeeded"


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_signal_before_run_starts_exits_130(ws, number):
    # A pipeline file that is a FIFO keeps seedrun waiting in its read,
    # before any run exists, until the signal arrives.
    fifo = ws.path / "waiting.toml"
    os.mkfifo(fifo)
    process = ws.launch("--pipeline", str(fifo), "run")
    writer = []

    def reader_waits() -> bool:
        # Opening for writing succeeds once seedrun has the FIFO open for reading.
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:
            return False

    assert wait_for(reader_waits, timeout=30)
    process.send_signal(number)
    # A signal that lands after Python's last check for signals and before
    # read() starts does not interrupt the read. The end of the file does, and
    # the handler then runs before the empty file is parsed.
    os.close(writer[0])
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130, output
    assert "seedrun: interrupted" in output
    assert not (ws.path / "logs").exists()


@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGINT])
def test_signal_ignored_at_start_stays_ignored(ws, number):
    # nohup starts seedrun with SIGHUP ignored, and a shell script starts a
    # background job with SIGINT ignored: seedrun, make and the launcher keep ignoring it.
    ws.write('''
        [pipeline]
        name = "ignoring"
        [steps.hold]
        command = 'touch "$T/started"; sleep 1.5; echo done > "$T/done"'
    ''')
    name = signal.Signals(number).name[3:]
    process = ws.launch(command=["/bin/sh", "-c", 'trap "" %s; exec "$0" run' % name, SEEDRUN])
    assert wait_for(lambda: (ws.scratch / "started").exists(), timeout=30)
    # ws.launch gave the shell, and so seedrun, a process group of its own; make leads another.
    os.killpg(process.pid, number)
    os.killpg(read_pid(ws.run_dir / ".seedrun" / "make.pid"), number)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Interrupted" not in output
    assert ws.record()["status"] == "succeeded"
    assert (ws.scratch / "done").read_text() == "done\n"


def _state(pid: int) -> str:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def test_interrupt_after_command_exited_zero(ws):
    # The step runner is stopped while its command exits 0, and gets SIGINT
    # before it runs again: the interrupt came after the command succeeded.
    ws.write('''
        [pipeline]
        name = "late-interrupt"

        [steps.first]
        command = \'\'\'echo $PPID > "$T/runner"; echo $$ > "$T/command"; while [ ! -e "$T/go" ]; do sleep 0.05; done\'\'\'

        [steps.second]
        command = 'echo ran > "$T/second"'
        needs = ["first"]
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "command").exists() and (ws.scratch / "command").read_text().strip())
        runner = int((ws.scratch / "runner").read_text())
        command = int((ws.scratch / "command").read_text())
        os.kill(runner, signal.SIGSTOP)
        (ws.scratch / "go").touch()
        assert wait_for(lambda: _state(command) == "Z")
        os.kill(runner, signal.SIGINT)
        os.kill(runner, signal.SIGCONT)
        output, _ = process.communicate(timeout=60)
    finally:
        kill_run_processes(ws.scratch)
    assert process.returncode == 0, output
    steps = ws.steps()
    assert steps["first"]["status"] == "succeeded"
    assert steps["second"]["status"] == "succeeded"
    assert (ws.scratch / "second").exists()


def test_interrupt_during_timeout_kill_grace(ws):
    # The step timed out and ignores the SIGTERM that stops it, so it is inside
    # its kill_grace when the interrupt comes. It keeps its timeout, and the
    # run is interrupted.
    ws.write('''
        [pipeline]
        name = "grace-interrupt"
        jobs = 2

        [steps.quick]
        command = "true"

        [steps.hang]
        command = \'\'\'trap 'touch "$T/stopping"' TERM; while :; do sleep 0.1; done\'\'\'
        timeout = "1s"
        kill_grace = "5s"
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "stopping").exists(), timeout=30)
        os.kill(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        kill_run_processes(ws.scratch)

    assert process.returncode == 130, output
    assert "Interrupted by SIGINT: stopping the running steps (SIGTERM, then SIGKILL after their kill_grace); " \
           "send it again to kill them at once" in output.splitlines()
    record = ws.record()
    assert record["status"] == "interrupted"
    assert record["exit_code"] == 130
    steps = ws.steps()
    assert steps["quick"]["status"] == "succeeded"
    assert steps["hang"]["status"] == "timed_out"
    assert steps["hang"]["reason"] == "timed out after 1s"
    assert footer_lines(ws.log("hang")) == [
        "[seedrun] timed out after 1s; stopped with SIGTERM, then SIGKILL after 5s; ended by SIGKILL"]
    assert (ws.path / "reports" / ("%s.html" % record["run_id"])).exists()
    assert run_processes(ws.scratch) == []
