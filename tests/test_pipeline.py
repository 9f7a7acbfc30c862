"""Validation of the pipeline file: every problem at once, exit 2, nothing run."""

from __future__ import annotations

import os
import subprocess

import pytest

from support import REPO, SEEDRUN, Workspace

from seedrun.pipeline import MAKEFILE_GOALS


def assert_invalid(ws: Workspace, *fragments: str, args: tuple[str, ...] = ("run",)) -> str:
    result = ws.run(*args)
    assert result.code == 2, result.out + result.err
    for fragment in fragments:
        assert fragment in result.err, "%r not in:\n%s" % (fragment, result.err)
    assert not (ws.path / "logs").exists() or not any(
        p.name[0].isdigit() for p in (ws.path / "logs").iterdir())
    assert not any(ws.scratch.iterdir()), "a step ran"
    return result.err


def test_toml_syntax_error_has_line_and_column(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "echo" extra\n')
    assert_invalid(ws, "invalid TOML", "line 4", "column")


def test_unknown_keys_suggest_the_closest(ws):
    ws.write('''
        [pipeline]
        name = "x"
        jbos = 3
        [steps.a]
        comand = "echo a"
        timout = "1m"
    ''')
    err = assert_invalid(ws, "unknown key 'jbos' (did you mean 'jobs'?)",
                         "unknown key 'comand' (did you mean 'command'?)",
                         "unknown key 'timout' (did you mean 'timeout'?)")
    assert "missing or empty command" in err


def test_unknown_step_and_pool_named_together(ws):
    ws.write('''
        [pipeline]
        name = "c10"
        [steps.fetch-vendor]
        command = 'echo ran > "$T/fetch.ran"'
        [steps.transform]
        command = 'echo ran > "$T/transform.ran"'
        needs = ["fetch-vendr"]
        pool = "vendor_api"
    ''')
    err = assert_invalid(ws, "needs unknown step 'fetch-vendr' (did you mean 'fetch-vendor'?)",
                         "uses unknown pool 'vendor_api'")
    assert "2 problems" in err


def test_shared_unknown_need_validates_fast(ws):
    """Renaming a step that hundreds of others need makes one problem per step, each with its suggestion.

    Finding the closest name compares it with every step, so doing that
    again for each reference to the same name took 88 s for 2,000 steps.
    """
    import time

    steps = "".join('[steps.seed-vendor-%04d-products]\ncommand = "true"\nneeds = ["seed-all-products-export"]\n' % i
                    for i in range(600))
    ws.write('[pipeline]\nname = "many"\n[steps.seed-all-products-export-v2]\ncommand = "true"\n' + steps)
    started = time.monotonic()
    err = assert_invalid(ws, args=("validate",))
    elapsed = time.monotonic() - started
    assert err.count("needs unknown step 'seed-all-products-export' (did you mean "
                     "'seed-all-products-export-v2'?)") == 600
    assert elapsed < 3.0, "validate took %.1fs" % elapsed


def test_many_unknown_needs_validate_fast(ws):
    """A file whose needs all name steps that do not exist validates in bounded time.

    Each suggestion compares a name with every step, so suggesting one for
    each of 3,000 different unknown names took 92 s. The first names get one.
    """
    import time

    steps = "".join('[steps.step-%05d]\ncommand = "true"\nneeds = ["step-%05dx"]\n' % (i, (i + 1) % 1000)
                    for i in range(1000))
    ws.write('[pipeline]\nname = "renamed"\n' + steps)
    started = time.monotonic()
    err = assert_invalid(ws, "[steps.step-00000]: needs unknown step 'step-00001x' (did you mean 'step-00001'?)",
                         args=("validate",))
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, "validate took %.1fs" % elapsed
    assert err.count("needs unknown step") == 1000
    assert "[steps.step-00998]: needs unknown step 'step-00999x'\n" in err


def test_cycles_spelled_out(ws):
    ws.write('''
        [pipeline]
        name = "c11"
        [steps.a]
        command = 'echo a >> "$T/order"'
        needs = ["b"]
        [steps.b]
        command = 'echo b >> "$T/order"'
        needs = ["a"]
        [steps.self]
        command = 'echo self >> "$T/order"'
        after = ["self"]
        [steps.c]
        command = 'echo c >> "$T/order"'
        [steps.early]
        command = 'echo early >> "$T/order"'
        needs = ["late"]
        [steps.late]
        command = 'echo late >> "$T/order"'
        [[phases]]
        name = "one"
        steps = ["early"]
        [[phases]]
        name = "two"
        steps = ["late"]
    ''')
    for args in (("run",), ("plan",), ("run", "c")):
        assert_invalid(ws, "cycle: a -> b -> a", "cycle: self -> self",
                             "cycle: early -> late -> early (phase two waits for phase one)", args=args)
    assert not (ws.scratch / "order").exists()


def test_invalid_names_durations_and_jobs(ws):
    ws.write('''
        [pipeline]
        name = "x"
        jobs = 0
        [steps."has space"]
        command = "true"
        [steps."a/b"]
        command = "true"
        [steps."-dash"]
        command = "true"
        [steps.".dot"]
        command = "true"
        [steps."cost$"]
        command = "true"
        [steps.ok]
        command = "  "
        timeout = "10 minutes"
        retry_delay = 30
    ''')
    err = assert_invalid(ws, "invalid jobs 0", "invalid duration timeout = '10 minutes'",
                         "invalid duration retry_delay = 30", "missing or empty command")
    for name in ("has space", "a/b", "-dash", ".dot", "cost$"):
        assert "invalid step name %r" % name in err


def test_step_name_length_limit(ws):
    longest, too_long = "a" * 200, "b" * 201
    ws.write('''
        [pipeline]
        name = "x"
        [steps.%s]
        command = "true"
        [steps.%s]
        command = "true"
    ''' % (longest, too_long))
    err = assert_invalid(ws, "invalid step name %r: use at most 200 letters, digits" % too_long)
    assert repr(longest) not in err


def test_step_name_with_phase_prefix_rejected(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps."phase.g"]
        command = "true"
        [steps.a]
        command = "true"
        [[phases]]
        name = "g"
        steps = ["a"]
    ''')
    assert_invalid(ws, "invalid step name 'phase.g': names starting with 'phase.' are reserved for the stamps "
                       "of phase barriers; rename the step")


def test_step_names_of_make_goals_rejected(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.help]
        command = "true"
        [steps.make]
        command = "true"
        [steps.notify]
        command = "true"
        [steps.helper]
        command = "true"
    ''')
    err = assert_invalid(ws, "invalid step name 'help': it is a goal of seedrun's Makefile, so `make help` would "
                             "not run the step; rename the step")
    assert ("invalid step name 'make': its log would be make.log, which holds the output of make itself; rename "
            "the step") in err
    assert ("invalid step name 'notify': its log would be notify.log, which holds the output of the [notify] "
            "command; rename the step") in err
    assert "'helper'" not in err


def test_long_pipeline_name_error_names_limit(ws):
    name = "p" * 201
    ws.write('[pipeline]\nname = "%s"\n[steps.a]\ncommand = "true"\n' % name)
    assert_invalid(ws, "invalid name %r: use at most 200 letters, digits" % name)


def test_name_from_file_name_says_so(ws):
    ws.write('[steps.a]\ncommand = "true"\n', name="über sync.toml")
    assert_invalid(ws, "invalid name 'über sync' (taken from the file name, since [pipeline] sets no name): use at "
                       "most 200 letters", args=("--pipeline", "über sync.toml", "validate"))


def test_step_named_like_phase_goal_rejected(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.phase-x]
        command = "true"
        [steps.s1]
        command = "true"
        [steps.pair-other]
        command = "true"
        [[phases]]
        name = "x"
        steps = ["s1"]
    ''')
    err = assert_invalid(ws, "step 'phase-x' has the name that runs phase 'x' (make phase-x); rename the step",
                         args=("validate",))
    assert "pair-other" not in err


def test_reserved_goal_names_match_makefile():
    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if line.startswith("COMMANDS :="))
    assert set(line.split(":=", 1)[1].split()) == MAKEFILE_GOALS


def test_duplicate_names_across_phases_pairs_targets(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = "true"
        [steps.b]
        command = "true"
        [[phases]]
        name = "dup"
        steps = ["a", "a"]
        [[phases]]
        name = "again"
        steps = ["a", "b"]
        [pairs.dup]
        main = "a"
        dependent = "b"
        [targets]
        a = ["a"]
    ''')
    err = assert_invalid(ws, "duplicate step 'a' in phase dup", "step 'a' is already in phase 'dup'",
                         "'dup' is used by a phase and a pair", "target 'a' has the name of a step", args=("plan",))
    # a in both phases is one problem, not also a cycle of a through phase again's wait for phase dup.
    assert "cycle" not in err


def test_npm_script_missing_from_package_json(ws):
    (ws.path / "package.json").write_text('{"scripts": {"seed-meyer": "node meyer.js"}}')
    ws.write('''
        [pipeline]
        name = "x"
        [steps.meyer]
        command = "npm run seed-meyr"
        [steps.ok]
        command = "npm run seed-meyer"
    ''')
    err = assert_invalid(ws, "npm script 'seed-meyr' not found", "(did you mean 'seed-meyer'?)")
    assert "[steps.ok]" not in err


@pytest.mark.parametrize("scripts", ["null", "5", '"seed-meyer-all"', '["seed-meyer"]'])
def test_npm_scripts_that_are_no_object(ws, scripts):
    (ws.path / "package.json").write_text('{"scripts": %s}' % scripts)
    ws.write('''
        [pipeline]
        name = "x"
        [steps.meyer]
        command = "npm run seed-meyer"
    ''')
    err = assert_invalid(ws, "[steps.meyer]: cannot read the scripts of %s: \"scripts\" must be an object"
                         % (ws.path / "package.json"))
    assert "Traceback" not in err


def test_missing_pipeline_file_names_closest(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n', "pipeline.toml")
    (ws.path / "sub").mkdir()
    ws.write('[pipeline]\nname = "y"\n[steps.a]\ncommand = "true"\n', "sub/dag.toml")
    for given, meant in (("pipline.toml", "pipeline.toml"), ("sub/dga.toml", "sub/dag.toml")):
        result = ws.run("--pipeline", given, "plan")
        assert result.code == 2, result.out + result.err
        assert "pipeline file not found (%s) (did you mean '%s'?)" % (ws.path / given, meant) in result.err
    result = ws.run("--pipeline", "other.toml", "plan")
    assert result.code == 2, result.out + result.err
    assert "did you mean" not in result.err


def test_missing_and_unreadable_pipeline_file(ws):
    result = ws.run("--pipeline", "nope.toml", "run")
    assert result.code == 2
    assert "nope.toml: pipeline file not found (%s)" % (ws.path / "nope.toml") in result.err
    folder = ws.path / "folder.toml"
    folder.mkdir()
    result = ws.run("--pipeline", str(folder), "run")
    assert result.code == 2
    assert "cannot read the pipeline file" in result.err


def test_pipeline_file_with_byte_order_mark(ws):
    path = ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert_invalid(ws, "pipeline.toml: the file starts with a UTF-8 byte order mark, which TOML does not allow; "
                       "save it as UTF-8 without one")


def test_pipeline_in_non_utf8_directory(ws):
    # It used to create the run's directory and fail writing make's rules.
    folder = os.fsencode(ws.path) + b"/vendor\xff"
    os.mkdir(folder)
    with open(folder + b"/pipeline.toml", "w") as f:
        f.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'echo > "$T/a"\'\n')
    done = subprocess.run([SEEDRUN, "run"], cwd=folder, env=ws.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "the pipeline file's directory %s/vendor\\xff is not valid UTF-8" % ws.path in done.stderr
    assert os.listdir(folder) == [b"pipeline.toml"]
    assert not (ws.scratch / "a").exists()


@pytest.mark.parametrize("jobs", ["0", "abc", "-3"])
def test_bad_jobs_on_command_line(ws, jobs):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'echo > "$T/a"\'\n')
    result = ws.run("run", "--jobs", jobs)
    assert result.code == 2
    assert "invalid jobs value %r" % jobs in result.err
    assert not (ws.scratch / "a").exists()


def test_unknown_selection_lists_valid_names(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.fetch-vendor]
        command = 'echo ran > "$T/fetch.ran"'
        [steps.parse]
        command = 'echo ran > "$T/parse.ran"'
        [[phases]]
        name = "vendors"
        steps = ["fetch-vendor", "parse"]
        [pairs.p]
        main = "fetch-vendor"
        dependent = "parse"
    ''')
    result = ws.run("run", "fetch-vendr")
    assert result.code == 2
    assert "unknown step or target 'fetch-vendr'" in result.err
    assert "(did you mean 'fetch-vendor'?)" in result.err
    assert str(ws.path / "pipeline.toml") in result.err
    result = ws.run("run", "--phase", "vendor")
    assert "unknown phase 'vendor'" in result.err
    assert "valid phases: vendors" in result.err
    result = ws.run("run", "--pair", "q")
    assert result.code == 2
    assert "valid pairs: p" in result.err
    assert not (ws.scratch / "fetch.ran").exists()


def test_unknown_enable_lists_disabled_names(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.fetch-vendor]
        command = \'touch "$T/fetch.ran"\'
        [steps.parse]
        command = \'touch "$T/parse.ran"\'
        enabled = false
        [steps.publish]
        command = \'touch "$T/publish.ran"\'
        [[phases]]
        name = "vendors"
        steps = ["fetch-vendor", "parse"]
        [[phases]]
        name = "final"
        steps = ["publish"]
        enabled = false
        [pairs.p]
        main = "fetch-vendor"
        dependent = "parse"
        [targets]
        daily = ["parse"]
    ''')
    pipeline = ws.path / "pipeline.toml"
    for command in ("run", "plan", "graph"):
        err = assert_invalid(ws, args=(command, "--enable", "prase"))
        assert err == ("seedrun: error: --enable 'prase': no step or phase has that name in %s (did you mean "
                       "'parse'?); disabled steps and phases: parse, final\n" % pipeline)
    err = assert_invalid(ws, args=("run", "--enable", "nothing-like-it"))
    assert "in %s; disabled steps and phases: parse, final" % pipeline in err
    err = assert_invalid(ws, args=("run", "--enable", "daily"))
    assert ("--enable 'daily': 'daily' is a target of %s, but --enable takes a step or phase; select the target "
            "with --target daily, which runs its disabled steps too" % pipeline) in err
    err = assert_invalid(ws, args=("run", "--enable", "p"))
    assert "select the pair with --pair p" in err


def test_pair_of_one_step_is_invalid(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = "true"
        [pairs.p]
        main = "a"
        dependent = "a"
    ''')
    assert_invalid(ws, "main and dependent are both 'a'", args=("plan",))


def test_pipeline_from_environment_variable(ws):
    ws.write('[pipeline]\nname = "other"\n[steps.a]\ncommand = "true"\n', name="other.toml")
    env = dict(ws.env, SEEDRUN_PIPELINE="other.toml")
    result = ws.run("validate", env=env)
    assert result.code == 0
    assert "other.toml is valid" in result.out
    assert os.path.exists(ws.path / "other.toml")


def test_missing_file_named_by_environment(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "true"\n')
    env = dict(ws.env, SEEDRUN_PIPELINE="missing.toml")
    result = ws.run("plan", env=env)
    assert result.code == 2, result.out + result.err
    assert ("  missing.toml: pipeline file not found (%s), named by the environment variable SEEDRUN_PIPELINE; fix "
            "or unset SEEDRUN_PIPELINE, or pass --pipeline FILE" % (ws.path / "missing.toml")) in result.err.splitlines()
    # --pipeline wins over the variable.
    assert ws.run("--pipeline", "pipeline.toml", "plan", env=env).code == 0


def test_npm_options_and_quotes_are_understood(ws):
    (ws.path / "package.json").write_text('{"scripts": {"seed-x": "true", "seed y": "true"}}')
    ws.write('''
        [pipeline]
        name = "x"
        [steps.silent]
        command = "npm run --silent seed-x"
        [steps.short]
        command = "npm run -s seed-x && echo done"
        [steps.quoted]
        command = 'npm run "seed y"'
        [steps.unbalanced]
        command = 'npm run "seed z'
    ''')
    result = ws.run("validate")
    assert result.code == 0, result.err


def test_npm_options_with_values_are_understood(ws):
    (ws.path / "web").mkdir()
    (ws.path / "web" / "package.json").write_text('{"scripts": {"build": "true"}}')
    (ws.path / "package.json").write_text('{"scripts": {"seed-x": "true"}}')
    # Each command is valid for npm: --loglevel takes a value, and --prefix and -w read another package.json.
    ws.write('''
        [pipeline]
        name = "x"
        [steps.loglevel]
        command = "npm run --loglevel warn seed-x"
        [steps.prefix]
        command = "npm run --prefix web build"
        [steps.workspace]
        command = "npm run -w web build"
        [steps.prefix-equals]
        command = "npm run --prefix=web build"
    ''')
    result = ws.run("validate")
    assert result.code == 0, result.err
    ws.write('''
        [pipeline]
        name = "x"
        [steps.loglevel]
        command = "npm run --loglevel warn seed-y"
    ''')
    assert_invalid(ws, "npm script 'seed-y' not found", "(did you mean 'seed-x'?)")


def test_invalid_pool_and_pair_names_say_the_rule(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [pools]
        "vendor api" = 1
        [steps.a]
        command = "true"
        pool = "vendor api"
        [steps.b]
        command = "true"
        [pairs."a/b"]
        main = "a"
        dependent = "b"
    ''')
    rule = "use at most 200 letters, digits, '.', '_' and '-', starting with a letter or digit"
    assert_invalid(ws, "[pools.vendor api]: invalid pool name 'vendor api': %s; rename the pool" % rule,
                   "[pairs.a/b]: invalid pair name 'a/b': %s; rename the pair" % rule, args=("validate",))


def test_phase_without_name(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = "true"
        [[phases]]
        steps = ["a"]
    ''')
    for args in (("validate",), ("run",)):
        assert_invalid(ws, "[[phases]] #1: missing name; set name = \"NAME\", which make phase-NAME runs",
                       args=args)


def test_cycle_listed_with_other_problems(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.c]
        command = "true"
        needs = ["d"]
        [steps.d]
        command = "true"
        after = ["c"]
        [steps.e]
        command = "true"
        needs = ["zz"]
    ''')
    assert_invalid(ws, "needs unknown step 'zz'", "cycle: c -> d -> c", args=("validate",))


def test_missing_workdir_and_zero_timeout(ws):
    ws.write('''
        [pipeline]
        name = "x"
        workdir = "nonexistent-dir"
        [steps.a]
        command = "true"
        timeout = "0s"
        [[phases]]
        name = "p"
        steps = ["a"]
        [[phases]]
        name = "p"
        steps = []
    ''')
    assert_invalid(ws, "workdir 'nonexistent-dir' is not a directory", "timeout must be longer than 0s",
                   "duplicate phase name 'p'", args=("validate",))


def test_output_dirs_that_cannot_exist(ws):
    (ws.path / "taken").write_text("a file where a directory should be\n")
    ws.write('''
        [pipeline]
        name = "x"
        logs_dir = "taken"
        reports_dir = "taken/reports"
        [steps.a]
        command = \'touch "$T/ran"\'
    ''')
    for args in (("run",), ("validate",), ("plan",)):
        assert_invalid(ws, "logs_dir 'taken' cannot be created: %s is not a directory; set logs_dir to another "
                           "path" % (ws.path / "taken"),
                       "reports_dir 'taken/reports' cannot be created: %s is not a directory" % (ws.path / "taken"),
                       args=args)


def test_lock_directory_that_is_a_file(ws):
    # The logs directory exists, but its .seedrun entry is a file, so the lock cannot be created.
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = \'touch "$T/ran"\'\n')
    (ws.path / "logs").mkdir()
    (ws.path / "logs" / ".seedrun").write_text("")
    for args in (("run",), ("resume",)):
        err = assert_invalid(ws, args=args)
        assert err == ("seedrun: error: cannot create %s for the lock of pipeline 'x': File exists; a file is in "
                       "the way of the directory; move it, or set logs_dir in the pipeline file to a directory "
                       "seedrun can write\n" % (ws.path / "logs" / ".seedrun")), err


def test_duplicate_phase_name_is_no_cycle(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = "true"
        [steps.b]
        command = "true"
        [[phases]]
        name = "p"
        steps = ["a"]
        [[phases]]
        name = "p"
        steps = ["b"]
    ''')
    err = assert_invalid(ws, "(1 problem)", "duplicate phase name 'p'; give each phase a name of its own",
                         args=("validate",))
    assert "cycle" not in err


def test_nul_in_output_dirs_and_zero_cooldown(ws):
    ws.write('''
        [pipeline]
        name = "x"
        logs_dir = "a\\u0000b"
        reports_dir = "r\\u0000"
        [pools.api]
        rate_limited_exit_code = 75
        cooldown = "0s"
        [steps.a]
        command = \'touch "$T/ran"\'
        pool = "api"
    ''')
    for args in (("run",), ("validate",)):
        assert_invalid(ws, "(3 problems)", "logs_dir 'a\\x00b' contains a NUL character, which no path can; remove it",
                       "reports_dir 'r\\x00' contains a NUL character",
                       "[pools.api]: cooldown must be longer than 0s; leave it out for the default of 60s", args=args)


def test_pipeline_without_steps_is_invalid(ws):
    ws.write('[pipeline]\nname = "empty"\n')
    assert_invalid(ws, "the pipeline defines no steps; add one, such as [steps.NAME]", args=("validate",))
    ws.write("")
    assert_invalid(ws, "the pipeline defines no steps", args=("run",))


def test_command_that_is_not_a_string(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = 5\n')
    assert_invalid(ws, "[steps.a]: command must be a string, not integer 5; quote it", args=("validate",))


def test_env_value_true_must_be_quoted(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo "$N $B" > "$T/env"'
        env = { N = 5, B = true }
    ''')
    assert_invalid(ws, "[steps.a]: env.B must be a string or a number, not boolean true; quote it: B = \"...\"",
                   args=("validate",))
    ws.write(ws.path.joinpath("pipeline.toml").read_text().replace("B = true", 'B = "true"'))
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    assert (ws.scratch / "env").read_text() == "5 true\n"


def test_wrong_types_named_in_toml_terms(ws):
    ws.write('''
        [pipeline]
        name = "x"
        jobs = "3"
        max_failures = true
        logs_dir = false
        [pools.api]
        size = 1.5
        rate_limited_exit_code = true
        [steps.a]
        command = \'touch "$T/ran"\'
        retries = true
        on_failure = false
        enabled = "yes"
        pool = 5
        description = true
        metrics = { n = 5, d = 1979-05-27T07:32:00Z }
        metric_floors = false
        env = { L = [1, "a"] }
        [steps.b]
        command = "true"
        metrics = false
        timeout = { m = 5 }
    ''')
    err = assert_invalid(ws, args=("validate",))
    expected = [
        "[pipeline]: jobs must be an integer of at least 1, not string '3'; remove the quotes",
        "[pipeline]: invalid max_failures true: use a count of at least 1",
        "[pipeline]: logs_dir must be a string with a path relative to the pipeline file, not boolean false",
        "[pools.api]: size must be an integer of at least 1, not float 1.5",
        "[pools.api]: invalid rate_limited_exit_code true: must be an exit code from 1 to 255",
        "[steps.a]: retries must be an integer of at least 0, not boolean true",
        "[steps.a]: invalid on_failure false; valid values",
        "[steps.a]: enabled must be true or false, not string 'yes'",
        "[steps.a]: pool must be the name of a pool under [pools], not integer 5",
        "[steps.a]: description must be a string, not boolean true",
        "[steps.a]: metrics.n must be a string with a regular expression, like 'Upserted (\\d+)', not integer 5",
        "[steps.a]: metrics.d must be a string with a regular expression, like 'Upserted (\\d+)', not date-time "
        "1979-05-27T07:32:00+00:00",
        "[steps.a]: metric_floors must be a table of numbers, like { products = 1000 }, not boolean false",
        "[steps.a]: env.L must be a string or a number, not array [1, 'a']",
        "[steps.b]: metrics must be a table of regular expressions, like { products = 'Upserted (\\d+)' }, not "
        "boolean false",
        "[steps.b]: invalid duration timeout = { m = 5 }: use a string",
    ]
    for message in expected:
        assert message in err
    assert "True" not in err
    assert "False" not in err
    assert "compiled pattern" not in err
    assert "(%d problems)" % len(expected) in err
    assert not (ws.path / "False").exists()


def test_invalid_defaults_reported_once(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [defaults]
        retries = -1
        description = 5
        [steps.a]
        command = \'touch "$T/ran"\'
        description = "a"
        [steps.b]
        command = "true"
        description = "b"
    ''')
    # Both steps inherit retries and report it once, under [defaults]. Both override description, which is checked.
    err = assert_invalid(ws, "(2 problems)", "[defaults]: invalid retries -1: must be an integer of at least 0",
                         "[defaults]: description must be a string, not integer 5", args=("validate",))
    assert "[steps." not in err


def test_invalid_env_names_and_values(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [defaults]
        env = { "A=B" = "1" }
        [steps.a]
        command = \'touch "$T/ran"\'
        env = { "" = "e", X = "a\\u0000b", "K\\u0000" = "v", "my-var" = "1", 1X = "2", SEEDRUN_STEP = "s", OK_1 = 2 }
    ''')
    name_rule = ("a variable name contains only letters, digits and '_' and does not start with a digit, such as "
                 "NODE_ENV; rename it")
    for args in (("validate",), ("run",)):
        err = assert_invalid(ws, "(7 problems)", "[defaults]: invalid env name 'A=B': " + name_rule,
                             "[steps.a]: invalid env name '': " + name_rule,
                             "[steps.a]: invalid env name \"K\\u0000\": " + name_rule,
                             "[steps.a]: invalid env name 'my-var': " + name_rule,
                             "[steps.a]: invalid env name '1X': " + name_rule,
                             "[steps.a]: env.X contains a NUL character (\\u0000), which cannot be passed to a process",
                             "[steps.a]: env.SEEDRUN_STEP is set by seedrun for every step", args=args)
        assert "OK_1" not in err


def test_notify_command_with_nul_character(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [notify]
        on_failure = "echo \\u0000 > $T/notified"
        [steps.a]
        command = \'touch "$T/ran"; exit 1\'
    ''')
    for args in (("validate",), ("run",)):
        assert_invalid(ws, "[notify]: on_failure contains a NUL character (\\u0000), which cannot be passed to a "
                           "process; remove it", args=args)


def test_durations_longer_than_a_year(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [pools.api]
        min_interval = "9999999999h"
        cooldown = "8760h1s"
        [defaults]
        kill_grace = "9999999999h"
        [steps.a]
        command = \'touch "$T/ran"\'
        pool = "api"
        retries = 1
        retry_delay = "9999999999h"
        max_retry_delay = "525601m"
        [steps.b]
        command = "true"
        timeout = "1000000h"
        [steps.longest]
        command = "true"
        timeout = "8760h"
        retry_delay = "8759h59m60s"
    ''')
    maximum = 'is longer than the maximum of "8760h" (365 days); use a shorter duration'
    for args in (("validate",), ("run",)):
        err = assert_invalid(ws, "(6 problems)", "[pools.api]: min_interval = '9999999999h' " + maximum,
                             "[pools.api]: cooldown = '8760h1s' " + maximum,
                             "[defaults]: kill_grace = '9999999999h' " + maximum,
                             "[steps.a]: retry_delay = '9999999999h' " + maximum,
                             "[steps.a]: max_retry_delay = '525601m' " + maximum,
                             "[steps.b]: timeout = '1000000h' " + maximum + ", or leave timeout out for no timeout",
                             args=args)
        assert "longest" not in err


def test_make_goal_and_empty_targets_rejected(ws):
    goals = sorted(MAKEFILE_GOALS)
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = \'touch "$T/ran"\'
        [targets]
        %s
        empty = []
        "bad name" = ["a"]
        make = ["a"]
        cleanup = ["a"]
    ''' % "\n        ".join('%s = ["a"]' % goal for goal in goals))
    for args in (("validate",), ("run",), ("run", "--target", "empty")):
        err = assert_invalid(ws, "(%d problems)" % (len(goals) + 2),
                             "[targets]: target 'empty' lists no steps; list at least one, like empty = "
                             "[\"seed-meyer\"], or remove the target",
                             "[targets]: invalid target name 'bad name': use at most 200 letters, digits", args=args)
        for goal in goals:
            assert ("[targets]: invalid target name %r: it is a goal of seedrun's Makefile, so `make %s` would not "
                    "run the target; rename the target" % (goal, goal)) in err
        assert "'make'" not in err
        assert "'cleanup'" not in err


def test_plan_shows_jobs_option(ws):
    ws.write('[pipeline]\nname = "x"\njobs = 4\n[steps.a]\ncommand = "true"\n')
    result = ws.run("plan", "--jobs", "2")
    assert result.code == 0, result.err
    assert result.lines[0].endswith(": 1 step, up to 2 at once")
    assert ws.run("plan").lines[0].endswith(": 1 step, up to 4 at once")


def test_command_with_nul_character(ws):
    ws.write('[pipeline]\nname = "x"\n[steps.a]\ncommand = "echo \\u0000"\n')
    assert_invalid(ws, "[steps.a]: command contains a NUL character", args=("run",))


def test_invalid_pool_value_reported_once(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [pools]
        vendor_api = 1.5
        [steps.a]
        command = 'echo ran > "$T/a"'
        pool = "vendor_api"
    ''')
    err = assert_invalid(ws, "[pools.vendor_api]: must be a size (an integer)", args=("validate",))
    assert "unknown pool" not in err
    assert "1 problem" in err


def test_phase_without_steps_invalid(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.a]
        command = 'echo ran > "$T/a"'
        [[phases]]
        name = "empty"
        steps = []
    ''')
    assert_invalid(ws, "phase 'empty': lists no steps", args=("validate",))


def test_nul_in_workdir_printed_escaped(ws):
    ws.write('[pipeline]\nname = "x"\nworkdir = "a\\u0000b"\n[steps.a]\ncommand = \'echo ran > "$T/a"\'\n')
    err = assert_invalid(ws, "workdir 'a\\x00b' contains a NUL character", args=("validate",))
    assert "\0" not in err


def test_unknown_name_lists_pair_and_phase_goals(ws):
    ws.write('''
        [pipeline]
        name = "x"
        [steps.main]
        command = 'echo ran > "$T/main"'
        [steps.dependent]
        command = 'echo ran > "$T/dependent"'
        [[phases]]
        name = "vendors"
        steps = ["main", "dependent"]
        [pairs.quadratec]
        main = "main"
        dependent = "dependent"
    ''')
    err = assert_invalid(ws, "unknown step or target 'bogus'", args=("plan", "bogus"))
    assert "valid pairs: pair-quadratec" in err
    assert "valid phases: phase-vendors" in err
