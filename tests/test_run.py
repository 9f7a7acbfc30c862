"""Runs with real make and real processes: order, logs, records, policies, exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

from support import parse_time

from seedrun.records import run_status

PAIRS_PIPELINE = '''
    [pipeline]
    name = "shape"
    jobs = 6

    [steps.products]
    command = 'echo products; sleep 0.3'
    on_failure = "abort"
    [steps.codes]
    command = 'echo codes'
    [steps.main-a]
    command = 'echo main-a'
    [steps.dep-a]
    command = 'echo dep-a'
    [steps.main-b]
    command = 'echo main-b'
    [steps.dep-b]
    command = 'echo dep-b'
    [steps.v1]
    command = 'sleep 1; echo v1'
    [steps.v2]
    command = 'sleep 1; echo v2'
    [steps.v3]
    command = 'sleep 1; echo v3'

    [[phases]]
    name = "products"
    steps = ["products"]
    [[phases]]
    name = "codes"
    steps = ["codes"]
    [[phases]]
    name = "pairs"
    mode = "sequential"
    steps = ["main-a", "dep-a", "main-b", "dep-b"]
    [[phases]]
    name = "vendors"
    steps = ["v1", "v2", "v3"]

    [pairs.a]
    main = "main-a"
    dependent = "dep-a"
'''


def interval(step: dict) -> tuple[float, float]:
    return parse_time(step["started_at"]), parse_time(step["finished_at"])


def test_phases_run_in_order_and_vendors_overlap(ws):
    ws.write(PAIRS_PIPELINE)
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    steps = ws.steps()
    assert all(s["status"] == "succeeded" for s in steps.values())
    products_end = interval(steps["products"])[1]
    for name, step in steps.items():
        if name != "products":
            assert interval(step)[0] >= products_end, name
    codes_end = interval(steps["codes"])[1]
    order = ["main-a", "dep-a", "main-b", "dep-b"]
    assert interval(steps["main-a"])[0] >= codes_end
    for before, after in zip(order, order[1:]):
        assert interval(steps[after])[0] >= interval(steps[before])[1], (before, after)
    vendors = [interval(steps[v]) for v in ("v1", "v2", "v3")]
    assert min(v[0] for v in vendors) >= interval(steps["dep-b"])[1]
    assert max(v[0] for v in vendors) < min(v[1] for v in vendors), "vendor steps did not overlap"


def test_logs_directory_exists_before_first_step(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.first]
        command = 'test -d "$SEEDRUN_RUN_DIR" && test -d logs && echo yes > "$T/seen"'
    ''')
    assert ws.run("run").code == 0
    assert (ws.scratch / "seen").read_text() == "yes\n"


def test_each_step_logs_stdout_and_stderr(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo to-stdout; echo to-stderr >&2; echo again'
        [steps.c1]
        command = 'echo "codes $$" >> "$T/codes.count"; echo codes'
        [steps.c2]
        command = 'echo "codes $$" >> "$T/codes.count"; echo codes'
        [steps.c3]
        command = 'echo "codes $$" >> "$T/codes.count"; echo codes'
    ''')
    assert ws.run("run").code == 0
    log = ws.log("a")
    assert "to-stdout\nto-stderr\nagain\n" in log
    assert log.startswith("[seedrun] step a, attempt 1 of 1, started ")
    assert "[seedrun] command: echo to-stdout; echo to-stderr >&2; echo again\n" in log
    assert log.rstrip("\n").splitlines()[-1].startswith("[seedrun] exit code 0 after ")
    for name in ("c1", "c2", "c3"):
        assert "\ncodes\n" in ws.log(name)
    assert len((ws.scratch / "codes.count").read_text().splitlines()) == 3


def test_console_lines_name_step_and_log(ws):
    ws.write('''
        [pipeline]
        name = "c07"
        [steps.fetch]
        command = "printf 'got 10 rows\\\\n'; printf 'boom\\\\n' >&2; exit 3"
        [steps.load]
        command = 'echo ran > "$T/load.ran"'
        needs = ["fetch"]
        [steps.other]
        command = 'sleep 0.2'
    ''')
    result = ws.run("run")
    assert result.code == 1
    run_id = ws.record()["run_id"]
    assert "Starting: fetch" in result.lines
    assert "Failed: fetch, exit code 3 (see logs/%s/fetch.log)" % run_id in result.lines
    assert "Skipped: load (needs fetch, which failed)" in result.lines
    finished = [line for line in result.lines if line.startswith("Finished: other in ")]
    assert finished == [finished[0]]
    assert finished[0].endswith("(log: logs/%s/other.log)" % run_id)
    assert not (ws.scratch / "load.ran").exists()
    log = ws.log("fetch")
    assert "got 10 rows\nboom\n" in log
    steps = ws.steps()
    assert (steps["fetch"]["status"], steps["fetch"]["exit_code"], steps["fetch"]["signal"],
            steps["fetch"]["attempts"]) == ("failed", 3, None, 1)
    assert steps["load"]["status"] == "skipped"
    assert steps["load"]["blocked_by"] == "fetch"
    rules = (ws.run_dir / "rules.mk").read_text()
    assert "tee" not in rules and "printf" not in rules


def test_failed_products_step_aborts_everything(ws):
    ws.write(PAIRS_PIPELINE.replace("command = 'echo products; sleep 0.3'", "command = 'exit 4'"))
    result = ws.run("run")
    assert result.code == 1
    steps = ws.steps()
    assert steps["products"]["status"] == "failed"
    for name, step in steps.items():
        if name != "products":
            assert step["status"] in ("skipped", "not_run"), name
            assert step["started_at"] is None, name
    assert ws.record()["status"] == "failed"


def test_failed_pair_main_skips_dependent_and_later_pairs(ws):
    ws.write(PAIRS_PIPELINE.replace("command = 'echo main-a'", "command = 'exit 2'"))
    result = ws.run("run")
    assert result.code == 1
    steps = ws.steps()
    assert steps["main-a"]["status"] == "failed"
    for name in ("dep-a", "main-b", "dep-b", "v1", "v2", "v3"):
        assert steps[name]["status"] == "skipped", name
        assert steps[name]["blocked_by"] == "main-a", name
    assert steps["dep-a"]["reason"] == "needs main-a, which failed"
    assert steps["main-b"]["reason"] == "needs dep-a, which was skipped because main-a failed"
    assert steps["v1"]["reason"] == "needs phase pairs, where main-a failed"


def test_one_failed_vendor_stops_no_other(ws):
    ws.write(PAIRS_PIPELINE.replace("command = 'sleep 1; echo v2'", "command = 'sleep 0.2; exit 5'"))
    result = ws.run("run")
    assert result.code == 1
    steps = ws.steps()
    assert steps["v2"]["status"] == "failed"
    assert steps["v1"]["status"] == "succeeded"
    assert steps["v3"]["status"] == "succeeded"
    assert "v1" in ws.log("v1") and "v3" in ws.log("v3")


def test_ignore_policy_keeps_run_green_but_records_failure(ws):
    ws.write('''
        [pipeline]
        name = "c09"
        [steps.vendor-a]
        command = "sleep 0.5; echo a-partial; exit 5"
        on_failure = "ignore"
        [steps.after-a]
        command = 'echo ran > "$T/after.ran"'
        needs = ["vendor-a"]
        [steps.vendor-b]
        command = 'sleep 1; echo b-ok > "$T/b.out"'
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out
    steps = ws.steps()
    assert steps["vendor-a"]["status"] == "failed"
    assert steps["vendor-a"]["exit_code"] == 5
    assert steps["vendor-a"]["allowed_failure"] is True
    assert (ws.scratch / "after.ran").exists()
    assert (ws.scratch / "b.out").exists()
    assert ws.record()["status"] == "succeeded"
    assert any('allowed by on_failure = "ignore"' in line for line in result.lines)
    summary = [line for line in result.lines if line.startswith("Run %s succeeded in " % ws.record()["run_id"])]
    assert len(summary) == 1, result.out
    assert summary[0].endswith(": 1 failed (1 allowed), 2 succeeded")


def test_ignore_policy_covers_timeout(ws):
    ws.write('''
        [pipeline]
        name = "ignored-timeout"
        [steps.slow]
        command = "sleep 30"
        timeout = "1s"
        kill_grace = "1s"
        on_failure = "ignore"
        [steps.after-slow]
        command = 'echo ran > "$T/after.ran"'
        needs = ["slow"]
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    steps = ws.steps()
    assert steps["slow"]["status"] == "timed_out"
    assert steps["slow"]["allowed_failure"] is True
    assert steps["after-slow"]["status"] == "succeeded"
    assert (ws.scratch / "after.ran").exists()
    assert ws.record()["status"] == "succeeded"


def test_keep_going_fails_run_after_all_finish(ws):
    ws.write('''
        [pipeline]
        name = "c09"
        [steps.vendor-a]
        command = "sleep 0.3; echo a-partial; exit 5"
        [steps.vendor-b]
        command = 'sleep 1.2; echo b-ok > "$T/b.out"; echo b-ok'
        [steps.vendor-c]
        command = "sleep 0.8; echo c-ok"
    ''')
    result = ws.run("run")
    assert result.code == 1
    assert (ws.scratch / "b.out").exists()
    record = ws.record()
    assert record["status"] == "failed"
    assert record["counts"] == {"failed": 1, "succeeded": 2}


def test_after_waits_for_any_outcome(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.flaky]
        command = "sleep 0.3; exit 1"
        [steps.cleanup]
        command = 'echo ran > "$T/cleanup.ran"'
        after = ["flaky"]
    ''')
    assert ws.run("run").code == 1
    steps = ws.steps()
    assert steps["cleanup"]["status"] == "succeeded"
    assert interval(steps["cleanup"])[0] >= interval(steps["flaky"])[1]


def test_phase_wait_finished_runs_after_failure(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.v1]
        command = "exit 1"
        [steps.final]
        command = 'echo ran > "$T/final.ran"'
        [[phases]]
        name = "vendors"
        steps = ["v1"]
        [[phases]]
        name = "final"
        wait = "finished"
        steps = ["final"]
    ''')
    assert ws.run("run").code == 1
    assert (ws.scratch / "final.ran").exists()


def test_disabled_phase_runs_only_when_enabled(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo a >> "$T/order"'
        [steps.final]
        command = 'echo final >> "$T/order"'
        [steps.loose]
        command = 'echo loose >> "$T/order"'
        [[phases]]
        name = "main"
        steps = ["a"]
        [[phases]]
        name = "final"
        enabled = false
        steps = ["final"]
    ''')
    assert ws.run("run").code == 0
    assert (ws.scratch / "order").read_text() == "a\n"
    assert ws.run("run", "--enable", "final").code == 0
    assert (ws.scratch / "order").read_text() == "a\na\nfinal\n"
    assert ws.run("run", "loose").code == 0
    assert (ws.scratch / "order").read_text().endswith("loose\n")


def test_phase_goal_leaves_disabled_steps_out(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo a >> "$T/order"'
        [steps.manual]
        command = 'echo manual >> "$T/order"'
        enabled = false
        [[phases]]
        name = "main"
        steps = ["a", "manual"]
    ''')
    # make phase-main runs `seedrun run phase-main`, which must select what --phase main selects.
    for selection in (("--phase", "main"), ("phase-main",)):
        (ws.scratch / "order").unlink(missing_ok=True)
        result = ws.run("run", *selection)
        assert result.code == 0, result.out + result.err
        assert (ws.scratch / "order").read_text() == "a\n", selection
    (ws.scratch / "order").unlink()
    result = ws.run("run", "phase-main", "--enable", "manual")
    assert result.code == 0, result.out + result.err
    # a and manual run in parallel, so in either order.
    assert sorted((ws.scratch / "order").read_text().splitlines()) == ["a", "manual"]


def test_with_needs_leaves_disabled_phase_out(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo a >> "$T/order"'
        [steps.b]
        command = 'echo b >> "$T/order"'
        [steps.c]
        command = 'echo c >> "$T/order"'
        [[phases]]
        name = "one"
        steps = ["a"]
        [[phases]]
        name = "two"
        enabled = false
        steps = ["b"]
        [[phases]]
        name = "three"
        steps = ["c"]
    ''')
    # A full run leaves phase two out, and so must what c waits for.
    for selection in (("c", "--with-needs"), ("--phase", "three", "--with-needs")):
        (ws.scratch / "order").unlink(missing_ok=True)
        result = ws.run("run", *selection)
        assert result.code == 0, result.out + result.err
        assert (ws.scratch / "order").read_text() == "a\nc\n", selection
    (ws.scratch / "order").unlink()
    result = ws.run("run", "c", "--with-needs", "--enable", "two")
    assert result.code == 0, result.out + result.err
    assert (ws.scratch / "order").read_text() == "a\nb\nc\n"


def test_selection_takes_outside_needs_as_satisfied(ws):
    ws.write('''
        [pipeline]
        name = "c13"
        [steps.fetch]
        command = 'echo "run $$" >> "$T/fetch.count"; echo "fetch pid $$"; sleep 0.3'
        [steps.parse-a]
        command = 'echo pa >> "$T/parsed"'
        needs = ["fetch"]
        [steps.parse-b]
        command = 'echo pb >> "$T/parsed"'
        needs = ["fetch"]
    ''')
    assert ws.run("run", "parse-a").code == 0
    assert not (ws.scratch / "fetch.count").exists()
    assert ws.run("run", "fetch", "parse-a", "parse-b", "--with-needs").code == 0
    assert len((ws.scratch / "fetch.count").read_text().splitlines()) == 1
    assert ws.log("fetch").count("\nfetch pid ") == 1
    assert ws.run("run", "parse-b", "--with-needs").code == 0
    assert len((ws.scratch / "fetch.count").read_text().splitlines()) == 2


# c needs b, which is disabled and needs a: c must still wait for a (a sleeps, so the order shows it).
DISABLED_IN_CHAIN = '''
    [pipeline]
    name = "x"
    [steps.a]
    command = 'sleep 0.5; echo a >> "$T/order"'
    [steps.b]
    command = 'echo b >> "$T/order"'
    enabled = false
    needs = ["a"]
    [steps.c]
    command = 'echo c >> "$T/order"'
    needs = ["b"]
'''


def test_with_needs_leaves_disabled_needs_out(ws):
    ws.write(DISABLED_IN_CHAIN)
    result = ws.run("run", "c", "--with-needs")
    assert result.code == 0, result.out + result.err
    # b stays disabled, but what b waits for (a) still runs before c.
    assert (ws.scratch / "order").read_text() == "a\nc\n"
    assert "Note: c needs b, which is disabled: c runs without it, after what b waits for" in result.lines
    result = ws.run("run", "c", "--with-needs", "--enable", "b")
    assert result.code == 0, result.out + result.err
    assert (ws.scratch / "order").read_text() == "a\nc\na\nb\nc\n"


def test_command_not_found_is_a_readable_failure(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.missing]
        command = "no-such-command-xyz --flag"
    ''')
    result = ws.run("run")
    assert result.code == 1
    step = ws.steps()["missing"]
    assert step["exit_code"] == 127
    assert step["reason"] == "exit code 127: the command was not found (see the log)"
    assert "not found" in ws.log("missing")


def test_exit_code_of_signal_names_signal(ws):
    # sh reports a child that a signal ended as 128 + its number: 137 is
    # SIGKILL, as from the kernel's out-of-memory killer.
    ws.write('''
        [pipeline]
        name = "x"
        [steps.oom]
        command = "sh -c 'kill -9 $$'; exit $?"
        [steps.plain]
        command = "exit 3"
    ''')
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    steps = ws.steps()
    assert steps["oom"]["exit_code"] == 137
    assert steps["oom"]["reason"] == ("exit code 137: a process of the command was probably ended by SIGKILL "
                                      "(128 + 9; see the log)")
    assert steps["plain"]["reason"] == "exit code 3"


def test_step_runs_when_its_log_cannot_be_created(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.blocker]
        command = 'mkdir "$SEEDRUN_RUN_DIR/victim.log"'
        [steps.victim]
        command = 'echo ran > "$T/victim.ran"'
        needs = ["blocker"]
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out
    assert (ws.scratch / "victim.ran").exists()
    assert any(line.startswith("Warning: cannot open the log of victim: Is a directory") for line in result.lines)
    assert "output is discarded" in result.out
    assert ws.steps()["victim"]["log_error"].startswith("cannot open the log")


def test_run_json_is_valid_while_the_run_goes_on(ws):
    steps = "\n".join('[steps.s%d]\ncommand = "sleep 0.%d"\n' % (i, i % 7 + 1) for i in range(12))
    ws.write('[pipeline]\nname = "x"\njobs = 4\n' + steps)
    process = ws.launch("run")
    seen_statuses = set()
    parses = 0
    while process.poll() is None:
        path = ws.path / "logs" / "latest" / "run.json"
        if path.exists():
            record = json.loads(path.read_text())
            parses += 1
            seen_statuses |= {s["status"] for s in record["steps"]}
        time.sleep(0.02)
    assert process.returncode == 0
    assert parses > 5
    assert "running" in seen_statuses
    final = ws.record()
    assert final["status"] == "succeeded"
    assert final["finished_at"] >= final["started_at"]


def test_recorded_times_are_ordered(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = "sleep 0.2"
        [steps.b]
        command = "sleep 0.1"
        needs = ["a"]
    ''')
    assert ws.run("run").code == 0
    record = ws.record()
    for step in record["steps"]:
        assert step["queued_at"] <= step["started_at"] <= step["finished_at"]
        assert record["started_at"] <= step["queued_at"]
        assert step["finished_at"] <= record["finished_at"]
        assert step["duration_s"] >= 0.1


def test_latest_link_and_unique_run_ids(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    ids = set()
    for _ in range(3):
        assert ws.run("run").code == 0
        ids.add(ws.record()["run_id"])
    assert len(ids) == 3
    assert (ws.path / "logs" / "latest").is_symlink()
    assert ws.record()["run_id"] == sorted(ids)[-1]


def test_run_removes_stale_latest_links(ws):
    # A seedrun killed between creating logs/.latest.PID and renaming it to
    # logs/latest leaves that link behind. The next run deletes such links
    # of dead PIDs that are older than a minute: a live PID, or a fresh
    # link, may be a run in the middle of the rename.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    logs = ws.path / "logs"
    first = ws.record()["run_id"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    os.symlink(first, logs / (".latest.%d" % dead.pid))
    os.symlink(first, logs / (".latest.%d" % os.getpid()))
    (logs / ".latest.1").write_text("not a link\n")
    odd = [".latest.99999999999999999999", ".latest.\u00b2", ".latest.\u0663\u0664", ".latest.0", ".latest.x"]
    for name in odd:
        os.symlink(first, logs / name)
    # A link of a dead PID counts as left over only once it is a minute old.
    hour_ago = time.time() - 3600
    for entry in logs.iterdir():
        if entry.name.startswith(".latest."):
            os.utime(entry, (hour_ago, hour_ago), follow_symlinks=False)
    fresh = subprocess.Popen(["true"])
    fresh.wait()
    os.symlink(first, logs / (".latest.%d" % fresh.pid))

    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert not os.path.lexists(logs / (".latest.%d" % dead.pid))
    assert (logs / (".latest.%d" % os.getpid())).is_symlink()
    assert (logs / ".latest.1").read_text() == "not a link\n"
    for name in odd:
        assert (logs / name).is_symlink(), name
    assert (logs / (".latest.%d" % fresh.pid)).is_symlink()
    assert ws.record()["run_id"] != first


LOCK_HISTORY = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def test_summary_time_excludes_history_wait(ws):
    # Another process has the history locked for 3 s after the steps end.
    # The run prints that it waits to record itself, and its summary gives
    # the run's own time, as run.json does, not that wait.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HISTORY, str(ws.path / "logs" / "history.sqlite3"), "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        result = ws.run("run")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.code == 0, result.out + result.err
    assert waited >= 2
    summary = [line for line in result.lines if line.startswith("Run ") and " succeeded in " in line]
    assert len(summary) == 1, result.out
    seconds = summary[0].split(" succeeded in ")[1].split(":")[0]
    assert seconds.endswith("s"), summary[0]
    assert not seconds.endswith("ms"), summary[0]
    assert float(seconds[:-1]) < 1.5, summary[0]
    waiting = [line for line in result.lines if line.startswith("Waiting up to ")]
    assert waiting == ["Waiting up to 29s to record the run in logs/history.sqlite3, which another process has "
                       "locked (run.json is written)"], result.out
    assert result.lines.index(waiting[0]) < result.lines.index(summary[0])
    with closing(sqlite3.connect(ws.path / "logs" / "history.sqlite3")) as connection:
        recorded = connection.execute("SELECT count(*) FROM runs WHERE run_id = ?", (ws.record()["run_id"],))
        assert recorded.fetchone() == (1,)


def test_run_missing_from_history_is_recorded_later(ws):
    # A run whose end found the history locked for longer than 30 s is
    # missing from it; the next run records it from its run.json.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    missing = ws.record()["run_id"]
    database = ws.path / "logs" / "history.sqlite3"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("DELETE FROM steps WHERE run_id = ?", (missing,))
        connection.execute("DELETE FROM runs WHERE run_id = ?", (missing,))

    assert ws.run("run").code == 0
    with closing(sqlite3.connect(database)) as connection:
        runs = connection.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall()
        steps = connection.execute("SELECT name, status FROM steps WHERE run_id = ?", (missing,)).fetchall()
    assert runs == [(missing, "succeeded"), (ws.record()["run_id"], "succeeded")]
    assert steps == [("a", "succeeded")]


def test_stale_and_damaged_history_runs(ws):
    # A resume whose end found the history locked left the row of the run's
    # first end. A damaged run.json must not stop the records of other runs.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    stale = ws.record()["run_id"]
    assert ws.run("run").code == 0
    damaged = ws.record()["run_id"]
    record = json.loads((ws.path / "logs" / damaged / "run.json").read_text())
    (ws.path / "logs" / damaged / "run.json").write_text(json.dumps(dict(record, steps=[1])))
    database = ws.path / "logs" / "history.sqlite3"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("UPDATE runs SET status = 'failed', finished_at = NULL WHERE run_id = ?", (stale,))
        connection.execute("DELETE FROM runs WHERE run_id = ?", (damaged,))

    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    with closing(sqlite3.connect(database)) as connection:
        runs = dict(connection.execute("SELECT run_id, status FROM runs").fetchall())
    assert runs[stale] == "succeeded"
    assert damaged not in runs


def test_disabled_step_keeps_the_order_it_had(ws):
    ws.write(DISABLED_IN_CHAIN)
    result = ws.run("run")
    assert result.code == 0, result.out
    assert (ws.scratch / "order").read_text() == "a\nc\n"
    assert "Note: c needs b, which is disabled: c runs without it, after what b waits for" in result.lines
    assert ws.steps()["c"]["needs"] == ["a"]


def test_after_disabled_step_stays_after(ws):
    # c only runs after b, which is disabled: c waits for a, but must run even when a fails.
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'sleep 0.5; echo a >> "$T/order"; exit 3'
        [steps.b]
        command = 'echo b >> "$T/order"'
        enabled = false
        needs = ["a"]
        [steps.c]
        command = 'echo c >> "$T/order"'
        after = ["b"]
    ''')
    result = ws.run("run")
    assert result.code == 1, result.out
    assert (ws.scratch / "order").read_text() == "a\nc\n"
    assert "Note: c runs after b, which is disabled: c runs without it, after what b waits for" in result.lines
    assert ws.steps()["c"]["needs"] == []
    assert ws.steps()["c"]["after"] == ["a"]
    assert ws.steps()["c"]["status"] == "succeeded"


def test_resume_of_succeeded_run_runs_nothing(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'echo a >> "$T/a"\'\n')
    assert ws.run("run").code == 0
    result = ws.run("resume")
    assert result.code == 0
    assert "Run %s succeeded; nothing to resume" % ws.record()["run_id"] in result.lines
    assert (ws.scratch / "a").read_text() == "a\n"


def test_resume_of_succeeded_run_names_failed_one(ws):
    # Testing one step after a failed full run makes the newest run a success.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'test ! -f "$T/fail"\'\n[steps.b]\ncommand = "true"\n')
    (ws.scratch / "fail").touch()
    assert ws.run("run").code == 1
    failed = ws.record()["run_id"]
    (ws.scratch / "fail").unlink()
    assert ws.run("run", "b").code == 0
    newest = ws.record()["run_id"]
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert result.lines == [
        "Run %s succeeded; nothing to resume" % newest,
        "The newest run that did not succeed is %s (failed); resume it with: seedrun resume %s" % (failed, failed),
    ]
    # Named explicitly, the succeeded run gets no such hint.
    result = ws.run("resume", newest)
    assert result.lines == ["Run %s succeeded; nothing to resume" % newest]


def test_step_waiting_to_retry_frees_its_pool_slot(ws):
    ws.write('''
        [pipeline]
        name = "x"
        jobs = 3
        [pools]
        api = 1
        [steps.flaky]
        command = '[ -f "$T/second" ] && exit 0; touch "$T/second"; exit 1'
        pool = "api"
        retries = 1
        retry_delay = "2s"
        [steps.gate]
        command = 'while [ ! -f "$T/second" ]; do sleep 0.05; done'
        timeout = "20s"
        [steps.other]
        command = 'sleep 0.2'
        pool = "api"
        needs = ["gate"]
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out
    steps = ws.steps()
    first, second = steps["flaky"]["attempt_history"]
    other_start, other_end = interval(steps["other"])
    assert first["outcome"] == "failed"
    assert other_start >= parse_time(first["finished_at"])
    assert other_end <= parse_time(second["started_at"]), "other should run during the retry delay"


def test_missing_make_runs_nothing(ws, tmp_path):
    ws.write('''
        [pipeline]
        name = "nomake"
        [steps.a]
        command = 'echo a >> "$T/a.count"'
    ''')
    # A PATH with the usual tools but no make.
    bin_dir = tmp_path / "bin-without-make"
    bin_dir.mkdir()
    for tool in ("sh", "env", "true"):
        (bin_dir / tool).symlink_to("/bin/" + tool if tool != "env" else "/usr/bin/env")
    for command in ("run", "resume"):
        result = ws.run(command, env=dict(ws.env, PATH=str(bin_dir)))
        assert result.code == 2, result.out + result.err
        assert result.err == ("seedrun: error: GNU make was not found on PATH; install it (Debian and Ubuntu: "
                              "apt install make) and run again. Nothing was run.\n")
        assert "Traceback" not in result.out + result.err
    assert not (ws.path / "logs").exists()
    assert not (ws.scratch / "a.count").exists()


def env_with_make(ws, tmp_path, script: str) -> dict:
    """Return the workspace's environment with an executable `make` of this script first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make = bin_dir / "make"
    make.write_text(script)
    make.chmod(0o755)
    return dict(ws.env, PATH="%s:%s" % (bin_dir, ws.env["PATH"]))


def test_make_that_cannot_start_still_records_run(ws, tmp_path):
    steps = "".join("[steps.s%d]\ncommand = 'echo s%d >> \"$T/count\"'\n" % (n, n) for n in range(6))
    ws.write('''
        [pipeline]
        name = "badmake"
        [steps.a]
        command = 'echo a >> "$T/a.count"'
    ''' + steps)
    # Found on PATH and executable, but its interpreter does not exist, so exec fails.
    result = ws.run("run", env=env_with_make(ws, tmp_path, "#!/nonexistent/interpreter\n"))
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.out + result.err
    assert any(line.startswith("Error: cannot run the steps: ") and line.endswith("; stopping the run")
               for line in result.lines), result.out
    record = ws.record()
    assert record["status"] == "failed"
    assert record["exit_code"] == 1
    assert record["finished_at"] is not None
    assert ws.steps()["a"]["status"] == "not_run"
    assert ws.steps()["a"]["reason"].startswith("not started: cannot run the steps: ")
    assert not (ws.scratch / "a.count").exists()
    not_run = [line for line in result.lines if line.startswith("Not run: ")]
    assert len(not_run) == 1, result.out
    assert not_run[0].startswith("Not run: 7 steps: a, s0, s1, s2, s3, ... (not started: cannot run the steps: ")


def test_make_that_exits_at_once_is_explained(ws, tmp_path):
    ws.write('''
        [pipeline]
        name = "brokenmake"
        [steps.a]
        command = 'echo a >> "$T/a.count"'
        [steps.b]
        command = 'echo b >> "$T/b.count"'
    ''')
    # A make that starts but runs nothing, like a make that is not GNU make.
    script = "#!/bin/sh\necho 'make: this make cannot read rules.mk' >&2\nexit 2\n"
    result = ws.run("run", env=env_with_make(ws, tmp_path, script))
    assert result.code == 1, result.out + result.err
    run_id = ws.record()["run_id"]
    assert ("Error: make exited with exit code 2 before it started 2 steps (a, b): make: this make cannot "
            "read rules.mk; see logs/%s/make.log" % run_id) in result.lines
    assert [ws.steps()[name]["status"] for name in ("a", "b")] == ["not_run", "not_run"]
    assert not (ws.scratch / "a.count").exists()
    error = "make exited with exit code 2 before it started 2 steps: make: this make cannot read rules.mk"
    assert ws.record()["error"] == error
    report = (ws.path / "reports" / ("%s.html" % run_id)).read_text()
    assert "<p>No step failed or timed out. The run failed because %s.</p>" % error in report

    # After make -k, make's last line is a summary. The line with "***" names what failed.
    script = ("#!/bin/sh\necho 'make: *** [rules.mk:25: .seedrun/stamps/a.done] Killed' >&2\n"
              "echo \"make: Target 'all' not remade because of errors.\" >&2\nexit 2\n")
    (tmp_path / "second").mkdir()
    result = ws.run("run", env=env_with_make(ws, tmp_path / "second", script))
    assert result.code == 1, result.out + result.err
    assert ("Error: make exited with exit code 2 before it started 2 steps (a, b): make: *** [rules.mk:25: "
            ".seedrun/stamps/a.done] Killed; see logs/%s/make.log" % ws.record()["run_id"]) in result.lines


def test_huge_job_limit_runs(ws):
    # make cannot hand out more than about 65,537 slots through its job
    # server pipe, so seedrun gives it no more slots than recipes.
    ws.write('[pipeline]\nname = "wide"\njobs = 100000\n[steps.a]\ncommand = "true"\n[steps.b]\ncommand = "true"\n')
    result = ws.run("run", timeout=60)
    assert result.code == 0, result.out + result.err
    assert "Run %s: 2 steps, up to 100000 at once" % ws.record()["run_id"] in result.out
    result = ws.run("run", "--jobs", "70000", timeout=60)
    assert result.code == 0, result.out + result.err


def test_interrupt_after_every_step_ended_keeps_status():
    finished = [{"status": "succeeded", "allowed_failure": False, "reason": None}] * 3
    assert run_status(finished, interrupted=True) == ("succeeded", 0)
    failed = finished + [{"status": "failed", "allowed_failure": False, "reason": "exit code 1"}]
    assert run_status(failed, interrupted=True) == ("failed", 1)
    stopped = finished + [{"status": "interrupted", "allowed_failure": False, "reason": "interrupted after 1s"}]
    assert run_status(stopped, interrupted=True) == ("interrupted", 130)
    unstarted = finished + [{"status": "not_run", "allowed_failure": False,
                             "reason": "not started: the run was interrupted"}]
    assert run_status(unstarted, interrupted=True) == ("interrupted", 130)


def test_interrupt_while_step_ran_interrupts_run():
    # The step timed out before the interrupt and was still being stopped when it came.
    timed_out = [{"status": "succeeded", "allowed_failure": False, "reason": None},
                 {"status": "timed_out", "allowed_failure": False, "reason": "timed out after 1s"}]
    assert run_status(timed_out, interrupted=True, running_at_interrupt=True) == ("interrupted", 130)
    assert run_status(timed_out, interrupted=True) == ("failed", 1)
    assert run_status(timed_out, interrupted=False, running_at_interrupt=True) == ("failed", 1)


def test_report_in_folder_made_by_the_run(ws):
    # reports_dir's parent does not exist before the first run; the run makes both.
    ws.write('[pipeline]\nname = "x"\nreports_dir = "out/html"\n[steps.a]\ncommand = "true"\n')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert not any(line.startswith("Warning:") for line in result.lines), result.out
    assert (ws.path / "out" / "html" / ("%s.html" % ws.record()["run_id"])).exists()


def test_summary_names_ten_failed_steps(ws):
    ws.write('[pipeline]\nname = "many-failures"\njobs = 8\n' + "".join(
        '[steps.f%02d]\ncommand = "exit 3"\n' % i for i in range(25)))
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    summary = [line for line in result.lines if line.startswith("Failed steps: ")]
    assert len(summary) == 1
    assert summary[0].count("(exit code 3)") == 10
    assert summary[0].endswith(" and 15 more (see the report)")
