"""A run.json damaged by hand or by another program: later runs, report, plan --resume and clean go on."""

from __future__ import annotations

import json

import pytest

PIPELINE = '[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n'

# Each case: how the first run's run.json is changed, and the problem the report names.
DAMAGES = {
    "not-json": (lambda record: "{not json", "Expecting property name"),
    "list": (lambda record: [1, 2], "the run record is not an object: [1, 2]"),
    "step-number": (lambda record: dict(record, steps=[1]), "steps[0] is not an object: 1"),
    "step-nameless": (lambda record: dict(record, steps=[{"status": "failed"}]), "steps[0].name is missing"),
    "status-number": (lambda record: dict(record, status=3), "status is not a string: 3"),
    "start-number": (lambda record: dict(record, started_at=5), "started_at is not a string: 5"),
    "attempt-text": (lambda record: dict(record, steps=[dict(record["steps"][0], attempt_history=["x"])]),
                     'steps[0].attempt_history[0] is not an object: "x"'),
}


@pytest.mark.parametrize("case", DAMAGES)
def test_damaged_run_json_is_named(ws, case):
    damage, problem = DAMAGES[case]
    ws.write(PIPELINE)
    assert ws.run("run").code == 0
    damaged = ws.record()["run_id"]
    path = ws.path / "logs" / damaged / "run.json"
    changed = damage(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))

    later = ws.run("run")
    assert later.code == 0, later.out + later.err
    # The damaged run is in the history already, so nothing about it needs a warning.
    assert later.err == ""
    index = (ws.path / "reports" / "index.html").read_text()
    assert ws.record()["run_id"] in index

    report = ws.run("report", damaged)
    assert report.code == 2, report.out + report.err
    assert "seedrun: error: cannot render the report of run %s: %s is damaged: " % (damaged, path) in report.err
    assert problem in report.err
    assert "Traceback" not in report.err

    plan = ws.run("plan", "--resume", damaged)
    assert plan.code == 0, plan.out + plan.err
    last = plan.lines[-1]
    assert last.startswith("The run.json of run %s is damaged (" % damaged), plan.out
    assert problem in last
    assert last.endswith("); seedrun resume writes it again from the step records")

    for command in (["plan", "--resume", damaged], ["clean", "--keep", "1"]):
        result = ws.run(*command)
        assert result.code == 0, (command, result.out + result.err)
        assert "Traceback" not in result.err
