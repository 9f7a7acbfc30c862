"""The benchmark workloads and the input files they need.

A workload's steps form a series-parallel program: ``Seq`` runs its items
one after another, ``Par`` runs them at the same time (up to the job limit),
and a ``Task`` is one shell command. Every runner gets the same program:
make, doit and seedrun as the dependency graph it implies, GNU parallel, the
shell floor and the Node.js orchestrator as the nesting itself.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass(frozen=True)
class Task:
    """One step: a shell command, and the seconds it sleeps (0 for steps that do not sleep)."""

    name: str
    command: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Seq:
    """Items that run one after another; a seedrun phase when ``phase`` is set."""

    items: tuple
    phase: str | None = None


@dataclass(frozen=True)
class Par:
    """Items that run at the same time; a seedrun phase when ``phase`` is set."""

    items: tuple
    phase: str | None = None


Node = Union[Task, Seq, Par]


def tasks(node: Node) -> list[Task]:
    """Return the program's tasks in the order they are listed."""
    if isinstance(node, Task):
        return [node]
    found = []
    for item in node.items:
        found += tasks(item)
    return found


def prerequisites(node: Node) -> dict[str, list[str]]:
    """Return each task's prerequisites: the tasks that must finish before it starts.

    In ``Seq(a, b)`` every task that starts ``b`` waits for every task that
    ends ``a``, which is how a phase barrier looks without a barrier node.
    """
    edges: dict[str, list[str]] = {}
    _link(node, [], edges)
    return edges


def _link(node: Node, before: list[str], edges: dict[str, list[str]]) -> list[str]:
    """Record the edges of node, whose first tasks wait for `before`; return its last tasks."""
    if isinstance(node, Task):
        edges[node.name] = list(before)
        return [node.name]
    if isinstance(node, Seq):
        current = before
        for item in node.items:
            current = _link(item, current, edges)
        return current
    ends = []
    for item in node.items:
        ends += _link(item, before, edges)
    return ends


def critical_path_seconds(node: Node) -> float:
    """Return the sum of sleeps along the longest path: no runner can finish sooner."""
    if isinstance(node, Task):
        return node.seconds
    if isinstance(node, Seq):
        return sum(critical_path_seconds(item) for item in node.items)
    return max((critical_path_seconds(item) for item in node.items), default=0.0)


def widest_group(node: Node) -> int:
    """Return the largest number of items in one ``Par`` anywhere in the program."""
    if isinstance(node, Task):
        return 1
    own = len(node.items) if isinstance(node, Par) else 1
    return max([own] + [widest_group(item) for item in node.items])


@dataclass(frozen=True)
class Sizes:
    """Workload sizes: the full benchmark or the tiny ones of --quick."""

    independent_steps: int
    chain_steps: int
    sleep_scale: float
    output_bytes: int
    report_steps: int
    report_log_bytes: int
    plan_steps: int


FULL = Sizes(independent_steps=200, chain_steps=100, sleep_scale=1.0, output_bytes=500_000_000,
             report_steps=1000, report_log_bytes=5_000_000, plan_steps=10_000)
QUICK = Sizes(independent_steps=20, chain_steps=10, sleep_scale=0.1, output_bytes=5_000_000,
              report_steps=20, report_log_bytes=50_000, plan_steps=200)

PEER_RUNNERS = ("sh", "make", "parallel", "doit", "node", "seedrun")


@dataclass
class Scenario:
    """One table of the results: a workload at one job limit, measured by a list of runners.

    `baseline` names the runner that ratios are taken against; `bound` is the
    critical-path bound in seconds for the W3 scenarios. `pairs` lists the
    (main, dependent) steps that become seedrun [pairs] tables.
    """

    key: str
    workload: str
    title: str
    jobs: int
    runners: tuple[str, ...]
    program: Node | None = None
    baseline: str | None = None
    bound: float | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    expected_log_bytes: int = 0
    step_count: int = 0
    settings: dict = field(default_factory=dict)


def independent_steps(count: int) -> Par:
    width = len(str(count))
    return Par(tuple(Task("s%0*d" % (width, number), "true") for number in range(1, count + 1)))


def chain(count: int) -> Seq:
    width = len(str(count))
    return Seq(tuple(Task("c%0*d" % (width, number), "true") for number in range(1, count + 1)))


# The default pipeline's step names (pipeline.toml), in its order.
PRODUCTS = "seed-allProducts"
CODE_FIX = "seed-keystone-ftp-codes"
PAIRS = (("seed-quadratec", "seed-quad-inventory"), ("seed-omix", "seed-omix-inventory"),
         ("seed-wheelPros", "seed-wp-inventory"), ("seed-keystone-ftp2", "seed-keystone-ftp-codes-pair"))
VENDORS = ("seed-roughCountry", "seed-tireDiscounter", "seed-aev", "seed-ctp", "seed-keyparts",
           "seed-alpine", "seed-meyer", "seed-tdot", "seed-lowriders", "seed-turn14-production")
# Seeds the sleep of each default-pipeline step, so every run of the bench sleeps the same.
SLEEP_SEED = "seedrun-bench-w3"
MIN_SLEEP_SECONDS = 0.1
MAX_SLEEP_SECONDS = 1.5


def sleep_tasks(scale: float) -> dict[str, Task]:
    """Return the default pipeline's 20 steps as `sleep` commands of 0.1 to 1.5 s times scale."""
    rng = random.Random(SLEEP_SEED)
    names = [PRODUCTS, CODE_FIX] + [name for pair in PAIRS for name in pair] + list(VENDORS)
    found = {}
    for name in names:
        seconds = round(rng.uniform(MIN_SLEEP_SECONDS, MAX_SLEEP_SECONDS) * scale, 3)
        found[name] = Task(name, "sleep %.3f" % seconds, seconds)
    return found


def default_pipeline_with_barriers(scale: float) -> Seq:
    """Build the default pipeline as it runs, where each phase waits for the whole phase before it."""
    steps = sleep_tasks(scale)
    return Seq((
        Par((steps[PRODUCTS],), phase="products"),
        Par((steps[CODE_FIX],), phase="codes"),
        Seq(tuple(steps[name] for pair in PAIRS for name in pair), phase="pairs"),
        Par(tuple(steps[name] for name in VENDORS), phase="vendors"),
    ))


def default_pipeline_true_dependencies(scale: float) -> Seq:
    """Build the default pipeline with only its real dependencies.

    Products run first, then the code fix. After that the four pairs and the
    ten vendors all start, and each pair's dependent waits for its main only.
    """
    steps = sleep_tasks(scale)
    branches = [Seq((steps[main], steps[dependent])) for main, dependent in PAIRS]
    branches += [steps[name] for name in VENDORS]
    return Seq((steps[PRODUCTS], steps[CODE_FIX], Par(tuple(branches))))


def build_scenarios(sizes: Sizes) -> list[Scenario]:
    """Return every scenario, in the order the results list them."""
    scenarios = [Scenario(
        key="W0", workload="W0", jobs=1, runners=PEER_RUNNERS, baseline="sh",
        title="one `true` step: the fixed cost of starting and finishing a run",
        program=Task("one", "true"), step_count=1)]
    count = sizes.independent_steps
    for jobs in (2, 8):
        scenarios.append(Scenario(
            key="W1 -j%d" % jobs, workload="W1", jobs=jobs, runners=PEER_RUNNERS, baseline="sh",
            title="%d independent `true` steps, %d at a time" % (count, jobs),
            program=independent_steps(count), step_count=count))
    scenarios.append(Scenario(
        key="W2", workload="W2", jobs=2, runners=PEER_RUNNERS, baseline="sh",
        title="a chain of %d `true` steps, each needing the one before (-j2)" % sizes.chain_steps,
        program=chain(sizes.chain_steps), step_count=sizes.chain_steps))
    for key, program, dependencies in (
        ("W3 barriers", default_pipeline_with_barriers(sizes.sleep_scale), "with its phase barriers"),
        ("W3 true deps", default_pipeline_true_dependencies(sizes.sleep_scale), "with only its true dependencies"),
    ):
        jobs = max(16, widest_group(program))
        scenarios.append(Scenario(
            key=key, workload="W3", jobs=jobs, runners=PEER_RUNNERS, baseline=None,
            title="the default pipeline's 20 steps as `sleep` commands, %s (-j%d)" % (dependencies, jobs),
            program=program, bound=critical_path_seconds(program), pairs=PAIRS, step_count=20))
    scenarios.append(Scenario(
        key="W4", workload="W4", jobs=1, runners=PEER_RUNNERS, baseline="sh",
        title="one step writing %s bytes to stdout, captured in its log" % format(sizes.output_bytes, ","),
        program=Task("big-output", "head -c %d /dev/zero" % sizes.output_bytes),
        expected_log_bytes=sizes.output_bytes, step_count=1))
    scenarios.append(Scenario(
        key="W5", workload="W5", jobs=1, runners=("render_run",),
        title="rendering the report of a run of %s steps whose logs total %s bytes" % (
            format(sizes.report_steps, ","), format(sizes.report_steps * sizes.report_log_bytes, ",")),
        step_count=sizes.report_steps, settings={"log_bytes": sizes.report_log_bytes}))
    scenarios.append(Scenario(
        key="W6", workload="W6", jobs=1, runners=("seedrun plan", "load_pipeline + resolve"),
        title="loading, validating and planning a pipeline of %s steps" % format(sizes.plan_steps, ","),
        step_count=sizes.plan_steps))
    return scenarios


# ------------------------------------------------------------------ W5 input

REPORT_RUN_ID = "20261204T193712Z-bench-report"
REPORT_START = 1796413032.0  # 2026-12-04T19:37:12Z, the run's start in epoch seconds
# Real bytes at the end of each log. A failed step's tail is longer than the
# report's largest error-scan window (seedrun.report.MAX_SCAN_BYTES, 2 MiB), so
# the report reads only written text. The report only stat()s other logs.
FAILED_TAIL_BYTES = 2_621_440
OTHER_TAIL_BYTES = 65_536


def _log_lines(count: int, failed: bool) -> bytes:
    lines = []
    for number in range(count):
        if failed and number % 400 == 399:
            lines.append("ERROR: upstream returned HTTP 502 for page %d; retrying in 5s" % number)
        else:
            lines.append("2026-12-04T19:40:%02d.%03dZ fetched page %d of the catalogue: 250 rows, 3 skipped"
                         % (number % 60, number % 1000, number))
    return ("\n".join(lines) + "\n").encode()


def _tail_blob(size: int, failed: bool) -> bytes:
    if failed:
        ending = (b"Traceback (most recent call last):\n"
                  b"  File \"/srv/vendor_sync/jobs/feed.py\", line 88, in fetch\n"
                  b"    raise RuntimeError(\"vendor feed rejected the request\")\n"
                  b"RuntimeError: vendor feed rejected the request\n"
                  b"[seedrun] exit code 1 after 1m52s\n")
    else:
        ending = (b"Summary: read 20000 rows, matched 19000, inserted 100, updated 18900, skipped 1000\n"
                  b"[seedrun] exit code 0 after 42.1s\n")
    body = _log_lines(size // 80 + 1, failed)
    return (body + ending)[-size:]


def _write_log(path: Path, header: bytes, tail: bytes, size: int) -> None:
    """Write a log of `size` bytes: a real header, a hole, a real tail.

    ftruncate() extends the file without writing the middle, so the hole costs
    no disk space or write time and reads back as NUL bytes.
    """
    tail = tail[-max(0, size - len(header)):] if size > len(header) else b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, header[:size])
        os.ftruncate(fd, size)
        if tail:
            os.pwrite(fd, tail, size - len(tail))
    finally:
        os.close(fd)


def report_statuses(count: int) -> list[str]:
    """Return the status of each step of the W5 run: 6% failed, 0.5% timed out, 1% skipped."""
    failed = max(1, count * 6 // 100)
    timed_out = count // 200
    skipped = count // 100
    statuses = ["succeeded"] * count
    for number in range(failed):
        statuses[(number * 97 + 5) % count] = "failed"
    placed = 0
    for index in range(count - 1, -1, -1):
        if placed == timed_out + skipped:
            break
        if statuses[index] == "succeeded":
            statuses[index] = "timed_out" if placed < timed_out else "skipped"
            placed += 1
    return statuses


def write_report_fixture(root: Path, count: int, log_bytes: int) -> dict[str, Path]:
    """Write the run directory, logs and run record of a finished run of `count` steps.

    Return the paths the render_run probe needs. The record is built with
    seedrun.records.step_entry, as the orchestrator builds run.json.
    """
    import json

    from seedrun.records import count_statuses, step_entry

    run_dir = root / "logs" / REPORT_RUN_ID
    run_dir.mkdir(parents=True)
    statuses = report_statuses(count)
    tails = {True: _tail_blob(FAILED_TAIL_BYTES, True), False: _tail_blob(OTHER_TAIL_BYTES, False)}
    width = len(str(count))
    products = max(1, count // 100)
    pairs = max(1, count * 9 // 100)
    phases = {"products": [], "pairs": [], "vendors": []}
    steps = []
    clock = REPORT_START
    for index, status in enumerate(statuses):
        name = "seed-vendor-%0*d" % (width, index + 1)
        if index < products:
            phase = "products"
        elif index < products + pairs:
            phase = "pairs"
        else:
            phase = "vendors"
        phases[phase].append(name)
        command = "python -m vendor_sync vendor-%d" % (index + 1)
        planned = {"name": name, "phase": phase, "command": command, "log": name + ".log",
                   "on_failure": "skip-dependents", "pool": None,
                   "metrics": {"read": r"Summary: read (\d+)"}, "metric_floors": {},
                   "needs": [], "after": [], "needs_phase": None, "after_phase": None}
        record, metrics = _step_record(index, status, clock, statuses)
        if record.get("started_at"):
            header = ("[seedrun] step %s, attempt 1 of 1, started 2026-12-04T19:37:12.000Z\n"
                      "[seedrun] command: %s\n[seedrun] workdir: /srv/seedrun\n" % (name, command)).encode()
            header += _log_lines(20, False)
            _write_log(run_dir / planned["log"], header, tails[status != "succeeded"], log_bytes)
        steps.append(step_entry(planned, record, metrics))
        clock += 0.5
    finished = clock + 120.0
    run = {
        "run_id": REPORT_RUN_ID, "pipeline": "bench-report", "selection": "seed-all",
        "pipeline_file": "/srv/seedrun/pipeline.toml", "pipeline_sha256": "0" * 64,
        "host": "bench", "pid": 4242, "jobs": 10, "status": "failed",
        "started_at": _iso(REPORT_START), "finished_at": _iso(finished), "exit_code": 1,
        "resumed_at": [], "mask_env": [],
        "phases": [{"name": name, "mode": "sequential" if name == "pairs" else "parallel", "wait": "succeeded",
                    "steps": members} for name, members in phases.items()],
        "counts": count_statuses(steps), "steps": steps,
    }
    run_json = run_dir / "run.json"
    run_json.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    return {"run_json": run_json, "run_dir": run_dir, "history_db": root / "logs" / "history.sqlite3"}


def _iso(seconds: float) -> str:
    from seedrun.step import iso

    return iso(seconds)


def _step_record(index: int, status: str, clock: float, statuses: list[str]) -> tuple[dict, dict]:
    """Return the step runner's record and the metrics of one W5 step."""
    duration = 5.0 + (index * 37 % 115)
    record = {"status": status, "attempts": 1, "queued_at": clock, "leftovers_killed": 0, "log_error": None,
              "pid": None, "attempt_history": []}
    if status == "skipped":
        blocker = next((i for i in range(index - 1, -1, -1) if statuses[i] == "failed"), 0)
        record.update(attempts=0, queued_at=None, reason="needs a step that failed",
                      blocked_by="seed-vendor-%d" % (blocker + 1), finished_at=clock)
        return record, {}
    exit_code = {"succeeded": 0, "failed": 1}.get(status)
    reasons = {"succeeded": None, "failed": "exit code 1", "timed_out": "timed out after 30m"}
    record.update(started_at=clock, finished_at=clock + duration, duration_s=duration, exit_code=exit_code,
                  signal="SIGKILL" if status == "timed_out" else None, reason=reasons[status],
                  attempt_history=[{"attempt": 1, "started_at": clock, "finished_at": clock + duration,
                                    "exit_code": exit_code, "signal": None, "outcome": status}])
    metrics = {"read": 20000 + index} if status == "succeeded" else {}
    return record, metrics


# ------------------------------------------------------------------ W6 input

PIPELINE_DEFAULTS = """\
[defaults]
timeout = "30m"
kill_grace = "30s"
metrics = { read = 'Summary: read (\\d+)', matched = 'matched (\\d+)', inserted = 'inserted (\\d+)', \
updated = 'updated (\\d+)', skipped = 'skipped (\\d+)' }
"""


def large_pipeline_text(count: int) -> str:
    """Return a pipeline file of `count` steps in the default pipeline's shape.

    Phases: products (0.2%), codes (0.2%), pairs (20%, sequential, in
    main/dependent pairs), vendors (the rest, one in ten in a rate-limited
    pool) and final (5%, waiting for vendors to finish), plus targets. Every
    step is in an enabled phase, so `seedrun plan` plans all of them.
    """
    products = max(1, count // 500)
    codes = max(1, count // 500)
    pairs = max(2, count // 5) // 2 * 2
    final = max(1, count // 20)
    vendors = count - products - codes - pairs - final
    if vendors < 1:
        raise ValueError("invalid step count %d: the pipeline needs at least 6 steps so that every phase gets one"
                         % count)
    width = len(str(count))
    names = {phase: ["%s-%0*d" % (phase, width, n) for n in range(1, size + 1)]
             for phase, size in (("products", products), ("codes", codes), ("pairs", pairs),
                                 ("vendors", vendors), ("final", final))}
    out = ['[pipeline]', 'name = "bench-plan"', 'jobs = 10', 'max_failures = "50%"', '',
           '[pools]', 'magento_api = 2', '',
           '[pools.turn14_api]', 'size = 1', 'min_interval = "1s"', 'rate_limited_exit_code = 75',
           'cooldown = "10s"', '', PIPELINE_DEFAULTS]
    for phase, members in names.items():
        for position, name in enumerate(members):
            out.append("[steps.%s]" % name)
            out.append('command = "python -m vendor_sync %s"' % name)
            if phase == "products":
                out.append('pool = "magento_api"')
                out.append('on_failure = "abort"')
            elif phase == "vendors" and position % 10 == 9:
                out.append('pool = "turn14_api"')
            elif phase == "pairs" and position % 2 == 0:
                out.append("retries = 2")
                out.append('retry_delay = "2s"')
            out.append("")
    for phase, members in names.items():
        out.append("[[phases]]")
        out.append('name = "%s"' % phase)
        if phase == "pairs":
            out.append('mode = "sequential"')
        if phase == "final":
            out.append('wait = "finished"')
        out.append("steps = [%s]" % ", ".join('"%s"' % name for name in members))
        out.append("")
    pair_names = names["pairs"]
    for number in range(0, len(pair_names), 2):
        out.append("[pairs.pair-%0*d]" % (width, number // 2 + 1))
        out.append('main = "%s"' % pair_names[number])
        out.append('dependent = "%s"' % pair_names[number + 1])
        out.append("")
    out.append("[targets]")
    vendor_names = names["vendors"]
    for number in range(0, min(len(vendor_names), 500), 5):
        members = vendor_names[number:number + 5]
        out.append("group-%0*d = [%s]" % (width, number // 5 + 1, ", ".join('"%s"' % m for m in members)))
    return "\n".join(out) + "\n"
