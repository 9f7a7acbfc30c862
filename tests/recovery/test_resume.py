"""seedrun resume: what it keeps, what it runs again, and in which run directory."""

from __future__ import annotations

import json
import marshal
import os
import re
import signal
import subprocess

import pytest

from support import INVOKE, REPO, SEEDRUN, Result, processes_with_args, wait_for
from recovery_support import kill_runner, lines, make_of_run, overlapping_starts, processes_of_run, run_dirs

STEP = 'echo "$SEEDRUN_STEP" >> "$T/runs"; echo "$SEEDRUN_STEP output"'
FAILING_MAIN = STEP + '; if [ -f "$T/fail-main-b" ]; then exit 3; fi'
ORDER = ["products", "codes", "main-a", "dep-a", "main-b", "dep-b", "v1", "v2", "v3"]


def phases_pipeline() -> str:
    steps = "".join("[steps.%s]\ncommand = '%s'\n" % (name, FAILING_MAIN if name == "main-b" else STEP)
                    for name in ORDER)
    return '''[pipeline]
name = "pairs"
jobs = 4

[defaults]
kill_grace = "3s"

%s
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

[pairs.b]
main = "main-b"
dependent = "dep-b"
''' % steps


def resume_with(ws, entry: str):
    pipeline = str(ws.path / "pipeline.toml")
    if entry == "seedrun":
        return ws.run("resume")
    if entry == "invoke":
        return ws.call([INVOKE, "--search-root", str(REPO), "resume", "--pipeline", pipeline])
    return ws.call(["make", "-C", str(REPO), "resume", "PIPELINE=%s" % pipeline])


@pytest.mark.parametrize("entry", ["seedrun", "invoke", "make"])
def test_resume_reruns_failed_main_and_later(ws, entry):
    ws.write(phases_pipeline())
    (ws.scratch / "fail-main-b").touch()
    first = ws.run("run")
    assert first.code == 1, first.out + first.err
    run_dir = ws.run_dir
    first_log = (run_dir / "main-b.log").read_bytes()
    assert ws.steps()["main-b"]["status"] == "failed"
    assert lines(ws.scratch / "runs") == ORDER[:5]

    (ws.scratch / "fail-main-b").unlink()
    result = resume_with(ws, entry)
    assert result.code == 0, result.out + result.err

    runs = lines(ws.scratch / "runs")
    for name in ORDER:
        expected = 2 if name == "main-b" else 1
        assert runs.count(name) == expected, (name, runs)
    assert runs[5:7] == ["main-b", "dep-b"]
    assert sorted(runs[7:]) == ["v1", "v2", "v3"]

    assert run_dirs(ws) == [run_dir]
    assert ws.run_dir == run_dir
    record = ws.record()
    assert record["status"] == "succeeded"
    assert record["exit_code"] == 0
    assert len(record["resumed_at"]) == 1
    # The four steps before main-b succeeded and are kept.
    assert "Resuming %s: 9 steps (4 carried over, 5 to run), up to 4 at once (logs: " % run_dir.name in result.out

    steps = ws.steps()
    for name in ORDER:
        assert steps[name]["status"] == "succeeded", name
        assert steps[name]["carried_over"] is (name in ORDER[:4]), name

    log = (run_dir / "main-b.log").read_bytes()
    assert log.startswith(first_log)
    text = log.decode()
    headers = re.findall(r"^\[seedrun\] step main-b, attempt \d+ of \d+, started ", text, re.M)
    assert len(headers) == 2
    footers = re.findall(r"^\[seedrun\] exit code (\d+) after ", text, re.M)
    assert footers == ["3", "0"]
    assert text.count("main-b output\n") == 2
    report = (ws.path / "reports" / ("%s.html" % run_dir.name)).read_text()
    assert "carried over" in report


# `late` ends its command at once but leaves a child that ignores SIGTERM, so
# its step runner only records success after the seedrun process was killed.
KILLED_PIPELINE = '''
    [pipeline]
    name = "killed"
    jobs = 4

    [defaults]
    kill_grace = "3s"

    [steps.a]
    command = 'echo "a $$" >> "$T/a.count"; sleep 0.8; echo a-done'

    [steps.late]
    command = """echo "late $$" >> "$T/late.count"; sh -c 'trap "" TERM; sleep 3.7' & echo late-done"""
    kill_grace = "8s"

    [steps.b]
    command = """trap 'echo "b-end $$" >> "$T/b.events"' EXIT; trap 'exit 143' TERM; echo "b-start $$" >> "$T/b.events"; sleep B_SECONDS"""

    [steps.c]
    command = 'echo "c $$" >> "$T/c.count"; echo c-v1'
    needs = ["a", "late", "b"]
'''


def start_and_kill(ws, b_seconds: str, kill_make: bool = False):
    """Start a run and SIGKILL its seedrun process once a succeeded and b runs.

    Return the run directory and the PID of the killed seedrun process.

    With kill_make, make dies first, while seedrun is stopped, so the step
    runners outlive both of them.
    """
    ws.write(KILLED_PIPELINE.replace("B_SECONDS", b_seconds))
    process = ws.launch("run")
    a_log = ws.path / "logs" / "latest" / "a.log"
    assert wait_for(lambda: a_log.exists() and "[seedrun] exit code 0 after " in a_log.read_text())
    assert wait_for(lambda: lines(ws.scratch / "b.events"))
    assert wait_for(lambda: lines(ws.scratch / "late.count"))
    run_dir = ws.run_dir
    if kill_make:
        os.kill(process.pid, signal.SIGSTOP)
        makes = make_of_run(run_dir)
        assert len(makes) == 1
        os.kill(makes[0], signal.SIGKILL)
    kill_runner(process)
    return run_dir, process.pid


@pytest.mark.parametrize("kill_make", [False, True])
def test_resume_after_runner_killed(ws, kill_make):
    run_dir, pid = start_and_kill(ws, "6.2", kill_make)
    left = processes_of_run(run_dir)
    assert left, "the killed run should still have step runners"

    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert ("Warning: run %s (PID %d) ended without finishing; taking over its lock"
            % (run_dir.name, pid)) in result.lines

    assert len(lines(ws.scratch / "a.count")) == 1
    assert len(lines(ws.scratch / "late.count")) == 1
    assert len(lines(ws.scratch / "c.count")) == 1
    events = lines(ws.scratch / "b.events")
    assert overlapping_starts(events) == []
    steps = ws.steps()
    assert steps["a"]["carried_over"] is True
    assert steps["late"]["carried_over"] is True
    b_starts = [e for e in events if e.startswith("b-start")]
    assert len(b_starts) == (1 if steps["b"]["carried_over"] else 2)
    for name in ("a", "late", "b", "c"):
        assert steps[name]["status"] == "succeeded", name
    assert ws.run_dir == run_dir
    assert run_dirs(ws) == [run_dir]
    assert ws.record()["status"] == "succeeded"
    assert "c-v1\n" in ws.log("c")

    assert processes_of_run(run_dir) == []
    for pid in left:
        assert pid not in processes_of_run(run_dir)
    assert processes_with_args("sleep 3.7") == []
    assert processes_with_args("sleep 6.2") == []


ORPHANED_PIPELINE = '''
    [pipeline]
    name = "orphaned"

    [steps.sync]
    command = """trap 'echo "sync-end $$" >> "$T/sync.events"' EXIT; trap 'exit 143' TERM; echo "sync-start $$" >> "$T/sync.events"; sleep 396 & sleep 397 & wait"""
    kill_grace = "3s"
'''


def test_resume_stops_command_of_killed_step_runner(ws):
    # seedrun and then its step runners die with SIGKILL (kill -9 of every seedrun process),
    # while the step's command runs on in a session of its own. The resume
    # must stop it before it starts the step again.
    ws.write(ORPHANED_PIPELINE)
    process = ws.launch("run")
    assert wait_for(lambda: lines(ws.scratch / "sync.events"), timeout=15)
    command = int(lines(ws.scratch / "sync.events")[0].split()[1])
    run_dir = ws.run_dir
    kill_runner(process)
    for pid in processes_of_run(run_dir):
        try:
            if os.getsid(pid) != command:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def only_command_left() -> bool:
        try:
            return all(os.getsid(pid) == command for pid in processes_of_run(run_dir))
        except ProcessLookupError:
            return False

    assert wait_for(only_command_left, timeout=10)
    assert processes_with_args("sleep 397") != []

    resumed = ws.launch("resume")
    events = ws.scratch / "sync.events"
    try:
        assert wait_for(lambda: len([e for e in lines(events) if e.startswith("sync-start")]) == 2, timeout=30)
        assert lines(events)[:2] == ["sync-start %d" % command, "sync-end %d" % command]
        assert overlapping_starts(lines(events)) == []
    finally:
        try:
            os.killpg(command, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(resumed.pid, signal.SIGTERM)
    out, _ = resumed.communicate(timeout=30)
    assert resumed.returncode == 130, out
    assert "Stopping 3 processes that the steps of run %s left running" % run_dir.name in out
    assert processes_with_args("sleep 397") == []


@pytest.mark.parametrize("replan", [False, True])
def test_resume_after_kill_with_changed_file(ws, replan):
    run_dir, _ = start_and_kill(ws, "2.3")
    ws.write(KILLED_PIPELINE.replace("B_SECONDS", "2.3").replace("c-v1", "c-v2"))

    result = ws.run("resume", *(["--replan"] if replan else []))
    assert result.code == 0, result.out + result.err

    assert len(lines(ws.scratch / "c.count")) == 1
    assert overlapping_starts(lines(ws.scratch / "b.events")) == []
    if replan:
        assert "Resuming with the changed plan: c (command changed)" in result.lines
        assert "c-v2\n" in ws.log("c")
        assert "c-v1" not in ws.log("c")
    else:
        assert "pipeline.toml changed since run %s started: c (command changed)" % run_dir.name in result.lines
        assert "Resuming with the plan the run started with; pass --replan to use the changed file" in result.lines
        assert "c-v1\n" in ws.log("c")
        assert "c-v2" not in ws.log("c")
    assert processes_of_run(run_dir) == []
    assert processes_with_args("sleep 2.3") == []
    assert processes_with_args("sleep 3.7") == []


def explanations(output: str) -> dict[str, str]:
    """Map step name to its explanation in `seedrun plan --resume` output."""
    found = {}
    for line in output.splitlines():
        if line.startswith("  "):
            name, text = line.split(None, 1)
            found[name] = text
    return found


def test_plan_resume_explains_each_step(ws):
    pipeline = '''
        [pipeline]
        name = "explain"
        jobs = 4

        [defaults]
        kill_grace = "1s"

        [steps.ok]
        command = 'echo ok >> "$T/runs"'

        [steps.bad]
        command = 'echo bad >> "$T/runs"; exit 3'

        [steps.dep]
        command = 'echo dep >> "$T/runs"'
        needs = ["bad"]

        [steps.slow]
        command = 'echo slow >> "$T/runs"; sleep 393'
        timeout = "1s"
    '''
    ws.write(pipeline)
    assert ws.run("run").code == 1
    run_id = ws.record()["run_id"]
    runs_before = lines(ws.scratch / "runs")

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert result.lines[0] == "Resume of run %s (logs/%s):" % (run_id, run_id)
    assert explanations(result.out) == {
        "ok": "kept: succeeded",
        "bad": "runs again: failed (exit code 3)",
        "dep": "runs again: skipped (needs bad, which failed)",
        "slow": "runs again: timed out (timed out after 1s)",
    }
    assert lines(ws.scratch / "runs") == runs_before

    ws.write(pipeline.replace("exit 3", "exit 0"))
    result = ws.run("plan", "--resume", run_id)
    assert result.code == 0, result.err
    assert result.lines[-1] == ("pipeline.toml changed since the run started: bad (command changed); "
                                "seedrun resume keeps the old plan, seedrun resume --replan takes the new one")
    assert processes_with_args("sleep 393") == []


def test_plan_resume_explains_replan(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    run_id = ws.record()["run_id"]
    changed = FIXABLE_PIPELINE.replace("echo a >>", "echo a2 >>") + '''
    [steps.d]
    command = 'echo d >> "$T/runs"'
'''
    ws.write(changed)

    result = ws.run("plan", "--resume", "--replan")
    assert result.code == 0, result.err
    assert result.lines[0] == "Resume with --replan of run %s (logs/%s):" % (run_id, run_id)
    assert explanations(result.out) == {
        "a": "kept: succeeded",
        "b": "runs again: failed (exit code 1)",
        "d": "runs: added to pipeline.toml",
    }
    assert result.lines[-1] == "pipeline.toml changed since the run started: d added; a (command changed)"

    ws.write(changed.replace("[steps.a]", "[steps.a0]").replace('needs = ["a"]', 'needs = ["a0"]'))
    result = ws.run("plan", "--resume", "--replan")
    assert "  %-32s dropped: no longer in pipeline.toml" % "a" in result.lines

    result = ws.run("plan", "--replan")
    assert result.code == 2
    assert "--replan explains a resume: use seedrun plan --resume --replan" in result.err


def test_plan_resume_explains_killed_step_runner(ws):
    ws.write('''
        [pipeline]
        name = "killed-runner"
        jobs = 2

        [steps.a]
        command = 'echo $PPID > "$T/a.runner"; sleep 395'
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "a.runner").exists() and lines(ws.scratch / "a.runner"), timeout=30)
    runner = int(lines(ws.scratch / "a.runner")[0])
    os.kill(runner, signal.SIGKILL)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    # The launcher finished the record of the step whose runner it lost.
    assert explanations(result.out) == {
        "a": "runs again: failed (the step runner (PID %d) died with SIGKILL; its command was stopped with "
             "SIGTERM)" % runner,
    }
    assert processes_with_args("sleep 395") == []


def test_plan_resume_explains_live_and_killed_run(ws):
    ws.write('''
        [pipeline]
        name = "killed-run"
        jobs = 2

        [steps.a]
        command = 'echo a'

        [steps.b]
        command = '[ -f "$T/resumed" ] || sleep 398'
        needs = ["a"]

        [steps.c]
        command = 'echo c'
        needs = ["b"]
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: processes_with_args("sleep 398"), timeout=30)
    # logs/latest points to the run before its first step starts, but run.json may not exist yet.
    run_id = ws.run_dir.name

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert explanations(result.out) == {"a": "kept: succeeded", "b": "running now", "c": "runs again: never started"}
    assert result.lines[-1] == "Run %s is still running (PID %d), so seedrun resume is refused until it ends" % (
        run_id, process.pid)

    # Everything of the run dies at once, as on a machine's out-of-memory kill of the whole service.
    run_dir = ws.run_dir
    kill_runner(process)
    for pid in processes_of_run(run_dir) + processes_with_args("sleep 398"):
        os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not processes_of_run(run_dir) and not processes_with_args("sleep 398"))
    assert ws.record()["status"] == "running"
    # The dead run's PID is taken by another live process (this one): only the lock itself shows that it is free.
    lock_path = ws.path / "logs" / ".seedrun" / "killed-run.lock"
    details = json.loads(lock_path.read_text())
    assert details["pid"] == process.pid
    lock_path.write_text(json.dumps(dict(details, pid=os.getpid())))

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert explanations(result.out) == {
        "a": "kept: succeeded",
        "b": "runs again: interrupted (the run ended without finishing while the step was running)",
        "c": "runs again: never started",
    }
    assert result.lines[-1] == "Run %s ended without finishing; seedrun resume first records it interrupted" % run_id

    (ws.scratch / "resumed").touch()
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Warning: run %s (PID %d) ended without finishing; taking over its lock" % (run_id, os.getpid()) \
        in result.lines
    assert ws.record()["status"] == "succeeded"


# b fails until $T/fixed exists, so the first run ends failed and a resume can succeed.
FIXABLE_PIPELINE = '''
    [pipeline]
    name = "fixable"
    jobs = 2

    [steps.a]
    command = 'echo a >> "$T/runs"'

    [steps.b]
    command = 'test -f "$T/fixed" && echo b >> "$T/runs"'
    needs = ["a"]
'''


def test_resume_converts_spec_folder_of_earlier_version(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    # Lay the run out as an earlier seedrun did: a spec file per step and per phase in .seedrun/spec/.
    state = ws.run_dir / ".seedrun"
    specs = marshal.loads((state / "specs").read_bytes())
    (state / "spec").mkdir()
    for name, spec in specs.items():
        (state / "spec" / name).write_bytes(marshal.dumps(spec))
    (state / "specs").unlink()
    (ws.scratch / "fixed").touch()

    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Starting: b" in result.out
    assert lines(ws.scratch / "runs") == ["a", "b"]
    assert ws.steps()["b"]["status"] == "succeeded"


def test_resume_restores_deleted_done_stamp(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    # An interrupted make deletes the target of a recipe whose file changed;
    # rules without .PRECIOUS let it take the stamp of a step that succeeded.
    (ws.run_dir / ".seedrun" / "stamps" / "a.done").unlink()
    (ws.scratch / "fixed").touch()

    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Starting: a" not in result.out
    assert lines(ws.scratch / "runs") == ["a", "b"]
    assert ws.steps()["a"]["carried_over"] is True


INTERRUPTED_RESUME = '''
[pipeline]
name = "stale"
jobs = 2

[defaults]
kill_grace = "3s"

[steps.first]
command = 'test -f "$T/fixed" || exit 1; echo start >> "$T/first.events"; sleep 30'

[steps.second]
command = 'echo second >> "$T/second.count"'
needs = ["first"]
'''


def test_interrupted_resume_records_unreached_step(ws):
    # `second` was skipped because `first` failed. The resumed run is
    # interrupted while `first` runs again, so `second` is not reached. Its
    # record must show that, not the skip of the run before.
    ws.write(INTERRUPTED_RESUME)
    result = ws.run("run")
    assert result.code == 1, result.out + result.err
    assert ws.steps()["second"]["status"] == "skipped"
    (ws.scratch / "fixed").touch()

    process = ws.launch("resume")
    assert wait_for(lambda: lines(ws.scratch / "first.events"))
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130, output

    steps = ws.steps()
    assert steps["first"]["status"] == "interrupted"
    assert steps["first"]["attempts"] == 2
    assert steps["second"]["status"] == "not_run"
    assert steps["second"]["reason"] == "not started: the run was interrupted"
    assert steps["second"]["blocked_by"] is None
    assert not (ws.scratch / "second.count").exists()


def test_resume_rejects_run_of_other_pipeline(ws):
    # Two pipelines share logs/. A run id of the other one must not be
    # resumed under this pipeline's lock, where its steps could run twice at
    # once, and --replan would rewrite it as a run of this pipeline.
    ws.write('[pipeline]\nname = "alpha"\n[steps.a]\ncommand = "echo a"\n', "alpha.toml")
    beta = ws.write('[pipeline]\nname = "beta"\n[steps.b]\ncommand = \'echo b >> "$T/b.runs"; false\'\n',
                    "beta.toml")
    assert ws.run("--pipeline", "beta.toml", "run").code == 1
    run_id = ws.record()["run_id"]
    before = ws.record()

    message = "seedrun: error: run %s belongs to pipeline 'beta', not to 'alpha' of %s; pass its file with " \
              "--pipeline %s" % (run_id, ws.path / "alpha.toml", beta)
    for command in (["resume", run_id], ["resume", "--replan", run_id], ["plan", "--resume", run_id],
                    ["report", run_id]):
        result = ws.run("--pipeline", "alpha.toml", *command)
        assert result.code == 2, (command, result.out, result.err)
        assert message in result.err.splitlines(), (command, result.err)
    for odd in (run_id + "/../" + run_id, "../" + run_id):
        result = ws.run("--pipeline", "alpha.toml", "resume", odd)
        assert result.code == 2, result.out + result.err
        assert "seedrun: error: run %r not found in " % odd in result.err
    assert ws.record() == before
    assert lines(ws.scratch / "b.runs") == ["b"]


@pytest.mark.parametrize("setting", ['retry_delay = "3s"', 'max_retry_delay = "9s"', 'kill_grace = "7s"'])
def test_plan_resume_notices_changed_setting(ws, setting):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    ws.write(FIXABLE_PIPELINE + "    " + setting + "\n")
    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert result.lines[-1] == ("pipeline.toml changed since the run started: b (%s changed); seedrun resume "
                                "keeps the old plan, seedrun resume --replan takes the new one" % setting.split()[0])


def test_reordered_exit_codes_are_unchanged(ws):
    pipeline = FIXABLE_PIPELINE + "    retry_on_exit_codes = [%s]\n"
    ws.write(pipeline % "1, 75")
    assert ws.run("run").code == 1
    ws.write(pipeline % "75, 1, 75")
    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert not any("changed" in line for line in result.lines), result.out


def test_replan_names_changed_workdir(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    (ws.path / "work").mkdir()
    ws.write(FIXABLE_PIPELINE.replace('jobs = 2', 'jobs = 2\n    workdir = "work"'))
    result = ws.run("plan", "--resume", "--replan")
    assert result.code == 0, result.err
    assert "  b                                runs again: failed (exit code 1)" in result.lines, result.out
    assert any("a (workdir changed)" in line and "b (workdir changed)" in line for line in result.lines), result.out


def test_plan_of_older_version_is_unchanged(ws):
    # seedrun versions before retry_delay, max_retry_delay and kill_grace
    # counted as settings wrote only the fingerprint of the other keys.
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    plan_path = ws.run_dir / "plan.json"
    document = json.loads(plan_path.read_text())
    for entry in document["steps"]:
        entry["fingerprint"] = entry.pop("fingerprint_v1")
        for key in ("retries", "retry_delay_s", "max_retry_delay_s", "retry_on_exit_codes"):
            del entry[key]
    plan_path.write_text(json.dumps(document))

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert not any("changed" in line for line in result.lines), result.out
    ws.write(FIXABLE_PIPELINE.replace('needs = ["a"]', 'needs = ["a"]\n    retries = 2'))
    result = ws.run("plan", "--resume")
    assert result.lines[-1] == ("pipeline.toml changed since the run started: b (settings changed); seedrun resume "
                                "keeps the old plan, seedrun resume --replan takes the new one")


def test_plan_resume_during_take_over(ws):
    # The step ignores SIGTERM, so a resume that takes the killed run over
    # waits for it, and meanwhile holds the lock without its run id.
    ws.write('''
        [pipeline]
        name = "taken-over"

        [steps.a]
        command = '[ -f "$T/resumed" ] && exit 0; trap "" TERM; echo started > "$T/started"; sleep 399'
        kill_grace = "5s"
    ''')
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "started").exists() and processes_with_args("sleep 399"), timeout=30)
    run_id = ws.run_dir.name
    kill_runner(process)
    (ws.scratch / "resumed").touch()
    resume = ws.launch("resume")
    assert wait_for(lambda: "taking_over" in (ws.path / "logs" / ".seedrun" / "taken-over.lock").read_text())

    result = ws.run("plan", "--resume")
    assert result.code == 0, result.err
    assert result.lines[-1] == ("Run %s ended without finishing, and seedrun (PID %d) is taking it over now, so "
                                "seedrun resume is refused until that ends" % (run_id, resume.pid))
    out, _ = resume.communicate(timeout=60)
    assert resume.returncode == 0, out
    assert ws.steps()["a"]["status"] == "succeeded"
    assert processes_with_args("sleep 399") == []


def run_in(directory, env, *args) -> Result:
    done = subprocess.run([SEEDRUN, *args], cwd=directory, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    return Result(done.returncode, done.stdout, done.stderr)


def test_resume_of_copied_workspace_needs_replan(ws, tmp_path_factory):
    # The plan names the original's absolute paths: a resume with it would
    # run the step in the original workspace and append to its log.
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    original = ws.run_dir
    original_log = (original / "b.log").read_bytes()
    copy = tmp_path_factory.mktemp("copy") / "workspace"
    subprocess.run(["cp", "-a", str(ws.path), str(copy)], check=True)
    (ws.scratch / "fixed").touch()

    for args in (("resume",), ("plan", "--resume")):
        result = run_in(copy, ws.env, *args)
        assert result.code == 2, result.out + result.err
        assert ("seedrun: error: run %s was planned with its logs_dir in %s, and the workspace has moved or been "
                "copied since; resume it with --replan to plan it again with %s\n" % (
                    original.name, ws.path / "logs", copy / "logs")) == result.err
    result = run_in(copy, ws.env, "resume", "--replan")
    assert result.code == 0, result.out + result.err
    assert (original / "b.log").read_bytes() == original_log
    assert (copy / "logs" / original.name / "b.log").read_bytes().startswith(original_log)
    assert ws.record(original)["status"] == "failed"
    assert ws.record(copy / "logs" / original.name)["status"] == "succeeded"


def test_resume_of_copied_run_directory_is_refused(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    original = ws.run_dir
    copy_id = original.name + "-copy"
    subprocess.run(["cp", "-a", str(original), str(original.parent / copy_id)], check=True)
    for args in (("resume", copy_id), ("resume", "--replan", copy_id), ("plan", "--resume", copy_id)):
        result = ws.run(*args)
        assert result.code == 2, (args, result.out, result.err)
        assert result.err == ("seedrun: error: logs/%s contains the plan of run %s: the run directory was copied or "
                              "renamed, so it cannot be resumed; start a new run with seedrun run\n"
                              % (copy_id, original.name)), result.err
    assert ws.record(original)["status"] == "failed"


# Each case: how plan.json is changed, and the problem the error names.
DAMAGED_PLANS = {
    "not-json": (lambda plan: '{"broken', "Unterminated string starting at: line 1 column 2 (char 1)"),
    "list": (lambda plan: [], "the plan is not an object: []"),
    "empty": (lambda plan: {}, "run_id is missing"),
    "needs-number": (lambda plan: dict(plan, steps=[dict(plan["steps"][0], needs=5)]), "steps[0].needs is not a list: 5"),
    "name-path": (lambda plan: dict(plan, steps=[dict(plan["steps"][0], name="../x")]),
                  'steps[0] names an invalid step: "../x"'),
    "after-path": (lambda plan: dict(plan, steps=[dict(plan["steps"][0], after=["a/b"])]),
                   'steps[0] names an invalid step: "a/b"'),
    "log-path": (lambda plan: dict(plan, steps=[dict(plan["steps"][0], log="../x.log")]),
                 'steps[0].log is not a.log: "../x.log"'),
    "phase-missing": (lambda plan: dict(plan, steps=[{k: v for k, v in plan["steps"][0].items() if k != "phase"}]),
                      "steps[0].phase is missing"),
    "barriers-missing": (lambda plan: {k: v for k, v in plan.items() if k != "barriers"}, "barriers is missing"),
    "selection-key": (lambda plan: dict(plan, selection_args={"bogus": 1}),
                      'selection_args has an unknown key: "bogus"'),
    "selection-names": (lambda plan: dict(plan, selection_args=dict(plan["selection_args"], names=5)),
                        "selection_args.names is not a list of names: 5"),
}


@pytest.mark.parametrize("case", DAMAGED_PLANS)
def test_resume_of_damaged_plan_is_an_error(ws, case):
    damage, problem = DAMAGED_PLANS[case]
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    path = ws.run_dir / "plan.json"
    changed = damage(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    for args in (("resume",), ("plan", "--resume")):
        result = ws.run(*args)
        assert result.code == 2, (args, result.out, result.err)
        assert result.err == ("seedrun: error: cannot read the plan of run %s (logs/%s/plan.json: %s), so it cannot "
                              "be resumed; start a new run with seedrun run\n" % (ws.run_dir.name, ws.run_dir.name,
                                                                                  problem))


def test_resume_hints_name_the_pipeline_file(ws):
    ws.write(FIXABLE_PIPELINE, "other.toml")
    result = ws.run("--pipeline", "other.toml", "resume")
    assert result.code == 2, result.out + result.err
    assert result.err == ("seedrun: error: no run of pipeline 'fixable' in logs yet; start one with: seedrun "
                          "--pipeline other.toml run\n")

    assert ws.run("--pipeline", "other.toml", "run").code == 1
    run_id = ws.run_dir.name
    ws.write(FIXABLE_PIPELINE.replace('name = "fixable"', 'name = "renamed"'), "other.toml")
    result = ws.run("--pipeline", "other.toml", "resume", run_id)
    assert result.code == 2, result.out + result.err
    assert result.err == ("seedrun: error: run %s belongs to pipeline 'fixable', which other.toml now names "
                          "'renamed'; name it 'fixable' again to resume the run, or start a new run\n" % run_id)


def test_resume_with_shared_logs_checks_workdir(ws, tmp_path_factory):
    # With an absolute logs_dir, only the working directory tells that the workspace was copied.
    logs = tmp_path_factory.mktemp("shared") / "logs"
    ws.write(FIXABLE_PIPELINE.replace('jobs = 2', 'jobs = 2\n    logs_dir = "%s"' % logs))
    assert ws.run("run").code == 1
    run_id = (logs / "latest").resolve().name
    copy = tmp_path_factory.mktemp("copy") / "workspace"
    subprocess.run(["cp", "-a", str(ws.path), str(copy)], check=True)
    result = run_in(copy, ws.env, "resume")
    assert result.code == 2, result.out + result.err
    assert result.err == ("seedrun: error: run %s was planned with its workdir in %s, and the workspace has moved "
                          "or been copied since; resume it with --replan to plan it again with %s\n"
                          % (run_id, ws.path, copy))


def test_resume_elsewhere_prints_paths_from_there(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    run_id = ws.run_dir.name
    elsewhere = ws.path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([SEEDRUN, "--pipeline", "../pipeline.toml", "resume"], cwd=elsewhere, env=ws.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    # Outside the working directory, seedrun prints absolute paths, as in the Resuming line.
    log = ws.path / "logs" / run_id / "b.log"
    assert "Failed: b, exit code 1 (see %s)" % log in done.stdout.splitlines(), done.stdout


def test_plan_resume_agrees_on_damaged_record(ws):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    run_id = ws.run_dir.name
    (ws.run_dir / ".seedrun" / "records" / "a").write_text('{"broken')
    plan = ws.run("plan", "--resume")
    assert plan.code == 0, plan.out + plan.err
    assert ("  a                                runs again: its record or .ok stamp in logs/%s/.seedrun is missing "
            "or damaged" % run_id) in plan.lines, plan.out
    (ws.scratch / "fixed").touch()
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Starting: a" in result.lines
    assert lines(ws.scratch / "runs") == ["a", "a", "b"]


@pytest.mark.parametrize("content", [[1, 2], {"status": "succeeded", "started_at": "yesterday"},
                                     {"status": "succeeded", "attempt_history": ["x"]},
                                     {"status": "succeeded", "started_at": float("nan")},
                                     {"status": "succeeded", "finished_at": 1e20},
                                     {"status": "succeeded", "pid": "12"}, {"status": "succeeded", "pid": True}])
def test_damaged_record_counts_as_missing(ws, content):
    ws.write(FIXABLE_PIPELINE)
    assert ws.run("run").code == 1
    path = ws.run_dir / ".seedrun" / "records" / "a"
    # The record is hard-linked to the step's stamps, so it is replaced, not written through.
    path.unlink()
    path.write_bytes(marshal.dumps(content))
    plan = ws.run("plan", "--resume")
    assert plan.code == 0, plan.out + plan.err
    assert any(line.startswith("  a ") and "missing or damaged" in line for line in plan.lines), plan.out
    (ws.scratch / "fixed").touch()
    result = ws.run("resume")
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.err
    assert "Starting: a" in result.lines
    assert ws.steps()["a"]["status"] == "succeeded"


@pytest.mark.parametrize("case", ["truncated", "list", "no-spec-of-b", "no-phase-members"])
def test_damaged_specs_need_replan(ws, case):
    # The second phase waits for the first, so the spec file has the member list of phase main.
    ws.write(FIXABLE_PIPELINE.replace('    needs = ["a"]\n', "") + '''
    [[phases]]
    name = "main"
    steps = ["a"]

    [[phases]]
    name = "later"
    steps = ["b"]
    ''')
    assert ws.run("run").code == 1
    path = ws.run_dir / ".seedrun" / "specs"
    specs = marshal.loads(path.read_bytes())
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif case == "list":
        path.write_bytes(marshal.dumps([1, 2]))
    elif case == "no-spec-of-b":
        del specs["b"]
        path.write_bytes(marshal.dumps(specs))
    else:
        del specs["phase.main"]
        path.write_bytes(marshal.dumps(specs))
    before = ws.record()
    plan = ws.run("plan", "--resume")
    assert plan.code == 0, plan.out + plan.err
    assert plan.lines[-1].startswith("The step specs of run %s are damaged (" % ws.run_dir.name), plan.out
    assert plan.lines[-1].endswith("), so a resume is refused; resume it with --replan to write them again")
    result = ws.run("resume")
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("seedrun: error: the step specs of run %s are damaged (" % ws.run_dir.name)
    assert result.err.endswith("); resume it with --replan to write them again\n"), result.err
    assert ws.record() == before
    (ws.scratch / "fixed").touch()
    result = ws.run("resume", "--replan")
    assert result.code == 0, result.out + result.err
    assert ws.steps()["b"]["status"] == "succeeded"


def test_succeeded_run_in_moved_workspace(ws, tmp_path_factory):
    ws.write(FIXABLE_PIPELINE)
    (ws.scratch / "fixed").touch()
    assert ws.run("run").code == 0
    run_id = ws.run_dir.name
    moved = tmp_path_factory.mktemp("moved") / "workspace"
    subprocess.run(["cp", "-a", str(ws.path), str(moved)], check=True)
    for command in (["resume"], ["plan", "--resume"]):
        done = subprocess.run([SEEDRUN, *command], cwd=moved, env=ws.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
        assert done.stdout.splitlines() == ["Run %s succeeded; nothing to resume" % run_id], command


def test_report_of_killed_run_not_running(ws):
    run_dir, pid = start_and_kill(ws, "6.2")
    try:
        result = ws.run("report")
        assert result.code == 0, result.out + result.err
        page = (ws.path / "reports" / ("%s.html" % run_dir.name)).read_text()
        title = page[page.index("<title>") + len("<title>"):page.index("</title>")]
        assert title.startswith("INTERRUPTED"), title
        assert "seedrun (PID %d) ended without finishing this run" % pid in page
        assert "not started: the run ended without finishing" in page
        # The report leaves the run for resume to settle.
        assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    finally:
        resumed = ws.run("resume")
    assert resumed.code == 0, resumed.out + resumed.err
    assert ws.record()["status"] == "succeeded"
