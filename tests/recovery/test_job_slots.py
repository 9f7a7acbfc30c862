"""A step that waits long for its pool or for a retry lends its make job slot, and never exceeds `jobs`."""

from __future__ import annotations

from support import parse_time
from recovery_support import lines, overlapping_starts

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


def run_flaky_then_other(ws, retry_delay: str) -> dict:
    """Run, under jobs = 1, a step that fails once and retries after retry_delay, then an independent one."""
    ws.write('''
        [pipeline]
        name = "retry-wait"
        jobs = 1
    ''' + step("flaky", 'test -e "$T/failed-once" || { touch "$T/failed-once"; exit 1; }',
               'retries = 1\nretry_delay = "%s"' % retry_delay) + step("other", "sleep 0.3"))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    return ws.steps()


def test_retry_wait_lends_job_slot(ws):
    steps = run_flaky_then_other(ws, "3s")
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
    steps = run_flaky_then_other(ws, "0.5s")
    assert parse_time(steps["flaky"]["finished_at"]) <= started(steps, "other"), steps
