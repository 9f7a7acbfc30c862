"""Run a plan: create the run directory, start make on its rules, watch, finish.

The ``seedrun`` process is the orchestrator. It writes the plan, the steps'
specs and the make rules into ``logs/<run-id>/``. It starts the step launcher
(see launcher.py) and ``make -k`` with JOBS job slots, each in a process group of its
own, and keeps ``run.json`` and the live report current from the step
records while make runs. At the end it turns the final records into the
run's status, exit code, report, history, junit.xml and notification.

Signals: the first SIGINT, SIGTERM or SIGHUP sends SIGTERM to make's process
group, which the launcher's step runners join, so every step runner stops its
command (SIGTERM, then SIGKILL after kill_grace) and records it interrupted.
The second kills everything at once. Either way run.json and the report are
written before the exit.
"""

from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from seedrun import jobslots, launcher
from seedrun import step as steprunner
from seedrun.lock import lock_within, wait_for_step_runners
from seedrun.graph import Plan
from seedrun.errors import SetupError
from seedrun.pipeline import Pipeline, sha256
from seedrun.process import become_subreaper, list_children, pid_alive, prctl_function
from seedrun.records import (RunJsonWriter, count_statuses, extract_metrics, read_run_record, read_step_record,
                             run_status, step_entry, write_json_atomically)
from seedrun.secrets import mask_env, mask_run_record, secret_values

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25
RUN_JSON_SECONDS = 1.0
LIVE_REPORT_SECONDS = 5.0
PR_SET_PDEATHSIG = 1
# Seconds a stopped step runner may take beyond its step's kill_grace to write its record.
STEP_RUNNER_STOP_SECONDS = 5.0
# Seconds spent killing the processes orphaned to seedrun when a run ends.
STRAGGLER_SECONDS = 5.0
# Seconds a second interrupt waits for the console lock before it kills anyway. A step runner
# holds the lock for about a millisecond to write one line, unless it is stopped or the
# console takes no more output.
CONSOLE_HOLD_SECONDS = 2.0
# make's job server keeps its free slots in a pipe of 64 KiB (Linux's default).
MAX_MAKE_JOBS = 65536
# The console names at most this many of the steps that a run never started.
UNREACHED_SHOWN = 5
# The summary names this many failed steps at most; the report lists them all.
FAILED_SHOWN = 10
# An import that takes longer than this is left to finish(), which imports again.
PRELOAD_WAIT_SECONDS = 30.0


def display_path(path: Path) -> str:
    """Return a path as the operator would type it: relative to the current directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except OSError:
        # The working directory was deleted (it was in the workspace).
        return str(path)
    return str(path) if relative.startswith("..") else relative


def new_run_id(logs_dir: Path, pipeline_name: str, claim) -> tuple[str, Path]:
    """Create a fresh run directory named by UTC start time and pipeline; add -2, -3 ... if taken.

    claim(run_id, run_dir) runs before each attempt to create the directory,
    so that the lock names a directory before it exists: a run killed right
    after creating it leaves nothing that the next run cannot find.
    """
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + pipeline_name
    logs_dir.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 1000):
        run_id = base if suffix == 1 else "%s-%d" % (base, suffix)
        claim(run_id, logs_dir / run_id)
        try:
            (logs_dir / run_id).mkdir()
            return run_id, logs_dir / run_id
        except FileExistsError:
            continue
    raise OSError("cannot create a run directory under %s" % logs_dir)


# The largest PID Linux can give: pid_max can be set to at most 2**22 (PID_MAX_LIMIT in proc(5)).
PID_MAX_LIMIT = 4 * 1024 * 1024
# point_latest() renames its link within microseconds. An older link of a
# dead PID is left over, even where the PID is only dead in this PID
# namespace and the logs directory is shared with another one.
STALE_LINK_SECONDS = 60.0


def point_latest(logs_dir: Path, run_id: str) -> None:
    """Point logs/latest at the run, replacing the old link atomically."""
    _remove_stale_latest_links(logs_dir)
    tmp = logs_dir / (".latest.%d" % os.getpid())
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(run_id, tmp)
    os.replace(tmp, logs_dir / "latest")


def _remove_stale_latest_links(logs_dir: Path) -> None:
    """Delete the temporary .latest.PID links that seedrun processes killed inside point_latest() left behind.

    Other entries, whatever their names, are left alone.
    """
    try:
        entries = list(os.scandir(logs_dir))
    except OSError:
        return
    old = time.time() - STALE_LINK_SECONDS
    for entry in entries:
        prefix, _, digits = entry.name.rpartition(".")
        if prefix != ".latest" or not (digits.isascii() and digits.isdigit()) or not entry.is_symlink():
            continue
        pid = int(digits)
        try:
            if 0 < pid <= PID_MAX_LIMIT and not pid_alive(pid) and entry.stat(follow_symlinks=False).st_mtime < old:
                os.unlink(entry.path)
        except OSError:
            pass


def _spec(pipeline: Pipeline, name: str, run_id: str, run_dir: Path, failure_limit: int | None) -> dict:
    step = pipeline.steps[name]
    pool = None
    if step.pool:
        p = pipeline.pools[step.pool]
        pool = {"name": p.name, "size": p.size, "min_interval": p.min_interval,
                "rate_limited_exit_code": p.rate_limited_exit_code, "cooldown": p.cooldown,
                "dir": str(pipeline.logs_dir.resolve() / ".seedrun" / "pools" / p.name)}
    return {
        "command": step.command, "workdir": str(pipeline.workdir.resolve()), "env": step.env,
        "timeout": step.timeout, "retries": step.retries, "retry_delay": step.retry_delay,
        "max_retry_delay": step.max_retry_delay, "retry_on_exit_codes": step.retry_on_exit_codes,
        "kill_grace": step.kill_grace, "pool": pool, "on_failure": step.on_failure,
        "log": str(run_dir / (name + ".log")), "log_display": display_path(run_dir / (name + ".log")),
        "run_id": run_id, "max_failures": failure_limit, "needs": [], "needs_phase": None,
    }


# The spec keys whose change makes a step count as changed on resume.
FINGERPRINT_KEYS = ("command", "workdir", "env", "timeout", "retries", "retry_on_exit_codes", "on_failure", "pool",
                    "retry_delay", "max_retry_delay", "kill_grace")
# The keys of the plans of runs started by seedrun versions that left out
# the last three: the plan.json of such a run has only this fingerprint.
FINGERPRINT_KEYS_V1 = FINGERPRINT_KEYS[:8]


def fingerprint(spec: dict, planned: dict, keys: tuple[str, ...] = FINGERPRINT_KEYS) -> str:
    """Return a digest of what decides a step's behaviour, to detect a changed pipeline file on resume."""
    text = repr([spec.get(k) for k in keys] + [planned["needs"], planned["after"],
                                                planned["needs_phase"], planned["after_phase"]])
    return sha256(text.encode()).hexdigest()[:16]


def build_plan_document(pipeline: Pipeline, plan: Plan, run_id: str, run_dir: Path, jobs: int) -> tuple[dict, dict]:
    """Return plan.json's contents and the per-step specs of a new run."""
    limit = pipeline.failure_limit(len(plan.steps))
    steps, specs = [], {}
    for planned in plan.steps:
        spec = _spec(pipeline, planned.name, run_id, run_dir, limit)
        spec["needs"] = planned.needs
        spec["needs_phase"] = planned.needs_phase
        step = pipeline.steps[planned.name]
        entry = {"name": planned.name, "phase": planned.phase, "command": step.command,
                 "log": planned.name + ".log", "on_failure": step.on_failure, "pool": step.pool,
                 "metrics": step.metrics, "metric_floors": step.metric_floors,
                 "needs": planned.needs, "after": planned.after,
                 "needs_phase": planned.needs_phase, "after_phase": planned.after_phase,
                 "timeout_s": step.timeout, "kill_grace_s": step.kill_grace, "retries": step.retries,
                 "retry_delay_s": step.retry_delay, "max_retry_delay_s": step.max_retry_delay,
                 "retry_on_exit_codes": step.retry_on_exit_codes, "env": mask_env(step.env, pipeline.mask_env)}
        entry["fingerprint"] = fingerprint(spec, entry)
        entry["fingerprint_v1"] = fingerprint(spec, entry, FINGERPRINT_KEYS_V1)
        steps.append(entry)
        specs[planned.name] = spec
    selection = plan.selection
    document = {
        "run_id": run_id, "pipeline": pipeline.name, "pipeline_file": str(pipeline.path),
        "pipeline_sha256": pipeline.sha256, "selection": selection.label(),
        "selection_args": {"names": selection.names, "phases": selection.phases, "pairs": selection.pairs,
                           "targets": selection.targets, "with_needs": selection.with_needs,
                           "enable": selection.enable},
        "jobs": jobs, "logs_dir": str(pipeline.logs_dir.resolve()),
        "reports_dir": str(pipeline.reports_dir.resolve()), "workdir": str(pipeline.workdir.resolve()),
        "mask_env": pipeline.mask_env, "keep_runs": pipeline.keep_runs,
        "notify_on_failure": pipeline.notify_on_failure,
        "phases": [{"name": p.name, "mode": p.mode, "wait": p.wait, "steps": plan.barriers.get(p.name, [
            s for s in p.steps if s in set(plan.names)])} for p in pipeline.phases],
        "barriers": plan.barriers, "steps": steps, "notes": plan.notes,
    }
    return document, specs


def write_run_files(run_dir: Path, document: dict, specs: dict, rules: str) -> None:
    """Write plan.json, the spec file of the steps and phase barriers, and the make rules.

    Every spec goes into one file, because creating a file allocates an
    inode, and on ext4 that took 0.1 ms, and 0.7 ms after many files were
    deleted (measured with an os.open loop on a 2-core VM). A file per step
    would cost more than the step runner's own work, all of it before make
    starts.
    """
    files = steprunner.RunFiles(str(run_dir))
    for sub in ("records", "stamps", "failed"):
        os.makedirs(os.path.join(files.state, sub), exist_ok=True)
    everything = dict(specs)
    for phase, members in document["barriers"].items():
        everything["phase." + phase] = list(members)
    steprunner.write_atomically(files.specs(), marshal.dumps(everything))
    steprunner.write_atomically(str(run_dir / "rules.mk"), rules.encode())
    write_json_atomically(run_dir / "plan.json", document)


def convert_spec_folder(run_dir: Path) -> None:
    """Write the spec file of a run started by an earlier seedrun, which kept a file per spec in .seedrun/spec/.

    Without it, resuming such a run after an upgrade would fail every step.
    """
    files = steprunner.RunFiles(str(run_dir))
    folder = os.path.join(files.state, "spec")
    if os.path.exists(files.specs()) or not os.path.isdir(folder):
        return
    everything = {name: steprunner.load(os.path.join(folder, name))
                  for name in os.listdir(folder) if not name.endswith(".tmp")}
    steprunner.write_atomically(files.specs(), marshal.dumps(everything))


def read_specs(run_dir: Path, document: dict) -> dict:
    """Return a run's spec file, checked to hold a spec for every planned step and phase barrier.

    Raise ValueError naming the problem: every step runner of a resume
    with such a file would fail.
    """
    path = steprunner.RunFiles(str(run_dir)).specs()
    try:
        everything = marshal.loads(Path(path).read_bytes())
    except (OSError, EOFError, ValueError, TypeError) as error:
        raise ValueError("cannot read %s: %s" % (path, error)) from None
    if not isinstance(everything, dict):
        raise ValueError("%s does not contain the specs of the steps" % path)
    for entry in document["steps"]:
        if not isinstance(everything.get(entry["name"]), dict):
            raise ValueError("%s has no spec of step %s" % (path, entry["name"]))
    for phase in document["barriers"]:
        members = everything.get("phase." + phase)
        if not isinstance(members, list) or not all(isinstance(name, str) for name in members):
            raise ValueError("%s has no member list of phase %s" % (path, phase))
    return everything


def run_secret_values(run_dir: Path, mask_names: list[str], step_names: list[str],
                      extra_envs: Iterable[Mapping[str, str]] = ()) -> list[str]:
    """Return the values a run's records and report mask, longest first.

    They come from seedrun's environment and from the env of each step in
    the run's spec file, which keeps the values that plan.json masks.
    extra_envs adds more step environments, such as those of the pipeline
    file, for a run whose spec file is gone.
    """
    values = secret_values(os.environ, mask_names)
    try:
        specs = steprunner.load(steprunner.RunFiles(str(run_dir)).specs())
    except (OSError, EOFError, ValueError):
        specs = {}
    if not isinstance(specs, dict):
        specs = {}
    for name in step_names:
        spec = specs.get(name)
        if isinstance(spec, dict) and isinstance(spec.get("env"), dict):
            values += secret_values(spec["env"], mask_names)
    for env in extra_envs:
        values += secret_values(env, mask_names)
    return sorted(set(values), key=len, reverse=True)


def refresh_log_display(run_dir: Path, document: dict) -> None:
    """Check the step specs of a run to resume, and make the log paths they print relative to this directory.

    The spec file keeps the paths that the run's first seedrun printed,
    relative to where it ran. A resume started elsewhere would point the
    operator at files that are not there. Raise ValueError as read_specs() does.
    """
    files = steprunner.RunFiles(str(run_dir))
    everything = read_specs(run_dir, document)
    changed = False
    for name, spec in everything.items():
        if isinstance(spec, dict) and "log_display" in spec:
            shown = display_path(run_dir / (name + ".log"))
            changed = changed or spec["log_display"] != shown
            spec["log_display"] = shown
    if changed:
        steprunner.write_atomically(files.specs(), marshal.dumps(everything))


def step_of_process(pid: int, run_dir: Path) -> str | None:
    """Return the SEEDRUN_STEP of a process whose environment names run_dir, or None.

    A step that runs seedrun itself passes its SEEDRUN_STEP on to that
    seedrun's own processes, whose SEEDRUN_RUN_DIR is then another run's.
    """
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            environment = f.read()
    except OSError:
        return None
    variables = dict(entry.partition(b"=")[::2] for entry in environment.split(b"\0") if entry)
    if variables.get(b"SEEDRUN_RUN_DIR") != os.fsencode(str(run_dir)) or b"SEEDRUN_STEP" not in variables:
        return None
    return os.fsdecode(variables[b"SEEDRUN_STEP"])


def find_make() -> str:
    """Return the absolute path of the make that runs the steps, or raise SetupError before anything starts."""
    import shutil

    found = shutil.which("make", path=launcher.environment().get("PATH"))
    if found is None:
        raise SetupError("GNU make was not found on PATH; install it (Debian and Ubuntu: apt install make) "
                         "and run again. Nothing was run.")
    return found


def make_error_line(path: Path, limit: int = 4096) -> str:
    """Return the line of make's log that best explains why make stopped, or "" if the log has none.

    That is the last line with GNU make's error marker "***" within the
    last `limit` bytes, such as "make: *** [rules.mk:25: ...] Killed". It
    is not the last line, which after make -k is often the summary "Target
    'all' not remade because of errors." A log without the marker gives
    its last non-blank line.
    """
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if "***" in line), lines[-1] if lines else "")


def _listed(names: list[str]) -> str:
    """Join the first UNREACHED_SHOWN names with commas, and "..." when there are more."""
    return ", ".join(names[:UNREACHED_SHOWN]) + (", ..." if len(names) > UNREACHED_SHOWN else "")


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        return steprunner.signal_name(-returncode)
    return "exit code %d" % returncode


def _prepare_finish(history_db: Path) -> None:
    """Do what finishing a run needs while make runs, off the critical path.

    That is importing Jinja2 and SQLite, loading the report's templates and
    creating the history database (about 3 ms when it does not exist yet).
    It also records earlier runs that are missing from the history, because
    their end found it locked. finish() imports and connects again, so an
    error here surfaces there, where it is reported.
    """
    try:
        from seedrun import history, junit, report, retention  # noqa: F401

        report.load_templates()
        history.prepare(history_db)
        history.record_missing_runs(history_db)
    except Exception as error:  # noqa: BLE001 - see the docstring
        log.debug("cannot prepare the end of the run: %s", error, exc_info=True)


def ready_together(document: dict, jobs: int) -> int:
    """Estimate how many of the plan's steps become ready at the same moment, at most its job limit.

    Steps at the same depth of the graph (the longest chain of steps and
    phase barriers before them) become ready together when a fan-out starts,
    so the estimate is the number of steps at the most crowded depth. Steps
    at different depths can be ready together too, which it does not count.
    A step that a resume carries over does not run and counts as done. The
    launcher forks that many workers ahead.
    """
    depth: dict[str, int] = {}
    barrier_depth: dict[str, int] = {}
    width: dict[int, int] = {}
    for entry in document["steps"]:
        if entry.get("carried_over"):
            depth[entry["name"]] = -1
            continue
        before = [depth.get(name, -1) for name in entry["needs"] + entry["after"]]
        for phase in (entry["needs_phase"], entry["after_phase"]):
            if phase:
                if phase not in barrier_depth:
                    barrier_depth[phase] = max([depth.get(m, -1) for m in document["barriers"].get(phase, [])] + [-1])
                before.append(barrier_depth[phase])
        level = depth[entry["name"]] = max(before + [-1]) + 1
        width[level] = width.get(level, 0) + 1
    return min(max(width.values(), default=0), jobs)


def hand_over_run(process: subprocess.Popen, run_dir: Path, spares: int) -> int:
    """Create the run's request FIFO and send a spawned launcher its run; return seedrun's fd of the FIFO.

    Raise OSError when the FIFO cannot be created or opened.
    """
    state = run_dir / ".seedrun"
    state.mkdir(exist_ok=True)
    try:
        os.mkfifo(state / launcher.QUEUE, 0o600)
    except FileExistsError:
        pass
    # seedrun keeps the request FIFO open for the whole run, so a request
    # written before the launcher opened it (the stop request, when make has
    # nothing to do) waits in the FIFO instead of being lost.
    queue_fd = os.open(state / launcher.QUEUE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        launcher.hand_over(process, str(run_dir), spares)
    except OSError as error:
        # The launcher died before it got its run, which _watch_make() notices.
        log.info("cannot hand the run to the step launcher (PID %d): %s", process.pid, error)
    return queue_fd


def max_kill_grace(document: dict) -> float:
    """Return the longest kill_grace of the plan's steps, in seconds."""
    return max([entry.get("kill_grace_s") or 0 for entry in document.get("steps", [])] + [0])


def parent_death_setup(number: int):
    """Return a preexec_fn that makes the child get signal `number` if seedrun dies, so nothing orphaned runs on.

    make gets SIGTERM: it stops its recipes, waits for them and exits.
    """
    prctl = prctl_function()

    def setup() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, number)

    return setup


class Interrupts:
    """Count SIGINT, SIGTERM and SIGHUP while a run is live; restore the old handlers after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.saved: dict = {}
        self.saved_wakeup_fd = -1
        # A byte on this pipe wakes select() when a signal arrives; Python
        # retries an interrupted select() after running the handler.
        self.wakeup_fd, self._wakeup_write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def __enter__(self) -> "Interrupts":
        self.saved_wakeup_fd = signal.set_wakeup_fd(self._wakeup_write_fd, warn_on_full_buffer=False)
        for number in steprunner.handled_signals(self.SIGNALS):
            self.saved[number] = signal.signal(number, self._handle)
        # Deliver what arrived while the run directory was being prepared.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)
        return self

    def _handle(self, number: int, frame: object) -> None:
        self.count += 1
        self.first = self.first or number

    def drain(self) -> None:
        try:
            while os.read(self.wakeup_fd, 512):
                pass
        except BlockingIOError:
            pass

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.saved.items():
            signal.signal(number, handler)
        signal.set_wakeup_fd(self.saved_wakeup_fd)
        os.close(self.wakeup_fd)
        os.close(self._wakeup_write_fd)


class Execution:
    """One invocation of make on a run directory, from start to the final record."""

    def __init__(self, run_dir: Path, document: dict, jobs: int, *, resumed: bool = False,
                 launcher: subprocess.Popen | None = None):
        self.run_dir = run_dir
        self.doc = document
        self.jobs = jobs
        self.files = steprunner.RunFiles(str(run_dir))
        self.console = steprunner.Console(self.files.flag("console.lock"))
        self.writer = RunJsonWriter(run_dir, self.console.say, lambda run: mask_run_record(run, self.secret_values()))
        self.records: dict[str, dict | None] = {}
        self.versions: dict[str, tuple] = {}
        self.metrics: dict[str, dict] = {}
        self.resumed = resumed
        self.started_at = time.time()
        # True once the steps must stop, after a signal or a stop_error.
        self.interrupted = False
        # Why seedrun stopped the run itself (the launcher was lost, or make
        # could not start). Such a run failed, because no signal interrupted it.
        self.stop_error: str | None = None
        # Set when make exited before it started every step, which is no stop_error: seedrun did not stop it.
        self.unreached_error: str | None = None
        # Processes of each step that outlived its step runner and that this process killed at the end.
        self.stragglers: dict[str, int] = {}
        self.signalled = False
        # Set when a step was still running as the first interrupt arrived.
        self.running_at_interrupt = False
        self.killed = False
        self.make: subprocess.Popen | None = None
        # The step launcher, spawned before the run was planned (launcher.spawn()), or None.
        self.launcher = launcher
        # seedrun's fd of the launcher's request FIFO.
        self.queue_fd: int | None = None
        self.fallback_used = False
        self.launcher_lost = False
        self.preloader: threading.Thread | None = None
        self.interrupts: Interrupts | None = None
        self.last_report = time.monotonic()
        self.last_write = 0.0
        self.pending_write = False
        # Set when run.json changed after the last live report.
        self.pending_report = False
        self._secrets: list[str] | None = None
        self.run_started_at = self._original_start()

    def _original_start(self) -> str:
        try:
            started = read_run_record(self.run_dir / "run.json", check_steps=False).get("started_at")
        except (OSError, ValueError):
            started = None
        return started or steprunner.iso(time.time())

    # The run

    def execute(self) -> int:
        become_subreaper()
        with Interrupts() as interrupts:
            self.interrupts = interrupts
            self._announce()
            if interrupts.count:
                # Interrupted while the run directory was prepared: start nothing.
                self._on_interrupt(interrupts.count, interrupts.first)
            else:
                try:
                    self._watch_make(interrupts)
                except OSError as error:
                    # The run directory exists, so the run must still end with its record.
                    self._stop_after_error(error)
            self._kill_stragglers()
            code = self.finish()
            # The record is final, so an interrupt from here to the process's
            # exit could only turn this exit code into 130. Such signals stay
            # blocked (and pending) for the rest of the process.
            signal.pthread_sigmask(signal.SIG_BLOCK, Interrupts.SIGNALS)
            return code

    def _stop_after_error(self, error: OSError) -> None:
        """Stop a run that cannot go on (make or the launcher could not start) and record it failed."""
        log.debug("the run stopped on an error", exc_info=True)
        self._stop_run_on_error("cannot run the steps: %s" % error,
                                "Error: cannot run the steps: %s; stopping the run" % error)
        if self.launcher is not None and self.launcher.poll() is None:
            self._stop_launcher()
        for process in (self.make, self.launcher):
            if process is not None and process.poll() is None:
                try:
                    process.wait(max_kill_grace(self.doc) + STEP_RUNNER_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._close_queue()

    def _watch_make(self, interrupts: Interrupts) -> None:
        if self.launcher is not None and self.launcher.poll() is not None:
            # The early launcher ended before it got its run, so the run starts its own.
            log.info("the step launcher started early (PID %d) exited with %s before the run; starting another",
                     self.launcher.pid, _exit_description(self.launcher.returncode))
            self.launcher = None
        if self.launcher is None:
            self.launcher = launcher.spawn()
            if self.launcher is None:
                log.info("no step launcher, each recipe starts its own step runner: no pidfd_open")
        if self.launcher is not None:
            try:
                # The reply FIFOs first: a recipe that opens a missing one creates a plain file.
                self._make_reply_fifos()
                self.queue_fd = hand_over_run(self.launcher, self.run_dir, ready_together(self.doc, self.make_jobs()))
            except OSError as error:
                log.info("no step launcher, each recipe starts its own step runner: cannot create the FIFOs "
                         "in %s: %s", self.files.state, error)
                self.launcher.kill()
                self.launcher.wait()
                self._close_queue()
                self.launcher = None
        self.make = self._start_make()
        # Started after the forks above, so that no fork copies a thread in the middle of an import.
        self.preloader = threading.Thread(target=_prepare_finish, args=(self.history_db,), name="seedrun-preload",
                                          daemon=True)
        self.preloader.start()
        self.refresh(force=True)
        handled = self._wait_for(self.make, interrupts, 0)
        handled = self._handle_interrupts(interrupts, handled)
        if self.make.returncode != 0 and not self.interrupted and self._steps_still_running():
            self._on_make_lost()
        if self.launcher is not None:
            self._stop_launcher()
            handled = self._wait_for(self.launcher, interrupts, handled)
            self._close_queue()
        # The launcher normally exits after its step runners. One that died
        # left them orphaned here, still stopping their steps. Without a
        # launcher, a make killed while its recipes ran step runners did too.
        handled = self._wait_for_step_runners(interrupts, handled)
        self._handle_interrupts(interrupts, handled)

    def _handle_interrupts(self, interrupts: Interrupts, handled: int) -> int:
        """Act on the interrupts that arrived since `handled` of them were; return the count handled now."""
        interrupts.drain()
        if interrupts.count > handled:
            handled = interrupts.count
            self._on_interrupt(handled, interrupts.first)
        return handled

    def _wait_for_step_runners(self, interrupts: Interrupts, handled: int) -> int:
        """Wait until no step runner of the run is left, handling interrupts; return the interrupts handled."""
        deadline = time.monotonic() + max_kill_grace(self.doc) + STEP_RUNNER_STOP_SECONDS
        while not wait_for_step_runners(self.run_dir, 0) and time.monotonic() < deadline:
            select.select([interrupts.wakeup_fd], [], [], 0.05)
            handled = self._handle_interrupts(interrupts, handled)
        return handled

    def _wait_for(self, process: subprocess.Popen, interrupts: Interrupts, handled: int) -> int:
        """Refresh the records until process exits, handling interrupts; return the interrupts handled."""
        watched = [interrupts.wakeup_fd]
        for child in (process, self.launcher):
            if child is not None and child.poll() is None:
                watched.append(os.pidfd_open(child.pid))
        try:
            while process.poll() is None:
                select.select(watched, [], [], REFRESH_SECONDS)
                handled = self._handle_interrupts(interrupts, handled)
                if process is self.make and self.launcher is not None and self.launcher.poll() is not None \
                        and not self.launcher_lost:
                    self._on_launcher_lost()
                self.refresh()
        finally:
            for fd in watched[1:]:
                os.close(fd)
        return handled

    def _make_reply_fifos(self) -> None:
        os.makedirs(os.path.join(self.files.state, launcher.REPLIES), exist_ok=True)
        names = [entry["name"] for entry in self.doc["steps"]]
        names += ["phase." + phase for phase in self.doc["barriers"]]
        for name in names:
            try:
                os.mkfifo(launcher.reply_path(self.files.state, name), 0o600)
            except FileExistsError:
                pass

    def _close_queue(self) -> None:
        if self.queue_fd is not None:
            os.close(self.queue_fd)
            self.queue_fd = None

    def _stop_launcher(self) -> None:
        """Ask the launcher to exit once its step runners have; make has exited, so no request follows."""
        try:
            os.write(self.queue_fd, launcher.STOP_REQUEST + b"\n")
        except OSError as error:
            log.warning("cannot ask the step launcher (PID %d) to stop: %s", self.launcher.pid, error)

    def _on_launcher_lost(self) -> None:
        self.launcher_lost = True
        ended = "exited unexpectedly with %s" % _exit_description(self.launcher.returncode)
        self._stop_run_on_error("the step launcher %s" % ended, "Error: the step launcher (PID %d) %s; stopping "
                                "the run (see make.log in %s)" % (self.launcher.pid, ended, display_path(self.run_dir)))

    def _stop_run_on_error(self, reason: str, message: str) -> None:
        """Record why the run cannot go on, keep the steps not started from starting, and stop the running ones."""
        self.console.say(message)
        self.interrupted = True
        self.stop_error = reason
        try:
            # Step runners read the reason from the flag, for the steps they do not start now.
            steprunner.write_atomically(self.files.flag("interrupted"), reason.encode())
        except OSError as error:
            log.warning("cannot write %s, so steps not started may run: %s", self.files.flag("interrupted"), error)
        self._signal_make(signal.SIGTERM)

    def _steps_still_running(self) -> bool:
        self.reload_records()
        return any(record and record.get("status") in ("running", "waiting") for record in self.records.values())

    def _on_make_lost(self) -> None:
        """Stop the steps that still run after make exited without waiting for them.

        make waits for its recipes unless something kills it, or kills a
        recipe, or it fails itself (GNU make 4.3 can exit 2 with "wait: No
        child processes" on SIGTERM). A recipe only waits for a launcher
        worker, which runs the step on. The worker is in make's process group
        while it runs a step, and the group outlives make, so SIGTERM to the
        group stops the step as it would stop a recipe.
        """
        ended = "exited unexpectedly with %s" % _exit_description(self.make.returncode)
        self._stop_run_on_error("make %s" % ended, "Error: make (PID %d) %s while steps were running; stopping "
                                "them (see make.log in %s)" % (self.make.pid, ended, display_path(self.run_dir)))

    def _announce(self) -> None:
        count = len(self.doc["steps"])
        verb = "Resuming" if self.resumed else "Run"
        carried = sum(1 for entry in self.doc["steps"] if entry.get("carried_over"))
        # A resume names the steps it keeps, or "9 steps" would read as nine to run.
        split = " (%d carried over, %d to run)" % (carried, count - carried) if carried else ""
        self.console.say("%s %s: %d step%s%s, up to %d at once (logs: %s/)" % (
            verb, self.doc["run_id"], count, "" if count == 1 else "s", split, self.jobs,
            display_path(self.run_dir)))
        for note in self.doc.get("notes", []):
            self.console.say("Note: " + note)

    def make_jobs(self) -> int:
        """Return make's -j: the job limit, but no more slots than recipes.

        More would change nothing, and the job server holds one byte per
        slot in a FIFO of 64 KiB on Linux, so more slots would block the
        write that fills it.
        """
        return max(1, min(self.jobs, len(self.doc["steps"]) + len(self.doc["barriers"]), MAX_MAKE_JOBS))

    def _start_make(self) -> subprocess.Popen:
        # No -j here: make takes its job slots from seedrun's job server (see
        # jobslots.py), into which a waiting step lends its own slot.
        command = [find_make(), "-f", "rules.mk", "-k", "-r", "-R", "-s", "--no-print-directory", "all"]
        if self.launcher is not None:
            command.append("SEEDRUN_LAUNCHER=1")
        env = launcher.environment()
        job_fds = jobslots.create(self.files.flag(jobslots.FIFO_NAME), self.make_jobs() - 1)
        env["MAKEFLAGS"] = jobslots.makeflags(*job_fds)
        make_log = open(self.run_dir / "make.log", "ab")
        try:
            process = subprocess.Popen(command, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stderr=make_log,
                                       pass_fds=job_fds, process_group=0,
                                       preexec_fn=parent_death_setup(signal.SIGTERM))
        finally:
            make_log.close()
            for fd in job_fds:
                os.close(fd)
        steprunner.write_atomically(self.files.flag("make.pid"), str(process.pid).encode())
        return process

    def _on_interrupt(self, count: int, number: int | None) -> None:
        if not self.signalled:
            # Such a step may still end with an outcome decided before the interrupt (a timeout inside its
            # kill_grace), and the run is interrupted all the same.
            self.running_at_interrupt = self._steps_still_running()
        self.interrupted = True
        self.signalled = True
        steprunner.touch(self.files.flag("interrupted"))
        if count == 1:
            name = signal.Signals(number).name if number else "a signal"
            self.console.say("Interrupted by %s: stopping the running steps (SIGTERM, then SIGKILL after their "
                             "kill_grace); send it again to kill them at once" % name)
            self._signal_make(signal.SIGTERM)
            return
        self.killed = True
        console_lock = self._hold_console()
        try:
            # The launcher goes first: it would otherwise start to finish the steps
            # of the workers killed below and die halfway, leaving a record without
            # a footer. settle_records() finishes those steps instead.
            if self.launcher is not None and self.launcher.poll() is None:
                self.launcher.kill()
            self._signal_make(signal.SIGKILL)
            self._kill_running_steps()
        finally:
            if console_lock is not None:
                os.close(console_lock)
        # Printed once the kill is sent, because the console can be held up (a stopped step runner
        # that holds its lock, a paused pager), and the kill waits for it CONSOLE_HOLD_SECONDS at most.
        self.console.say("Killing the running steps now")

    def _hold_console(self) -> int | None:
        """Take the console lock, waiting CONSOLE_HOLD_SECONDS at most; return the fd that holds it, or None.

        A step runner writes its Interrupted line and marks its record under
        this lock. Killed between the two, it would leave the mark out, and
        settle_records() would print the line again. A step runner stopped
        with the lock held (SIGSTOP, or a console that takes no more output)
        must not keep the kill waiting, hence the limit.
        """
        try:
            fd = os.open(self.files.flag("console.lock"), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            if lock_within(fd, CONSOLE_HOLD_SECONDS, 0.005):
                return fd
        except OSError:
            pass
        os.close(fd)
        return None

    def _signal_make(self, number: int) -> None:
        if self.make is None:
            return
        try:
            os.killpg(self.make.pid, number)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_running_steps(self) -> None:
        for name in self.records:
            record = read_step_record(self.files, name)
            if record and record.get("pid"):
                try:
                    os.killpg(record["pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _kill_stragglers(self) -> None:
        """Kill and reap the processes orphaned to this process (a subreaper), with their process groups.

        Killing one orphan can orphan its own children, which then re-parent
        here, so the search repeats until none is left (or STRAGGLER_SECONDS
        have passed).
        """
        deadline = time.monotonic() + STRAGGLER_SECONDS
        while time.monotonic() < deadline:
            children = list_children()
            if not children:
                return
            for pid in children:
                self._count_straggler(pid)
                try:
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in children:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def _count_straggler(self, pid: int) -> None:
        """Count a process of a step that left the step's process group, as the step runner counts leftovers.

        The rest of the step's group was killed with the step's command, and
        dying members of it can still show up here before they are reaped.
        """
        step = step_of_process(pid, self.run_dir)
        if step is None or step not in self.records:
            return
        record = read_step_record(self.files, step) or {}
        # Without the command's PID, the command cannot be distinguished from what it left behind.
        if not record.get("pid"):
            return
        try:
            if os.getpgid(pid) == record["pid"]:
                return
        except OSError:
            return
        self.stragglers[step] = self.stragglers.get(step, 0) + 1

    # Records

    def refresh(self, force: bool = False) -> None:
        """Reload step records that changed; rewrite run.json and the live report if any did.

        run.json is rewritten at most once per RUN_JSON_SECONDS and the live
        report once per LIVE_REPORT_SECONDS, so that a run of many short steps
        spends its CPU on the steps.
        """
        changed = force
        # A step runner writes there only when the run directory cannot be written.
        self.fallback_used = self.fallback_used or os.path.isdir(self.files.fallback_record(""))
        for entry in self.doc["steps"]:
            name = entry["name"]
            version = self._record_version(name)
            if version != self.versions.get(name):
                self.versions[name] = version
                self.records[name] = read_step_record(self.files, name) if version else None
                changed = True
        self.pending_write = self.pending_write or changed
        now = time.monotonic()
        run = None
        if self.pending_write and (force or now - self.last_write >= RUN_JSON_SECONDS):
            self.pending_write = False
            self.last_write = now
            run = self.assemble(status="running")
            self.writer.write(run)
            self.pending_report = True
        # The first live report waits LIVE_REPORT_SECONDS too: a short run
        # gets its final report a moment later anyway. A change deferred here
        # is rendered once that time has passed, even when no step record
        # changes after it, so that latest.html does not keep showing the
        # previous run while a long step runs.
        if self.pending_report and now - self.last_report >= LIVE_REPORT_SECONDS:
            self.pending_report = False
            self.last_report = now
            self._render_report(run or self.assemble(status="running"), live=True)

    def _record_version(self, name: str) -> tuple:
        """Identify the current version of a step's record files.

        The step runner replaces a record by renaming a new file over it, so
        the inode changes with every write. File times alone are too coarse
        on some file systems to tell two writes apart.
        """
        version = []
        paths = [self.files.record(name)]
        if self.fallback_used:
            paths.append(self.files.fallback_record(name))
        for path in paths:
            try:
                info = os.stat(path)
                version.append((info.st_ino, info.st_mtime_ns, info.st_size))
            except OSError:
                version.append(None)
        return tuple(version) if any(version) else ()

    def assemble(self, status: str, exit_code: int | None = None, finished: float | None = None) -> dict:
        steps = [step_entry(entry, self.records.get(entry["name"]), self.metrics.get(entry["name"]))
                 for entry in self.doc["steps"]]
        return {
            "run_id": self.doc["run_id"], "pipeline": self.doc["pipeline"], "selection": self.doc["selection"],
            "pipeline_file": self.doc["pipeline_file"], "pipeline_sha256": self.doc["pipeline_sha256"],
            "host": os.uname().nodename, "pid": os.getpid(), "jobs": self.jobs,
            "status": status, "started_at": self.run_started_at,
            "finished_at": steprunner.iso(finished) if finished else None, "exit_code": exit_code,
            "resumed_at": list(self.doc.get("resumed_at", [])), "mask_env": self.doc["mask_env"],
            # Why the run failed beyond its steps (make or the step launcher died); else None.
            "error": self.stop_error or self.unreached_error,
            "phases": self.doc["phases"], "counts": count_statuses(steps), "steps": steps,
        }

    # Finishing

    def reload_records(self) -> None:
        """Read every step's record again, regardless of file times."""
        for entry in self.doc["steps"]:
            self.records[entry["name"]] = read_step_record(self.files, entry["name"])

    def finish(self) -> int:
        if self.preloader is not None:
            self.preloader.join(PRELOAD_WAIT_SECONDS)
        self.reload_records()
        self.settle_records()
        for name, count in self.stragglers.items():
            record = self.records.get(name)
            if record:
                self.records[name] = dict(record, leftovers_killed=(record.get("leftovers_killed") or 0) + count)
        for entry in self.doc["steps"]:
            record = self.records.get(entry["name"]) or {}
            if entry["metrics"] and record.get("status") in ("succeeded", "failed", "timed_out"):
                self.metrics[entry["name"]] = extract_metrics(self.run_dir / entry["log"], entry["metrics"])
        draft = self.assemble(status="running")
        status, code = run_status(draft["steps"], self.signalled or (self.interrupted and not self.stop_error),
                                  self.running_at_interrupt)
        finished = time.time()
        run = self.assemble(status=status, exit_code=code, finished=finished)
        self._add_warnings(run)
        self.writer.write(run)
        self._prune()
        self.write_companions(run)
        # The run's own duration, as run.json records it: writing the history can wait for a locked database.
        self._summarize(run, finished - self.started_at)
        self._notify(run)
        return code

    def settle_records(self) -> None:
        """Give every step a final status, even when its step runner never wrote one."""
        unreached = []
        stopped = []
        for entry in self.doc["steps"]:
            name = entry["name"]
            record = self.records.get(name)
            if record is None or record.get("status") == "pending":
                if self.stop_error and not self.signalled:
                    reason = "not started: %s" % self.stop_error
                    stopped.append(name)
                elif self.interrupted:
                    reason = "not started: the run was interrupted"
                else:
                    reason = "not started: make did not reach it (see make.log in the run directory)"
                    unreached.append(name)
                self.records[name] = dict(record or {}, status="not_run", reason=reason)
            elif self.killed and record.get("status") == "running" and record.get("ended_command"):
                # The second interrupt killed the step runner while it stopped the leftovers of a command
                # that had ended, so the step keeps the command's outcome. The leftovers died with that interrupt
                # or as this process's stragglers.
                leftovers = max(record["ended_command"]["leftovers"], self.stragglers.pop(name, 0))
                steprunner.StepRunner(str(self.run_dir), name).finish_ended_command(record, leftovers)
                self.records[name] = read_step_record(self.files, name)
            elif self.killed and record.get("status") == "interrupted" and not record.get("announced"):
                # The second interrupt killed the step runner after it recorded the step, before its line.
                self._say_settled(name, dict(record, reason=None), display_path(self.run_dir / entry["log"]))
            elif record.get("status") in ("running", "waiting"):
                status = "interrupted" if self.interrupted else "failed"
                if self.killed:
                    reason = "killed at once with SIGKILL by a second interrupt"
                else:
                    reason = record.get("reason") or "the step runner ended without a record of the outcome " \
                                                     "(see make.log)"
                finished = time.time()
                started = record.get("started_at")
                self.records[name] = dict(record, status=status, finished_at=finished, reason=reason,
                                          duration_s=round(finished - started, 3) if started else None,
                                          signal="SIGKILL" if self.killed else record.get("signal"))
                started_log = record.get("status") == "running"
                if started_log:
                    # The step runner died before its footer. Nothing writes to the log any more,
                    # because a second interrupt killed the command or the run killed it as a leftover.
                    if not steprunner.append_footer(self.run_dir / entry["log"], self.records[name]):
                        log.warning("cannot write the footer of %s", self.run_dir / entry["log"])
                if self.make is not None:
                    # No step runner is left to print how the step ended. A step that was
                    # waiting for a pool slot has no log to point to.
                    log_display = display_path(self.run_dir / entry["log"]) if started_log else None
                    self._say_settled(name, self.records[name], log_display)
        if unreached:
            self._explain_unreached(unreached)
        if stopped:
            count = "" if len(stopped) <= UNREACHED_SHOWN else "%d steps: " % len(stopped)
            self.console.say("Not run: %s%s (not started: %s)" % (count, _listed(stopped), self.stop_error))

    def _say_settled(self, name: str, record: dict, log_display: str | None) -> None:
        see = " (see %s)" % log_display if log_display else ""
        if record["status"] == "interrupted":
            duration = record["duration_s"]
            self.console.say("Interrupted: %s after %s%s%s" % (
                name, "an unknown time" if duration is None else steprunner.format_duration(duration),
                ", " + record["reason"] if record.get("reason") else "", see))
        else:
            self.console.say("Failed: %s, %s%s" % (name, record["reason"], see))

    def _explain_unreached(self, names: list[str]) -> None:
        """Say on the console that make ended before it started some steps, with make's last message."""
        ended = "ended" if self.make is None or self.make.returncode is None else \
            "exited with %s" % _exit_description(self.make.returncode)
        message = make_error_line(self.run_dir / "make.log")
        self.unreached_error = "make %s before it started %d step%s%s" % (
            ended, len(names), "" if len(names) == 1 else "s", ": " + message if message else "")
        self.console.say("Error: make %s before it started %d step%s (%s)%s; see %s" % (
            ended, len(names), "" if len(names) == 1 else "s", _listed(names),
            ": " + message if message else "", display_path(self.run_dir / "make.log")))

    def _add_warnings(self, run: dict) -> None:
        try:
            from seedrun.history import metric_warnings

            warnings = metric_warnings(self.history_db, run)
        except Exception as error:  # noqa: BLE001 - warnings must never lose the run record
            log.warning("cannot compute metric warnings: %s", error)
            return
        for step in run["steps"]:
            step["warnings"] = warnings.get(step["name"], [])
            # "status" keeps its documented values; this names the nuance.
            if step["warnings"] and step["status"] == "succeeded":
                step["outcome"] = "succeeded with warnings"

    def secret_values(self) -> list[str]:
        """Values to mask: secret-looking variables of seedrun's environment and of the steps' env."""
        if self._secrets is None:
            names = [entry["name"] for entry in self.doc["steps"]]
            self._secrets = run_secret_values(self.run_dir, self.doc.get("mask_env", []), names)
        return self._secrets

    @property
    def history_db(self) -> Path:
        return Path(self.doc["logs_dir"]) / "history.sqlite3"

    def write_companions(self, run: dict) -> None:
        """Write junit.xml, the history rows and the report of a finished run."""
        from seedrun import history, junit

        values = self.secret_values()
        if self.run_dir.is_dir():
            companions = [("junit.xml", lambda: junit.write_junit(run, self.run_dir, self.run_dir / "junit.xml",
                                                                  secret_values=values))]
        else:
            # Deleted during the run: writing junit.xml would create it again, holding only that file.
            self.console.say("Warning: cannot write junit.xml: the run directory %s no longer exists"
                             % display_path(self.run_dir))
            companions = []
        if self.history_db.parent.is_dir():
            companions.append(("the run history", lambda: history.record_run(self.history_db, run,
                                                                             on_wait=self._say_history_wait)))
        else:
            # The logs directory went with its workspace; writing the history would create it again.
            self.console.say("Warning: cannot record the run in %s: %s no longer exists"
                             % (self.history_db, self.history_db.parent))
        for target, action in companions:
            try:
                action()
            except Exception as error:  # noqa: BLE001 - a companion file must not fail the run
                self.console.say("Warning: cannot write %s: %s" % (target, error))
        self._render_report(run, live=False)

    def _say_history_wait(self, seconds: float) -> None:
        # Interrupts are not acted on any more, so without this line the console would look hung.
        self.console.say("Waiting up to %s to record the run in %s, which another process has locked "
                         "(run.json is written)" % (steprunner.format_duration(seconds), display_path(self.history_db)))

    def _render_report(self, run: dict, live: bool) -> Path | None:
        logs_dir = Path(self.doc["logs_dir"])
        if not logs_dir.is_dir():
            # The workspace was deleted or moved during the run (the run created logs_dir at its start),
            # and rendering would create its folders again. A reports_dir not created yet is made below.
            if not live:
                self.console.say("Warning: cannot write the report: %s no longer exists" % logs_dir)
            return None
        try:
            from seedrun import report

            return report.render_run(run, self.run_dir, Path(self.doc["reports_dir"]), history_db=self.history_db,
                                     live=live, secret_values=self.secret_values())
        except Exception as error:  # noqa: BLE001 - the report must never lose the run record
            if not live:
                self.console.say("Warning: cannot write the report: %s" % error)
            log.debug("cannot render the report: %s", error, exc_info=True)
            return None

    def _summarize(self, run: dict, seconds: float) -> None:
        steps = run["steps"]
        counts = ", ".join(self._count_text(status, number, steps) for status, number in sorted(run["counts"].items()))
        duration = steprunner.format_duration(seconds)
        self.console.say("Run %s %s in %s: %s" % (run["run_id"], run["status"], duration, counts))
        failed = [s for s in steps if s["status"] in ("failed", "timed_out")]
        if failed:
            more = len(failed) - FAILED_SHOWN
            self.console.say("Failed steps: " + ", ".join(
                "%s (%s%s)" % (s["name"], s["reason"] or s["status"], ", allowed" if s["allowed_failure"] else "")
                for s in failed[:FAILED_SHOWN]) + (" and %d more (see the report)" % more if more > 0 else ""))
        for step in steps:
            if step["warnings"]:
                self.console.say("Warning: %s succeeded with warnings: %s" % (step["name"], "; ".join(step["warnings"])))
        report = Path(self.doc["reports_dir"]) / ("%s.html" % run["run_id"])
        if report.exists():
            self.console.say("Report: %s" % display_path(report))

    @staticmethod
    def _count_text(status: str, number: int, steps: list[dict]) -> str:
        """Return "2 failed", or "2 failed (1 allowed)" when on_failure = "ignore" let some of them fail."""
        allowed = sum(1 for step in steps if step["status"] == status and step["allowed_failure"])
        text = "%d %s" % (number, status.replace("_", " "))
        return text + (" (%d allowed)" % allowed if allowed else "")

    def _notify(self, run: dict) -> None:
        command = self.doc.get("notify_on_failure")
        if not command or run["status"] == "succeeded":
            return
        from seedrun.notify import notify

        interrupts = self.interrupts
        handled = interrupts.count if interrupts else 0
        notify(command, run, self.run_dir, Path(self.doc["reports_dir"]), Path(self.doc["workdir"]), self.console.say,
               lambda: interrupts is not None and interrupts.count > handled)
        # What the command started outside its process group (setsid) is orphaned to seedrun, a subreaper.
        self._kill_stragglers()

    def _prune(self) -> None:
        from seedrun.retention import prune_runs

        try:
            prune_runs(Path(self.doc["logs_dir"]), Path(self.doc["reports_dir"]), self.doc["pipeline"],
                       self.doc["keep_runs"], current=self.doc["run_id"])
        except OSError as error:
            self.console.say("Warning: cannot delete old runs: %s" % error)
