"""Start order: with the run history, steps with the most work behind them start first."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from seedrun import history
from seedrun.graph import Selection, resolve
from seedrun.pipeline import load_pipeline
from seedrun.runner import build_plan_document, ready_together
from support import parse_time

CHAINS = '''
[pipeline]
name = "chains"

[steps.quick]
command = "true"

[steps.head]
command = "true"

[steps.tail]
command = "true"
needs = ["head"]

[steps.middle]
command = "true"
'''

PHASED = '''
[pipeline]
name = "phased"

[steps.early]
command = "true"

[steps.late]
command = "true"

[[phases]]
name = "first"
steps = ["early"]

[[phases]]
name = "second"
steps = ["late"]
'''


def start_order(tmp_path: Path, text: str, durations: dict[str, float] | None) -> list[str]:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return [step.name for step in resolve(load_pipeline(path), Selection(), durations).steps]


def test_order_without_history_is_file_order(tmp_path):
    # tail comes before middle in the file, and starts as soon as head is out of the way.
    assert start_order(tmp_path, CHAINS, None) == ["quick", "head", "tail", "middle"]
    assert start_order(tmp_path, CHAINS, {}) == ["quick", "head", "tail", "middle"]


def test_longest_remaining_path_first(tmp_path):
    # head alone is short, but tail needs it: 2 + 5 s is the longest path.
    durations = {"quick": 1.0, "head": 2.0, "tail": 5.0, "middle": 4.0}
    assert start_order(tmp_path, CHAINS, durations) == ["head", "tail", "middle", "quick"]


def test_unknown_step_counts_as_median(tmp_path):
    # middle has no history, so it counts as the median of the others (3 s)
    # and starts before tail (0.5 s).
    durations = {"quick": 5.0, "head": 3.0, "tail": 0.5}
    assert start_order(tmp_path, CHAINS, durations) == ["quick", "head", "middle", "tail"]


def test_tiny_differences_keep_file_order(tmp_path):
    durations = {"quick": 0.002, "head": 0.004, "tail": 0.003, "middle": 0.03}
    assert start_order(tmp_path, CHAINS, durations) == ["quick", "head", "tail", "middle"]


def test_phases_come_before_durations(tmp_path):
    assert start_order(tmp_path, PHASED, {"early": 1.0, "late": 100.0}) == ["early", "late"]


def test_median_durations_of_successful_runs(tmp_path):
    db = tmp_path / "history.sqlite3"
    assert history.median_durations(db, "p") == {}
    for day, (seconds, status) in enumerate([(10.0, "succeeded"), (30.0, "succeeded"), (1.0, "failed"),
                                            (20.0, "succeeded")], start=1):
        run_id = "2026110%dT100000Z-p" % day
        history.record_run(db, {"run_id": run_id, "pipeline": "p", "status": status, "steps": [
            {"name": "s", "status": status, "duration_s": seconds},
            {"name": "never", "status": "failed", "duration_s": 5.0},
        ]})
    assert history.median_durations(db, "p") == {"s": 20.0}
    assert history.median_durations(db, "other") == {}

    # A hand-edited file: values that are not finite, non-negative numbers are left out.
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("UPDATE steps SET duration_s = 9e999 WHERE run_id = '20261101T100000Z-p'")
        connection.execute("UPDATE steps SET duration_s = 'abc' WHERE run_id = '20261102T100000Z-p'")
    assert history.median_durations(db, "p") == {"s": 20.0}


def test_second_run_starts_long_step_first(ws):
    ws.write('''
        [pipeline]
        name = "lpt"
        jobs = 2

        [steps.a]
        command = "sleep 0.3"
        [steps.b]
        command = "sleep 0.3"
        [steps.c]
        command = "sleep 0.3"
        [steps.long]
        command = "sleep 1.2"
    ''')
    first = ws.run("run")
    assert first.code == 0, first.out + first.err
    started = sorted(ws.steps().values(), key=lambda step: parse_time(step["started_at"]))
    assert {step["name"] for step in started[:2]} == {"a", "b"}

    plan = ws.run("plan")
    assert plan.code == 0, plan.err
    listed = [line.split()[1] for line in plan.out.splitlines()[1:]]
    assert listed == ["long", "a", "b", "c"]

    second = ws.run("run")
    assert second.code == 0, second.out + second.err
    started = sorted(ws.steps().values(), key=lambda step: parse_time(step["started_at"]))
    assert "long" in {step["name"] for step in started[:2]}
    assert "$(S)/long.done $(S)/a.done" in (ws.run_dir / "rules.mk").read_text()


FAN_OUT = '''
[pipeline]
name = "fan-out"

[steps.products]
command = "true"

[steps.codes]
command = "true"
needs = ["products"]

[steps.main-a]
command = "true"
needs = ["codes"]

[steps.main-b]
command = "true"
needs = ["codes"]

[steps.dependent-a]
command = "true"
needs = ["main-a"]

[steps.vendor]
command = "true"
needs = ["codes"]

[steps.summary]
command = "true"
after = ["vendor"]

[[phases]]
name = "sync"
steps = ["products", "codes", "main-a", "main-b", "dependent-a", "vendor"]

[[phases]]
name = "final"
steps = ["audit", "export", "mail"]

[steps.audit]
command = "true"

[steps.export]
command = "true"

[steps.mail]
command = "true"
needs = ["export"]
'''


def plan_document(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    pipeline = load_pipeline(path)
    document, _ = build_plan_document(pipeline, resolve(pipeline, Selection()), "r", tmp_path / "r", 16)
    return document


def test_ready_together_widest_level(tmp_path):
    # main-a, main-b and vendor become ready together once codes is done;
    # audit and export wait for the sync phase, so they come two levels later.
    document = plan_document(tmp_path, FAN_OUT)
    assert ready_together(document, 16) == 3
    assert ready_together(document, 2) == 2

    final = 'steps = ["audit", "export", "mail"]'
    wider = (FAN_OUT.replace(final, final.replace('"mail"', '"mail", "a2", "a3", "a4"'))
             + "".join('\n[steps.a%d]\ncommand = "true"\n' % n for n in (2, 3, 4)))
    assert ready_together(plan_document(tmp_path, wider), 16) == 5


def test_ready_together_skips_carried_over(tmp_path):
    # A resume runs only the steps that did not succeed: here dependent-a,
    # while main-a, main-b and vendor are carried over.
    document = plan_document(tmp_path, FAN_OUT)
    for entry in document["steps"]:
        entry["carried_over"] = entry["name"] != "dependent-a"
    assert ready_together(document, 16) == 1


def test_plan_ignores_old_history_rows(ws):
    """Planning reads the last successful durations of each step, not every row the history ever kept.

    The history keeps every run for good, and a query that ranked all rows
    of the pipeline took 0.8 s per 400,000 step rows (4,000 runs of 100
    steps) at every run's start.
    """
    import time

    ws.write('[pipeline]\nname = "big"\n' + "".join('[steps.s%d]\ncommand = "true"\n' % i for i in range(100)))
    db = ws.path / "logs" / "history.sqlite3"
    db.parent.mkdir()
    history.prepare(db)
    with closing(sqlite3.connect(db)) as connection, connection:
        # Step s99 took longest in every run, so the plan starts it first.
        connection.execute(
            "WITH RECURSIVE runs(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM runs WHERE x < 11999),"
            " names(y) AS (SELECT 0 UNION ALL SELECT y + 1 FROM names WHERE y < 99)"
            " INSERT INTO steps SELECT printf('20250101T%06dZ-big', x), 'big', 's' || y, NULL, 'succeeded',"
            " NULL, NULL, 1.0 + y, 1, 0, NULL, '{}', '[]', 0 FROM runs, names")

    plan = ws.run("plan")
    assert plan.code == 0, plan.out + plan.err
    assert plan.out.splitlines()[1].split()[1] == "s99"
    # Timed in process, where the query is all the work: about 0.01 s with an
    # indexed query per step, and 2 s or more for one that ranks every row.
    started = time.monotonic()
    durations = history.median_durations(db, "big", ["s%d" % i for i in range(100)])
    elapsed = time.monotonic() - started
    assert durations["s99"] == 100.0
    assert elapsed < 0.5, "reading the durations took %.2fs" % elapsed


def test_long_disabled_chain_walked_once(tmp_path):
    # 3,000 steps need the end of a chain of 2,000 disabled steps. Walking the
    # chain again for each of them took about 4 s; once, it takes about 0.1 s.
    import time

    lines = ['[pipeline]\nname = "chain"\n\n[steps.base]\ncommand = "true"\n']
    lines += ['[steps.d%d]\ncommand = "true"\nenabled = false\nneeds = ["%s"]\n' % (i, "d%d" % (i - 1) if i else "base")
              for i in range(2000)]
    lines += ['[steps.s%d]\ncommand = "true"\nneeds = ["d1999"]\n' % i for i in range(3000)]
    path = tmp_path / "pipeline.toml"
    path.write_text("".join(lines))
    pipeline = load_pipeline(path)
    started = time.monotonic()
    plan = resolve(pipeline, Selection())
    elapsed = time.monotonic() - started
    planned = {step.name: step for step in plan.steps}
    assert planned["s2999"].needs == ["base"]
    assert len(plan.notes) == 3000
    assert elapsed < 1.5, "resolve took %.1fs" % elapsed
