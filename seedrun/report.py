"""Render the HTML report of a run, reports/latest.html and reports/index.html.

A report is one self-contained HTML file: inline CSS, no script, and no request
to any other file or host, so it works from file:// and can be copied with the
logs it links to. Everything taken from the run record or the logs is escaped by
Jinja2's autoescaping and masked with the secret values passed in. The cost of a
report grows with the number of steps, not with the size of their logs, because
log excerpts are read through seedrun.logtail with fixed byte budgets.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import sqlite3
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from seedrun import history
from seedrun.logtail import excerpt, scan_errors
from seedrun.records import read_run_record
from seedrun.secrets import mask_run_record
from seedrun.timeline import Clock, build_timeline, format_duration, full_time, step_duration

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REFRESH_SECONDS = 5
REFRESH_MARKER = "<!-- seedrun:refresh -->"
LIVE_NOTE_MARKER = "<!-- seedrun:live-note -->"
SPECIAL_REPORTS = ("latest.html", "index.html")
# Only the first failures get log excerpts, so that a run where every step fails
# still renders quickly and the page stays under about 10 MiB.
MAX_DETAILED_FAILURES = 50
TAIL_LINES = 40
HEAD_LINES = 5
MAX_ERROR_LINES = 20
EXCERPT_BUDGET_BYTES = 4 * 1024 * 1024
SCAN_BUDGET_BYTES = 16 * 1024 * 1024
MAX_SCAN_BYTES = 2 * 1024 * 1024
MIN_SCAN_BYTES = 256 * 1024
MAX_COMMAND_CHARS = 4000
MAX_METRICS_SHOWN = 12
MAX_INDEX_FAILED_NAMES = 5
FAILED_STATUSES = ("failed", "timed_out")
SKIPPED_STATUSES = ("skipped", "not_run")
STATUS_LABELS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "timed out",
    "skipped": "skipped",
    "not_run": "not run",
    "interrupted": "interrupted",
    "running": "running",
    "pending": "pending",
    "waiting": "waiting",
}
STATUS_GLYPHS = {
    "succeeded": "✓",
    "failed": "✗",
    "timed_out": "◷",
    "skipped": "↷",
    "not_run": "–",
    "interrupted": "■",
    "running": "▶",
    "pending": "…",
    "waiting": "…",
}
SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# ---------------------------------------------------------------- view model


@dataclass
class StepView:
    """Display values of one step, shared by the table, failures and timeline."""

    index: int
    name: str
    phase: str
    status: str
    label: str
    css: str
    glyph: str
    started: str
    started_title: str
    duration: str
    exit: str
    exit_label: str
    attempts: int
    carried_over: bool
    allowed_failure: bool
    warnings: list[str]
    reason: str
    blocked_by: str
    blocked_by_anchor: str
    command: str
    metrics: list[tuple[str, str]]
    log_href: str
    log_size: str
    log_error: str
    change: str = ""
    change_css: str = ""
    change_title: str = ""
    success: str = ""
    success_title: str = ""
    sparkline: str = ""
    sparkline_title: str = ""
    critical: bool = False
    attempt_history: list[str] = field(default_factory=list)


@dataclass
class FailureView:
    """A failed, timed-out or interrupted step with what its log shows."""

    step: StepView
    errors: list[str] = field(default_factory=list)
    errors_note: str = ""
    head: list[str] = field(default_factory=list)
    omission: str = ""
    tail: list[str] = field(default_factory=list)
    log_note: str = ""
    detailed: bool = True


# ---------------------------------------------------------------- public API


def render_run(
    run: dict,
    run_dir: Path,
    reports_dir: Path,
    *,
    history_db: Path | None,
    live: bool,
    secret_values: Sequence[str] = (),
    templates_dir: Path | None = None,
) -> Path:
    """Write reports/<run_id>.html and return its path.

    Also rewrites latest.html when logs/latest points to this run (after a
    resume, an older run than the newest), or when there is no such link and
    this run has the newest run id among the reports in reports_dir, and
    rewrites index.html. With live=True, latest.html
    reloads itself every REFRESH_SECONDS while the run status is "running". The
    per-run report never reloads. Files are written atomically (temp + rename).
    """
    run_id = _checked_run_id(run)
    reports_dir.mkdir(parents=True, exist_ok=True)
    masked = mask_run_record(run, secret_values)
    stats = _load_step_stats(history_db, masked)
    context = build_report_context(masked, run_dir, reports_dir, stats, secret_values)
    page = _environment(templates_dir).get_template("report.html.j2").render(context)
    report_path = reports_dir / f"{run_id}.html"
    write_atomic(report_path, _without_markers(page))
    if _shows_as_latest(run_id, run_dir, reports_dir):
        refreshing = live and run.get("status") == "running"
        write_atomic(reports_dir / "latest.html", _with_refresh(page) if refreshing else _without_markers(page))
    # The unmasked run id keeps the index link pointing at the file name written above.
    current = dataclasses.replace(history.summarize_run(masked), run_id=run_id)
    _write_index(reports_dir, run_dir.parent, history_db, current, templates_dir)
    logger.debug("rendered report for run %s at %s", run_id, report_path)
    return report_path


def render_index(
    reports_dir: Path, logs_dir: Path, history_db: Path | None, *, templates_dir: Path | None = None
) -> Path:
    """Write reports/index.html listing every run, newest first, and return its path.

    Runs come from the history database when it exists. Run directories in
    logs_dir that the database does not have yet are read from their run.json.
    """
    return _write_index(reports_dir, logs_dir, history_db, None, templates_dir)


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same directory and a rename."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_report_context(
    run: Mapping[str, Any],
    run_dir: Path,
    reports_dir: Path,
    stats: history.PipelineHistory,
    secret_values: Sequence[str] = (),
) -> dict[str, Any]:
    """Build the template variables of a report from an already masked run record."""
    clock = Clock.for_run(run)
    logs_href = _relative_href(run_dir, reports_dir)
    records = run.get("steps", [])
    steps = [_step_view(index, step, run_dir, logs_href, clock) for index, step in enumerate(records)]
    _link_blockers(steps)
    _add_history(steps, run.get("steps", []), stats)
    timeline = build_timeline(run, steps, clock)
    for step in steps:
        step.critical = step.name in timeline.critical_path
    return {
        "run": _header(run, steps, stats, clock),
        "steps": steps,
        "failures": _failures(steps, run.get("steps", []), run_dir, reports_dir, secret_values),
        "interrupted": [step for step in steps if step.status == "interrupted"],
        "skipped": [step for step in steps if step.status in SKIPPED_STATUSES],
        "warned": [step for step in steps if step.warnings],
        "timeline": timeline,
        "max_detailed_failures": MAX_DETAILED_FAILURES,
        "generated": full_time(datetime.now(timezone.utc).isoformat()),
    }


# ---------------------------------------------------------------- rendering helpers


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    # The bytecode cache (in a per-user folder of the temp directory) saves
    # compiling the templates again in every run, about 0.2 s each time.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir or TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )


def load_templates(templates_dir: Path | None = None) -> None:
    """Load and compile the report templates now, so that a later render does not wait for them."""
    for name in ("report.html.j2", "index.html.j2"):
        _environment(templates_dir).get_template(name)


def _checked_run_id(run: Mapping[str, Any]) -> str:
    """Return the run id, or raise ValueError when it cannot be used as a file name."""
    run_id = str(run.get("run_id", ""))
    if not SAFE_RUN_ID.fullmatch(run_id) or run_id + ".html" in SPECIAL_REPORTS:
        raise ValueError(
            f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return run_id


def _load_step_stats(history_db: Path | None, run: Mapping[str, Any]) -> history.PipelineHistory:
    names = [step["name"] for step in run.get("steps", [])]
    try:
        return history.step_stats(history_db, run.get("pipeline", ""), run["run_id"], names)
    except sqlite3.Error as error:
        logger.warning("cannot read run history from %s, rendering without it: %s", history_db, error)
        return history.PipelineHistory(steps={})


def _with_refresh(page: str) -> str:
    tag = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
    note = f'<p class="live-note">Run in progress: this page reloads every {REFRESH_SECONDS} s.</p>'
    return page.replace(REFRESH_MARKER, tag, 1).replace(LIVE_NOTE_MARKER, note, 1)


def _without_markers(page: str) -> str:
    return page.replace(REFRESH_MARKER, "", 1).replace(LIVE_NOTE_MARKER, "", 1)


def _report_ids(reports_dir: Path) -> list[str]:
    return [path.stem for path in reports_dir.glob("*.html") if path.name not in SPECIAL_REPORTS]


def _is_newest_report(run_id: str, reports_dir: Path) -> bool:
    """Return True when no report in reports_dir has a run id that sorts after run_id."""
    return all(other <= run_id for other in _report_ids(reports_dir))


def _shows_as_latest(run_id: str, run_dir: Path, reports_dir: Path) -> bool:
    """Return True when latest.html is to show this run's report.

    That is the run that the logs directory's latest link points to, which
    after a resume is an older run than the newest. Only without a link to
    an existing run directory does the newest run id decide.
    """
    latest = run_dir.parent / "latest"
    try:
        if latest.is_symlink():
            return latest.resolve(strict=True) == run_dir.resolve()
    except (OSError, RuntimeError):
        pass
    return _is_newest_report(run_id, reports_dir)


def _relative_href(target: Path, start: Path) -> str:
    """Return a URL-quoted relative link from directory start to target."""
    relative = os.path.relpath(target.resolve(), start.resolve())
    return urllib.parse.quote(Path(relative).as_posix())


# ---------------------------------------------------------------- time and size formatting


def format_bytes(size: int) -> str:
    """Format a byte count with binary units (KiB, MiB, GiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _format_metric(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


# ---------------------------------------------------------------- steps


def _status_presentation(step: Mapping[str, Any]) -> tuple[str, str]:
    """Return the status label and CSS class of a step."""
    status = step.get("status", "unknown")
    label = STATUS_LABELS.get(status, status)
    if status == "succeeded" and step.get("warnings"):
        return "succeeded with warnings", "warned"
    if status in FAILED_STATUSES and step.get("allowed_failure"):
        return f"allowed failure ({label})", "allowed"
    return label, re.sub(r"[^a-z_]", "", status) or "unknown"


def _exit_text(step: Mapping[str, Any]) -> str:
    if step.get("signal"):
        return str(step["signal"])
    if step.get("exit_code") is not None:
        return str(step["exit_code"])
    return ""


def _log_info(step: Mapping[str, Any], run_dir: Path, logs_href: str) -> tuple[str, str]:
    """Return the relative link to a step's log (empty when there is nothing to open) and its size as text."""
    if not step.get("log"):
        return "", "no log"
    href = f"{logs_href}/{urllib.parse.quote(Path(step['log']).as_posix())}"
    try:
        size = os.stat(run_dir / step["log"]).st_size
    except FileNotFoundError:
        return ("", "not started") if not step.get("started_at") else (href, "missing")
    except OSError:
        return href, "unreadable"
    return href, format_bytes(size)


def _step_view(
    index: int, step: Mapping[str, Any], run_dir: Path, logs_href: str, clock: Clock
) -> StepView:
    label, css = _status_presentation(step)
    log_href, log_size = _log_info(step, run_dir, logs_href)
    recorded = step.get("metrics")
    metrics = list(recorded.items())[:MAX_METRICS_SHOWN] if isinstance(recorded, dict) else []
    command = str(step.get("command") or "")
    if len(command) > MAX_COMMAND_CHARS:
        command = command[:MAX_COMMAND_CHARS] + f" … {len(command) - MAX_COMMAND_CHARS:,} characters omitted"
    return StepView(
        index=index,
        name=str(step["name"]),
        phase=str(step.get("phase") or ""),
        status=str(step.get("status", "unknown")),
        label=label,
        css=css,
        glyph=STATUS_GLYPHS.get(step.get("status", ""), "?"),
        started=clock.clock_text(step.get("started_at")),
        started_title=full_time(step.get("started_at")),
        duration=format_duration(step_duration(step, clock)),
        exit=_exit_text(step),
        exit_label="signal" if step.get("signal") else "exit code",
        attempts=int(step.get("attempts") or 0),
        carried_over=bool(step.get("carried_over")),
        allowed_failure=bool(step.get("allowed_failure")),
        warnings=[str(warning) for warning in step.get("warnings") or []],
        reason=str(step.get("reason") or ""),
        blocked_by=str(step.get("blocked_by") or ""),
        blocked_by_anchor="",
        command=command,
        metrics=[(str(name), _format_metric(value)) for name, value in metrics],
        log_href=log_href,
        log_size=log_size,
        log_error=str(step.get("log_error") or ""),
        attempt_history=[_attempt_text(item) for item in step.get("attempt_history") or []],
    )


def _attempt_text(attempt: Mapping[str, Any]) -> str:
    outcome = STATUS_LABELS.get(attempt.get("outcome", ""), attempt.get("outcome") or "unknown")
    parts = [f"attempt {attempt.get('attempt', '?')}: {outcome}"]
    if attempt.get("signal"):
        parts.append(f"signal {attempt['signal']}")
    elif attempt.get("exit_code") is not None:
        parts.append(f"exit code {attempt['exit_code']}")
    duration = history.seconds_between(attempt.get("started_at"), attempt.get("finished_at"))
    if duration is not None:
        parts.append(format_duration(duration))
    return ", ".join(parts)


def _link_blockers(steps: list[StepView]) -> None:
    """Point each skipped step at the row of the step it waited for."""
    by_name = {step.name: step for step in steps}
    for step in steps:
        blocker = by_name.get(step.blocked_by)
        if blocker is not None:
            step.blocked_by_anchor = f"step-{blocker.index}"


def _add_history(
    steps: list[StepView], records: Sequence[Mapping[str, Any]], stats: history.PipelineHistory
) -> None:
    for view, record in zip(steps, records, strict=True):
        past = stats.step(view.name)
        _add_change(view, record, past)
        _add_success_rate(view, past)
        _add_sparkline(view, record, past)


def _add_change(view: StepView, record: Mapping[str, Any], past: history.StepHistory) -> None:
    duration = record.get("duration_s")
    median = past.median_duration_s
    if duration is None or not median or record.get("carried_over"):
        return
    change = (float(duration) - median) / median * 100
    view.change = f"{change:+.0f}%"
    view.change_title = (
        f"median of the last {min(len(past.durations), history.MEDIAN_DURATION_RUNS)}"
        f" successful runs: {format_duration(median)}"
    )
    # The median is over successful runs, so a step that failed early is
    # not "faster" than its usual self.
    if record.get("status") != "succeeded":
        return
    if change > 50:
        view.change_css = "slower"
    elif change < -33:
        view.change_css = "faster"


def _add_success_rate(view: StepView, past: history.StepHistory) -> None:
    succeeded, total = history.success_rate(past.outcomes)
    if total:
        view.success = f"{succeeded}/{total}"
        view.success_title = f"succeeded in {succeeded} of its last {total} finished runs before this one"


def _add_sparkline(view: StepView, record: Mapping[str, Any], past: history.StepHistory) -> None:
    durations = list(past.durations)
    if record.get("status") == "succeeded" and record.get("duration_s") is not None and not record.get("carried_over"):
        durations.append(float(record["duration_s"]))
    if len(durations) < 2:
        return
    view.sparkline = sparkline_points(durations)
    view.sparkline_title = "durations of the last successful runs: " + ", ".join(
        format_duration(value) for value in durations
    )


def sparkline_points(values: Sequence[float], width: float = 80, height: float = 16) -> str:
    """Return SVG polyline points for values, scaled to a width x height box with 1 unit of padding."""
    low, high = min(values), max(values)
    spread = high - low or 1.0
    step = (width - 2) / (len(values) - 1)
    points = [
        f"{1 + index * step:.1f},{height - 1 - (value - low) / spread * (height - 2):.1f}"
        for index, value in enumerate(values)
    ]
    return " ".join(points)


# ---------------------------------------------------------------- header


def _header(
    run: Mapping[str, Any], steps: list[StepView], stats: history.PipelineHistory, clock: Clock
) -> dict[str, Any]:
    status = str(run.get("status", "unknown"))
    duration = history.seconds_between(run.get("started_at"), run.get("finished_at"))
    if duration is None and status == "running" and clock.origin is not None:
        duration = (clock.now - clock.origin).total_seconds()
    resumed = list(run.get("resumed_at") or [])
    return {
        "run_id": run.get("run_id", ""),
        "pipeline": run.get("pipeline", ""),
        "selection": run.get("selection") or "",
        "status": status,
        "status_label": STATUS_LABELS.get(status, status).upper(),
        "status_glyph": STATUS_GLYPHS.get(status, "?"),
        "status_css": re.sub(r"[^a-z_]", "", status) or "unknown",
        "started": full_time(run.get("started_at")),
        "finished": full_time(run.get("finished_at")),
        "duration": format_duration(duration),
        # A resumed run's duration counts from its first start, pauses included.
        "resumed": _resumed_text(resumed),
        "exit_code": "" if run.get("exit_code") is None else str(run["exit_code"]),
        "error": str(run.get("error") or ""),
        "host": run.get("host") or "",
        "jobs": run.get("jobs"),
        "pipeline_file": run.get("pipeline_file") or "",
        "pipeline_hash": str(run.get("pipeline_sha256") or "")[:12],
        "counts": _status_counts(steps),
        "success_rate": _pipeline_success_text(status, stats),
    }


def _resumed_text(resumed: list[str]) -> str:
    if not resumed:
        return ""
    last = full_time(resumed[-1])
    return "at %s" % last if len(resumed) == 1 else "%d times, last at %s" % (len(resumed), last)


def _status_counts(steps: list[StepView]) -> list[tuple[str, int, str]]:
    """Return (label, count, css) for each step status present, in a fixed order."""
    counts = Counter((step.label, step.css) for step in steps)
    carried = sum(1 for step in steps if step.carried_over)
    order = ["succeeded", "succeeded with warnings", "failed", "timed out", "interrupted", "skipped", "not run"]

    def rank(label: str) -> tuple[int, str]:
        return (order.index(label) if label in order else len(order), label)

    ranked = sorted(counts.items(), key=lambda item: rank(item[0][0]))
    result = [(label, count, css) for (label, css), count in ranked]
    if carried:
        result.append(("carried over", carried, "carried"))
    return result


def _pipeline_success_text(status: str, stats: history.PipelineHistory) -> str:
    statuses = list(stats.run_statuses)
    if status in history.FINISHED_RUN_STATUSES:
        statuses.insert(0, status)
    succeeded, total = history.success_rate(statuses[: history.PIPELINE_RATE_RUNS])
    if total == 0:
        return "no finished runs recorded"
    runs = "finished run" if total == 1 else "finished runs"
    return f"{succeeded} of the last {total} {runs} succeeded ({succeeded / total:.0%})"


# ---------------------------------------------------------------- failures


def _failure_order(step: StepView) -> tuple[int, int]:
    return (1 if step.allowed_failure else 0, step.index)


def _failures(
    steps: list[StepView],
    records: Sequence[Mapping[str, Any]],
    run_dir: Path,
    reports_dir: Path,
    secret_values: Sequence[str],
) -> list[FailureView]:
    """Return failed and timed-out steps, blocking failures before allowed ones, with log excerpts."""
    failed = sorted((step for step in steps if step.status in FAILED_STATUSES), key=_failure_order)
    detailed = failed[:MAX_DETAILED_FAILURES]
    budget = _ExcerptBudget.split(len(detailed))
    views = [_failure_view(step, records[step.index], run_dir, reports_dir, budget, secret_values) for step in detailed]
    views += [FailureView(step, detailed=False) for step in failed[MAX_DETAILED_FAILURES:]]
    return views


@dataclass(frozen=True)
class _ExcerptBudget:
    """Per-failure limits that keep the whole report within fixed byte budgets."""

    max_line_bytes: int
    scan_bytes: int

    @classmethod
    def split(cls, failures: int) -> _ExcerptBudget:
        count = max(1, failures)
        line_bytes = EXCERPT_BUDGET_BYTES // (count * (TAIL_LINES + HEAD_LINES))
        scan_bytes = SCAN_BUDGET_BYTES // count
        return cls(
            max_line_bytes=min(4096, max(256, line_bytes)),
            scan_bytes=min(MAX_SCAN_BYTES, max(MIN_SCAN_BYTES, scan_bytes)),
        )


def _failure_view(
    step: StepView,
    record: Mapping[str, Any],
    run_dir: Path,
    reports_dir: Path,
    budget: _ExcerptBudget,
    secret_values: Sequence[str],
) -> FailureView:
    if not record.get("log"):
        return FailureView(step, log_note="no log recorded for this step")
    path = run_dir / record["log"]
    shown_path = os.path.relpath(path, reports_dir.parent)
    common = {"secret_values": secret_values, "display_path": shown_path}
    found = excerpt(path, tail_lines=TAIL_LINES, head_lines=HEAD_LINES, max_line_bytes=budget.max_line_bytes, **common)
    errors = scan_errors(path, max_scan_bytes=budget.scan_bytes, max_lines=MAX_ERROR_LINES, **common)
    return FailureView(
        step,
        errors=list(errors.lines),
        errors_note=_errors_note(errors),
        head=list(found.head),
        omission=found.omission or "",
        tail=list(found.tail),
        log_note=found.note or "",
    )


def _errors_note(errors: Any) -> str:
    if errors.note and errors.size is None:
        return ""
    parts = []
    if errors.found > len(errors.lines):
        more = "at least " if errors.found >= 1000 else ""
        parts.append(f"showing {len(errors.lines)} of {more}{errors.found:,} error-looking lines")
    if errors.note:
        parts.append(errors.note)
    return "; ".join(parts)


# ---------------------------------------------------------------- timeline

@dataclass
class IndexRow:
    """One run in index.html."""

    run_id: str
    href: str
    pipeline: str
    selection: str
    status: str
    status_label: str
    status_glyph: str
    started: str
    duration: str
    failed: list[str]
    failed_more: int
    allowed: list[str]
    allowed_more: int


def _write_index(
    reports_dir: Path,
    logs_dir: Path,
    history_db: Path | None,
    current: history.RunSummary | None,
    templates_dir: Path | None,
) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    summaries = _index_summaries(logs_dir, history_db, current)
    rows = [_index_row(summary, reports_dir) for summary in summaries]
    generated = full_time(datetime.now(timezone.utc).isoformat())
    page = _environment(templates_dir).get_template("index.html.j2").render(
        rows=rows, generated=generated, has_latest=(reports_dir / "latest.html").exists())
    path = reports_dir / "index.html"
    write_atomic(path, page)
    return path


def _index_summaries(
    logs_dir: Path, history_db: Path | None, current: history.RunSummary | None
) -> list[history.RunSummary]:
    """Merge runs from the history database, from run.json files it lacks, and the current run."""
    by_id: dict[str, history.RunSummary] = {}
    if history_db is not None:
        try:
            by_id = {summary.run_id: summary for summary in history.list_runs(history_db)}
        except sqlite3.Error as error:
            logger.warning("cannot read run history from %s, listing run directories only: %s", history_db, error)
    for summary in _scan_run_records(logs_dir, skip=set(by_id)):
        by_id[summary.run_id] = summary
    if current is not None:
        by_id[current.run_id] = current
    return sorted(by_id.values(), key=lambda summary: summary.run_id, reverse=True)


def _scan_run_records(logs_dir: Path, skip: set[str]) -> list[history.RunSummary]:
    summaries = []
    if not logs_dir.is_dir():
        return summaries
    for record in sorted(logs_dir.glob("*/run.json")):
        # A symlinked directory such as logs/latest repeats a run listed under its own id.
        if record.parent.name in skip or record.parent.is_symlink():
            continue
        try:
            summaries.append(history.summarize_run(read_run_record(record)))
        except (OSError, ValueError) as error:
            logger.warning("skipping run record %s in the index: %s", record, error)
    return summaries


def _index_row(summary: history.RunSummary, reports_dir: Path) -> IndexRow:
    report = reports_dir / f"{summary.run_id}.html"
    return IndexRow(
        run_id=summary.run_id,
        href=urllib.parse.quote(report.name) if report.exists() else "",
        pipeline=summary.pipeline,
        selection=summary.selection or "",
        status=re.sub(r"[^a-z_]", "", summary.status) or "unknown",
        status_label=STATUS_LABELS.get(summary.status, summary.status),
        status_glyph=STATUS_GLYPHS.get(summary.status, "?"),
        started=full_time(summary.started_at),
        duration=format_duration(summary.duration_s),
        failed=list(summary.failed_steps[:MAX_INDEX_FAILED_NAMES]),
        failed_more=max(0, len(summary.failed_steps) - MAX_INDEX_FAILED_NAMES),
        allowed=list(summary.allowed_failures[:MAX_INDEX_FAILED_NAMES]),
        allowed_more=max(0, len(summary.allowed_failures) - MAX_INDEX_FAILED_NAMES),
    )
