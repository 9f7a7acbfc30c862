"""make, invoke and python -m seedrun behave like the seedrun command, exit codes included."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import BIN, INVOKE, REPO, SEEDRUN, Workspace, parse_time, wait_for

FAILING = '''
    [pipeline]
    name = "c07"
    jobs = 4
    [steps.fetch]
    command = "printf 'got 10 rows\\\\n'; printf 'boom\\\\n' >&2; exit 3"
    [steps.load]
    command = 'echo ran > "$T/load.ran"'
    needs = ["fetch"]
    [steps.quadratec]
    command = 'echo quadratec >> "$T/order"'
    [steps.quad-inventory]
    command = 'echo quad-inventory >> "$T/order"'
    [steps.meyer]
    command = 'echo meyer >> "$T/order"'
    [[phases]]
    name = "vendors"
    steps = ["fetch", "load"]
    [pairs.quadratec]
    main = "quadratec"
    dependent = "quad-inventory"
'''


def make(ws: Workspace, *goals: str, piped: bool = False) -> tuple[int, str]:
    command = ["make", "-C", str(REPO), "--no-print-directory", *goals, "PIPELINE=%s" % (ws.path / "pipeline.toml")]
    if piped:
        shell = '{ %s; echo $? > "$T/rc"; } 2>&1 | cat' % " ".join("'%s'" % c for c in command)
        result = ws.call(["/bin/sh", "-c", shell])
        return int((ws.scratch / "rc").read_text()), result.out
    result = ws.call(command)
    return result.code, result.out + result.err


def invoke(ws: Workspace, *args: str) -> tuple[int, str]:
    result = ws.call([INVOKE, "--search-root", str(REPO), *args, "--pipeline", str(ws.path / "pipeline.toml")])
    return result.code, result.out + result.err


@pytest.mark.parametrize("goal", ["seed-all", "fetch"])
@pytest.mark.parametrize("piped", [False, True])
def test_make_exits_1_when_a_step_fails(ws, goal, piped):
    ws.write(FAILING)
    code, out = make(ws, goal, piped=piped)
    assert code == 1, out
    assert "Failed: fetch, exit code 3 (see " in out
    assert not (ws.scratch / "load.ran").exists()
    if goal == "seed-all":
        assert "Skipped: load (needs fetch, which failed)" in out


@pytest.mark.parametrize("args", [["all"], ["seed", "fetch"], ["phase", "vendors"]])
def test_invoke_exits_1_when_a_step_fails(ws, args):
    ws.write(FAILING)
    code, out = invoke(ws, *args)
    assert code == 1, out
    assert "Failed: fetch, exit code 3" in out


def test_python_module_entry_point(ws):
    ws.write(FAILING)
    result = ws.call([sys.executable, "-m", "seedrun", "run", "meyer"])
    assert result.code == 0, result.err
    assert (ws.scratch / "order").read_text() == "meyer\n"


def test_pipeline_option_after_command(ws):
    ws.write('[pipeline]\nname = "default"\n[steps.a]\ncommand = "true"\n')
    ws.write('[pipeline]\nname = "other"\n[steps.b]\ncommand = "echo b > \\"$T/b\\""\n', name="other.toml")
    plan = ws.run("plan", "--pipeline", "other.toml")
    assert plan.code == 0, plan.out + plan.err
    assert plan.lines[0].startswith("Plan of other ")
    # Given on both sides of the command, the later one counts, as with any repeated option.
    plan = ws.run("--pipeline", "pipeline.toml", "plan", "--pipeline", "other.toml")
    assert plan.lines[0].startswith("Plan of other ")
    plan = ws.run("--pipeline", "other.toml", "plan")
    assert plan.lines[0].startswith("Plan of other ")
    result = ws.run("run", "--pipeline", "other.toml", "b")
    assert result.code == 0, result.out + result.err
    assert (ws.scratch / "b").exists()


def test_console_script_output_reaches_file(ws):
    # The console script ends with os._exit, so it must flush what a file
    # or a pipe buffered, and keep the command's exit code.
    ws.write(FAILING)
    env = dict(ws.env)
    env.pop("PYTHONUNBUFFERED", None)
    plan_file = ws.path / "plan.txt"
    with open(plan_file, "w") as out:
        done = subprocess.run([SEEDRUN, "plan"], cwd=ws.path, env=env, stdout=out, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stderr
    text = plan_file.read_text()
    assert text.startswith("Plan of c07 (")
    assert "  2. load  [vendors]    needs fetch\n" in text
    run_file = ws.path / "run.txt"
    with open(run_file, "w") as out:
        done = subprocess.run([SEEDRUN, "run"], cwd=ws.path, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 1
    assert "Report: reports/" in run_file.read_text().splitlines()[-1]


def test_console_script_with_stdout_closed(ws):
    ws.write(FAILING)
    result = ws.call(["/bin/sh", "-c", 'exec "$0" run meyer >&-', SEEDRUN])
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert (ws.scratch / "order").read_text() == "meyer\n"
    # No console line may land in a file that seedrun opened on the free fd 1.
    for lock in (ws.path / "logs" / ".seedrun").iterdir():
        if lock.is_file():
            assert "Starting:" not in lock.read_text(errors="replace")


def test_console_script_with_stderr_closed(ws):
    # The launcher inherits seedrun's fds. Started with fd 2 closed, its
    # workers had no sys.stderr and failed every step's reply with exit 70.
    ws.write(FAILING.replace("exit 3", "exit 0"))
    result = ws.call(["/bin/sh", "-c", 'exec "$0" run --phase vendors 2>&-', SEEDRUN])
    assert result.code == 0, result.out
    assert (ws.scratch / "load.ran").read_text() == "ran\n"
    assert "Error 70" not in (ws.run_dir / "make.log").read_text()


def test_deleted_working_directory_is_an_error(ws):
    # A run used to create its run directory and then fail with a traceback.
    ws.write(FAILING)
    deleted = ws.path / "deleted"
    deleted.mkdir()
    script = 'cd "$1" && rmdir "$1" && exec "$0" --pipeline "$2" run meyer'
    result = ws.call(["/bin/sh", "-c", script, SEEDRUN, str(deleted), str(ws.path / "pipeline.toml")])
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert result.err == ("seedrun: error: the current directory (%s) no longer exists; cd to an existing "
                          "directory and run again\n" % deleted)
    assert not (ws.path / "logs").exists()


@pytest.mark.parametrize("goals", [("plan", "pair-quadratec"), ("graph", "meyer"), ("plan", "seed-all")])
def test_make_preview_with_selection_runs_nothing(ws, goals):
    ws.write(FAILING)
    code, out = make(ws, *goals)
    assert code == 0, out
    assert not (ws.scratch / "order").exists()
    assert not (ws.path / "logs").exists()
    if goals == ("plan", "pair-quadratec"):
        assert "  2. quad-inventory              needs quadratec\n" in out
    if goals[0] == "graph":
        assert '"meyer"' in out


@pytest.mark.parametrize("flag, goal, printed", [
    ("-n", "seed-all", " run "),
    ("--dry-run", "pair-quadratec", " run  'pair-quadratec'"),
    ("--just-print", "resume", " resume "),
])
def test_make_dry_run_runs_nothing(ws, flag, goal, printed):
    # make -n must print what a goal would run, as it does for any recipe,
    # and not start the pipeline.
    ws.write(FAILING)
    code, out = make(ws, flag, goal)
    assert code == 0, out
    assert printed in out
    assert "/.venv/bin/seedrun'" in out
    assert not (ws.scratch / "order").exists()
    assert not (ws.path / "logs").exists()


def test_make_dry_run_resume_arguments(ws):
    ws.write(FAILING)
    run_id = "it's $(shell touch %s)" % (ws.path / "INJECTED")
    code, out = make(ws, "-n", "resume", "REPLAN=1", "RUN_ID=" + run_id)
    assert code == 0, out
    assert out.endswith(" resume  --replan 'it'\\''s $(shell touch %s)'\n" % (ws.path / "INJECTED")), out
    # --resume takes an optional value, so the run id must come right after it.
    code, out = make(ws, "-n", "plan", "resume", "REPLAN=1", "RUN_ID=r1")
    assert code == 0, out
    assert " plan  --resume 'r1' --replan\n" in out
    assert not (ws.path / "INJECTED").exists()
    assert not (ws.path / "logs").exists()


def test_make_ignores_run_id_from_environment(ws):
    # RUN_ID and REPLAN count only on make's command line, not as variables exported by the shell.
    ws.write(FAILING)
    env = dict(ws.env, RUN_ID="12345", REPLAN="1")
    result = ws.call(["make", "-C", str(REPO), "--no-print-directory", "-n", "resume",
                      "PIPELINE=%s" % (ws.path / "pipeline.toml")], env=env)
    assert result.code == 0, result.out + result.err
    assert result.out.rstrip().endswith(" resume"), result.out
    assert "12345" not in result.out
    # Steps still get the variables from the environment, as under seedrun run.
    ws.write('[pipeline]\nname = "env"\n[steps.show]\ncommand = \'echo "$RUN_ID $REPLAN" > "$T/seen"\'\n')
    result = ws.call(["make", "-C", str(REPO), "--no-print-directory", "seed-all",
                      "PIPELINE=%s" % (ws.path / "pipeline.toml")], env=env)
    assert result.code == 0, result.out + result.err
    assert (ws.scratch / "seen").read_text() == "12345 1\n"


def test_make_report_of_named_run(ws):
    ws.write(FAILING)
    assert make(ws, "meyer")[0] == 0
    older = (ws.path / "logs" / "latest").resolve().name
    assert make(ws, "meyer")[0] == 0
    code, out = make(ws, "report", "RUN_ID=" + older)
    assert code == 0, out
    assert "Report: %s" % (ws.path / "reports" / ("%s.html" % older)) in out.splitlines(), out


def test_run_id_option_names_run(ws):
    # The invoke tasks take the run id as --run-id, so seedrun takes it too.
    ws.write(FAILING)
    assert ws.run("run").code == 1
    older = ws.run_dir.name
    assert ws.run("run").code == 1
    report = ws.run("report", "--run-id", older)
    assert report.code == 0, report.out + report.err
    assert "Report: reports/%s.html" % older in report.lines
    both = ws.run("resume", "--run-id", older, "other")
    assert both.code == 2, both.out + both.err
    assert "two run ids, other and --run-id %s: give one" % older in both.err
    resume = ws.run("resume", "--run-id", older)
    assert resume.code == 1, resume.out + resume.err
    assert len(ws.record(ws.path / "logs" / older)["resumed_at"]) == 1
    assert "Resuming %s" % older in resume.out


@pytest.mark.parametrize("value", ["yes", "0", "1 1"])
def test_make_resume_rejects_bad_replan(ws, value):
    ws.write(FAILING)
    code, out = make(ws, "resume", "REPLAN=" + value)
    assert code == 2, out
    assert "invalid REPLAN value '%s': use REPLAN=1" % value in out
    assert not (ws.path / "logs").exists()


def test_make_resume_replan_and_run_id(ws):
    pipeline = """
        [pipeline]
        name = "rs"
        [steps.fetch]
        command = 'echo "VERSION ${SEEDRUN_REPLAN_ARGUMENT:-unset}" >> "$T/fetch"; exit STATUS'
    """
    ws.write(pipeline.replace("VERSION", "v1").replace("STATUS", "3"))
    assert ws.run("run").code == 1
    older = ws.run_dir
    assert ws.run("run").code == 1
    newer = ws.run_dir
    assert older != newer
    ws.write(pipeline.replace("VERSION", "v2").replace("STATUS", "0"))

    # Without REPLAN, the resume keeps the run's own plan, and its hint names REPLAN=1.
    code, out = make(ws, "resume", "RUN_ID=" + older.name)
    assert code == 1, out
    assert "pipeline.toml changed since run %s started: fetch (command changed)" % older.name in out
    assert "Resuming with the plan the run started with; pass REPLAN=1 to use the changed file" in out
    assert (ws.scratch / "fetch").read_text().splitlines()[-1] == "v1 unset"

    code, out = make(ws, "resume", "RUN_ID=" + older.name, "REPLAN=1")
    assert code == 0, out
    assert "Resuming with the changed plan: fetch (command changed)" in out
    assert (ws.scratch / "fetch").read_text().splitlines()[-1] == "v2 unset"
    assert ws.record(older)["status"] == "succeeded"
    assert ws.record(newer)["status"] == "failed"

    # seedrun itself still names its own option.
    result = ws.run("resume")
    assert result.code == 1, result.out + result.err
    assert "Resuming with the plan the run started with; pass --replan to use the changed file" in result.lines


def test_make_names_pipeline_of_other_run(ws):
    # A make user cannot pass --pipeline, so the hint for a run of another
    # pipeline in the same logs directory names PIPELINE=FILE.
    ws.write('[pipeline]\nname = "alpha"\n[steps.a]\ncommand = "true"\n')
    beta = ws.write('[pipeline]\nname = "beta"\n[steps.b]\ncommand = "false"\n', "beta.toml")
    assert ws.run("--pipeline", "beta.toml", "run").code == 1
    run_id = ws.record()["run_id"]

    hint = "; pass its file with PIPELINE=%s" % beta
    for goals in (["resume"], ["report"], ["plan", "resume"]):
        code, out = make(ws, *goals, "RUN_ID=" + run_id)
        assert code == 2, (goals, out)
        assert hint in out, (goals, out)

    # seedrun itself still names its own option.
    result = ws.run("report", run_id)
    assert result.code == 2, result.out + result.err
    assert "; pass its file with --pipeline %s" % beta in result.err


def test_make_errors_name_make_variables(ws):
    # Under make every goal's hints name make's variables, also for errors
    # found while make reads the Makefile, before any recipe runs.
    missing = "pass PIPELINE=FILE"
    for goals in (["seed-all"], ["validate"], ["plan"], ["a"]):
        code, out = make(ws, *goals)
        assert code == 2, (goals, out)
        assert "pipeline file not found" in out, (goals, out)
        assert out.rstrip().count(missing) == 1, (goals, out)
        assert "--pipeline" not in out, (goals, out)
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    code, out = make(ws, "clean", "KEEP=0")
    assert code == 2, out
    assert "invalid KEEP value '0': keep at least 1 run" in out


def test_make_hints_name_no_seedrun_option(ws):
    # make takes JOBS=N, KEEP=N and goal names, not --jobs, --keep or --enable.
    enabled = '[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n'
    disabled = enabled + "enabled = false\n"
    cases = [(enabled, ["plan", "JOBS=x"], "such as JOBS=4", "--jobs"),
             (enabled, ["seed-all", "JOBS=0"], "such as JOBS=4", "--jobs"),
             (enabled, ["clean", "KEEP=abc"],
              "invalid KEEP value 'abc': use a whole number of runs to keep, such as KEEP=30", "--keep"),
             (disabled, ["seed-all"], "contains no enabled step; run one by its name, as make STEP or make phase-NAME",
              "--enable"),
             (disabled, ["plan"], "contains no enabled step; run one by its name", "--enable")]
    for pipeline, goals, hint, option in cases:
        ws.write(pipeline)
        code, out = make(ws, *goals)
        assert code == 2, (goals, out)
        assert hint in out, (goals, out)
        assert option not in out, (goals, out)
    # seedrun itself names its options.
    result = ws.run("plan")
    assert result.code == 2, result.err
    assert "contains no enabled step; enable one with --enable NAME" in result.err
    result = ws.run("clean", "--keep", "abc")
    assert result.code == 2, result.err
    assert "invalid --keep 'abc': use a whole number of runs to keep, such as --keep 30" in result.err


def test_make_hints_name_make_seed_all(ws):
    # seedrun is not on PATH in a new shell, so under make the hints that
    # tell the user to start a run name the make goal that starts one.
    ws.write(FAILING)
    start = "make seed-all PIPELINE=%s\n" % (ws.path / "pipeline.toml")
    for goals in (["resume"], ["report"], ["plan", "resume"]):
        code, out = make(ws, *goals)
        assert code == 2, (goals, out)
        assert "yet; start one with: " + start in out, (goals, out)
    result = ws.run("resume")
    assert result.code == 2, result.out + result.err
    assert "yet; start one with: seedrun run\n" in result.err

    # A run whose plan.json is damaged cannot be resumed.
    assert make(ws, "seed-all")[0] == 1
    (ws.run_dir / "plan.json").write_text("{")
    for goals in (["resume"], ["plan", "resume"]):
        code, out = make(ws, *goals)
        assert code == 2, (goals, out)
        assert "so it cannot be resumed; start a new run with " + start in out, (goals, out)


def test_make_keeps_its_variables_from_steps(ws):
    ws.write('''
        [pipeline]
        name = "env"

        [steps.show]
        command = 'echo "locked=${SEEDRUN_LOCKED_EXIT_CODE:-unset} level=${MAKELEVEL:-unset}" > "$T/env"'
    ''')
    code, out = make(ws, "show")
    assert code == 0, out
    assert (ws.scratch / "env").read_text() == "locked=unset level=unset\n"


def test_make_pair_runs_main_then_dependent(ws):
    ws.write(FAILING)
    code, out = make(ws, "pair-quadratec")
    assert code == 0, out
    assert (ws.scratch / "order").read_text() == "quadratec\nquad-inventory\n"
    steps = ws.steps()
    assert parse_time(steps["quad-inventory"]["started_at"]) >= parse_time(steps["quadratec"]["finished_at"])


def test_invoke_pair_and_make_phase(ws):
    ws.write(FAILING.replace("exit 3", "exit 0"))
    code, out = invoke(ws, "pair", "quadratec")
    assert code == 0, out
    code, out = make(ws, "phase-vendors")
    assert code == 0, out
    assert ws.steps().keys() == {"fetch", "load"}


def test_make_two_goals_start_one_run(ws):
    ws.write('''
        [pipeline]
        name = "c13"
        [steps.fetch]
        command = 'echo "run $$" >> "$T/fetch.count"; sleep 0.5'
        [steps.parse-a]
        command = 'echo pa'
        needs = ["fetch"]
    ''')
    code, out = make(ws, "fetch", "parse-a")
    assert code == 0, out
    assert len((ws.scratch / "fetch.count").read_text().splitlines()) == 1
    assert out.count("Run ") == 2  # the start line and the summary line of one run
    assert ws.steps().keys() == {"fetch", "parse-a"}


@pytest.mark.parametrize("goals", [("fetch", "fetch"), ("fetch", "parse-a", "fetch")])
def test_make_repeated_goal_runs_once(ws, goals):
    ws.write('''
        [pipeline]
        name = "c13"
        [steps.fetch]
        command = 'echo "run $$" >> "$T/fetch.count"'
        [steps.parse-a]
        command = 'echo pa'
        needs = ["fetch"]
    ''')
    code, out = make(ws, *goals)
    assert code == 0, out
    assert (ws.scratch / "fetch.count").exists(), out
    assert len((ws.scratch / "fetch.count").read_text().splitlines()) == 1
    assert "Circular" not in out
    assert ws.steps().keys() == set(goals)


def test_unknown_name_exits_2_everywhere(ws):
    ws.write('''
        [pipeline]
        name = "c10"
        [steps.fetch-vendor]
        command = 'echo ran > "$T/fetch.ran"'
    ''')
    for code, out in (make(ws, "fetch-vendr"), invoke(ws, "seed", "fetch-vendr"),
                      (lambda r: (r.code, r.err))(ws.run("run", "fetch-vendr"))):
        assert code == 2, out
        assert "fetch-vendr" in out
        assert "did you mean 'fetch-vendor'?" in out
        assert str(ws.path / "pipeline.toml") in out
    assert not (ws.scratch / "fetch.ran").exists()


def test_make_invalid_pipeline_exits_2(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\nneeds = ["b"]\n')
    code, out = make(ws, "seed-all")
    assert code == 2
    assert "needs unknown step 'b'" in out


@pytest.mark.parametrize("jobs", ["0", "abc"])
def test_make_bad_jobs_exits_2(ws, jobs):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'echo > "$T/a"\'\n')
    code, out = make(ws, "seed-all", "JOBS=%s" % jobs)
    assert code == 2
    assert "invalid jobs value %r" % jobs in out
    assert not (ws.scratch / "a").exists()


@pytest.mark.parametrize("options, limit", [(["-j3"], 3), (["--jobs=2"], 2), (["-j3", "JOBS=1"], 1), (["-j"], 4)])
def test_make_jobs_option_sets_steps_at_once(ws, options, limit):
    # The pipeline's jobs (4 by default) holds when make has no limit (a bare -j).
    ws.write("[pipeline]\nname = \"x\"\n" + "".join(
        "[steps.s%d]\ncommand = \'echo $(date +%%s.%%N) >> \"$T/starts\"; sleep 1\'\n" % n for n in range(5)))
    code, out = make(ws, *options, "seed-all")
    assert code == 0, out
    assert "up to %d at once" % limit in out
    starts = sorted(float(line) for line in (ws.scratch / "starts").read_text().split())
    assert len(starts) == 5
    # Each step sleeps 1 s, so steps that started within 0.5 s of each other ran at once.
    assert max(sum(1 for other in starts if 0 <= other - start < 0.5) for start in starts) <= limit


@pytest.mark.parametrize("options, exported, limit", [
    (["-j3"], None, 3), (["-j3", "JOBS=1"], None, 1), (["-j"], None, 4),
    (["-j3"], "5", 3), ([], "5", 5), (["-j"], "5", 5),
])
def test_make_plan_shows_make_jobs_limit(ws, options, exported, limit):
    # make plan prints what make seed-all with the same options would run.
    # A JOBS exported by the shell gives way to make's -jN.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    if exported is not None:
        ws.env["JOBS"] = exported
    code, out = make(ws, *options, "plan")
    assert code == 0, out
    assert "1 step, up to %d at once" % limit in out.splitlines()[0], out


def test_make_pipeline_path_with_quote(ws):
    folder = ws.path / "vendor's sync, $HOME daily"
    folder.mkdir()
    pipeline = ws.write('[pipeline]\nname = "quoted"\n[steps.a]\ncommand = \'echo ran > "$T/a"\'\n',
                        name="vendor's sync, $HOME daily/pipeline.toml")
    base = ["make", "-C", str(REPO), "--no-print-directory", "PIPELINE=%s" % pipeline]
    plan = ws.call([*base, "plan"])
    assert plan.code == 0, plan.out + plan.err
    assert "a" in plan.out.split()
    run = ws.call([*base, "seed-all", "JOBS=1"])
    assert run.code == 0, run.out + run.err
    assert (ws.scratch / "a").read_text() == "ran\n"
    assert (folder / "logs" / "latest" / "a.log").exists()
    # A goal name reaches seedrun as one word, never as shell syntax.
    # make runs in the repository, so the commands name the workspace.
    touch = "touch %s" % (ws.path / "INJECTED")
    shell = ws.call(["make", "-C", str(REPO), "--no-print-directory", "plan",
                     "PIPELINE=%s/$(shell %s)/p.toml" % (folder, touch), "KEEP=$(shell %s)" % touch])
    assert shell.code == 2, shell.out + shell.err
    assert "$(shell %s)/p.toml: pipeline file not found" % touch in shell.err
    odd = ws.call([*base, "plan", "o'ne", "x$(%s)" % touch])
    assert odd.code == 2, odd.out + odd.err
    assert "o'ne" in odd.err
    assert "Syntax error" not in odd.err
    assert not (ws.path / "INJECTED").exists()


def test_outer_parallel_make_keeps_inner_pool(ws):
    steps = "\n".join('[steps.s%d]\ncommand = "sleep 1"\n' % i for i in range(4))
    ws.write('[pipeline]\nname = "x"\njobs = 4\n' + steps)
    outer = ws.path / "Outer.mk"
    outer.write_text("all:\n\t+$(MAKE) -C %s --no-print-directory seed-all PIPELINE=%s\n"
                     % (REPO, ws.path / "pipeline.toml"))
    result = ws.call(["make", "-j8", "-f", str(outer)])
    assert result.code == 0, result.out + result.err
    assert "warning" not in (result.out + result.err).lower()
    starts = sorted(parse_time(s["started_at"]) for s in ws.steps().values())
    ends = sorted(parse_time(s["finished_at"]) for s in ws.steps().values())
    assert starts[-1] < ends[0], "the four steps did not run at once"


def test_make_help_lists_entry_points():
    result = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "help"], capture_output=True, text=True)
    assert result.returncode == 0
    for entry in ("make seed-all", "make pair-NAME", "make phase-NAME", "make STEP", "make plan", "make graph",
                  "make validate", "make report", "make clean", "JOBS=N", "PIPELINE=FILE", "make resume RUN_ID=ID",
                  "make resume REPLAN=1"):
        assert entry in result.stdout


def test_invoke_all_takes_with_needs(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.fetch]
        command = 'echo fetch >> "$T/order"'
        [steps.load]
        command = 'echo load >> "$T/order"'
        needs = ["fetch"]
        [[phases]]
        name = "main"
        steps = ["load"]
    ''')
    # fetch is in no phase, so only --with-needs runs it, as with seedrun run --with-needs.
    code, out = invoke(ws, "all", "--with-needs")
    assert code == 0, out
    assert (ws.scratch / "order").read_text() == "fetch\nload\n"


def test_invoke_list_shows_every_task():
    result = subprocess.run([INVOKE, "--search-root", str(REPO), "--list"], capture_output=True, text=True)
    assert result.returncode == 0
    for task in ("all", "phase", "pair", "seed", "target", "plan", "graph", "validate", "resume", "report", "clean"):
        assert "\n  %s " % task in result.stdout


def test_readme_invoke_list_in_new_shell(tmp_path):
    # A new shell has no .venv/bin on PATH, so the README's set-up paragraph
    # must cover invoke as well as seedrun.
    readme = (REPO / "README.md").read_text()
    setup = next(paragraph for paragraph in readme.split("\n\n") if "`. .venv/bin/activate`" in paragraph)
    assert "`invoke`" in setup
    assert "`.venv/bin/invoke --list`" in setup

    # Both ways it gives work in a shell whose PATH lacks the virtualenv.
    # The tests may run in another virtualenv than .venv, so BIN replaces .venv/bin.
    path = os.pathsep.join(entry for entry in os.environ["PATH"].split(os.pathsep)
                           if entry and os.path.realpath(entry) != os.path.realpath(BIN))
    env = {"PATH": path, "HOME": str(tmp_path)}
    for command in ('. "$0/activate" && invoke --list', '"$0/invoke" --list'):
        done = subprocess.run(["/bin/sh", "-c", command, str(BIN)], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
        assert "\n  resume " in done.stdout, command


@pytest.mark.parametrize("tool", ["make", "invoke"])
def test_validate_and_graph_everywhere(ws, tool):
    ws.write(FAILING)
    code, out = (make if tool == "make" else invoke)(ws, "validate")
    assert code == 0, out
    assert "pipeline.toml is valid: 5 steps, 1 phase" in out
    code, out = (make if tool == "make" else invoke)(ws, "graph")
    assert code == 0, out
    assert '"fetch" -> "load"' in out
    assert not (ws.path / "logs").exists()

    ws.write(FAILING + '    [steps.orphan]\n    command = "true"\n    needs = ["nowhere"]\n')
    code, out = (make if tool == "make" else invoke)(ws, "validate")
    assert code == 2, out
    assert "needs unknown step 'nowhere'" in out


def test_make_locked_run_exits_1(ws):
    ws.write('[pipeline]\nname = "lk"\n[steps.a]\ncommand = "sleep 3"\n')
    first = ws.launch("run")
    try:
        assert wait_for(lambda: (ws.path / "logs" / "latest").exists())
        code, out = make(ws, "seed-all")
        assert code == 1, out
        assert "another run of pipeline 'lk' holds the lock" in out
        assert ws.run("run").code == 75
    finally:
        first.wait(timeout=30)


def test_make_unknown_pair_lists_pairs(ws):
    ws.write(FAILING)
    code, out = make(ws, "pair-nope")
    assert code == 2
    assert "unknown pair 'nope'" in out
    assert "valid pairs: quadratec" in out


def test_invoke_plan_takes_jobs(ws):
    ws.write('[pipeline]\nname = "x"\njobs = 4\n[steps.a]\ncommand = "true"\n')
    code, out = invoke(ws, "plan", "--jobs", "9")
    assert code == 0, out
    assert ": 1 step, up to 9 at once" in out
    code, out = invoke(ws, "plan", "--jobs", "0")
    assert code == 2, out
    assert "invalid jobs value '0'" in out


def test_invoke_clean_rejects_bad_keep(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    code, out = invoke(ws, "clean", "--keep", "abc")
    assert code == 2, out
    assert "invalid --keep 'abc': use a whole number of runs" in out
    assert "Traceback" not in out
    code, out = invoke(ws, "clean")
    assert code == 0, out


def test_invoke_clean_names_deleted_run(ws):
    ws.write('[pipeline]\nname = "cl"\n[steps.a]\ncommand = "true"\n')
    assert ws.run("run").code == 0
    older = ws.run_dir
    assert ws.run("run").code == 0

    code, out = invoke(ws, "clean", "--keep", "1")

    assert code == 0, out
    assert "Deleted 1 old run: %s\n" % older.name in out
    assert not older.exists()


def test_make_clean_keep_default_and_value(ws):
    # Without KEEP, seedrun clean gets no --keep and keeps the pipeline's keep_runs.
    ws.write('[pipeline]\nname = "cl"\n[steps.a]\ncommand = "true"\n')
    code, out = make(ws, "-n", "clean")
    assert code == 0, out
    assert out.endswith(" clean\n"), out
    assert ws.run("run").code == 0
    older = ws.run_dir
    assert ws.run("run").code == 0
    newer = ws.run_dir
    assert older != newer

    code, out = make(ws, "clean")
    assert code == 0, out
    assert "Deleted 0 old runs" in out
    code, out = make(ws, "clean", "KEEP=1")
    assert code == 0, out
    assert "Deleted 1 old run: %s" % older.name in out
    assert not older.exists()
    assert newer.exists()

    # KEEP reaches seedrun as one word, never as make or shell syntax.
    keep = "1'$(shell touch %s)" % (ws.path / "INJECTED")
    code, out = make(ws, "clean", "KEEP=" + keep)
    assert code == 2, out
    assert "invalid KEEP value %r: use a whole number of runs to keep" % keep in out
    assert not (ws.path / "INJECTED").exists()


def test_make_ignores_exported_keep(ws):
    # KEEP is a common name for other tools' variables. An exported one must
    # not decide how many runs make clean deletes, and it reaches the steps.
    ws.write('[pipeline]\nname = "cl"\n[steps.a]\ncommand = \'echo "${KEEP-unset}" >> "$T/keep"\'\n')
    command = ["make", "-C", str(REPO), "--no-print-directory", "PIPELINE=%s" % (ws.path / "pipeline.toml")]
    env = dict(ws.env, KEEP="1")
    for _ in range(2):
        result = ws.call(command + ["seed-all"], env=env)
        assert result.code == 0, result.out + result.err
    assert (ws.scratch / "keep").read_text().splitlines() == ["1", "1"]
    older = ws.path / "logs" / ws.record()["run_id"]

    result = ws.call(command + ["clean"], env=env)
    assert result.code == 0, result.out + result.err
    assert "Deleted 0 old runs" in result.out
    runs = [path for path in (ws.path / "logs").iterdir() if path.is_dir() and not path.is_symlink()
            and not path.name.startswith(".")]
    assert len(runs) == 2, runs
    assert older.exists()


def test_closed_output_pipe_exits_zero(ws):
    # seedrun plan | head: the reader closes the pipe before seedrun has
    # written everything, and make graph | head must not report an error.
    # The same holds for invoke plan and invoke graph.
    steps = "".join('[steps.s%03d]\ncommand = "true"\n' % number for number in range(300))
    ws.write('[pipeline]\nname = "wide"\n' + steps)
    pipeline = str(ws.path / "pipeline.toml")
    commands = [[SEEDRUN, "plan"], [SEEDRUN, "graph"], [INVOKE, "--search-root", str(REPO), "plan", "--pipeline",
                pipeline], [INVOKE, "--search-root", str(REPO), "graph", "--pipeline", pipeline]]
    for command in commands:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(command, cwd=ws.path, env=ws.env, stdout=write_end,
                                  stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(write_end)
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("tool", ["seedrun", "make", "invoke"])
def test_report_prints_path_as_run_does(ws, tool):
    ws.write(FAILING)
    commands = {"seedrun": (["run", "meyer"], ["report"]), "make": (["meyer"], ["report"]),
                "invoke": (["seed", "meyer"], ["report"])}
    outputs = []
    for args in commands[tool]:
        if tool == "seedrun":
            result = ws.run(*args)
            code, out = result.code, result.out + result.err
        else:
            code, out = (make if tool == "make" else invoke)(ws, *args)
        assert code == 0, out
        outputs.append([line for line in out.splitlines() if line.startswith("Report: ")])
    run_id = (ws.path / "logs" / "latest").resolve().name
    assert outputs[0] == outputs[1]
    # make runs seedrun in the repository, outside ws.path, so it prints the absolute path there.
    expected = "reports/%s.html" % run_id if tool != "make" else str(ws.path / "reports" / ("%s.html" % run_id))
    assert outputs[1] == ["Report: " + expected]


def test_error_into_closed_pipe_keeps_exit_code(ws):
    # 3,000 problems make an error longer than a pipe's 64 KiB buffer, so
    # seedrun is still writing it when head exits after the first line.
    steps = "".join('[steps.s%d]\ncommand = 5\n' % number for number in range(3000))
    ws.write('[pipeline]\nname = "x"\n' + steps)
    done = ws.call(["/bin/bash", "-c", '"$0" validate 2>&1 | head -1 > /dev/null; echo "${PIPESTATUS[0]}"', SEEDRUN])
    assert done.out.strip() == "2", done.out + done.err


@pytest.mark.parametrize("task", ["plan", "graph"])
def test_invoke_preview_takes_enable(ws, task):
    ws.write(FAILING + '''
    [steps.manual]
    command = "true"
    enabled = false
    ''')
    code, out = invoke(ws, task)
    assert code == 0, out
    assert "manual" not in out
    code, out = invoke(ws, task, "--enable", "manual")
    assert code == 0, out
    assert "manual" in out


def test_make_resume_names_failed_run_for_make(ws):
    ws.write(FAILING)
    code, out = make(ws, "seed-all")
    assert code == 1, out
    failed = (ws.path / "logs" / "latest").resolve().name
    code, out = make(ws, "meyer")
    assert code == 0, out
    code, out = make(ws, "resume")
    assert code == 0, out
    assert ("The newest run that did not succeed is %s (failed); resume it with: make resume RUN_ID=%s PIPELINE=%s"
            % (failed, failed, ws.path / "pipeline.toml")) in out.splitlines(), out


def test_make_plan_resume_hint_speaks_make(ws):
    # The hint is a command to copy, so it names the pipeline file too: without
    # it, make resume would look for the run beside pipeline.toml.
    ws.write(FAILING)
    assert make(ws, "seed-all")[0] == 1
    ws.write(FAILING.replace("exit 3", "exit 4"))
    code, out = make(ws, "plan", "resume")
    assert code == 0, out
    run_id = (ws.path / "logs" / "latest").resolve().name
    resume = "make resume RUN_ID=%s PIPELINE=%s" % (run_id, ws.path / "pipeline.toml")
    assert ("pipeline.toml changed since the run started: fetch (command changed); %s keeps the old plan, %s REPLAN=1 "
            "takes the new one" % (resume, resume)) in out.splitlines(), out
    code, out = make(ws, "plan", "resume", "REPLAN=1")
    assert code == 0, out
    assert out.startswith("Resume with REPLAN=1 of run "), out


@pytest.mark.parametrize("goals", [("seed-all", "fetch"), ("resume", "fetch"), ("seed-all", "resume")])
def test_make_second_run_goal_rejected(ws, goals):
    ws.write('''
        [pipeline]
        name = "two-runs"
        [steps.fetch]
        command = 'echo "run $$" >> "$T/fetch.count"'
    ''')
    code, out = make(ws, *goals)
    assert code == 2, out
    assert "make %s" % goals[0] in out
    assert "one at a time" in out or "on its own" in out
    assert not (ws.scratch / "fetch.count").exists()


def test_clean_keep_not_a_number(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    result = ws.run("clean", "--keep", "abc")
    assert result.code == 2
    assert "invalid --keep 'abc'" in result.err
    assert "such as --keep 30" in result.err
