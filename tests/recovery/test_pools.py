"""Pool slots shared through the logs directory: size, queue time, min_interval and rate-limit cool-downs."""

from __future__ import annotations

import marshal
import os
import signal
import time

import pytest

from support import parse_time, processes_with_args, wait_for
from recovery_support import kill_runner, lines, processes_of_run, run_dirs, wait_all

from seedrun.pools import cool_down

# The command exits 9 when another step runs it at the same time, so exit code 9 means the pool let two in.
SHARED = '''
    [pipeline]
    name = "NAME"
    jobs = 2

    [pools]
    api = 1

    [steps.call-api]
    pool = "api"
    timeout = "5s"
    command = 'mkdir "$T/api.busy" || exit 9; sleep 3; rmdir "$T/api.busy"'
'''


def test_pool_shared_by_two_pipelines(ws):
    ws.write(SHARED.replace("NAME", "p1"), "p1.toml")
    ws.write(SHARED.replace("NAME", "p2"), "p2.toml")
    processes = [ws.launch("--pipeline", "p1.toml", "run"), ws.launch("--pipeline", "p2.toml", "run")]
    wait_all(processes, timeout=30)
    outputs = [p.stdout.read() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs

    dirs = run_dirs(ws)
    assert sorted(d.name.rsplit("-", 1)[1] for d in dirs) == ["p1", "p2"]
    steps = [ws.steps(d)["call-api"] for d in dirs]
    for step in steps:
        assert step["status"] == "succeeded", step
        assert step["exit_code"] == 0, step
    waits = sorted(steps, key=lambda s: parse_time(s["started_at"]) - parse_time(s["queued_at"]))
    first, waited = waits
    assert parse_time(first["started_at"]) - parse_time(first["queued_at"]) < 1.0
    queue_time = parse_time(waited["started_at"]) - parse_time(waited["queued_at"])
    assert 2.5 <= queue_time <= 4.5, queue_time
    assert parse_time(waited["started_at"]) >= parse_time(first["finished_at"])
    assert parse_time(waited["finished_at"]) - parse_time(waited["queued_at"]) > 5.0
    assert (ws.path / "logs" / ".seedrun" / "pools" / "api").is_dir()
    assert processes_with_args("sleep 3") == []


def test_min_interval_between_starts(ws):
    ws.write('''
        [pipeline]
        name = "interval"
        jobs = 3

        [pools.api]
        size = 3
        min_interval = "1.5s"

        [steps.s1]
        pool = "api"
        command = "sleep 0.1"

        [steps.s2]
        pool = "api"
        command = "sleep 0.1"

        [steps.s3]
        pool = "api"
        command = "sleep 0.1"
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    starts = sorted(parse_time(s["started_at"]) for s in ws.steps().values())
    for before, after in zip(starts, starts[1:]):
        assert after - before >= 1.45, starts


RATE_LIMITED = '''
    [pipeline]
    name = "limited"
    jobs = 3

    [pools.api]
    size = 2
    rate_limited_exit_code = 75
    cooldown = "2s"

    [steps.limited]
    pool = "api"
    retries = 0
    command = 'echo try >> "$T/limited.tries"; [ "$(wc -l < "$T/limited.tries")" -ge 2 ] || exit 75'

    [steps.gate]
    command = "sleep 0.5"

    [steps.other]
    pool = "api"
    needs = ["gate"]
    command = "echo other"
'''


def test_rate_limited_exit_cools_pool_down(ws):
    ws.write(RATE_LIMITED)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert "Rate limited: limited exited with 75; pool api cools down for 2s" in result.lines

    steps = ws.steps()
    limited = steps["limited"]
    assert limited["status"] == "succeeded"
    assert limited["exit_code"] == 0
    assert limited["attempts"] == 2
    assert (ws.scratch / "limited.tries").read_text() == "try\ntry\n"
    first, second = limited["attempt_history"]
    assert first["exit_code"] == 75
    assert second["exit_code"] == 0
    cooled = parse_time(first["finished_at"]) + 1.9
    assert parse_time(second["started_at"]) >= cooled
    assert steps["other"]["status"] == "succeeded"
    assert parse_time(steps["other"]["started_at"]) >= cooled


def test_retry_after_cooldown_keeps_min_interval(ws):
    ws.write('''
        [pipeline]
        name = "spaced"
        jobs = 3

        [pools.api]
        size = 3
        min_interval = "1s"
        rate_limited_exit_code = 75
        cooldown = "1s"

        [steps.limited]
        pool = "api"
        retries = 0
        command = 'echo try >> "$T/limited.tries"; [ "$(wc -l < "$T/limited.tries")" -ge 2 ] || exit 75'

        [steps.other1]
        pool = "api"
        command = "sleep 0.1"

        [steps.other2]
        pool = "api"
        command = "sleep 0.1"
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    starts = sorted(parse_time(attempt["started_at"]) for step in ws.steps().values()
                    for attempt in step["attempt_history"])
    assert len(starts) == 4
    for before, after in zip(starts, starts[1:]):
        assert after - before >= 0.95, starts


def test_interrupt_during_cooldown_is_interrupted(ws):
    ws.write('''
        [pipeline]
        name = "limited"

        [pools.api]
        size = 1
        rate_limited_exit_code = 75
        cooldown = "30s"

        [steps.limited]
        pool = "api"
        command = 'echo try >> "$T/limited.tries"; exit 75'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "limited.tries").exists())
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 130, out
    assert "Rate limited: limited exited with 75; pool api cools down for 30s" in out.splitlines()
    assert (ws.scratch / "limited.tries").read_text() == "try\n"
    step = ws.steps()["limited"]
    assert step["status"] == "interrupted"
    assert not any(line.startswith("Failed: limited") for line in out.splitlines())


def test_repeated_rate_limits_double_cooldown(ws):
    ws.write('''
        [pipeline]
        name = "limited"

        [pools.api]
        size = 1
        rate_limited_exit_code = 75
        cooldown = "0.5s"

        [steps.limited]
        pool = "api"
        command = 'echo try >> "$T/limited.tries"; [ "$(wc -l < "$T/limited.tries")" -ge 4 ] || exit 75'
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    cooling = [line for line in result.lines if line.startswith("Rate limited: ")]
    assert cooling == ["Rate limited: limited exited with 75; pool api cools down for %s" % pause
                       for pause in ("0.5s", "1s", "2s")]
    history = ws.steps()["limited"]["attempt_history"]
    assert [a["exit_code"] for a in history] == [75, 75, 75, 0]
    for (before, after), pause in zip(zip(history, history[1:]), (0.5, 1.0, 2.0)):
        gap = parse_time(after["started_at"]) - parse_time(before["finished_at"])
        assert pause - 0.1 <= gap <= pause + 1.0, (pause, gap)


def test_late_rate_limit_restarts_cooldown(ws):
    # The second attempt runs 1 s, more than one cool-down after the first pause ended,
    # so its rate-limited exit pauses for the base cool-down again instead of doubling it.
    ws.write('''
        [pipeline]
        name = "limited"

        [pools.api]
        size = 1
        rate_limited_exit_code = 75
        cooldown = "0.3s"

        [steps.limited]
        pool = "api"
        command = 'echo try >> "$T/tries"; n=$(wc -l < "$T/tries"); [ $n -eq 2 ] && sleep 1; [ $n -ge 3 ] || exit 75'
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    cooling = [line for line in result.lines if line.startswith("Rate limited: ")]
    assert cooling == ["Rate limited: limited exited with 75; pool api cools down for 0.3s"] * 2


def test_interrupt_during_pool_wait_says_not_run(ws):
    ws.write('''
        [pipeline]
        name = "waiting"
        jobs = 3

        [pools]
        api = 1

        [steps.holder]
        pool = "api"
        command = 'echo held > "$T/held"; sleep 30'

        # The gate makes the waiter ask for the pool only once the holder has it.
        [steps.gate]
        command = 'while ! test -f "$T/held"; do sleep 0.05; done'

        [steps.waiter]
        pool = "api"
        needs = ["gate"]
        command = 'echo ran > "$T/waiter.ran"'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "held").exists(), timeout=30)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130, out
    assert "Not run: waiter (not started: the run was interrupted)" in out.splitlines()
    steps = ws.steps()
    assert steps["waiter"]["status"] == "not_run"
    assert steps["holder"]["status"] == "interrupted"
    assert steps["gate"]["status"] == "succeeded"
    assert not (ws.scratch / "waiter.ran").exists()
    assert processes_with_args("sleep 30") == []


def test_rate_limited_retries_are_bounded(ws):
    ws.write('''
        [pipeline]
        name = "always-limited"

        [pools.api]
        size = 1
        rate_limited_exit_code = 75
        cooldown = "0.001s"

        [steps.limited]
        pool = "api"
        command = 'echo try >> "$T/tries"; exit 75'
    ''')
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert len([line for line in result.lines if line.startswith("Rate limited: limited exited with 75")]) == 10
    assert lines(ws.scratch / "tries") == ["try"] * 11
    step = ws.steps()["limited"]
    assert step["status"] == "failed"
    assert step["exit_code"] == 75
    assert step["attempts"] == 11


def test_long_pool_wait_is_said(ws):
    # first takes the pool's only slot for 5 s. The four waiters start once gate has seen
    # first's command start. So each waits over 2 s for the slot, even on a slow machine,
    # and polls its queue lock together with the others.
    waiters = "".join("""
        [steps.waiter%d]
        pool = "api"
        needs = ["gate"]
        command = 'true'
    """ % number for number in range(4))
    ws.write('''
        [pipeline]
        name = "waits"
        jobs = 6

        [pools]
        api = 1

        [steps.first]
        pool = "api"
        command = 'touch "$T/first.started"; sleep 5'

        [steps.gate]
        command = 'while [ ! -f "$T/first.started" ]; do sleep 0.05; done'
    ''' + waiters)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    waiting = sorted(line for line in result.lines if line.startswith("Waiting: "))
    assert waiting == ["Waiting: waiter%d for pool api (its 1 slot is taken)" % number for number in range(4)], \
        result.out
    for line in waiting:
        name = line.split()[1]
        assert result.lines.index(line) < result.lines.index("Starting: %s" % name)


def test_long_cooldown_never_shortens(tmp_path):
    # Doubling stops at an hour, but a cooldown set longer than that keeps its own length.
    pool = {"cooldown": 7200.0, "dir": str(tmp_path / "pool")}
    assert [cool_down(pool) for _ in range(3)] == [7200.0, 7200.0, 7200.0]
    pool = {"cooldown": 1000.0, "dir": str(tmp_path / "short")}
    assert [cool_down(pool) for _ in range(4)] == [1000.0, 2000.0, 3600.0, 3600.0]


STOPPING_FAILURE = '''
    [pipeline]
    name = "stopping"
    jobs = 3
    LIMIT

    [pools]
    api = 1

    [steps.first]
    pool = "api"
    ON_FAILURE
    command = 'sleep 1; exit 4'

    # The gate makes second request the slot while first has it.
    [steps.gate]
    command = "sleep 0.3"

    [steps.second]
    pool = "api"
    needs = ["gate"]
    command = 'echo ran > "$T/second.ran"'
'''


@pytest.mark.parametrize("limit, on_failure, reason", [
    ("", 'on_failure = "abort"', 'not started: the run stopped after first failed (on_failure = "abort")'),
    ("max_failures = 1", "", "not started: 1 step failed, which reaches max_failures (1)"),
])
def test_pool_waiter_not_started_after_stop(ws, limit, on_failure, reason):
    ws.write(STOPPING_FAILURE.replace("LIMIT", limit).replace("ON_FAILURE", on_failure))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert "Starting: second" not in result.lines
    assert "Not run: second (%s)" % reason in result.lines
    assert not (ws.scratch / "second.ran").exists()

    second = ws.steps()["second"]
    assert second["status"] == "not_run"
    assert second["reason"] == reason
    assert second["started_at"] is None



def test_pool_waiter_not_started_after_run_killed(ws):
    # seedrun dies with SIGKILL while its step waits for the slot that the
    # other pipeline's step has. Nothing would supervise the step's command then.
    ws.write(SHARED.replace("NAME", "holder"), "holder.toml")
    ws.write(SHARED.replace("NAME", "waiter").replace("sleep 3", 'echo ran >> "$T/waiter.ran"'), "waiter.toml")
    holder = ws.launch("--pipeline", "holder.toml", "run")
    assert wait_for(lambda: (ws.scratch / "api.busy").is_dir(), timeout=30)
    waiter = ws.launch("--pipeline", "waiter.toml", "run")
    assert wait_for(lambda: any(d.name.endswith("-waiter") for d in run_dirs(ws)), timeout=30)
    run_dir = next(d for d in run_dirs(ws) if d.name.endswith("-waiter"))
    assert wait_for(lambda: (run_dir / ".seedrun" / "records" / "call-api").exists(), timeout=30)
    kill_runner(waiter)

    wait_all([holder], timeout=30)
    assert holder.returncode == 0
    assert wait_for(lambda: not processes_of_run(run_dir), timeout=15)
    assert not (ws.scratch / "waiter.ran").exists()

    # The next run of the pipeline takes the dead run over and records its step as not started.
    result = ws.run("--pipeline", "waiter.toml", "run")
    assert result.code == 0, result.out + result.err
    step = ws.steps(run_dir)["call-api"]
    assert step["status"] == "not_run"
    assert step["reason"] == "not started: the run that started this step has ended"
    assert step["started_at"] is None


def test_rate_limit_burst_counts_once(ws):
    # Both steps run when the API starts limiting, so their two exits are one
    # burst: the cool-down keeps its base length instead of doubling.
    ws.write('''
        [pipeline]
        name = "burst"
        jobs = 2

        [pools.api]
        size = 2
        rate_limited_exit_code = 75
        cooldown = "1s"

        [steps.a]
        pool = "api"
        command = 'sleep 0.3; [ -e "$T/a.tried" ] || { touch "$T/a.tried"; exit 75; }'

        [steps.b]
        pool = "api"
        command = 'sleep 0.3; [ -e "$T/b.tried" ] || { touch "$T/b.tried"; exit 75; }'
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    cooling = sorted(line for line in result.lines if line.startswith("Rate limited: "))
    assert cooling == ["Rate limited: %s exited with 75; pool api cools down for 1s" % name for name in ("a", "b")]
    for step in ws.steps().values():
        assert [attempt["exit_code"] for attempt in step["attempt_history"]] == [75, 0]


def test_pool_waiters_start_in_arrival_order(ws):
    # holder keeps the only slot until the test lets it go. The gates make the
    # five waiters join the line one after another, 0.4 s apart, and the test
    # lets holder go only once every waiter records that it waits.
    waiters = "".join("""
        [steps.gate%d]
        command = "sleep %.1f"

        [steps.waiter%d]
        pool = "api"
        needs = ["gate%d"]
        command = "sleep 0.1"
    """ % (number, 0.4 * number, number, number) for number in range(1, 6))
    ws.write('''
        [pipeline]
        name = "arrivals"
        jobs = 11

        [pools]
        api = 1

        [steps.holder]
        pool = "api"
        command = 'while [ ! -e "$T/release" ]; do sleep 0.05; done'
    ''' + waiters)
    names = ["waiter%d" % number for number in range(1, 6)]
    process = ws.launch("run")

    def all_waiting():
        records = ws.run_dir / ".seedrun" / "records"
        try:
            return all(marshal.loads((records / name).read_bytes())["status"] == "waiting" for name in names)
        except (OSError, EOFError, ValueError, KeyError):
            return False

    assert wait_for(all_waiting, timeout=30)
    (ws.scratch / "release").touch()
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out

    steps = ws.steps()
    by_arrival = sorted(names, key=lambda name: parse_time(steps[name]["queued_at"]))
    assert by_arrival == names, [steps[name]["queued_at"] for name in names]
    by_start = sorted(names, key=lambda name: parse_time(steps[name]["started_at"]))
    assert by_start == by_arrival, [steps[name]["started_at"] for name in names]


def test_dead_waiter_ticket_skipped(ws):
    # A ticket with a free lock is what a waiter killed with SIGKILL leaves behind.
    waiting = ws.path / "logs" / ".seedrun" / "pools" / "api" / "waiting"
    waiting.mkdir(parents=True)
    (waiting / "1.ticket").touch()
    ws.write('''
        [pipeline]
        name = "dead-waiter"

        [pools]
        api = 1

        [steps.call-api]
        pool = "api"
        command = "true"
    ''')
    result = ws.run("run", timeout=60)
    assert result.code == 0, result.out + result.err
    assert ws.steps()["call-api"]["status"] == "succeeded"
    assert list(waiting.iterdir()) == []
