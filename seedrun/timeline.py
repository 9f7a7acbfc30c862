"""The report's timeline: one bar per step on a time axis, and the critical path.

Times come from the run record as offsets from the run's start. The critical
path is traced back from the last step to finish through needs, after and
the waited-for phase, using recorded durations. The dependency makespan is
what the run would have taken with only needs and after, unlimited slots and
the same durations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import logging

from seedrun import history
from seedrun.step import format_duration as format_console_duration

if TYPE_CHECKING:
    from seedrun.report import StepView

logger = logging.getLogger(__name__)


@dataclass
class Bar:
    """One timeline row. Coordinates are in SVG user units."""

    step: str
    label: str
    y: int
    wait_x: float
    wait_width: float
    run_x: float
    run_width: float
    css: str
    title: str
    critical: bool


@dataclass
class PhaseBand:
    """A phase heading in the timeline and the vertical extent of its rows."""

    name: str
    y: int
    height: int


@dataclass
class Timeline:
    """Server-rendered SVG timeline of the steps that ran."""

    width: int
    height: int
    label_width: int
    bars: list[Bar]
    bands: list[PhaseBand]
    ticks: list[tuple[float, str]]
    actual_makespan: str
    dependency_makespan: str
    critical_path: list[str]
    carried_over_count: int


@dataclass(frozen=True)
class Clock:
    """Converts run timestamps to seconds from the run start and to display text."""

    origin: datetime | None
    now: datetime

    @classmethod
    def for_run(cls, run: Mapping[str, Any]) -> Clock:
        starts = [_utc(run.get("started_at"))]
        starts += [_utc(step.get("queued_at") or step.get("started_at")) for step in _ran(run)]
        known = [start for start in starts if start is not None]
        return cls(min(known) if known else None, datetime.now(timezone.utc))

    def offset(self, value: str | None) -> float | None:
        moment = _utc(value)
        if moment is None or self.origin is None:
            return None
        return (moment - self.origin).total_seconds()

    def clock_text(self, value: str | None) -> str:
        moment = _utc(value)
        if moment is None:
            return ""
        if self.origin is not None and moment.date() == self.origin.date():
            return moment.strftime("%H:%M:%S")
        return moment.strftime("%Y-%m-%d %H:%M:%S")


def _utc(value: str | None) -> datetime | None:
    moment = history.parse_time(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def full_time(value: str | None) -> str:
    moment = _utc(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def format_duration(seconds: float | None) -> str:
    """Format seconds as the console does (0.4s, 12.3s, 4m12s, 2h05m), or "" for None."""
    if seconds is None:
        return ""
    return format_console_duration(seconds)


def _ran(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the steps that ran in this run: started, and not carried over from an earlier one."""
    return [step for step in run.get("steps", []) if step.get("started_at") and not step.get("carried_over")]




TIMELINE_WIDTH = 1000
LABEL_WIDTH = 240
ROW_HEIGHT = 18
BAR_HEIGHT = 12
BAND_HEADER = 20
AXIS_HEIGHT = 24
# Room on the right for the last tick label.
RIGHT_PADDING = 40
NICE_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_LABEL_CHARS = 34


def build_timeline(run: Mapping[str, Any], steps: list[StepView], clock: Clock) -> Timeline:
    """Lay out one bar per step that ran, grouped by phase in the order of run["phases"]."""
    ran = _ran(run)
    spans = {step["name"]: _span(step, clock) for step in ran}
    critical = critical_path(ran, run.get("phases", []), spans)
    total = max((end for _, _, end in spans.values()), default=0.0) or 1.0
    scale = (TIMELINE_WIDTH - LABEL_WIDTH - RIGHT_PADDING) / total
    views = {view.name: view for view in steps}
    bars, bands, height = _layout_rows(ran, run.get("phases", []), spans, scale, views, set(critical))
    return Timeline(
        width=TIMELINE_WIDTH,
        height=height + 6,
        label_width=LABEL_WIDTH,
        bars=bars,
        bands=bands,
        ticks=[(LABEL_WIDTH + at * scale, text) for at, text in _ticks(total)],
        actual_makespan=format_duration(_actual_makespan(spans)),
        dependency_makespan=format_duration(dependency_makespan(ran, spans)),
        critical_path=critical,
        carried_over_count=sum(1 for step in run.get("steps", []) if step.get("carried_over")),
    )


def step_duration(step: Mapping[str, Any], clock: Clock) -> float | None:
    if step.get("duration_s") is not None:
        return float(step["duration_s"])
    start = _utc(step.get("started_at"))
    if start is None:
        return None
    end = _utc(step.get("finished_at")) or clock.now
    return max(0.0, (end - start).total_seconds())


def _span(step: Mapping[str, Any], clock: Clock) -> tuple[float, float, float]:
    """Return (queued, started, ended) in seconds from the run start."""
    started = clock.offset(step.get("started_at")) or 0.0
    queued = clock.offset(step.get("queued_at"))
    queued = started if queued is None else min(queued, started)
    ended = clock.offset(step.get("finished_at"))
    if ended is None:
        duration = step_duration(step, clock) or 0.0
        ended = started + duration
    return queued, started, max(started, ended)


def _actual_makespan(spans: Mapping[str, tuple[float, float, float]]) -> float | None:
    if not spans:
        return None
    first = min(started for _, started, _ in spans.values())
    return max(ended for _, _, ended in spans.values()) - first


def _phase_order(steps: Iterable[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]) -> list[str]:
    order = [str(phase.get("name")) for phase in phases]
    for step in steps:
        name = str(step.get("phase") or "")
        if name not in order:
            order.append(name)
    return order


def _layout_rows(
    ran: list[Mapping[str, Any]],
    phases: Sequence[Mapping[str, Any]],
    spans: Mapping[str, tuple[float, float, float]],
    scale: float,
    views: Mapping[str, StepView],
    critical: set[str],
) -> tuple[list[Bar], list[PhaseBand], int]:
    bars: list[Bar] = []
    bands: list[PhaseBand] = []
    y = AXIS_HEIGHT
    for phase in _phase_order(ran, phases):
        members = [step for step in ran if str(step.get("phase") or "") == phase]
        members.sort(key=lambda step: spans[step["name"]][1])
        if not members:
            continue
        bands.append(PhaseBand(phase or "no phase", y, BAND_HEADER + len(members) * ROW_HEIGHT))
        y += BAND_HEADER
        for step in members:
            bars.append(_bar(step, views[step["name"]], spans[step["name"]], y, scale, step["name"] in critical))
            y += ROW_HEIGHT
    return bars, bands, y


def _bar(
    step: Mapping[str, Any],
    view: StepView,
    span: tuple[float, float, float],
    y: int,
    scale: float,
    critical: bool,
) -> Bar:
    queued, started, ended = span
    label = view.name if len(view.name) <= MAX_LABEL_CHARS else view.name[: MAX_LABEL_CHARS - 1] + "…"
    title = [f"{view.name}: {view.label}"]
    if step.get("queued_at") and queued < started:
        waited = format_duration(started - queued)
        title.append(f"queued {full_time(step.get('queued_at'))}, waited {waited} for a slot")
    title.append(f"started {full_time(step.get('started_at'))}")
    title.append(f"finished {full_time(step.get('finished_at'))}" if step.get("finished_at") else "not finished")
    title.append(f"ran {format_duration(ended - started)}")
    if critical:
        title.append("on the critical path")
    return Bar(
        step=view.name,
        label=f"{view.glyph} {label}",
        y=y,
        wait_x=round(LABEL_WIDTH + queued * scale, 2),
        wait_width=round((started - queued) * scale, 2),
        run_x=round(LABEL_WIDTH + started * scale, 2),
        run_width=round(max(1.0, (ended - started) * scale), 2),
        css=view.css,
        title="\n".join(title),
        critical=critical,
    )


def _ticks(total: float) -> list[tuple[float, str]]:
    """Return (seconds, label) for at most about 8 evenly spaced axis ticks."""
    fitting = [tick for tick in NICE_TICKS if total / tick <= 8]
    interval = fitting[0] if fitting else NICE_TICKS[-1] * (int(total / NICE_TICKS[-1] / 8) + 1)
    ticks = [(0.0, "0")]
    for index in range(1, int(total // interval) + 1):
        ticks.append((index * interval, f"+{_offset_text(index * interval)}"))
    return ticks


def _offset_text(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m" + (f" {whole % 60}s" if whole % 60 else "")
    return f"{whole // 3600}h" + (f" {whole % 3600 // 60:02d}m" if whole % 3600 else "")


def _predecessors(
    step: Mapping[str, Any], members: Mapping[str, list[str]], *, with_phases: bool
) -> list[str]:
    names = [*(step.get("needs") or []), *(step.get("after") or [])]
    if with_phases and step.get("waits_for_phase"):
        names += members.get(str(step["waits_for_phase"]), [])
    return names


def _phase_members(steps: Iterable[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {str(phase.get("name")): list(phase.get("steps") or []) for phase in phases}
    for step in steps:
        if step.get("phase") and step["name"] not in members.setdefault(str(step["phase"]), []):
            members[str(step["phase"])].append(step["name"])
    return members


def critical_path(
    ran: list[Mapping[str, Any]],
    phases: Sequence[Mapping[str, Any]],
    spans: Mapping[str, tuple[float, float, float]],
) -> list[str]:
    """Return the chain of steps that gated the end of the run, first step first.

    Starting from the step that ended last, each step's gating prerequisite is the
    one among needs, after and the steps of waits_for_phase that ended last.
    """
    if not spans:
        return []
    by_name = {step["name"]: step for step in ran}
    members = _phase_members(ran, phases)
    current = max(spans, key=lambda name: spans[name][2])
    chain = [current]
    while True:
        prerequisites = _predecessors(by_name[current], members, with_phases=True)
        candidates = [name for name in prerequisites if name in spans and name not in chain]
        if not candidates:
            return list(reversed(chain))
        current = max(candidates, key=lambda name: spans[name][2])
        chain.append(current)


def dependency_makespan(ran: list[Mapping[str, Any]], spans: Mapping[str, tuple[float, float, float]]) -> float | None:
    """Return the makespan with only needs/after edges, unlimited slots and the recorded durations.

    Phase barriers, pools and the job limit are ignored. A dependency cycle is
    broken at the step where it is found, which is logged.
    """
    if not spans:
        return None
    by_name = {step["name"]: step for step in ran}
    finish: dict[str, float] = {}
    for name in _topological_order(by_name):
        duration = spans[name][2] - spans[name][1]
        prerequisites = _predecessors(by_name[name], {}, with_phases=False)
        ready = max((finish[p] for p in prerequisites if p in finish), default=0.0)
        finish[name] = ready + duration
    return max(finish.values())


def _topological_order(by_name: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Order steps so that each comes after its needs/after prerequisites, without recursion."""
    order: list[str] = []
    state: dict[str, int] = {}
    for root in by_name:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                if state[name] == 1:
                    logger.warning("dependency cycle through step %s, ignoring the edge", name)
                continue
            state[name] = 1
            stack.append((name, True))
            prerequisites = _predecessors(by_name[name], {}, with_phases=False)
            stack.extend((p, False) for p in prerequisites if p in by_name and state.get(p) != 2)
    return order


# ---------------------------------------------------------------- index
