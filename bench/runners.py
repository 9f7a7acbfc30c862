"""The runners: each turns a scenario into files in a scratch directory and one command to time.

Peer runners (the shell floor, GNU make, GNU parallel, doit, Node.js) write
each step's output to ``logs/NAME.log`` in their scratch directory, as
seedrun does in its run directory. The bench checks every runner's result
after the timed command, so a runner that skipped work cannot look fast.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.workloads import Par, Scenario, Seq, Task, prerequisites, tasks

ROOT = Path(__file__).resolve().parent.parent
# Variables that GNU make sets for its recipes. `make bench` runs the harness
# as a recipe, and a make started from it must not join that make's jobserver.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR",
                  "MAKE_RESTARTS", "MAKEFILES")
NODE_MAX_BUFFER_BYTES = 1024 * 1024 * 1024


class RunFailed(Exception):
    """A measured command exited non-zero, timed out or did not do all of its work."""


@dataclass
class Launch:
    """The command to time, with its working directory and extra environment variables."""

    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    """One timed run: wall seconds, peak resident memory of the command, and runner-specific figures."""

    wall: float
    maxrss_kb: int
    figures: dict[str, float] = field(default_factory=dict)


def clean_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in MAKE_VARIABLES + ("SEEDRUN_PIPELINE",):
        env.pop(name, None)
    return env


def run_timed(launch: Launch, output: Path, timeout: float) -> tuple[float, int, int]:
    """Run a command with stdout and stderr into `output`; return (wall seconds, exit code, peak RSS in KiB).

    The command runs in a session of its own, which is killed whole when it
    runs longer than `timeout` seconds. os.wait4 returns the resource usage of
    this child and the descendants it waited for, so the peak RSS is the
    largest of those processes.
    """
    env = clean_environment()
    env.update(launch.env)
    with open(output, "wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(launch.command, cwd=launch.cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        kill()
        process.wait()
        raise
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if expired.is_set():
        raise RunFailed("timed out after %.0f s" % timeout)
    return wall, process.returncode, usage.ru_maxrss


def output_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def log_line(task: Task) -> str:
    """Return the step's command with its output redirected into logs/NAME.log, as one shell command line."""
    return "%s > logs/%s.log 2>&1" % (task.command, task.name)


class Runner:
    """A tool that runs scenarios. Subclasses write the tool's input files and return the command to time."""

    name = ""
    label = ""

    def missing(self) -> str | None:
        """Return why the tool cannot run on this machine, or None when it can."""
        return None

    def unsupported(self, scenario: Scenario) -> str | None:
        """Return why the tool cannot express this scenario, or None when it can."""
        return None

    def version(self) -> str:
        return ""

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        raise NotImplementedError

    def verify(self, scenario: Scenario, workdir: Path) -> str | None:
        """Return what is wrong with the run's results, or None when every step left its log."""
        return check_logs(scenario, workdir / "logs")

    def figures(self, workdir: Path) -> dict[str, float]:
        return {}

    def diagnostics(self, workdir: Path) -> str:
        """Return what the tool logged beyond its output, for the note on a failed run."""
        return ""


def check_logs(scenario: Scenario, logs: Path) -> str | None:
    expected = tasks(scenario.program)
    missing = [task.name for task in expected if not (logs / (task.name + ".log")).exists()]
    if missing:
        return "%d of %d step logs are missing, for example %s" % (len(missing), len(expected), missing[0])
    if scenario.expected_log_bytes:
        for task in expected:
            size = (logs / (task.name + ".log")).stat().st_size
            if size < scenario.expected_log_bytes:
                return "log of %s has %d bytes, expected at least %d" % (task.name, size,
                                                                          scenario.expected_log_bytes)
    return None


def first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=clean_environment())
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


# ------------------------------------------------------------------ the floor


class ShellFloor(Runner):
    """/bin/sh -c per step: a shell script for chains and groups, xargs -P as the pool."""

    name = "sh"
    label = "sh (floor)"

    def unsupported(self, scenario: Scenario) -> str | None:
        if scenario.program is None:
            return "no shell steps in this workload"
        if _has_pool(scenario.program, scenario.jobs) and not _is_flat_pool(scenario.program):
            return "a job limit inside a nested group needs a scheduler, which the floor does not have"
        return None

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "logs").mkdir()
        program = scenario.program
        if isinstance(program, Task):
            return Launch(["/bin/sh", "-c", log_line(program)], workdir)
        if _is_flat_pool(program) and _has_pool(program, scenario.jobs):
            (workdir / "steps.txt").write_text("".join(log_line(task) + "\n" for task in program.items))
            return Launch(["xargs", "-d", "\\n", "-a", "steps.txt", "-P", str(scenario.jobs), "-I", "CMD",
                           "/bin/sh", "-c", "CMD"], workdir)
        script = ["set -u"] + _shell_lines(program, "")
        (workdir / "floor.sh").write_text("\n".join(script) + "\n")
        return Launch(["/bin/sh", "floor.sh"], workdir)


def _has_pool(node, jobs: int) -> bool:
    """True when some group has more items than the job limit allows at once."""
    if isinstance(node, Task):
        return False
    if isinstance(node, Par) and len(node.items) > jobs:
        return True
    return any(_has_pool(item, jobs) for item in node.items)


def _is_flat_pool(node) -> bool:
    return isinstance(node, Par) and all(isinstance(item, Task) for item in node.items)


def _shell_lines(node, indent: str) -> list[str]:
    if isinstance(node, Task):
        return ["%s/bin/sh -c %s || exit 1" % (indent, shlex.quote(log_line(node)))]
    if isinstance(node, Seq):
        return [line for item in node.items for line in _shell_lines(item, indent)]
    lines = []
    for item in node.items:
        lines.append(indent + "{")
        lines += _shell_lines(item, indent + "  ")
        lines.append(indent + "} &")
    lines.append(indent + "wait")
    return lines


# ------------------------------------------------------------------ GNU make


class Make(Runner):
    """GNU make with one rule per step: the command redirected into its log, then a stamp file."""

    name = "make"
    label = "make"

    def missing(self) -> str | None:
        return None if shutil.which("make") else "GNU make not found on PATH"

    def version(self) -> str:
        return first_line(["make", "--version"])

    def unsupported(self, scenario: Scenario) -> str | None:
        return None if scenario.program is not None else "no shell steps in this workload"

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "logs").mkdir()
        (workdir / "stamps").mkdir()
        order = tasks(scenario.program)
        needs = prerequisites(scenario.program)
        lines = ["SHELL := /bin/sh", ".SUFFIXES:", ".PHONY: all",
                 "all: " + " ".join("stamps/%s" % task.name for task in order), ""]
        for task in order:
            lines.append("stamps/%s: %s" % (task.name, " ".join("stamps/%s" % name for name in needs[task.name])))
            lines.append("\t%s && : > $@" % log_line(task).replace("$", "$$"))
        (workdir / "Makefile").write_text("\n".join(lines) + "\n")
        return Launch(["make", "-f", "Makefile", "-j", str(scenario.jobs), "-k", "-r", "-R", "-s", "all"], workdir)


# ------------------------------------------------------------------ GNU parallel


class GnuParallel(Runner):
    """GNU parallel with --joblog: one invocation per stage of the program.

    GNU parallel has no dependency graph. A chain runs as one invocation with
    -j1. A group runs as one invocation whose lines may be short chains
    (``a && b``). A sequence of those becomes a shell script of invocations.
    """

    name = "parallel"
    label = "GNU parallel"

    def missing(self) -> str | None:
        if not shutil.which("parallel"):
            return "GNU parallel not found on PATH (Debian package: parallel)"
        if "GNU parallel" not in first_line(["parallel", "--version"]):
            return "the `parallel` on PATH is not GNU parallel (moreutils ships another one)"
        return None

    def version(self) -> str:
        return first_line(["parallel", "--version"])

    def unsupported(self, scenario: Scenario) -> str | None:
        if scenario.program is None:
            return "no shell steps in this workload"
        try:
            _parallel_stages(scenario.program, scenario.jobs)
        except ValueError as error:
            return str(error)
        return None

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "logs").mkdir()
        script = ["set -u"]
        for number, (jobs, halt, lines) in enumerate(_parallel_stages(scenario.program, scenario.jobs), start=1):
            stage = "stage%d.txt" % number
            (workdir / stage).write_text("".join(line + "\n" for line in lines))
            options = "-j %d%s --joblog joblog%d.txt" % (jobs, " --halt now,fail=1" if halt else "", number)
            script.append("parallel %s :::: %s || exit 1" % (options, stage))
        (workdir / "stages.sh").write_text("\n".join(script) + "\n")
        return Launch(["/bin/sh", "stages.sh"], workdir)


def _flatten(node) -> list:
    """Return the items of nested sequences as one list; a task or group stays whole."""
    if isinstance(node, Seq):
        return [leaf for item in node.items for leaf in _flatten(item)]
    return [node]


def _parallel_stages(program, jobs: int) -> list[tuple[int, bool, list[str]]]:
    """Split a program into GNU parallel invocations: (job limit, halt on failure, command lines)."""
    stages: list[tuple[int, bool, list[str]]] = []
    chain: list[str] = []
    for item in _flatten(program):
        if isinstance(item, Task):
            chain.append(log_line(item))
            continue
        if chain:
            stages.append((1, True, chain))
            chain = []
        lines = []
        for branch in item.items:
            steps = _flatten(branch)
            if not all(isinstance(step, Task) for step in steps):
                raise ValueError("GNU parallel cannot express a group nested inside a group")
            lines.append(" && ".join(log_line(step) for step in steps))
        stages.append((min(jobs, len(lines)), False, lines))
    if chain:
        stages.append((1, True, chain))
    return stages


# ------------------------------------------------------------------ doit


class Doit(Runner):
    """doit with a generated dodo.py: one task per step, task_dep for prerequisites."""

    name = "doit"
    label = "doit"

    def missing(self) -> str | None:
        if importlib.util.find_spec("doit") is None:
            return "doit is not installed in %s (pip install doit)" % sys.prefix
        return None

    def version(self) -> str:
        from importlib.metadata import version

        return "doit " + version("doit")

    def unsupported(self, scenario: Scenario) -> str | None:
        return None if scenario.program is not None else "no shell steps in this workload"

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "logs").mkdir()
        needs = prerequisites(scenario.program)
        steps = [(task.name, log_line(task), needs[task.name]) for task in tasks(scenario.program)]
        dodo = [
            "# Generated by python -m bench.",
            'DOIT_CONFIG = {"verbosity": 0}',
            "STEPS = %s" % json.dumps(steps, indent=0),
            "",
            "",
            "def task_step():",
            "    for name, command, needs in STEPS:",
            '        yield {"name": name, "actions": [command], "task_dep": ["step:" + need for need in needs]}',
        ]
        (workdir / "dodo.py").write_text("\n".join(dodo) + "\n")
        command = [sys.executable, "-m", "doit", "run", "-f", "dodo.py", "--db-file", ".doit.db"]
        if scenario.jobs > 1:
            command += ["-n", str(scenario.jobs)]
        return Launch(command, workdir)


# ------------------------------------------------------------------ Node.js

NODE_ORCHESTRATOR = r"""'use strict';
// Generated by python -m bench: one child_process.exec per step, awaited
// chains, and Promise.allSettled over a pool of workers for parallel groups.
const { exec } = require('child_process');
const fs = require('fs');

const program = JSON.parse(fs.readFileSync('program.json', 'utf8'));
const JOBS = Number(process.argv[2]);
const MAX_BUFFER = Number(process.argv[3]);

function runStep(step) {
  return new Promise((resolve, reject) => {
    exec(step.command, { maxBuffer: MAX_BUFFER, encoding: 'buffer' }, (error, stdout, stderr) => {
      fs.writeFile(step.log, Buffer.concat([stdout, stderr]), (writeError) => {
        if (error || writeError) {
          reject(error || writeError);
        } else {
          resolve();
        }
      });
    });
  });
}

async function run(node) {
  if (node.kind === 'task') {
    return runStep(node);
  }
  if (node.kind === 'seq') {
    for (const item of node.items) {
      await run(item);
    }
    return;
  }
  let next = 0;
  const worker = async () => {
    while (next < node.items.length) {
      const item = node.items[next];
      next += 1;
      await run(item);
    }
  };
  const workers = Array.from({ length: Math.min(JOBS, node.items.length) }, worker);
  const results = await Promise.allSettled(workers);
  const failed = results.filter((result) => result.status === 'rejected');
  if (failed.length) {
    throw failed[0].reason;
  }
}

run(program).then(
  () => process.exit(0),
  (error) => {
    console.error(String(error && error.message ? error.message : error));
    process.exit(1);
  },
);
"""


class NodeJs(Runner):
    """A Node.js orchestrator in the style of the system seedrun replaced.

    Each step is one child_process.exec whose collected stdout and stderr are
    written to the step's log when it ends, so output is held in memory.
    """

    name = "node"
    label = "Node.js"

    def missing(self) -> str | None:
        return None if shutil.which("node") else "Node.js (node) not found on PATH"

    def version(self) -> str:
        return "Node.js " + first_line(["node", "--version"])

    def unsupported(self, scenario: Scenario) -> str | None:
        return None if scenario.program is not None else "no shell steps in this workload"

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "logs").mkdir()
        (workdir / "program.json").write_text(json.dumps(_node_tree(scenario.program)))
        (workdir / "orchestrator.js").write_text(NODE_ORCHESTRATOR)
        return Launch(["node", "orchestrator.js", str(scenario.jobs), str(NODE_MAX_BUFFER_BYTES)], workdir)


def _node_tree(node) -> dict:
    if isinstance(node, Task):
        return {"kind": "task", "command": node.command, "log": "logs/%s.log" % node.name}
    kind = "seq" if isinstance(node, Seq) else "par"
    return {"kind": kind, "items": [_node_tree(item) for item in node.items]}


# ------------------------------------------------------------------ seedrun


def seedrun_executable() -> Path | None:
    """Return the seedrun command beside the interpreter running the bench, else the first on PATH."""
    beside = Path(sys.executable).parent / "seedrun"
    if beside.exists():
        return beside
    found = shutil.which("seedrun")
    return Path(found) if found else None


class Seedrun(Runner):
    """seedrun run on a generated pipeline.toml in a fresh workspace."""

    name = "seedrun"
    label = "seedrun"

    def missing(self) -> str | None:
        return None if seedrun_executable() else "seedrun not found beside %s or on PATH" % sys.executable

    def version(self) -> str:
        return first_line([str(seedrun_executable()), "--version"])

    def unsupported(self, scenario: Scenario) -> str | None:
        return None if scenario.program is not None else "no shell steps in this workload"

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        (workdir / "pipeline.toml").write_text(seedrun_pipeline(scenario))
        command = [str(seedrun_executable()), "--pipeline", "pipeline.toml", "run", "-j", str(scenario.jobs)]
        return Launch(command, workdir)

    def verify(self, scenario: Scenario, workdir: Path) -> str | None:
        try:
            record = json.loads((workdir / "logs" / "latest" / "run.json").read_text())
        except (OSError, ValueError) as error:
            return "cannot read run.json: %s" % error
        expected = len(tasks(scenario.program))
        succeeded = record.get("counts", {}).get("succeeded", 0)
        if record.get("status") != "succeeded" or succeeded != expected:
            return "run status %s with %d of %d steps succeeded" % (record.get("status"), succeeded, expected)
        return check_logs(scenario, (workdir / "logs" / "latest").resolve())

    def diagnostics(self, workdir: Path) -> str:
        tail = output_tail(workdir / "logs" / "latest" / "make.log")
        return "make.log: " + tail if tail else ""

    def figures(self, workdir: Path) -> dict[str, float]:
        """Return the run's longest step duration as run.json records it (W4's log capture, without the run's fixed cost)."""
        try:
            record = json.loads((workdir / "logs" / "latest" / "run.json").read_text())
        except (OSError, ValueError):
            return {}
        durations = [step["duration_s"] for step in record.get("steps", []) if step.get("duration_s") is not None]
        return {"step_s": max(durations)} if durations else {}


def seedrun_pipeline(scenario: Scenario) -> str:
    """Return the scenario as a seedrun pipeline file.

    A program whose top-level items are all marked as phases becomes
    [[phases]], where a Seq phase is sequential. Any other program becomes
    steps with `needs`.
    """
    program = scenario.program
    lines = ['[pipeline]', 'name = "bench"', 'jobs = %d' % scenario.jobs, '']
    phased = isinstance(program, Seq) and all(getattr(item, "phase", None) for item in program.items)
    needs = {} if phased else prerequisites(program)
    for task in tasks(program):
        lines.append("[steps.%s]" % task.name)
        lines.append("command = %s" % json.dumps(task.command))
        if needs.get(task.name):
            lines.append("needs = [%s]" % ", ".join(json.dumps(name) for name in needs[task.name]))
        lines.append("")
    if phased:
        for item in program.items:
            lines.append("[[phases]]")
            lines.append("name = %s" % json.dumps(item.phase))
            if isinstance(item, Seq):
                lines.append('mode = "sequential"')
            lines.append("steps = [%s]" % ", ".join(json.dumps(task.name) for task in tasks(item)))
            lines.append("")
    for main, dependent in scenario.pairs:
        lines.append("[pairs.%s]" % main)
        lines.append("main = %s" % json.dumps(main))
        lines.append("dependent = %s" % json.dumps(dependent))
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ seedrun probes (W5, W6)


def _probe_launch(arguments: list[str], workdir: Path) -> Launch:
    """Run `python -m bench.probes` with the bench package importable from any directory."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return Launch([sys.executable, "-m", "bench.probes", *arguments], workdir, {"PYTHONPATH": path})


def _probe_figures(workdir: Path) -> dict[str, float]:
    return json.loads((workdir / "probe.json").read_text())


class RenderReport(Runner):
    """seedrun.report.render_run on a prepared run of large logs, in a fresh Python process."""

    name = "render_run"
    label = "seedrun.report.render_run"

    def missing(self) -> str | None:
        return None if importlib.util.find_spec("seedrun") else "seedrun is not importable by %s" % sys.executable

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        reports = workdir / "reports"
        return _probe_launch(["render", str(fixture["run_json"]), str(fixture["run_dir"]), str(reports),
                              str(fixture["history_db"]), "probe.json"], workdir)

    def verify(self, scenario: Scenario, workdir: Path) -> str | None:
        from bench.workloads import REPORT_RUN_ID

        report = workdir / "reports" / (REPORT_RUN_ID + ".html")
        return None if report.exists() else "render_run wrote no %s" % report.name

    def figures(self, workdir: Path) -> dict[str, float]:
        return _probe_figures(workdir)


class PlanCommand(Runner):
    """`seedrun --pipeline FILE plan`, its output into a file."""

    name = "seedrun plan"
    label = "seedrun plan"

    def missing(self) -> str | None:
        return None if seedrun_executable() else "seedrun not found beside %s or on PATH" % sys.executable

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        return Launch([str(seedrun_executable()), "--pipeline", str(fixture["pipeline"]), "plan"], workdir)

    def verify(self, scenario: Scenario, workdir: Path) -> str | None:
        output = workdir / "output.txt"
        first = output.read_text(errors="replace").split("\n", 1)[0]
        expected = ": %d steps," % scenario.step_count
        return None if expected in first else "plan output does not start with %r: %r" % (expected, first[:200])


class PlanInProcess(Runner):
    """seedrun.pipeline.load_pipeline and seedrun.graph.resolve, timed inside a fresh Python process."""

    name = "load_pipeline + resolve"
    label = "load_pipeline + resolve"

    def missing(self) -> str | None:
        return None if importlib.util.find_spec("seedrun") else "seedrun is not importable by %s" % sys.executable

    def prepare(self, scenario: Scenario, workdir: Path, fixture: dict) -> Launch:
        return _probe_launch(["plan", str(fixture["pipeline"]), "probe.json"], workdir)

    def verify(self, scenario: Scenario, workdir: Path) -> str | None:
        planned = _probe_figures(workdir).get("planned_steps")
        if planned != scenario.step_count:
            return "resolve planned %s steps, expected %d" % (planned, scenario.step_count)
        return None

    def figures(self, workdir: Path) -> dict[str, float]:
        return _probe_figures(workdir)


RUNNERS: dict[str, Runner] = {runner.name: runner for runner in (
    ShellFloor(), Make(), GnuParallel(), Doit(), NodeJs(), Seedrun(), RenderReport(), PlanCommand(), PlanInProcess())}


def measure(runner: Runner, scenario: Scenario, scratch: Path, fixture: dict, timeout: float) -> Sample:
    """Prepare, time and check one run of a runner in a fresh directory under scratch; remove it after."""
    prefix = runner.name.replace(" ", "-").replace("+", "") + "-"
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        launch = runner.prepare(scenario, workdir, fixture)
        output = workdir / "output.txt"
        wall, code, maxrss = run_timed(launch, output, timeout)
        if code != 0:
            problem = "exit code %d: %s" % (code, output_tail(output))
        else:
            problem = runner.verify(scenario, workdir)
        if problem:
            details = runner.diagnostics(workdir)
            raise RunFailed(problem + ("; " + details if details else ""))
        return Sample(wall, maxrss, runner.figures(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

