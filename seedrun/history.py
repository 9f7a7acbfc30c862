"""Keep a SQLite history of runs and steps, and derive warnings and trends from it.

The database lives apart from the run directories, so deleting old logs keeps
their history. Writers use WAL mode and a busy timeout so that several seedrun
processes can record runs at the same time.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from seedrun.records import check_run_record, read_run_fields, read_run_record

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
# For what a run can do without: every read (durations to order the steps,
# metric baselines, the report's trends and index) and creating the
# database ahead of the end of the run. Only record_run() waits the full
# BUSY_TIMEOUT_S, so that a run is not lost from the history.
OPTIONAL_BUSY_TIMEOUT_S = 1.0
SCHEMA_VERSION = 1
# How many runs missing from the history record_missing_runs() records at once.
MAX_RECORDED_MISSING = 20
PIPELINE_RATE_RUNS = 30
STEP_RATE_RUNS = 30
MEDIAN_DURATION_RUNS = 10
TREND_RUNS = 20
METRIC_BASELINE_RUNS = 5
# With fewer earlier successful runs a median is too noisy to warn on.
MIN_METRIC_BASELINE_RUNS = 3
FAILED_STATUSES = ("failed", "timed_out")
FINISHED_RUN_STATUSES = ("succeeded", "failed", "interrupted")
FINISHED_STEP_STATUSES = ("succeeded", "failed", "timed_out")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    selection TEXT,
    status TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_s REAL,
    exit_code INTEGER,
    host TEXT,
    step_count INTEGER NOT NULL,
    failed_steps TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, run_id);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    name TEXT NOT NULL,
    phase TEXT,
    status TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_s REAL,
    attempts INTEGER,
    exit_code INTEGER,
    signal TEXT,
    metrics TEXT NOT NULL,
    warnings TEXT NOT NULL,
    carried_over INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX IF NOT EXISTS steps_by_name ON steps (pipeline, name, run_id);
CREATE INDEX IF NOT EXISTS steps_by_name_status ON steps (pipeline, name, status, run_id);
"""


@dataclass(frozen=True)
class RunSummary:
    """One line of the run index.

    failed_steps names the failed and timed-out steps that fail the run, and
    allowed_failures those that fail without failing it (on_failure = "ignore").
    """

    run_id: str
    pipeline: str
    selection: str | None
    status: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    exit_code: int | None
    step_count: int
    failed_steps: tuple[str, ...]
    allowed_failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepHistory:
    """Earlier results of one step in one pipeline, taken from runs before the current one.

    `outcomes` are the statuses of its last STEP_RATE_RUNS finished executions
    (succeeded, failed or timed_out), newest first. `durations` are its last
    TREND_RUNS successful durations in seconds, oldest first.
    """

    outcomes: tuple[str, ...] = ()
    durations: tuple[float, ...] = ()
    median_duration_s: float | None = None


@dataclass(frozen=True)
class PipelineHistory:
    """Earlier finished runs of a pipeline (statuses newest first) and each step's history."""

    run_statuses: tuple[str, ...] = ()
    steps: Mapping[str, StepHistory] | None = None

    def step(self, name: str) -> StepHistory:
        """Return the history of one step, empty when it has none."""
        return (self.steps or {}).get(name, StepHistory())


def prepare(db_path: Path) -> None:
    """Create the database and its schema if they do not exist yet, so that record_run() has less to do."""
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)):
        pass


def record_missing_runs(db_path: Path) -> list[str]:
    """Record the finished runs of the database's folder that it does not have yet; return their run ids.

    A run whose end found the database locked for longer than
    BUSY_TIMEOUT_S is missing from it, or has the outcome its first end
    recorded before a resume. Its run.json is final all the same. The
    newest MAX_RECORDED_MISSING such runs are recorded at a time, so that a
    lost history does not hold up the end of the run. Every read and write
    here waits at most OPTIONAL_BUSY_TIMEOUT_S.
    """
    from seedrun.retention import RUN_ID

    logs_dir = db_path.parent
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)) as connection:
        known = {row[0]: tuple(row[1:]) for row in connection.execute("SELECT run_id, status, finished_at FROM runs")}
    recorded = []
    for name in sorted(os.listdir(logs_dir), reverse=True):
        if len(recorded) >= MAX_RECORDED_MISSING:
            break
        if not RUN_ID.match(name):
            continue
        path = logs_dir / name / "run.json"
        try:
            # Only the run's own fields at first: most runs are in the history already, and
            # decoding the steps of each of them at every start costs seconds in a big logs directory.
            run = read_run_fields(path, ("status", "finished_at"))
            # A running run records itself when it ends, or the run that takes it over does.
            if run["run_id"] != name or run.get("status") in (None, "running"):
                continue
            # A resumed run is in the history with the outcome of its first end.
            if known.get(name) == (run.get("status"), run.get("finished_at")):
                continue
            # The steps are checked only for a run that is recorded below.
            run = read_run_record(path, check_steps=False)
        except OSError:
            continue
        except ValueError as error:
            # A run already in the history keeps its row; only a missing one is worth a warning at every start.
            if name not in known:
                logger.warning("cannot record run %s in the history: its run.json is damaged: %s", name, error)
            continue
        try:
            check_run_record(run)
            step_rows = [_step_row(run, step) for step in run.get("steps", [])]
            summary = summarize_run(run)
        except (ValueError, AttributeError, KeyError, TypeError) as error:
            logger.warning("cannot record run %s in the history: its run.json is damaged: %s", name, error)
            continue
        _write_run(db_path, summary, run.get("host"), step_rows, OPTIONAL_BUSY_TIMEOUT_S)
        recorded.append(name)
    if recorded:
        logger.info("recorded %d runs missing from %s: %s", len(recorded), db_path, ", ".join(recorded))
    return recorded


def record_run(
    db_path: Path, run: Mapping[str, Any], on_wait: Callable[[float], None] | None = None
) -> None:
    """Insert or replace a run and all of its steps in the history database.

    A database that another process has locked is waited for up to
    BUSY_TIMEOUT_S in all. With on_wait, a lock still held after
    OPTIONAL_BUSY_TIMEOUT_S calls on_wait(seconds left to wait) first, so
    that the caller can say why nothing happens.
    """
    summary = summarize_run(run)
    step_rows = [_step_row(run, step) for step in run.get("steps", [])]
    if on_wait is None:
        _write_run(db_path, summary, run.get("host"), step_rows, BUSY_TIMEOUT_S)
        return
    try:
        _write_run(db_path, summary, run.get("host"), step_rows, OPTIONAL_BUSY_TIMEOUT_S)
    except sqlite3.OperationalError as error:
        if not _is_lock_error(error):
            raise
        remaining = BUSY_TIMEOUT_S - OPTIONAL_BUSY_TIMEOUT_S
        on_wait(remaining)
        _write_run(db_path, summary, run.get("host"), step_rows, remaining)


def _write_run(
    db_path: Path, summary: RunSummary, host: str | None, step_rows: list[tuple[Any, ...]], busy_timeout_s: float
) -> None:
    with _transaction(db_path, busy_timeout_s) as connection:
        connection.execute("DELETE FROM steps WHERE run_id = ?", (summary.run_id,))
        connection.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _run_row(summary, host),
        )
        connection.executemany(
            "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", step_rows
        )
    logger.debug("recorded run %s with %d steps in %s", summary.run_id, len(step_rows), db_path)


def list_runs(db_path: Path) -> list[RunSummary]:
    """Return every recorded run, newest run id first. A missing database has no runs."""
    if not db_path.exists():
        return []
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)) as connection:
        rows = connection.execute(
            "SELECT run_id, pipeline, selection, status, started_at, finished_at, duration_s,"
            " exit_code, step_count, failed_steps FROM runs ORDER BY run_id DESC"
        ).fetchall()
        failures: dict[str, list[str]] = {}
        for run_id, name in connection.execute(
            f"SELECT run_id, name FROM steps WHERE status IN ({', '.join('?' * len(FAILED_STATUSES))}) ORDER BY rowid",
            FAILED_STATUSES,
        ):
            failures.setdefault(run_id, []).append(name)
    summaries = []
    for row in rows:
        # failed_steps contains the failures that fail the run, and the steps table all of them. Runs
        # recorded before allowed failures were kept apart list those in failed_steps too, but a
        # run that succeeded has no failure that fails it, so all of its failures are allowed.
        failed = () if row[3] == "succeeded" else tuple(json.loads(row[9]))
        allowed = tuple(name for name in failures.get(row[0], ()) if name not in failed)
        summaries.append(RunSummary(*row[:9], failed, allowed))
    return summaries


def summarize_run(run: Mapping[str, Any]) -> RunSummary:
    """Build the index line of a run record."""
    steps = run.get("steps", [])
    failed = [step for step in steps if step.get("status") in FAILED_STATUSES]
    return RunSummary(
        run_id=run["run_id"],
        pipeline=run.get("pipeline", ""),
        selection=run.get("selection"),
        status=run.get("status", "unknown"),
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        duration_s=seconds_between(run.get("started_at"), run.get("finished_at")),
        exit_code=run.get("exit_code"),
        step_count=len(steps),
        failed_steps=tuple(step["name"] for step in failed if not step.get("allowed_failure")),
        allowed_failures=tuple(step["name"] for step in failed if step.get("allowed_failure")),
    )


def metric_warnings(db_path: Path, run: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return warnings for the metrics of each succeeded step, keyed by step name.

    A metric gets a warning when it is 0, or when it is below its floor in
    `metric_floors`. It also gets one when it is below half its median over the
    step's last METRIC_BASELINE_RUNS successful runs in the same pipeline before
    this run, provided at least MIN_METRIC_BASELINE_RUNS such runs exist. A metric
    that has a floor but was not reported gets a warning too. Non-numeric metric
    values are ignored.
    """
    succeeded = [step for step in run.get("steps", []) if step.get("status") == "succeeded"]
    try:
        baselines = _metric_baselines(db_path, run, succeeded)
    except sqlite3.Error as error:
        # Floors and zeros need no history, so those warnings still count.
        logger.warning("cannot read the metrics of earlier runs from %s: %s; checking floors and zeros only",
                       db_path, error)
        baselines = {}
    warnings: dict[str, list[str]] = {}
    for step in succeeded:
        found = _step_metric_warnings(step, baselines.get(step["name"], []))
        if found:
            warnings[step["name"]] = found
    return warnings


def step_stats(
    db_path: Path | None, pipeline: str, run_id: str, step_names: Iterable[str] | None = None
) -> PipelineHistory:
    """Return the pipeline's and each step's history from runs before run_id.

    step_names defaults to every step recorded in the pipeline's last
    PIPELINE_RATE_RUNS runs. A missing database returns an empty history.
    """
    if db_path is None or not db_path.exists():
        return PipelineHistory(steps={})
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)) as connection:
        run_statuses = _recent_run_statuses(connection, pipeline, run_id)
        names = list(step_names) if step_names is not None else _recent_step_names(connection, pipeline, run_id)
        steps = {name: _step_history(connection, pipeline, name, run_id) for name in names}
    return PipelineHistory(run_statuses, steps)


def median_durations(db_path: Path, pipeline: str, names: Iterable[str] | None = None) -> dict[str, float]:
    """Return each step's median duration in seconds over its last MEDIAN_DURATION_RUNS successful runs.

    names limits the result to those steps; by default it covers every step
    the history has for the pipeline. Steps with no successful run are left
    out, and a missing database returns no durations.
    """
    if not db_path.exists():
        return {}
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)) as connection:
        if names is None:
            names = [row[0] for row in connection.execute("SELECT DISTINCT name FROM steps WHERE pipeline = ?",
                                                          (pipeline,))]
        # One query per step, which reads its newest rows through the steps_by_name_status index.
        # The history keeps every run, so a query that ranks all rows of the pipeline takes longer every run.
        rows = []
        for name in names:
            rows += connection.execute(
                "SELECT name, duration_s FROM steps WHERE pipeline = ? AND name = ? AND status = 'succeeded'"
                " AND carried_over = 0 AND duration_s IS NOT NULL ORDER BY run_id DESC LIMIT ?",
                (pipeline, name, MEDIAN_DURATION_RUNS),
            ).fetchall()
    durations: dict[str, list[float]] = {}
    for name, duration in rows:
        # The file may have been edited by hand: only finite, non-negative numbers count.
        if isinstance(duration, (int, float)) and 0 <= duration < float("inf"):
            durations.setdefault(name, []).append(duration)
    return {name: statistics.median(values) for name, values in durations.items()}


def success_rate(statuses: Iterable[str]) -> tuple[int, int]:
    """Return (succeeded, total) over a sequence of statuses."""
    listed = list(statuses)
    return sum(1 for status in listed if status == "succeeded"), len(listed)


def seconds_between(start: str | float | None, end: str | float | None) -> float | None:
    """Return the seconds from one ISO 8601 timestamp to another, or None when either is missing."""
    started, finished = parse_time(start), parse_time(end)
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def parse_time(value: str | float | None) -> datetime | None:
    """Parse an ISO 8601 timestamp such as 2026-12-04T19:37:12.123Z, or return None.

    A number is taken as seconds since the Unix epoch.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        logger.warning("ignoring invalid timestamp %r", value)
        return None


def _connect(db_path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open the database in autocommit mode, creating the file and the schema if needed.

    Every lock the connection waits for, it waits for at most busy_timeout_s.
    The logs directory's parent must exist: a workspace deleted or moved
    during a run is not created again under its old name.
    """
    db_path.parent.mkdir(exist_ok=True)
    connection = sqlite3.connect(db_path, timeout=busy_timeout_s, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        _create_schema(connection, busy_timeout_s)
    return connection


def _create_schema(connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    _use_wal(connection, busy_timeout_s)
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _use_wal(connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch the database to WAL, which lets readers work while another process writes; the setting stays in the file.

    The switch needs an exclusive lock. When several runs create the
    history at once, SQLite can report "database is locked" for it without
    waiting out the busy timeout, so the switch is retried here until that
    timeout passes.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if not _is_lock_error(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _is_lock_error(error: sqlite3.OperationalError) -> bool:
    """Tell whether SQLite failed because another connection holds a lock ("database is locked")."""
    return "locked" in str(error) or "busy" in str(error)


@contextmanager
def _transaction(db_path: Path, busy_timeout_s: float) -> Iterator[sqlite3.Connection]:
    """Yield a connection inside a write transaction that commits on success."""
    with closing(_connect(db_path, busy_timeout_s)) as connection:
        # IMMEDIATE takes the write lock up front, so two writers wait for each
        # other under the busy timeout instead of failing on a lock upgrade.
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _run_row(summary: RunSummary, host: str | None) -> tuple[Any, ...]:
    return (
        summary.run_id,
        summary.pipeline,
        summary.selection,
        summary.status,
        summary.started_at,
        summary.finished_at,
        summary.duration_s,
        summary.exit_code,
        host,
        summary.step_count,
        json.dumps(list(summary.failed_steps)),
    )


def _step_row(run: Mapping[str, Any], step: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        run["run_id"],
        run.get("pipeline", ""),
        step["name"],
        step.get("phase"),
        step.get("status", "unknown"),
        step.get("started_at"),
        step.get("finished_at"),
        step.get("duration_s"),
        step.get("attempts"),
        step.get("exit_code"),
        step.get("signal"),
        json.dumps(step.get("metrics") or {}, sort_keys=True),
        json.dumps(step.get("warnings") or []),
        int(bool(step.get("carried_over"))),
    )


def _recent_run_statuses(connection: sqlite3.Connection, pipeline: str, run_id: str) -> tuple[str, ...]:
    rows = connection.execute(
        "SELECT status FROM runs WHERE pipeline = ? AND run_id < ? AND status IN (?, ?, ?)"
        " ORDER BY run_id DESC LIMIT ?",
        (pipeline, run_id, *FINISHED_RUN_STATUSES, PIPELINE_RATE_RUNS),
    ).fetchall()
    return tuple(row[0] for row in rows)


def _recent_step_names(connection: sqlite3.Connection, pipeline: str, run_id: str) -> list[str]:
    rows = connection.execute(
        "SELECT DISTINCT name FROM steps WHERE run_id IN"
        " (SELECT run_id FROM runs WHERE pipeline = ? AND run_id < ? ORDER BY run_id DESC LIMIT ?)",
        (pipeline, run_id, PIPELINE_RATE_RUNS),
    ).fetchall()
    return [row[0] for row in rows]


def _step_history(connection: sqlite3.Connection, pipeline: str, name: str, run_id: str) -> StepHistory:
    outcomes = connection.execute(
        "SELECT status FROM steps WHERE pipeline = ? AND name = ? AND run_id < ?"
        " AND status IN (?, ?, ?) AND carried_over = 0 ORDER BY run_id DESC LIMIT ?",
        (pipeline, name, run_id, *FINISHED_STEP_STATUSES, STEP_RATE_RUNS),
    ).fetchall()
    durations = [row[0] for row in _successful_rows(connection, pipeline, name, run_id, "duration_s", TREND_RUNS)]
    durations = [value for value in durations if value is not None]
    recent = durations[:MEDIAN_DURATION_RUNS]
    return StepHistory(
        outcomes=tuple(row[0] for row in outcomes),
        durations=tuple(reversed(durations)),
        median_duration_s=statistics.median(recent) if recent else None,
    )


def _successful_rows(
    connection: sqlite3.Connection, pipeline: str, name: str, run_id: str, column: str, limit: int
) -> list[tuple[Any, ...]]:
    """Return one column of the step's last successful, not carried-over rows, newest first."""
    return connection.execute(
        f"SELECT {column} FROM steps WHERE pipeline = ? AND name = ? AND status = 'succeeded'"
        " AND run_id < ? AND carried_over = 0 ORDER BY run_id DESC LIMIT ?",
        (pipeline, name, run_id, limit),
    ).fetchall()


def _metric_baselines(
    db_path: Path, run: Mapping[str, Any], steps: list[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Return the metrics of each step's last successful runs before this run, newest first."""
    measured = [step["name"] for step in steps if step.get("metrics")]
    if not measured or not db_path.exists():
        return {}
    pipeline, run_id = run.get("pipeline", ""), run["run_id"]
    with closing(_connect(db_path, OPTIONAL_BUSY_TIMEOUT_S)) as connection:
        return {
            name: [
                json.loads(row[0])
                for row in _successful_rows(connection, pipeline, name, run_id, "metrics", METRIC_BASELINE_RUNS)
            ]
            for name in measured
        }


def _step_metric_warnings(step: Mapping[str, Any], baseline: list[dict[str, Any]]) -> list[str]:
    metrics = step.get("metrics") or {}
    floors = step.get("metric_floors") or {}
    warnings = []
    for name, value in metrics.items():
        if not _is_number(value):
            continue
        history = [item[name] for item in baseline if _is_number(item.get(name))]
        message = _metric_warning(name, value, floors.get(name), history)
        if message:
            warnings.append(message)
    for name, floor in floors.items():
        if name not in metrics:
            warnings.append(f"{name} was not reported, but its floor is {_format_number(floor)}")
    return warnings


def _metric_warning(name: str, value: float, floor: Any, history: list[float]) -> str | None:
    reasons = []
    below_median = False
    if len(history) >= MIN_METRIC_BASELINE_RUNS:
        median = statistics.median(history)
        if value < median / 2:
            below_median = True
            reasons.append(
                f"below half its median of {_format_number(median)}"
                f" over the last {len(history)} successful runs"
            )
    if _is_number(floor) and value < floor:
        reasons.append(f"below its floor of {_format_number(floor)}")
    if value == 0:
        lead = f"{name} is 0"
    elif below_median:
        lead = f"{name} fell to {_format_number(value)}"
    elif reasons:
        lead = f"{name} is {_format_number(value)}"
    else:
        return None
    return ", ".join([lead, " and ".join(reasons)]) if reasons else lead


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)
