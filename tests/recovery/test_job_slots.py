"""A step that waits long for its pool or for a retry lends its make job slot, and never exceeds `jobs`."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from support import parse_time, status_of, wait_for
from recovery_support import (kill_runner, lines, overlapping_starts, processes_of_run, processes_with_open_file_in,
                              run_dirs, wait_all)

# Each command writes "start PID" and "end PID" to one events file, so the
# file shows whether two commands ever ran at once under jobs = 1.
EVENTS = '''trap 'echo "end $$" >> "$T/events"' EXIT; echo "start $$" >> "$T/events"; '''


def step(name: str, command: str, extra: str = "") -> str:
    return "\n[steps.%s]\ncommand = '''%s%s'''\n%s\n" % (name, EVENTS, command, extra)


def started(steps: dict, name: str) -> float:
    return parse_time(steps[name]["started_at"])


def test_pool_wait_lends_job_slot(ws):
    # jobs = 1 and the pool's min_interval keeps second-call waiting 5 s after first-call:
    # other-a and other-b, later in the file, run in that wait instead of after it.
    ws.write('''
        [pipeline]
        name = "lend-pool"
        jobs = 1

        [pools.api]
        size = 1
        min_interval = "5s"
    ''' + step("first-call", "sleep 0.2", 'pool = "api"') + step("second-call", "sleep 0.2", 'pool = "api"')
        + step("other-a", "sleep 0.3") + step("other-b", "sleep 0.3"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err

    steps = ws.steps()
    assert started(steps, "other-a") < started(steps, "second-call"), steps
    assert started(steps, "other-b") < started(steps, "second-call"), steps
    assert "Waiting: second-call for pool api (its min_interval of 5s)" in result.out
    events = lines(ws.scratch / "events")
    assert len(events) == 8, events
    assert overlapping_starts(events) == []
    # make took the job server that seedrun made for it, without a warning.
    assert (ws.path / "logs" / "latest" / "make.log").read_text() == ""


def run_flaky_then_other(ws, retry_delay: str, other: str = "sleep 0.3"):
    """Run, under jobs = 1, a step that fails once and retries after retry_delay, then an independent one.

    Return the run's console output and its steps.
    """
    ws.write('''
        [pipeline]
        name = "retry-wait"
        jobs = 1
    ''' + step("flaky", 'test -e "$T/failed-once" || { touch "$T/failed-once"; exit 1; }',
               'retries = 1\nretry_delay = "%s"' % retry_delay) + step("other", other))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    return result.out, ws.steps()


def test_retry_wait_lends_job_slot(ws):
    output, steps = run_flaky_then_other(ws, "3s")
    assert steps["flaky"]["attempts"] == 2, steps["flaky"]
    first, second = steps["flaky"]["attempt_history"]
    # other ran while flaky waited to retry, not after flaky's second attempt.
    assert parse_time(first["finished_at"]) <= started(steps, "other"), steps
    assert parse_time(steps["other"]["finished_at"]) <= parse_time(second["started_at"]), steps
    events = lines(ws.scratch / "events")
    assert len(events) == 6, events
    assert overlapping_starts(events) == []


def test_short_retry_wait_keeps_job_slot(ws):
    # A retry delay under two seconds is too short to lend: other waits for flaky to end.
    output, steps = run_flaky_then_other(ws, "0.5s")
    assert parse_time(steps["flaky"]["finished_at"]) <= started(steps, "other"), steps


def test_retry_says_job_slot_wait(ws):
    # other runs on the slot that flaky lent, for longer than flaky's delay:
    # flaky then waits for other to end, and the console prints why.
    output, steps = run_flaky_then_other(ws, "2.5s", "sleep 6")
    assert "Waiting: flaky for a free job slot (it lent its own while it waited)" in output
    assert parse_time(steps["other"]["finished_at"]) <= parse_time(steps["flaky"]["attempt_history"][1]["started_at"])


# holder keeps the pool's only slot until the test creates $T/release; later waits for holder.
HOLDER = '''
    [pipeline]
    name = "holder"
    jobs = 1

    [pools.api]
    size = 1
    min_interval = "4s"

    [steps.holder]
    pool = "api"
    command = 'touch "$T/held"; while [ ! -e "$T/release" ]; do sleep 0.1; done'

    [steps.later]
    pool = "api"
    after = ["holder"]
    command = 'touch "$T/later.ran"'
'''

# The pipeline beside holder's, which shares its pool; %s takes more [pipeline] keys.
MAIN = '''
    [pipeline]
    name = "main"
    jobs = 1
    %s

    [pools.api]
    size = 1
    min_interval = "4s"
'''

# gate runs on the job slot that waiter lends, until the test creates $T/gate.go.
GATE = '''
    [steps.gate]
    command = 'touch "$T/gate.started"; while [ ! -e "$T/gate.go" ]; do sleep 0.1; done'
'''


def run_dir_named(ws, suffix: str):
    return next(d for d in run_dirs(ws) if d.name.endswith(suffix))


def start_holder(ws):
    """Run the holder pipeline until holder has the pool's slot."""
    ws.write(HOLDER, "holder.toml")
    holder = ws.launch("--pipeline", "holder.toml", "run")
    assert wait_for(lambda: (ws.scratch / "held").exists(), timeout=30)
    return holder


def test_lender_leaves_free_pool_to_others(ws):
    # waiter lends its only job slot to gate while holder, in another pipeline,
    # has the pool. When holder ends, waiter has no job slot to start with, so
    # later (behind waiter in line) takes the pool instead of waiting for gate.
    ws.write(MAIN % "" + '''
        [steps.waiter]
        pool = "api"
        command = "true"
    ''' + GATE)
    holder = start_holder(ws)
    main = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "gate.started").exists(), timeout=30)
        (ws.scratch / "release").touch()
        assert wait_for(lambda: (ws.scratch / "later.ran").exists(), timeout=30)
    finally:
        (ws.scratch / "release").touch()
        (ws.scratch / "gate.go").touch()
    wait_all([holder, main], timeout=60)
    assert [holder.returncode, main.returncode] == [0, 0], holder.stdout.read() + main.stdout.read()

    waiter = ws.steps(run_dir_named(ws, "-main"))["waiter"]
    gate = ws.steps(run_dir_named(ws, "-main"))["gate"]
    later = ws.steps(run_dir_named(ws, "-holder"))["later"]
    assert parse_time(later["finished_at"]) <= parse_time(gate["finished_at"]), (later, gate)
    # waiter starts once gate gave its job slot back, and min_interval after later.
    assert parse_time(waiter["started_at"]) >= parse_time(gate["finished_at"]), (waiter, gate)
    assert parse_time(waiter["started_at"]) - parse_time(later["started_at"]) >= 3.5, (waiter, later)


@pytest.mark.parametrize("limit, on_failure", [("", 'on_failure = "abort"'), ("max_failures = 1", "")])
def test_stop_ends_pool_wait(ws, limit, on_failure):
    # waiter lends its job slot while holder, in another pipeline, keeps the
    # pool. failing then stops the run, and waiter must not hold the run up
    # until the pool frees.
    ws.write(MAIN % limit + '''
        [steps.waiter]
        pool = "api"
        command = 'touch "$T/waiter.ran"'

        [steps.failing]
        %s
        command = "exit 3"
    ''' % on_failure)
    holder = start_holder(ws)
    try:
        main = ws.launch("run")
        # Without the stop, main would wait for the pool until the test releases it.
        wait_all([main], timeout=30)
        output = main.stdout.read()
        assert main.returncode == 1, output
        assert not (ws.scratch / "release").exists()
    finally:
        (ws.scratch / "release").touch()
    wait_all([holder], timeout=30)

    steps = ws.steps(run_dir_named(ws, "-main"))
    assert steps["failing"]["status"] == "failed", steps["failing"]
    assert steps["waiter"]["status"] == "not_run", steps["waiter"]
    assert steps["waiter"]["reason"].startswith("not started: "), steps["waiter"]
    assert not (ws.scratch / "waiter.ran").exists()
    assert (run_dir_named(ws, "-main") / "make.log").read_text() == ""


def test_error_gives_lent_slot_back(ws):
    # second lends its only job slot while it waits out min_interval, then
    # fails on an error: the test deletes the pools' folder. Its lent slot must
    # come back, so that the other steps still run one at a time.
    ws.write('''
        [pipeline]
        name = "error-lent"
        jobs = 1

        [pools.api]
        size = 1
        min_interval = "60s"
    ''' + step("first", "true", 'pool = "api"') + step("second", "true", 'pool = "api"')
        + step("gate", 'touch "$T/gate.started"; while [ ! -e "$T/gate.go" ]; do sleep 0.1; done')
        + step("other-a", "sleep 0.3") + step("other-b", "sleep 0.3"))
    process = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "gate.started").exists(), timeout=30)
        shutil.rmtree(ws.path / "logs" / ".seedrun")
        assert wait_for(lambda: (ws.run_dir / ".seedrun" / "stamps" / "second.done").exists(), timeout=30)
        # Time for make to start another step with a slot that second did not give back.
        time.sleep(2)
    finally:
        (ws.scratch / "gate.go").touch()
    wait_all([process], timeout=60)
    output = process.stdout.read()
    assert process.returncode == 1, output

    steps = ws.steps()
    assert steps["second"]["status"] == "failed", steps["second"]
    assert steps["other-b"]["status"] == "succeeded", steps["other-b"]
    events = lines(ws.scratch / "events")
    assert len(events) == 8, events
    assert overlapping_starts(events) == []


def test_signalled_lender_takes_slot_back(ws):
    # waiter lends its only job slot to gate while holder, in another pipeline,
    # has the pool. A SIGTERM to waiter's step runner alone ends waiter, and
    # the run goes on. The slot that waiter lent must come back before its
    # step runner exits, so that gate, other-a and other-b run one at a time.
    ws.write(MAIN % "" + """
        [steps.waiter]
        pool = "api"
        command = "true"
    """ + step("gate", 'touch "$T/gate.started"; while [ ! -e "$T/gate.go" ]; do sleep 0.1; done')
        + step("other-a", "sleep 0.3") + step("other-b", "sleep 0.3"))
    holder = start_holder(ws)
    main = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "gate.started").exists(), timeout=30)
        # waiter is the only step in the pool's line, so the only process with a ticket open.
        waiting = ws.path / "logs" / ".seedrun" / "pools" / "api" / "waiting"
        assert wait_for(lambda: len(processes_with_open_file_in(waiting)) == 1, timeout=30)
        os.kill(processes_with_open_file_in(waiting)[0], signal.SIGTERM)
        main_run = run_dir_named(ws, "-main")
        assert wait_for(lambda: status_of(ws, "waiter", main_run) == "not_run", timeout=30)
        # Time for make to start another step with a slot that waiter did not take back.
        time.sleep(2)
    finally:
        (ws.scratch / "gate.go").touch()
        (ws.scratch / "release").touch()
    wait_all([holder, main], timeout=60)
    output = main.stdout.read()

    steps = ws.steps(run_dir_named(ws, "-main"))
    assert steps["waiter"]["status"] == "not_run", steps["waiter"]
    assert steps["waiter"]["reason"].endswith("received SIGTERM while the run went on"), steps["waiter"]
    for name in ("gate", "other-a", "other-b"):
        assert steps[name]["status"] == "succeeded", (steps[name], output)
    events = lines(ws.scratch / "events")
    assert len(events) == 6, events
    assert overlapping_starts(events) == []


def test_signalled_retry_wait_takes_slot_back(ws):
    # flaky fails once and lends its only job slot to gate for its 3 s retry
    # delay, then waits for gate to give the slot back. A SIGTERM to flaky's
    # step runner alone, in that wait, ends flaky and the run goes on. The slot
    # that flaky lent must come back before its step runner exits, so that gate,
    # other-a and other-b run one at a time.
    ws.write('''
        [pipeline]
        name = "retry-signal"
        jobs = 1
    ''' + step("flaky", 'echo $PPID > "$T/flaky.runner"; exit 1', 'retries = 1\nretry_delay = "3s"')
        + step("gate", 'touch "$T/gate.started"; while [ ! -e "$T/gate.go" ]; do sleep 0.1; done')
        + step("other-a", "sleep 0.3") + step("other-b", "sleep 0.3"))
    process = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.scratch / "gate.started").exists(), timeout=30)
        # Past the retry delay (3 s, give or take its jitter), so flaky waits for gate's slot.
        time.sleep(6)
        os.kill(int((ws.scratch / "flaky.runner").read_text()), signal.SIGTERM)
        assert wait_for(lambda: status_of(ws, "flaky") == "failed", timeout=30)
        # Time for make to start another step with a slot that flaky did not take back.
        time.sleep(2)
    finally:
        (ws.scratch / "gate.go").touch()
    wait_all([process], timeout=60)
    output = process.stdout.read()

    steps = ws.steps()
    assert steps["flaky"]["attempts"] == 1, steps["flaky"]
    for name in ("gate", "other-a", "other-b"):
        assert steps[name]["status"] == "succeeded", (steps[name], output)
    events = lines(ws.scratch / "events")
    assert len(events) == 8, events
    assert overlapping_starts(events) == []


def test_retry_wait_ends_with_run_killed(ws):
    # Each flaky step lends its only job slot for its retry delay, then waits
    # for gate to give a slot back. seedrun killed with SIGKILL stops make,
    # which frees its recipes' slots as they end, while seedrun's launcher may
    # still be exiting. No flaky step may start its retry, as nothing would
    # supervise it.
    # NOTE: this is a race. When a step checks only whether its launcher has
    # ended, one of six flaky steps retried in four of five runs of this test
    # on a 2-core machine, so that check can pass here by chance.
    flaky = ["flaky-%d" % number for number in range(6)]
    ws.write('''
        [pipeline]
        name = "retry-killed"
        jobs = 1
    ''' + "".join(step(name, "exit 1", 'retries = 1\nretry_delay = "3s"') for name in flaky)
        + step("gate", 'touch "$T/gate.started"; while [ ! -e "$T/gate.go" ]; do sleep 0.1; done'))
    process = ws.launch("run")
    run_dir = ws.run_dir
    try:
        assert wait_for(lambda: (ws.scratch / "gate.started").exists(), timeout=30)
        # Past the retry delays (3 s, give or take their jitter), so the flaky steps wait for a slot.
        time.sleep(6)
        kill_runner(process)
        for name in flaky:
            ended = lambda name=name: "[seedrun] not retried" in ws.log(name) or "attempt 2" in ws.log(name)  # noqa: E731
            assert wait_for(ended, timeout=30)
    finally:
        (ws.scratch / "gate.go").touch()
    assert wait_for(lambda: not processes_of_run(run_dir), timeout=30)

    for name in flaky:
        log = ws.log(name)
        assert "[seedrun] not retried: the run that started this step has ended" in log, log
        assert "attempt 2" not in log, log
