"""The make rules of a run: order-only prerequisites, barriers, no command text."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
from pathlib import Path

from support import processes_with_args, wait_for

from seedrun.graph import Selection, resolve
from seedrun.pipeline import load_pipeline
from seedrun.rules import SHELL_BARRIER_LIMIT, render_rules
from seedrun.step import RunFiles, run_phase_barrier, touch


def write_phased(path: Path, first: list[str]) -> Path:
    steps = "".join('[steps.%s]\ncommand = "echo $SECRET_VALUE | tee x"\n' % name for name in first + ["last"])
    members = ", ".join('"%s"' % name for name in first)
    path.write_text('[pipeline]\nname = "r"\n%s[[phases]]\nname = "one"\nsteps = [%s]\n'
                    '[[phases]]\nname = "two"\nsteps = ["last"]\n' % (steps, members))
    return path


def test_rules_are_order_only_and_hold_no_commands(tmp_path):
    plan = resolve(load_pipeline(write_phased(tmp_path / "p.toml", ["a", "b"])), Selection())
    rules = render_rules(plan, tmp_path / "run")
    assert "$(S)/last.done: | $(S)/phase.one.done" in rules
    assert "$(S)/phase.one.done: | $(S)/a.done $(S)/b.done" in rules
    assert "SECRET_VALUE" not in rules
    assert "tee" not in rules
    assert "for s in a b; do test -f $(S)/$$s.ok" in rules


def test_large_phase_uses_step_runner_barrier(tmp_path):
    names = ["step-with-a-rather-long-name-%05d" % i for i in range(SHELL_BARRIER_LIMIT // 30)]
    plan = resolve(load_pipeline(write_phased(tmp_path / "p.toml", names)), Selection())
    rules = render_rules(plan, tmp_path / "run")
    assert "\t@$(call RUN,phase.one,--phase one)\n" in rules
    assert "for s in" not in rules


def test_step_runner_barrier_stamps_phase(tmp_path):
    files = RunFiles(str(tmp_path))
    for sub in ("records", "stamps"):
        (tmp_path / ".seedrun" / sub).mkdir(parents=True)
    Path(files.specs()).write_bytes(marshal.dumps({"phase.one": ["a", "b"]}))
    touch(files.stamp("a", "ok"))
    assert run_phase_barrier(str(tmp_path), "one") == 0
    assert Path(files.phase_stamp("one", "done")).exists()
    assert not Path(files.phase_stamp("one", "ok")).exists()
    touch(files.stamp("b", "ok"))
    assert run_phase_barrier(str(tmp_path), "one") == 0
    assert Path(files.phase_stamp("one", "ok")).exists()


def test_interrupted_make_keeps_written_stamps(tmp_path):
    # Each recipe writes its stamp and then waits, as a step runner does in
    # the moment between its final record and its recipe's exit.
    plan = resolve(load_pipeline(write_phased(tmp_path / "p.toml", ["a", "b"])), Selection())
    run_dir = tmp_path / "run"
    (run_dir / ".seedrun" / "stamps").mkdir(parents=True)
    (run_dir / "rules.mk").write_text(render_rules(plan, run_dir))
    recipe = "touch $(S)/$(1).done; sleep 353"
    make = subprocess.Popen(["make", "-f", "rules.mk", "-j", "2", "RUN=" + recipe], cwd=run_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    stamps = [run_dir / ".seedrun" / "stamps" / name for name in ("a.done", "b.done")]
    try:
        assert wait_for(lambda: all(path.exists() for path in stamps), timeout=30)
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        output, _ = make.communicate(timeout=30)
    assert make.returncode != 0
    assert "Deleting file" not in output
    for path in stamps:
        assert path.exists(), path
    assert wait_for(lambda: processes_with_args("sleep 353") == [], timeout=5)
