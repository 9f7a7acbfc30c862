"""The operations behind every entry point: the CLI, the Invoke tasks and the Makefile.

Each function raises a SeedrunError subclass for anything the operator must
fix and returns the exit code of a run. Only the CLI turns errors into exit
codes, so ``invoke`` and ``make`` behave exactly like ``seedrun``.
"""

from __future__ import annotations

import logging
import marshal
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from seedrun import step as steprunner
from seedrun.errors import (PipelineError, SeedrunError, UsageError, option_example, pipeline_argument, replan_argument,
                            under_make)
from seedrun.graph import Plan, Selection, resolve
from seedrun.lock import PipelineLock, wait_for_step_runners
from seedrun.pipeline import Pipeline, closest, load_pipeline
from seedrun.process import group_exists, signal_process
from seedrun.records import (count_statuses, read_plan_document, read_run_record, read_step_record,
                             write_json_atomically)
from seedrun.retention import RUN_ID, list_runs, prune_runs
from seedrun.rules import render_rules
from seedrun.runner import (Execution, build_plan_document, convert_spec_folder, display_path, find_make,
                            max_kill_grace, new_run_id, point_latest, read_specs, refresh_log_display,
                            run_secret_values, step_of_process, write_run_files)

DEFAULT_PIPELINE = "pipeline.toml"
STALE_STOP_SECONDS = 10.0
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

log = logging.getLogger(__name__)


def say(line: str) -> None:
    steprunner.Console(os.devnull).say(line)


def pipeline_path(path: str | os.PathLike | None = None) -> Path:
    """Return the pipeline file: the argument, else $SEEDRUN_PIPELINE, else ./pipeline.toml."""
    if path:
        return Path(path)
    named = os.environ.get("SEEDRUN_PIPELINE")
    if not named:
        return Path(DEFAULT_PIPELINE)
    if not os.path.exists(named):
        # The operator may not know the variable is set, so the error names it as the source.
        raise PipelineError(["%s: pipeline file not found (%s), named by the environment variable SEEDRUN_PIPELINE; "
                             "fix or unset SEEDRUN_PIPELINE, or pass %s"
                             % (named, os.path.abspath(named), pipeline_argument("FILE"))], Path(named))
    return Path(named)


def parse_jobs(value: object, default: int) -> int:
    """Validate a --jobs or JOBS= value."""
    if value is None or value == "":
        return default
    try:
        jobs = int(str(value).strip())
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise UsageError("invalid jobs value %r: use a whole number of at least 1, such as %s"
                         % (value, option_example("--jobs 4", "JOBS=4")))
    return jobs


def parse_keep(value: int | str) -> int:
    """Validate a --keep or KEEP= value: the number of newest runs that clean keeps."""
    named = "KEEP value %r" % str(value) if under_make() else "--keep %r" % value
    try:
        keep = int(str(value).strip())
    except ValueError:
        raise UsageError("invalid %s: use a whole number of runs to keep, such as %s"
                         % (named, option_example("--keep 30", "KEEP=30"))) from None
    if keep < 1:
        raise UsageError("invalid %s: keep at least 1 run" % named)
    return keep


def plan(path: str | os.PathLike | None, selection: Selection) -> Plan:
    pipeline = load_pipeline(pipeline_path(path))
    return resolve(pipeline, selection, expected_durations(pipeline))


def expected_durations(pipeline: Pipeline) -> dict[str, float]:
    """Return the median duration of each step over its last successful runs, from the run history.

    A pipeline without history, or whose history cannot be read, gets no
    durations, and its steps start in the order of the pipeline file.
    """
    db_path = pipeline.logs_dir / "history.sqlite3"
    if not db_path.exists():
        return {}
    import sqlite3

    from seedrun import history

    try:
        return history.median_durations(db_path, pipeline.name, list(pipeline.steps))
    except (sqlite3.Error, OSError) as error:
        log.warning("cannot read step durations from %s, so steps start in pipeline file order: %s",
                    db_path, error)
        return {}


def run(path: str | os.PathLike | None, selection: Selection, jobs: object = None,
        launcher: subprocess.Popen | None = None) -> int:
    """Run a selection of the pipeline in a new run directory; return the exit code.

    `launcher` is a step launcher from seedrun.launcher.spawn(), started
    early by the caller; without one, the run starts its own.
    """
    pipeline = load_pipeline(pipeline_path(path))
    the_plan = resolve(pipeline, selection, expected_durations(pipeline))
    jobs = parse_jobs(jobs, pipeline.jobs)
    find_make()
    with PipelineLock(pipeline.logs_dir, pipeline.name) as lock:
        with interrupts_raised():
            take_over(lock.acquire(), pipeline.logs_dir)
        lock.took_over()
        with signals_deferred():
            run_id, run_dir = new_run_id(pipeline.logs_dir, pipeline.name, lock.describe)
            document, specs = build_plan_document(pipeline, the_plan, run_id, run_dir, jobs)
            write_run_files(run_dir, document, specs, render_rules(the_plan, run_dir))
            point_latest(pipeline.logs_dir, run_id)
            return Execution(run_dir, document, jobs, launcher=launcher).execute()


@contextmanager
def interrupts_raised():
    """Raise KeyboardInterrupt on SIGTERM and SIGHUP too, as on SIGINT, so that they also exit 130 here."""
    def interrupt(number: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt)
                for number in steprunner.handled_signals((signal.SIGTERM, signal.SIGHUP))}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def signals_deferred():
    """Hold SIGINT, SIGTERM and SIGHUP back until the run can record them.

    From the moment its directory exists a run must end with a run.json, so
    an interrupt that arrives while the plan is written waits until
    Execution.execute() has installed its handlers and unblocks it.
    Execution.execute() blocks them again once the run's record is final,
    and they stay blocked after a run that returned: the process can only
    exit then, with the run's own exit code.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPT_SIGNALS)
    try:
        yield
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise


def take_over(previous: dict, logs_dir: Path) -> None:
    """Finish the record of a run that died holding the lock, after its step runners stopped."""
    run_dir = _own_run_dir(previous.get("run_dir"), logs_dir)
    if run_dir is None:
        return
    if not (run_dir / "plan.json").exists():
        _remove_unplanned(run_dir, previous)
        return
    # A run that died before its first run.json has none (None), and is as unfinished as a running one.
    if _run_status(run_dir) not in (None, "running") and wait_for_step_runners(run_dir, 0):
        # The run has its final record, but a crash while it was resumed can
        # leave recipe shells that would hand a new launcher stale requests.
        _end_old_recipes(run_dir)
        return
    document = _readable_plan(run_dir)
    if document is None:
        say("Warning: run %s (PID %s) ended without finishing, and its plan.json cannot be read; "
            "leaving its directory %s as it is" % (previous.get("run_id"), previous.get("pid"), display_path(run_dir)))
        return
    say("Warning: run %s (PID %s) ended without finishing; taking over its lock"
        % (previous.get("run_id"), previous.get("pid")))
    if not wait_for_step_runners(run_dir, 0):
        say("Waiting for the steps of run %s to stop" % previous.get("run_id"))
        _mark_interrupted(run_dir)
        _stop_old_make(run_dir, signal.SIGTERM)
        if not wait_for_step_runners(run_dir, STALE_STOP_SECONDS + max_kill_grace(document)):
            _stop_old_make(run_dir, signal.SIGKILL)
            _kill_old_steps(run_dir, document)
            wait_for_step_runners(run_dir, STALE_STOP_SECONDS)
    _end_old_recipes(run_dir)
    _stop_old_commands(run_dir, previous.get("run_id"), max_kill_grace(document))
    execution = Execution(run_dir, document, document["jobs"])
    execution.interrupted = True
    execution.reload_records()
    execution.settle_records()
    run_record = execution.assemble(status="interrupted", exit_code=130, finished=time.time())
    execution.writer.write(run_record)
    execution.write_companions(run_record)


def _own_run_dir(value: object, logs_dir: Path) -> Path | None:
    """Return the run directory the lock names if it is a run of this logs directory, else None.

    A workspace copied with its logs (cp -a) has a lock file that names the
    original's runs, which may still be running, and a lock file can be
    edited by hand. seedrun acts only on runs in its own logs directory,
    whose lock it holds.
    """
    if not isinstance(value, str):
        return None
    run_dir = Path(value)
    if run_dir.is_absolute() and RUN_ID.match(run_dir.name) and run_dir.parent.resolve() == logs_dir.resolve():
        return run_dir
    log.warning("the lock names %s, which is not a run directory in %s; leaving it alone", value, logs_dir)
    return None


def _readable_plan(run_dir: Path) -> dict | None:
    try:
        return read_plan_document(run_dir / "plan.json")
    except (OSError, ValueError):
        return None


# The directories and files a new run creates before plan.json (see
# runner.write_run_files). Temporary files of its atomic writes end in .tmp.
UNPLANNED_DIRECTORIES = (".seedrun", ".seedrun/records", ".seedrun/stamps", ".seedrun/failed")
UNPLANNED_FILES = ("rules.mk", ".seedrun/specs")


def _remove_unplanned(run_dir: Path, previous: dict) -> None:
    """Delete the directory of a run that died before it wrote plan.json.

    plan.json is the last file a new run writes before it starts make, so
    no step of that run started, and no other run lists the directory. A
    directory that contains anything else is left alone.
    """
    import shutil

    try:
        if not _holds_only_unplanned_files(run_dir):
            return
        say("Warning: run %s (PID %s) ended before it started a step; deleting its directory %s"
            % (previous.get("run_id"), previous.get("pid"), display_path(run_dir)))
        shutil.rmtree(run_dir)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("cannot delete %s, left by a run that died before it started: %s", run_dir, error)


def _holds_only_unplanned_files(run_dir: Path) -> bool:
    for root, directories, files in os.walk(run_dir):
        relative = os.path.relpath(root, run_dir)
        for name in directories:
            if os.path.normpath(os.path.join(relative, name)) not in UNPLANNED_DIRECTORIES:
                return False
        for name in files:
            if os.path.normpath(os.path.join(relative, name)) not in UNPLANNED_FILES and not name.endswith(".tmp"):
                return False
    return True


def _run_status(run_dir: Path) -> str | None:
    try:
        return read_run_record(run_dir / "run.json").get("status")
    except (OSError, ValueError):
        return None


def _mark_interrupted(run_dir: Path) -> None:
    """Create the dead run's "interrupted" flag, as its seedrun does on an interrupt.

    A step runner that gets a signal while the flag is missing takes the
    signal as meant for its step alone, while the run goes on, and records
    that as the step's reason.
    """
    try:
        steprunner.touch(steprunner.RunFiles(str(run_dir)).flag("interrupted"))
    except OSError as error:
        log.warning("cannot write the interrupted flag of %s, so its stopped steps may read as stopped alone: %s",
                    run_dir, error)


def _stop_old_make(run_dir: Path, number: int) -> None:
    try:
        pid = int((run_dir / ".seedrun" / "make.pid").read_text())
        os.killpg(pid, number)
    except (OSError, ValueError):
        pass


def _end_old_recipes(run_dir: Path) -> None:
    """SIGKILL the recipe shells that still wait for the reply of a dead run's launcher.

    When make and seedrun were both killed, nothing ends them: they sit in
    the old make's process group, with the run directory as their working
    directory, blocked on a FIFO that no process writes to anymore.
    """
    try:
        group = int((run_dir / ".seedrun" / "make.pid").read_text())
    except (OSError, ValueError):
        return
    directory = os.path.realpath(run_dir)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and os.readlink("/proc/%s/cwd" % entry) == directory:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


def _old_step_processes(run_dir: Path) -> list[int]:
    """Return the PIDs of live processes that a step of the run started: those whose environment names the run."""
    found = []
    for entry in os.listdir("/proc"):
        # A zombie's environment reads empty, so only live processes match.
        if entry.isdigit() and int(entry) != os.getpid() and step_of_process(int(entry), run_dir) is not None:
            found.append(int(entry))
    return found


def _stop_old_commands(run_dir: Path, run_id: object, grace: float) -> None:
    """Stop what the steps of a dead run still run after every step runner of it is gone.

    A step runner killed with SIGKILL leaves its command running in a
    session of its own, and nothing else stops it. A resume would then run
    the step a second time beside it. Each process gets SIGTERM with its
    process group, and SIGKILL once the longest kill_grace has passed.
    The processes are found again before each signal, so that no PID
    reused by another process in the meantime gets one.
    """
    processes = _old_step_processes(run_dir)
    if not processes:
        return
    say("Stopping %d process%s that the steps of run %s left running (SIGTERM, then SIGKILL after kill_grace)"
        % (len(processes), "" if len(processes) == 1 else "es", run_id))
    _signal_processes(processes, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while processes and time.monotonic() < deadline:
        time.sleep(0.05)
        processes = _old_step_processes(run_dir)
    _signal_processes(processes, signal.SIGKILL)
    # A process killed with SIGKILL is gone once its parent (init or a subreaper) reaps it.
    deadline = time.monotonic() + STALE_STOP_SECONDS
    while processes and time.monotonic() < deadline:
        time.sleep(0.05)
        processes = _old_step_processes(run_dir)


def _signal_processes(processes: list[int], number: int) -> None:
    for pid in processes:
        signal_process(pid, number)


def _kill_old_steps(run_dir: Path, document: dict) -> None:
    files = steprunner.RunFiles(str(run_dir))
    for entry in document["steps"]:
        record = read_step_record(files, entry["name"])
        if record and record.get("pid"):
            try:
                os.killpg(record["pid"], signal.SIGKILL)
            except OSError:
                pass


def resumable_plan(pipeline: Pipeline, run_dir: Path, replan: bool) -> dict:
    """Return the plan.json of a run to resume, or raise UsageError when it is unreadable or was planned elsewhere.

    The plan names absolute paths: the logs directory, each step's log and
    working directory. A resume with the plan of a run directory that was
    copied, renamed or moved with its workspace would run the steps of the
    original run and write into its files. --replan plans the run again
    where it is now, which fixes the paths but not a renamed run id.
    """
    try:
        document = read_plan_document(run_dir / "plan.json")
    except (OSError, ValueError) as error:
        problem = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError("cannot read the plan of run %s (%s: %s), so it cannot be resumed; start a new run with "
                         "%s" % (run_dir.name, display_path(run_dir / "plan.json"), problem, _start_command(pipeline))
                         ) from None
    if document.get("run_id") != run_dir.name:
        raise UsageError("%s contains the plan of run %s: the run directory was copied or renamed, so it cannot be "
                         "resumed; start a new run with %s" % (display_path(run_dir), document.get("run_id"),
                                                                _start_command(pipeline)))
    for key, now in (("logs_dir", pipeline.logs_dir.resolve()), ("workdir", pipeline.workdir.resolve())):
        planned = document.get(key)
        if not replan and isinstance(planned, str) and Path(planned) != now:
            raise UsageError("run %s was planned with its %s in %s, and the workspace has moved or been copied "
                             "since; resume it with %s to plan it again with %s" % (
                                 run_dir.name, key, planned, replan_argument(), now))
    return document


def _is_default_pipeline(pipeline: Pipeline) -> bool:
    return pipeline.path == Path(DEFAULT_PIPELINE).resolve()


def _run_command(pipeline: Pipeline, subcommand: str = "run") -> str:
    """Return the seedrun command line of the pipeline, with --pipeline unless it is the default file here."""
    if _is_default_pipeline(pipeline):
        return "seedrun %s" % subcommand
    return "seedrun --pipeline %s %s" % (display_path(pipeline.path), subcommand)


def _make_command(pipeline: Pipeline, arguments: str) -> str:
    """Return the make command line of the pipeline, with PIPELINE=FILE unless it is the default file here."""
    named_file = "" if _is_default_pipeline(pipeline) else " " + pipeline_argument(str(pipeline.path))
    return "make %s%s" % (arguments, named_file)


def _resume_command(pipeline: Pipeline, run_id: str) -> str:
    """Return the command that resumes the run, in make's spelling when make resume started this process."""
    if not under_make():
        return _run_command(pipeline, "resume " + run_id)
    return _make_command(pipeline, "resume RUN_ID=%s" % run_id)


def _start_command(pipeline: Pipeline) -> str:
    """Return the command that starts a run of the pipeline, in make's spelling when make started this process."""
    if not under_make():
        return _run_command(pipeline)
    return _make_command(pipeline, "seed-all")


def find_run(pipeline: Pipeline, run_id: str | None) -> Path:
    """Return the directory of the named run of the pipeline, or of its newest one."""
    runs = list_runs(pipeline.logs_dir, pipeline.name)
    ids = [r for r, _ in runs]
    if run_id:
        if run_id in ids:
            return pipeline.logs_dir / run_id
        plain = RUN_ID.match(run_id) and "/" not in run_id and "\0" not in run_id
        owner = _readable_plan(pipeline.logs_dir / run_id) if plain else None
        if owner is not None and owner.get("pipeline") == pipeline.name:
            # list_runs() skipped it: its run.json names no pipeline or another one (edited or damaged).
            return pipeline.logs_dir / run_id
        if owner is not None and owner.get("pipeline_file") == str(pipeline.path):
            raise UsageError("run %s belongs to pipeline %r, which %s now names %r; name it %r again to resume the "
                             "run, or start a new run" % (run_id, owner.get("pipeline"), display_path(pipeline.path),
                                                          pipeline.name, owner.get("pipeline")))
        if owner is not None:
            # Its steps, lock and retention belong to that pipeline: a resume under
            # this one could run a step twice at once, or rewrite the other run.
            raise UsageError("run %s belongs to pipeline %r, not to %r of %s; pass its file with %s"
                             % (run_id, owner.get("pipeline"), pipeline.name, pipeline.path,
                                pipeline_argument(owner.get("pipeline_file") or "FILE")))
        raise UsageError("run %r not found in %s%s; recent runs: %s" % (
            run_id, pipeline.logs_dir, closest(run_id, ids), ", ".join(ids[-5:]) or "none"))
    if not ids:
        raise UsageError("no run of pipeline %r in %s yet; start one with: %s"
                         % (pipeline.name, display_path(pipeline.logs_dir), _start_command(pipeline)))
    return pipeline.logs_dir / ids[-1]


def _name_unfinished_run(pipeline: Pipeline) -> None:
    """Name the newest run that failed or was interrupted, which a resume without a run id does not take."""
    for run_id, record in reversed(list_runs(pipeline.logs_dir, pipeline.name)):
        if record.get("status") in ("failed", "interrupted"):
            say("The newest run that did not succeed is %s (%s); resume it with: %s"
                % (run_id, record["status"], _resume_command(pipeline, run_id)))
            return


def resume(path: str | os.PathLike | None, run_id: str | None = None, replan: bool = False,
           jobs: object = None, launcher: subprocess.Popen | None = None) -> int:
    """Rerun, in its own run directory, every step of a run that did not succeed; `launcher` as for run()."""
    pipeline = load_pipeline(pipeline_path(path))
    find_make()
    with PipelineLock(pipeline.logs_dir, pipeline.name) as lock:
        with interrupts_raised():
            take_over(lock.acquire(), pipeline.logs_dir)
        lock.took_over()
        run_dir = find_run(pipeline, run_id)
        # Before the plan's checks: a run that succeeded needs no plan, even in a moved workspace.
        if _run_status(run_dir) == "succeeded" and not replan:
            say("Run %s succeeded; nothing to resume" % run_dir.name)
            if run_id is None:
                _name_unfinished_run(pipeline)
            return 0
        document = resumable_plan(pipeline, run_dir, replan)
        lock.describe(document["run_id"], run_dir)
        jobs = parse_jobs(jobs, document["jobs"])
        with signals_deferred():
            convert_spec_folder(run_dir)
            document = _resume_plan(pipeline, run_dir, document, replan, jobs)
            try:
                refresh_log_display(run_dir, document)
            except ValueError as error:
                raise UsageError("the step specs of run %s are damaged (%s); resume it with %s to write them again"
                                 % (run_dir.name, error, replan_argument())) from None
            reset_unfinished(run_dir, document)
            document.setdefault("resumed_at", []).append(steprunner.iso(time.time()))
            write_json_atomically(run_dir / "plan.json", document)
            point_latest(pipeline.logs_dir, document["run_id"])
            return Execution(run_dir, document, jobs, resumed=True, launcher=launcher).execute()


def _resume_plan(pipeline: Pipeline, run_dir: Path, document: dict, replan: bool, jobs: int) -> dict:
    new_plan = resolve(pipeline, Selection(**document["selection_args"]))
    new_document, specs = build_plan_document(pipeline, new_plan, document["run_id"], run_dir, jobs)
    changes = plan_changes(document, new_document)
    if changes and not replan:
        say("%s changed since run %s started: %s" % (pipeline.path.name, document["run_id"], "; ".join(changes)))
        say("Resuming with the plan the run started with; pass %s to use the changed file" % replan_argument())
        return document
    if replan:
        if changes:
            say("Resuming with the changed plan: %s" % "; ".join(changes))
        new_document["resumed_at"] = document.get("resumed_at", [])
        write_run_files(run_dir, new_document, specs, render_rules(new_plan, run_dir))
        return new_document
    return document


def plan_changes(old: dict, new: dict) -> list[str]:
    """Describe the steps that differ between two plan documents."""
    before = {s["name"]: s for s in old["steps"]}
    after = {s["name"]: s for s in new["steps"]}
    changes = ["%s added" % n for n in after if n not in before]
    changes += ["%s removed" % n for n in before if n not in after]
    for name in after:
        if name not in before:
            continue
        # The plan of a run started by an older seedrun has no fingerprint_v1, and its fingerprint has the V1 keys.
        key = "fingerprint" if "fingerprint_v1" in before[name] else "fingerprint_v1"
        if before[name]["fingerprint"] != after[name][key]:
            workdir_changed = old.get("workdir") != new.get("workdir")
            changes.append("%s (%s)" % (name, _what_changed(before[name], after[name], workdir_changed)))
    return changes


# The settings of a plan entry that plan_changes() names; older plans lack some.
NAMED_SETTINGS = ("timeout_s", "kill_grace_s", "retries", "retry_delay_s", "max_retry_delay_s",
                  "retry_on_exit_codes", "on_failure", "pool", "env", "needs", "after", "needs_phase", "after_phase")


def _what_changed(before: dict, after: dict, workdir_changed: bool) -> str:
    if before["command"] != after["command"]:
        return "command changed"
    named = [key.removesuffix("_s") for key in NAMED_SETTINGS
             if key in before and key in after and before[key] != after[key]]
    if workdir_changed:
        named.append("workdir")
    # Otherwise an env value that plan.json masks, or a setting of the step's pool, changed.
    return "%s changed" % ", ".join(named) if named else "settings changed"


def _kept_on_resume(files: steprunner.RunFiles, name: str, record: dict | None) -> bool:
    """Return whether a resume keeps the step: its own record and its .ok stamp both record that it succeeded."""
    return record is not None and record.get("status") == "succeeded" and os.path.exists(files.stamp(name, "ok"))


def reset_unfinished(run_dir: Path, document: dict) -> None:
    """Delete the stamps of every step that did not succeed, so make runs it again, and mark it pending.

    A step keeps its attempt count and history, but not the outcome of its
    last run. If the resumed run ends before the step starts again, its
    record then shows that it did not start, not why it failed or was
    skipped before.
    """
    files = steprunner.RunFiles(str(run_dir))
    for entry in document["steps"]:
        record = read_step_record(files, entry["name"])
        succeeded = _kept_on_resume(files, entry["name"], record)
        entry["carried_over"] = succeeded
        if succeeded:
            # make reads the .done stamp. In a run whose rules did not yet mark stamps
            # .PRECIOUS, an interrupted make may have deleted it after the step succeeded.
            steprunner.touch(files.stamp(entry["name"], "done"))
            continue
        for kind in ("done", "ok"):
            _remove(files.stamp(entry["name"], kind))
        _remove(os.path.join(files.failed_dir(), entry["name"]))
        if record is not None:
            try:
                steprunner.write_atomically(files.record(entry["name"]),
                                            marshal.dumps(steprunner.pending_record(record)))
            except OSError as error:
                # The step runner writes a pending record of its own when the step starts again.
                log.warning("cannot reset the record of step %s: %s", entry["name"], error)
    for phase in document["barriers"]:
        for kind in ("done", "ok"):
            _remove(files.phase_stamp(phase, kind))
    for flag in ("abort", "interrupted"):
        _remove(files.flag(flag))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def explain_resume(path: str | os.PathLike | None, run_id: str | None = None, replan: bool = False) -> str:
    """Say, step by step, what a resume of the run would keep and what it would run again.

    With replan, say it of `seedrun resume --replan`, which takes the
    pipeline file as it is now: steps added to it run, steps removed from
    it are dropped, and a step that succeeded is kept even if it changed.
    """
    pipeline = load_pipeline(pipeline_path(path))
    run_dir = find_run(pipeline, run_id)
    try:
        document = resumable_plan(pipeline, run_dir, replan)
    except UsageError:
        # As in resume(): a run that succeeded needs no plan, even in a moved workspace.
        if not replan and _run_status(run_dir) == "succeeded":
            return "Run %s succeeded; nothing to resume" % run_dir.name
        raise
    files = steprunner.RunFiles(str(run_dir))
    settled = _settled_steps(run_dir)
    new_document, _ = build_plan_document(pipeline, resolve(pipeline, Selection(**document["selection_args"])),
                                          document["run_id"], run_dir, document["jobs"])
    changes = plan_changes(document, new_document)
    lock = PipelineLock(pipeline.logs_dir, pipeline.name)
    holder_live = lock.holder_is_live()
    # The lock file describes a live holder, or a run that died holding the lock.
    holder = lock.read_holder()
    run_live = holder_live and holder.get("run_id") == document["run_id"]
    taken_over = holder.get("taking_over") if isinstance(holder.get("taking_over"), dict) else {}
    # A run that died holding the lock has no final run.json, so the resume's take-over gives it one first.
    run_died = not run_live and _run_status(run_dir) in (None, "running")
    title = "Resume with %s" % replan_argument() if replan else "Resume"
    lines = ["%s of run %s (%s):" % (title, document["run_id"], display_path(run_dir))]
    before = {entry["name"] for entry in document["steps"]}
    for entry in (new_document if replan else document)["steps"]:
        record = settled.get(entry["name"]) or read_step_record(files, entry["name"]) or {}
        if entry["name"] not in before:
            reason = "runs: added to %s" % pipeline.path.name
        elif record.get("status") in ("running", "waiting") and run_live:
            reason = "%s now" % record["status"]
        elif record.get("status") in ("running", "waiting") and run_died:
            reason = "runs again: interrupted (the run ended without finishing while the step was %s)" \
                % record["status"]
        elif record.get("status") == "succeeded" and not _kept_on_resume(
                files, entry["name"], read_step_record(files, entry["name"])):
            reason = "runs again: its record or .ok stamp in %s is missing or damaged" % display_path(
                Path(files.state))
        else:
            reason = _resume_reason(record)
        lines.append("  %-32s %s" % (entry["name"], reason))
    resume = _make_command(pipeline, "resume") if under_make() else "seedrun resume"
    if run_live:
        lines.append("Run %s is still running (PID %s), so %s is refused until it ends"
                     % (document["run_id"], holder.get("pid"), resume))
    elif holder_live and taken_over.get("run_id") == document["run_id"]:
        lines.append("Run %s ended without finishing, and seedrun (PID %s) is taking it over now, so %s "
                     "is refused until that ends" % (document["run_id"], holder.get("pid"), resume))
    elif holder_live and not holder.get("run_id"):
        # Between taking the lock and naming its run.
        lines.append("Another seedrun of pipeline %r (PID %s) is starting, so %s is refused until it "
                     "ends" % (pipeline.name, holder.get("pid"), resume))
    elif holder_live:
        lines.append("Run %s of pipeline %r holds the lock (PID %s), so %s is refused until it ends"
                     % (holder.get("run_id"), pipeline.name, holder.get("pid"), resume))
    elif run_died and _run_record_problem(run_dir):
        lines.append("The run.json of run %s is damaged (%s); %s writes it again from the step records"
                     % (document["run_id"], _run_record_problem(run_dir), resume))
    elif run_died:
        lines.append("Run %s ended without finishing; %s first records it interrupted"
                     % (document["run_id"], resume))
    if replan:
        after = {entry["name"] for entry in new_document["steps"]}
        lines += ["  %-32s dropped: no longer in %s" % (name, pipeline.path.name) for name in sorted(before - after)]
        if changes:
            lines.append("%s changed since the run started: %s" % (pipeline.path.name, "; ".join(changes)))
    elif changes:
        # Under make, with the run's id, so that following the hint resumes this run and not the newest.
        resume_command = _resume_command(pipeline, document["run_id"]) if under_make() else "seedrun resume"
        lines.append("%s changed since the run started: %s; %s keeps the old plan, %s %s takes the new one"
                     % (pipeline.path.name, "; ".join(changes), resume_command, resume_command, replan_argument()))
    if not replan:
        try:
            read_specs(run_dir, document)
        except ValueError as error:
            lines.append("The step specs of run %s are damaged (%s), so a resume is refused; resume it with %s to "
                         "write them again" % (document["run_id"], error, replan_argument()))
    return "\n".join(lines)


def _run_record_problem(run_dir: Path) -> str | None:
    """Return why the run's run.json cannot be used, or None when it is readable or missing."""
    try:
        read_run_record(run_dir / "run.json")
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror
    except ValueError as error:
        return str(error)
    return None


def _settled_steps(run_dir: Path) -> dict[str, dict]:
    """Return the steps of a finished run as run.json settled them, by name; empty while the run is live.

    A step whose step runner was killed keeps a "running" record, and only
    run.json records what became of it (failed or interrupted).
    """
    try:
        run = read_run_record(run_dir / "run.json")
    except (OSError, ValueError):
        return {}
    if run.get("status") in (None, "running"):
        return {}
    return {step["name"]: step for step in run.get("steps") or []}


def _resume_reason(record: dict) -> str:
    status = record.get("status")
    if status == "succeeded":
        return "kept: succeeded"
    if status is None or status == "pending":
        return "runs again: never started"
    detail = record.get("reason") or status.replace("_", " ")
    return "runs again: %s (%s)" % (status.replace("_", " "), detail)


def report(path: str | os.PathLike | None, run_id: str | None = None) -> Path:
    """Render the report of a past run again."""
    from seedrun import report as reporter

    pipeline = load_pipeline(pipeline_path(path))
    run_dir = find_run(pipeline, run_id)
    try:
        record = read_run_record(run_dir / "run.json")
    except ValueError as error:
        raise UsageError("cannot render the report of run %s: %s is damaged: %s; the step logs are in %s"
                         % (run_dir.name, run_dir / "run.json", error, run_dir)) from None
    except OSError as error:
        # A run killed before its first run.json has none; seedrun resume writes it.
        raise UsageError("cannot render the report of run %s: cannot read %s: %s; the step logs are in %s"
                         % (run_dir.name, run_dir / "run.json", error.strerror, run_dir)) from None
    if record.get("status") == "running" and not _run_is_live(pipeline, run_dir.name):
        record = _as_left_by_dead_run(record, run_dir)
    # The run's own step env is masked as well as this shell's environment,
    # as when the run rendered the report, because `env` in the pipeline
    # file can hold a token that no shell exports.
    values = run_secret_values(run_dir, [*(record.get("mask_env") or []), *pipeline.mask_env],
                               [step["name"] for step in record.get("steps") or []],
                               [step.env for step in pipeline.steps.values()])
    return reporter.render_run(record, run_dir, pipeline.reports_dir,
                               history_db=pipeline.logs_dir / "history.sqlite3", live=False, secret_values=values)


def _run_is_live(pipeline: Pipeline, run_id: str) -> bool:
    """Return whether a seedrun process is still running or taking over run `run_id`, as the pipeline's lock shows."""
    lock = PipelineLock(pipeline.logs_dir, pipeline.name)
    if not lock.holder_is_live():
        return False
    holder = lock.read_holder()
    taken_over = holder.get("taking_over") if isinstance(holder.get("taking_over"), dict) else {}
    # A holder that has not named its run yet may be this run, starting.
    return holder.get("run_id") in (None, run_id) or taken_over.get("run_id") == run_id


def _as_left_by_dead_run(record: dict, run_dir: Path) -> dict:
    """Return the record of a run whose seedrun ended mid-run (killed, say), with each step as its own record left it.

    run.json still reads "running" and shows the steps as of its last
    update, so the report would show a live run that grows longer at every
    rendering. seedrun rewrites run.json whenever a step record changes, so
    its modification time is the last moment known to be before seedrun
    ended, and it serves as the end of the run and of the steps it cut
    short. Nothing is written here: seedrun resume settles the run.
    """
    files = steprunner.RunFiles(str(run_dir))
    try:
        ended = (run_dir / "run.json").stat().st_mtime
    except OSError:
        ended = time.time()
    steps = []
    for step in record.get("steps") or []:
        own = read_step_record(files, step["name"]) or {}
        status = own.get("status")
        if status in ("running", "waiting") and _process_group_alive(own.get("pid")):
            own = dict(own, reason="still running: its step runner outlived seedrun, and seedrun resume stops it "
                                   "before it runs the step again")
        elif status in ("running", "waiting"):
            started = own.get("started_at")
            finished = max(ended, started) if isinstance(started, (int, float)) else None
            own = dict(own, status="interrupted", finished_at=finished,
                       duration_s=round(finished - started, 3) if finished is not None else None,
                       reason="the run ended without finishing while the step was %s" % status)
        elif status in (None, "pending"):
            own = dict(own, status="not_run", reason="not started: the run ended without finishing")
        fields = {key: own[key] for key in ("status", "exit_code", "signal", "attempts", "queued_at", "started_at",
                                            "finished_at", "duration_s", "reason", "blocked_by", "allowed_failure")
                  if key in own}
        for key in ("queued_at", "started_at", "finished_at"):
            if isinstance(fields.get(key), (int, float)):
                fields[key] = steprunner.iso(fields[key])
        steps.append(dict(step, **fields, outcome=fields.get("status", step.get("status"))))
    error = ("seedrun (PID %s) ended without finishing this run, some time after it last wrote run.json at %s "
             "UTC, so each step is shown as its record was left; seedrun resume records the run interrupted and "
             "runs again what did not succeed" % (record.get("pid"), time.strftime("%H:%M:%S", time.gmtime(ended))))
    return dict(record, status="interrupted", exit_code=None, finished_at=steprunner.iso(ended), steps=steps,
                counts=count_statuses(steps), error=record.get("error") or error)


def _process_group_alive(pid: object) -> bool:
    return isinstance(pid, int) and pid > 1 and group_exists(pid)


def clean(path: str | os.PathLike | None, keep: int | str | None = None) -> list[str]:
    """Delete all but the newest `keep` runs of the pipeline, by default its keep_runs."""
    if keep is not None:
        keep = parse_keep(keep)
    pipeline = load_pipeline(pipeline_path(path))
    deleted = prune_runs(pipeline.logs_dir, pipeline.reports_dir, pipeline.name,
                         pipeline.keep_runs if keep is None else keep, current=None)
    if not deleted or not pipeline.reports_dir.exists():
        return deleted
    remaining = list_runs(pipeline.logs_dir, pipeline.name)
    if not (pipeline.reports_dir / "latest.html").exists():
        # latest.html showed a deleted run. The newest run left whose report renders replaces it,
        # and rewrites the index with it.
        for run_id, _ in reversed(remaining):
            try:
                report(pipeline.path, run_id)
                return deleted
            except SeedrunError as error:
                log.warning("cannot render the report of run %s as latest.html: %s", run_id, error)
    from seedrun.report import render_index

    render_index(pipeline.reports_dir, pipeline.logs_dir, pipeline.logs_dir / "history.sqlite3")
    return deleted
