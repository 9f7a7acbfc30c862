"""Retries: attempts in one log, the doubling delay, which failures retry, and interrupts."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from support import parse_time, processes_with_args, wait_for
from recovery_support import kill_runner, lines, processes_of_run

from seedrun.step import retry_delay

FLAKY = '''
    [pipeline]
    name = "retries"
    jobs = 2

    [defaults]
    kill_grace = "3s"

    [steps.flaky]
    command = \'\'\'n=$(cat "$T/n" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$T/n"; echo "attempt $n"; [ $n -ge 3 ]\'\'\'
    retries = 2
    retry_delay = "1s"
'''


def test_flaky_step_succeeds_on_third_attempt(ws):
    ws.write(FLAKY)
    result = ws.run("run", "flaky")
    assert result.code == 0, result.out + result.err

    step = ws.steps()["flaky"]
    assert step["status"] == "succeeded"
    assert step["attempts"] == 3
    history = step["attempt_history"]
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert [a["exit_code"] for a in history] == [1, 1, 0]
    assert [a["outcome"] for a in history] == ["failed", "failed", "succeeded"]

    log = ws.log("flaky")
    headers = re.findall(r"^\[seedrun\] step flaky, attempt (\d) of 3, started (\S+)$", log, re.M)
    assert [number for number, _ in headers] == ["1", "2", "3"]
    assert re.findall(r"^attempt (\d)$", log, re.M) == ["1", "2", "3"]
    assert re.findall(r"^\[seedrun\] exit code (\d+) after ", log, re.M) == ["1", "1", "0"]
    for number in (1, 2, 3):
        header = log.index("[seedrun] step flaky, attempt %d of 3" % number)
        output = log.index("attempt %d\n" % number, header)
        assert output > header
    times = [parse_time(started) for _, started in headers]
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert 0.8 <= first_gap <= 1.8, first_gap
    assert 1.7 <= second_gap <= 3.0, second_gap

    retrying = [line for line in result.lines if line.startswith("Retrying: flaky in ")]
    assert len(retrying) == 2
    assert retrying[0].endswith(" (attempt 2 of 3, exit code 1)")
    assert retrying[1].endswith(" (attempt 3 of 3, exit code 1)")


def test_exit_code_outside_retry_list_fails_at_once(ws):
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.permanent]
        command = 'echo try >> "$T/permanent.tries"; exit 4'
        retries = 3
        retry_delay = "1s"
        retry_on_exit_codes = [1, 75]
    ''')
    result = ws.run("run")
    assert result.code == 1
    step = ws.steps()["permanent"]
    assert step["status"] == "failed"
    assert step["exit_code"] == 4
    assert step["attempts"] == 1
    assert len(lines(ws.scratch / "permanent.tries")) == 1
    assert not any(line.startswith("Retrying:") for line in result.lines)


def test_timeout_is_retried(ws):
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.hangs]
        command = 'echo try >> "$T/hangs.tries"; sleep 394'
        timeout = "1s"
        kill_grace = "1s"
        retries = 1
        retry_delay = "0s"
    ''')
    result = ws.run("run")
    assert result.code == 1
    step = ws.steps()["hangs"]
    assert step["status"] == "timed_out"
    assert step["attempts"] == 2
    assert [a["outcome"] for a in step["attempt_history"]] == ["timed_out", "timed_out"]
    assert len(lines(ws.scratch / "hangs.tries")) == 2
    assert ws.log("hangs").count("[seedrun] timed out after 1s; stopped with SIGTERM") == 2
    assert processes_with_args("sleep 394") == []


def test_timeout_not_retried_with_retry_list(ws):
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.hangs]
        command = 'echo try >> "$T/hangs.tries"; sleep 395'
        timeout = "1s"
        kill_grace = "1s"
        retries = 2
        retry_delay = "0s"
        retry_on_exit_codes = [1]
    ''')
    result = ws.run("run")
    assert result.code == 1
    step = ws.steps()["hangs"]
    assert step["status"] == "timed_out"
    assert step["attempts"] == 1
    assert len(lines(ws.scratch / "hangs.tries")) == 1
    assert processes_with_args("sleep 395") == []


def test_timeout_exiting_listed_code_not_retried(ws):
    # The command ends on the timeout's SIGTERM with exit code 1, as a Node.js
    # sync with a SIGTERM handler does; that is still a timeout.
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.hangs]
        command = \'\'\'echo try >> "$T/hangs.tries"; trap 'exit 1' TERM; sleep 398 & wait\'\'\'
        timeout = "1s"
        kill_grace = "2s"
        retries = 2
        retry_delay = "0s"
        retry_on_exit_codes = [1]
    ''')
    result = ws.run("run")
    assert result.code == 1
    step = ws.steps()["hangs"]
    assert step["status"] == "timed_out"
    assert step["exit_code"] == 1
    assert step["attempts"] == 1
    assert len(lines(ws.scratch / "hangs.tries")) == 1
    assert not any(line.startswith("Retrying:") for line in result.lines)
    assert processes_with_args("sleep 398") == []


def test_max_retry_delay_caps_the_delay(ws):
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.capped]
        command = 'echo try >> "$T/capped.tries"; exit 1'
        retries = 2
        retry_delay = "3s"
        max_retry_delay = "1s"
    ''')
    result = ws.run("run")
    assert result.code == 1
    history = ws.steps()["capped"]["attempt_history"]
    assert len(history) == 3
    for before, after in zip(history, history[1:]):
        gap = parse_time(after["started_at"]) - parse_time(before["finished_at"])
        assert 0.8 <= gap <= 1.5, gap


def test_jitter_stays_under_max_retry_delay():
    delays = [retry_delay(0.5, counted, 1.0) for counted in (1, 2, 3) for _ in range(2000)]
    assert max(delays) <= 1.0
    first = delays[:2000]
    assert 0.45 <= min(first) < 0.47
    assert 0.53 < max(first) <= 0.55
    # At the cap the delays still spread, below the cap.
    capped = [retry_delay(0.5, 3, 1.0) for _ in range(2000)]
    assert 0.9 <= min(capped) < 0.92
    assert 0.98 < max(capped) <= 1.0
    # A step with thousands of retries gets past 2 ** 1024, which no float holds.
    assert 27.0 <= retry_delay(30.0, 5000, 30.0) <= 30.0


SLOW_FLAKY = '''
    [pipeline]
    name = "retries"
    jobs = 2

    [defaults]
    kill_grace = "3s"

    [steps.slow-flaky]
    command = \'\'\'echo try >> "$T/slow.tries"; [ -f "$T/resumed" ] && exit 0; sleep 391; exit 1\'\'\'
    retries = 3
    retry_delay = "1s"
'''


def test_no_retry_after_interrupt(ws):
    ws.write(SLOW_FLAKY)
    process = ws.launch("run", "slow-flaky")
    assert wait_for(lambda: (ws.scratch / "slow.tries").exists())
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 130, out
    assert len(lines(ws.scratch / "slow.tries")) == 1
    step = ws.steps()["slow-flaky"]
    assert step["status"] == "interrupted"
    assert step["attempts"] == 1
    assert not any(line.startswith("Retrying:") for line in out.splitlines())
    first_log = (ws.run_dir / "slow-flaky.log").read_bytes()
    assert b"[seedrun] interrupted after " in first_log
    assert processes_with_args("sleep 391") == []

    (ws.scratch / "resumed").touch()
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert len(lines(ws.scratch / "slow.tries")) == 2
    assert ws.steps()["slow-flaky"]["status"] == "succeeded"
    log = (ws.run_dir / "slow-flaky.log").read_bytes()
    assert log.startswith(b"[seedrun] step slow-flaky, attempt 1 of 4, started ")
    assert log.startswith(first_log)
    resumed = log[len(first_log):].decode()
    assert resumed.startswith("[seedrun] step slow-flaky, attempt ")
    assert re.findall(r"^\[seedrun\] exit code (\d+) after ", resumed, re.M) == ["0"]
    assert processes_with_args("sleep 391") == []


RESUMED_FLAKY = '''
    [pipeline]
    name = "retries"

    [defaults]
    kill_grace = "3s"

    [steps.flaky]
    command = \'\'\'n=$(cat "$T/n" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$T/n"
                 [ -f "$T/resumed" ] || { sleep 396; exit 1; }; [ $n -ge 3 ]\'\'\'
    retries = 3
    retry_delay = "1s"
'''


def test_resumed_retry_numbers_match_log(ws):
    ws.write(RESUMED_FLAKY)
    process = ws.launch("run")
    assert wait_for(lambda: processes_with_args("sleep 396"))
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 130, out

    (ws.scratch / "resumed").touch()
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert ws.steps()["flaky"]["attempts"] == 3

    headers = re.findall(r"^\[seedrun\] step flaky, attempt (\d) of (\d), started ", ws.log("flaky"), re.M)
    assert headers == [("1", "4"), ("2", "5"), ("3", "5")]
    retrying = [line for line in result.lines if line.startswith("Retrying: flaky in ")]
    assert len(retrying) == 1
    assert retrying[0].endswith(" (attempt 3 of 5, exit code 1)")
    assert processes_with_args("sleep 396") == []


def test_retry_wait_shows_ended_attempt(ws):
    # While a step waits to retry, run.json shows the attempt that failed,
    # also when its command ended too soon for its PID to be saved.
    ws.write('''
        [pipeline]
        name = "retry-shown"

        [steps.retrier]
        command = 'echo try >> "$T/tries"; exit 3'
        retries = 1
        retry_delay = "30s"
    ''')
    process = ws.launch("run")
    try:
        assert wait_for(lambda: len(retrier_attempts(ws)) == 1, timeout=30)
        history = retrier_attempts(ws)
        assert history[0]["exit_code"] == 3
        assert history[0]["outcome"] == "failed"
        assert ws.steps()["retrier"]["attempts"] == 1
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=30)


def retrier_attempts(ws) -> list[dict]:
    """The attempt_history of step retrier in run.json, or [] while run.json is not there."""
    try:
        return ws.steps()["retrier"]["attempt_history"]
    except (OSError, ValueError, KeyError):
        return []


def test_interrupt_while_waiting_to_retry(ws):
    ws.write('''
        [pipeline]
        name = "retry-wait"

        [steps.retrier]
        command = 'echo try >> "$T/tries"; exit 1'
        retries = 3
        retry_delay = "30s"
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "tries"))
    time.sleep(1.5)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    out_lines = out.splitlines()
    assert process.returncode == 130, out
    assert len(lines(ws.scratch / "tries")) == 1
    step = ws.steps()["retrier"]
    assert step["status"] == "interrupted"
    # The step ended when the interrupt came, not when its first attempt exited.
    assert step["duration_s"] >= 1.0
    assert parse_time(step["finished_at"]) - parse_time(step["started_at"]) >= 1.0
    assert not any(line.startswith("Interrupted: retrier after 0s") for line in out_lines), out
    log = ws.log("retrier").splitlines()
    assert log[-2].startswith("[seedrun] exit code 1 after ")
    assert log[-1] == "[seedrun] interrupted while waiting to retry after exit code 1"


STOPPED_WHILE_WAITING = '''
    [pipeline]
    name = "stopped-retry"
    jobs = 3
    LIMIT

    [steps.retrier]
    command = 'echo try >> "$T/tries"; exit 1'
    retries = 1
    retry_delay = "5s"

    # Fails once the retrier waits to retry.
    [steps.stopper]
    ON_FAILURE
    command = \'\'\'while [ ! -e "$T/tries" ]; do sleep 0.05; done; exit 5\'\'\'

    [steps.later]
    needs = ["stopper"]
    command = 'echo ran > "$T/later.ran"'
'''


@pytest.mark.parametrize("limit, on_failure, cause", [
    ("", 'on_failure = "abort"', 'the run stopped after stopper failed (on_failure = "abort")'),
    ("max_failures = 1", "", "1 step failed, which reaches max_failures (1)"),
])
def test_no_retry_after_run_stopped(ws, limit, on_failure, cause):
    # The retrier waits 5s to retry when the stopper fails: no attempt may start after that.
    ws.write(STOPPED_WHILE_WAITING.replace("LIMIT", limit).replace("ON_FAILURE", on_failure))
    result = ws.run("run", timeout=60)
    assert result.code == 1, result.out + result.err
    assert lines(ws.scratch / "tries") == ["try"]
    assert ws.record()["status"] == "failed"

    step = ws.steps()["retrier"]
    assert step["status"] == "failed"
    assert step["exit_code"] == 1
    assert step["attempts"] == 1
    assert step["reason"] == "exit code 1"
    log = ws.log("retrier")
    assert log.count("[seedrun] step retrier, attempt ") == 1
    assert log.splitlines()[-2].startswith("[seedrun] exit code 1 after ")
    assert log.splitlines()[-1] == "[seedrun] not retried: %s" % cause
    assert any(line.startswith("Failed: retrier, exit code 1 (see ") for line in result.lines), result.out
    assert ws.steps()["later"]["status"] == "skipped"


def test_no_retry_after_run_killed(ws):
    # seedrun dies with SIGKILL between two attempts: its launcher dies with
    # it, and the step runner left behind must not start another attempt.
    ws.write('''
        [pipeline]
        name = "killed"

        [steps.flaky]
        command = 'echo try >> "$T/tries"; exit 1'
        retries = 2
        retry_delay = "2s"
    ''')
    check_not_retried_after_kill(ws, "flaky")


def check_not_retried_after_kill(ws, step: str) -> None:
    """Kill seedrun with SIGKILL once the step's first attempt wrote $T/tries, and check that no attempt follows."""
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "tries").exists())
    run_dir = ws.run_dir
    kill_runner(process)
    assert wait_for(lambda: not processes_of_run(run_dir), timeout=15)
    # The step runner ended after its retry delay or cool-down; an attempt it started would show by now.
    time.sleep(1.5)
    assert lines(ws.scratch / "tries") == ["try"]
    log = (run_dir / (step + ".log")).read_text()
    assert log.count("[seedrun] step %s, attempt " % step) == 1
    assert "[seedrun] not retried: the run that started this step has ended\n" in log
    # Nothing is left to write to seedrun's stdout, and the step runner left behind did not either:
    # at a shell prompt its line would only confuse.
    output = process.stdout.read()
    assert not any(line.startswith(("Failed: ", "Finished: ")) for line in output.splitlines()), output


def test_no_rate_limited_rerun_after_run_killed(ws):
    ws.write('''
        [pipeline]
        name = "killed"

        [pools.api]
        rate_limited_exit_code = 75
        cooldown = "1s"

        [steps.limited]
        command = 'echo try >> "$T/tries"; exit 75'
        pool = "api"
    ''')
    check_not_retried_after_kill(ws, "limited")


def test_month_long_timeout_and_delay(ws):
    # poll() takes at most INT_MAX ms (24.8 days), so the step runner waits for the 720h timeout
    # in parts. The 8000h retry delay is interrupted while the step runner sleeps.
    ws.write('''
        [pipeline]
        name = "long-waits"
        jobs = 2

        [steps.slow]
        command = 'sleep 0.5; touch "$T/slow.done"'
        timeout = "720h"

        [steps.retrier]
        command = 'echo try >> "$T/tries"; exit 1'
        retries = 1
        retry_delay = "8000h"
        max_retry_delay = "8000h"
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "slow.done").exists() and lines(ws.scratch / "tries"), timeout=30)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130, out
    assert "Retrying: retrier in " in out
    assert "Traceback" not in (ws.run_dir / "make.log").read_text()
    steps = ws.steps()
    assert steps["slow"]["status"] == "succeeded"
    assert steps["retrier"]["status"] == "interrupted"
    assert ws.log("retrier").splitlines()[-1] == "[seedrun] interrupted while waiting to retry after exit code 1"


def test_no_retry_announced_after_interrupt(ws):
    # The interrupt comes while the timed-out attempt is still stopping (its
    # SIGTERM trap takes 2s), so the step must not announce a retry.
    ws.write('''
        [pipeline]
        name = "retries"

        [steps.hangs]
        command = \'\'\'trap 'touch "$T/stopping"; sleep 2; exit 1' TERM; sleep 399 & wait\'\'\'
        timeout = "1s"
        kill_grace = "10s"
        retries = 2
        retry_delay = "0s"
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "stopping").exists(), timeout=15)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130, out
    assert not any(line.startswith("Retrying:") for line in out.splitlines()), out
    step = ws.steps()["hangs"]
    assert step["status"] == "interrupted"
    assert step["attempts"] == 1
    log = ws.log("hangs")
    assert log.count("[seedrun] step hangs, attempt ") == 1
    assert log.splitlines()[-1] == "[seedrun] interrupted before the retry after timed out after 1s"
    assert processes_with_args("sleep 399") == []
