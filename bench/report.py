"""Summarize the measurements, judge the targets and write the results page in Markdown.

Every figure is the median over rounds with the min and max beside it.
Ratios and differences against a baseline are taken round by round (runner
in round r against the baseline in round r) before the median, so slow
drift of the machine affects both sides of each pair alike. A target is
judged on the median; the worst round is shown next to it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.runners import RUNNERS, Sample
from bench.workloads import Scenario

STEP_OVERHEAD_TARGET_MS = 5.0
STEP_OVERHEAD_STRETCH_MS = 2.0
CRITICAL_PATH_TARGET = 1.03
OUTPUT_CAPTURE_TARGET = 1.05
REPORT_SECONDS_TARGET = 2.0
REPORT_MEMORY_TARGET_MB = 150.0
PLAN_SECONDS_TARGET = 1.0


@dataclass
class Row:
    """One runner's samples in a scenario, indexed by round (None where that round failed)."""

    runner: str
    samples: list[Sample | None] = field(default_factory=list)
    skipped: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return RUNNERS[self.runner].label

    def walls(self) -> list[float]:
        return [sample.wall for sample in self.samples if sample is not None]

    def figure(self, name: str) -> list[float]:
        return [sample.figures[name] for sample in self.samples if sample is not None and name in sample.figures]

    def rss_mb(self) -> list[float]:
        return [sample.maxrss_kb * 1024 / 1e6 for sample in self.samples if sample is not None]


@dataclass
class ScenarioResult:
    scenario: Scenario
    rounds: int
    rows: dict[str, Row]
    setup_error: str | None = None

    def row(self, runner: str) -> Row | None:
        row = self.rows.get(runner)
        return row if row is not None and row.walls() else None


@dataclass
class Verdict:
    """One line of the targets table."""

    target: str
    measured: str
    result: str
    met: bool | None


def paired(first: Row | None, second: Row | None, combine) -> list[float]:
    """Apply combine(first sample, second sample) to every round where both runners have a sample."""
    if first is None or second is None:
        return []
    values = []
    for a, b in zip(first.samples, second.samples):
        if a is not None and b is not None:
            values.append(combine(a, b))
    return values


def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def seconds(value: float) -> str:
    return "%.3f" % value if value < 100 else "%.1f" % value


def triple(values: list[float], text=seconds) -> str:
    middle, low, high = spread(values)
    return "%s (%s–%s)" % (text(middle), text(low), text(high))


# ------------------------------------------------------------------ targets


def judge(results: list[ScenarioResult], quick: bool) -> list[Verdict]:
    """Return the verdict on every target whose scenario ran."""
    verdicts: list[Verdict] = []
    for result in results:
        workload = result.scenario.workload
        if workload in ("W1", "W2"):
            verdicts.append(_step_overhead(result))
        elif workload == "W3":
            verdicts += _critical_path(result)
        elif workload == "W4":
            verdicts += _output_capture(result)
        elif workload == "W5":
            verdicts += _report_render(result)
        elif workload == "W6":
            verdicts += _planning(result)
    if quick:
        for verdict in verdicts:
            verdict.result = "not judged: --quick sizes"
            verdict.met = None
    return verdicts


def _not_measured(target: str, why: str) -> Verdict:
    return Verdict(target, "not measured", why, None)


def _step_overhead(result: ScenarioResult) -> Verdict:
    scenario = result.scenario
    target = "%s: seedrun adds at most %g ms per step over make (stretch %g ms)" % (
        scenario.key, STEP_OVERHEAD_TARGET_MS, STEP_OVERHEAD_STRETCH_MS)
    count = scenario.step_count
    extra = paired(result.row("seedrun"), result.row("make"), lambda s, m: (s.wall - m.wall) / count * 1000)
    if not extra:
        return _not_measured(target, "seedrun or make has no sample")
    middle, _, worst = spread(extra)
    measured = "%.1f ms per step (worst round %.1f ms)" % (middle, worst)
    if middle <= STEP_OVERHEAD_STRETCH_MS:
        return Verdict(target, measured, "met, stretch met too", True)
    if middle <= STEP_OVERHEAD_TARGET_MS:
        return Verdict(target, measured, "met, stretch not met", True)
    return Verdict(target, measured, "not met: %.1f ms per step over the target" % (middle - STEP_OVERHEAD_TARGET_MS),
                   False)


def _critical_path(result: ScenarioResult) -> list[Verdict]:
    scenario = result.scenario
    bound = scenario.bound
    seedrun = result.row("seedrun")
    target = "%s: seedrun within %d%% of the critical-path bound (%.2f s)" % (
        scenario.key, round((CRITICAL_PATH_TARGET - 1) * 100), bound)
    verdicts = []

    if seedrun is None:
        verdicts.append(_not_measured(target, "seedrun has no sample"))
    else:
        ratios = [wall / bound for wall in seedrun.walls()]
        middle, _, worst = spread(ratios)
        measured = "%.3f x the bound (worst round %.3f x)" % (middle, worst)
        if middle <= CRITICAL_PATH_TARGET:
            verdicts.append(Verdict(target, measured, "met", True))
        else:
            over = (middle - 1) * bound
            verdicts.append(Verdict(target, measured, "not met: %.2f s (%.1f%%) over the bound" % (
                over, (middle - 1) * 100), False))

    target = "%s: seedrun never behind doit or Node.js on the same DAG" % scenario.key
    behind = []
    compared = []
    for peer in ("doit", "node"):
        differences = paired(seedrun, result.row(peer), lambda s, p: s.wall - p.wall)
        if differences:
            compared.append(peer)
            late = [d for d in differences if d > 0]
            behind.append("behind %s in %d of %d rounds%s" % (
                RUNNERS[peer].label, len(late), len(differences),
                " (by up to %.3f s)" % max(late) if late else ""))

    if not compared:
        verdicts.append(_not_measured(target, "seedrun, doit and Node.js have no paired samples"))
    else:
        met = all(" in 0 of " in text for text in behind)
        note = "" if len(compared) == 2 else "; only %s measured" % ", ".join(RUNNERS[p].label for p in compared)
        verdicts.append(Verdict(target, "; ".join(behind) + note, "met" if met else "not met", met))
    return verdicts


def _output_capture(result: ScenarioResult) -> list[Verdict]:
    """Judge log capture by the step's recorded duration, and show the whole run against the same floor.

    The step's duration in run.json runs from just before the command starts
    until it has exited and its log is complete, so it is the capture cost.
    The whole `seedrun run` adds the run's fixed cost (Python start, plan,
    make, report), which W0 measures on its own.
    """
    target = "W4: seedrun's log capture at most %.2f x the floor `sh -c 'cmd > file'`" % OUTPUT_CAPTURE_TARGET
    verdicts = []
    ratios = paired(result.row("seedrun"), result.row("sh"),
                    lambda s, f: s.figures["step_s"] / f.wall if "step_s" in s.figures else None)
    ratios = [ratio for ratio in ratios if ratio is not None]
    if not ratios:
        verdicts.append(_not_measured(target, "seedrun or sh has no sample"))
    else:
        middle, _, worst = spread(ratios)
        measured = "step duration in run.json: %.3f x (worst round %.3f x)" % (middle, worst)
        if middle <= OUTPUT_CAPTURE_TARGET:
            verdicts.append(Verdict(target, measured, "met", True))
        else:
            verdicts.append(Verdict(target, measured, "not met: %.3f x over the target" % (
                middle - OUTPUT_CAPTURE_TARGET), False))
    target = "W4: the whole `seedrun run` at most %.2f x the floor (fixed cost included)" % OUTPUT_CAPTURE_TARGET
    ratios = paired(result.row("seedrun"), result.row("sh"), lambda s, f: s.wall / f.wall)
    if not ratios:
        verdicts.append(_not_measured(target, "seedrun or sh has no sample"))
    else:
        middle, _, worst = spread(ratios)
        measured = "%.3f x (worst round %.3f x)" % (middle, worst)
        met = middle <= OUTPUT_CAPTURE_TARGET
        verdicts.append(Verdict(target, measured, "met" if met else "not met: %.3f x over the target" % (
            middle - OUTPUT_CAPTURE_TARGET), met))
    return verdicts


def _report_render(result: ScenarioResult) -> list[Verdict]:
    row = result.row("render_run")
    wall_target = "W5: report of %s steps rendered in under %g s (process wall time)" % (
        format(result.scenario.step_count, ","), REPORT_SECONDS_TARGET)
    memory_target = "W5: report rendering peak RSS under %g MB" % REPORT_MEMORY_TARGET_MB
    if row is None:
        return [_not_measured(wall_target, "render_run has no sample"),
                _not_measured(memory_target, "render_run has no sample")]
    return [_below(wall_target, row.walls(), REPORT_SECONDS_TARGET, "s"),
            _below(memory_target, row.rss_mb(), REPORT_MEMORY_TARGET_MB, "MB")]


def _planning(result: ScenarioResult) -> list[Verdict]:
    count = format(result.scenario.step_count, ",")
    verdicts = []
    command = result.row("seedrun plan")
    target = "W6: `seedrun plan` of %s steps in under %g s" % (count, PLAN_SECONDS_TARGET)
    verdicts.append(_below(target, command.walls(), PLAN_SECONDS_TARGET, "s") if command
                    else _not_measured(target, "seedrun plan has no sample"))
    in_process = result.row("load_pipeline + resolve")
    target = "W6: load_pipeline + resolve of %s steps in under %g s (in process)" % (count, PLAN_SECONDS_TARGET)
    verdicts.append(_below(target, in_process.figure("load_and_resolve_s"), PLAN_SECONDS_TARGET, "s")
                    if in_process else _not_measured(target, "the in-process probe has no sample"))
    return verdicts


def _below(target: str, values: list[float], limit: float, unit: str) -> Verdict:
    middle, _, worst = spread(values)
    measured = "%.3f %s (worst round %.3f %s)" % (middle, unit, worst, unit)
    if middle < limit:
        return Verdict(target, measured, "met", True)
    return Verdict(target, measured, "not met: %.3f %s over (%.1f x the target)" % (
        middle - limit, unit, middle / limit), False)


# ------------------------------------------------------------------ Markdown


def render_markdown(results: list[ScenarioResult], verdicts: list[Verdict], header: dict) -> str:
    out = ["# seedrun benchmark results, %s" % header["started"], ""]
    out += ["| | |", "| --- | --- |"]
    out += ["| %s | %s |" % (key, value) for key, value in header["facts"]]
    out += ["", "## Targets", "", "| Target | Measured (median) | Result |", "| --- | --- | --- |"]
    out += ["| %s | %s | %s |" % (v.target, v.measured, v.result) for v in verdicts]
    for result in results:
        out += ["", "## %s: %s" % (result.scenario.key, result.scenario.title), ""]
        if result.setup_error:
            out += ["Not measured: setting up the workload failed: %s" % result.setup_error]
            continue
        workload = result.scenario.workload
        if workload == "W5":
            out += _report_table(result)
        elif workload == "W6":
            out += _plan_table(result)
        else:
            out += _runner_table(result)
        out += _notes(result)
    out += ["", "## Every round", "", "Wall seconds of each measurement, in the order they ran within a round.", ""]
    for result in results:
        out += _rounds_table(result)
    return "\n".join(out) + "\n"


def _runner_table(result: ScenarioResult) -> list[str]:
    scenario = result.scenario
    baseline = result.row(scenario.baseline) if scenario.baseline else None
    if scenario.bound is not None:
        compare = "Ratio to the bound"
    else:
        compare = "Ratio to %s" % RUNNERS[scenario.baseline].label
    per_step = scenario.step_count > 1 and scenario.bound is None
    over = ("Over %s per step, ms" if per_step else "Over %s, s") % RUNNERS[scenario.baseline].label \
        if scenario.baseline else None
    columns = ["Runner", "Median s", "Min s", "Max s", compare + " (median, min–max)"]
    columns += [over] if over else []
    columns += ["Peak RSS MB (median)"]

    lines = []
    if scenario.bound is not None:
        lines += ["Critical-path bound (sum of sleeps along the longest path): %.3f s." % scenario.bound, ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]

    for row in result.rows.values():
        if row.skipped or not row.walls():
            reason = "skipped" if row.skipped else "failed"
            lines.append("| %s | %s |%s" % (row.label, reason, " |" * (len(columns) - 2)))
            continue
        middle, low, high = spread(row.walls())
        cells = [row.label, seconds(middle), seconds(low), seconds(high)]
        if scenario.bound is not None:
            cells.append(triple([wall / scenario.bound for wall in row.walls()], lambda v: "%.3f" % v))
        else:
            ratios = paired(row, baseline, lambda a, b: a.wall / b.wall)
            cells.append(triple(ratios, lambda v: "%.2f" % v) if ratios else "–")
        if over:
            if per_step:
                differences = paired(row, baseline, lambda a, b: (a.wall - b.wall) / scenario.step_count * 1000)
                cells.append("%.2f" % statistics.median(differences) if differences else "–")
            else:
                differences = paired(row, baseline, lambda a, b: a.wall - b.wall)
                cells.append("%.3f" % statistics.median(differences) if differences else "–")
        cells.append("%.1f" % statistics.median(row.rss_mb()))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _figure_line(name: str, values: list[float], target: str, unit_format: str = "%.3f") -> str:
    if not values:
        return "| %s | – | – | – | %s |" % (name, target)
    middle, low, high = spread(values)
    return "| %s | %s | %s | %s | %s |" % (name, unit_format % middle, unit_format % low, unit_format % high, target)


def _report_table(result: ScenarioResult) -> list[str]:
    row = result.rows["render_run"]
    if row.skipped or not row.walls():
        return ["Not measured."]
    lines = ["| Figure | Median | Min | Max | Target |", "| --- | --- | --- | --- | --- |"]
    lines.append(_figure_line("Process wall time (start, import, load run.json, render), s", row.walls(),
                              "< %g s" % REPORT_SECONDS_TARGET))
    lines.append(_figure_line("render_run call alone, s", row.figure("render_run_s"), ""))
    lines.append(_figure_line("Python start and `import seedrun.report`, s", row.figure("import_s"), ""))
    lines.append(_figure_line("Peak RSS, MB", row.rss_mb(), "< %g MB" % REPORT_MEMORY_TARGET_MB, "%.1f"))
    lines.append(_figure_line("Bytes read during render_run, MB", row.figure("read_mb"), "", "%.1f"))
    return lines


def _plan_table(result: ScenarioResult) -> list[str]:
    lines = ["| Figure | Median | Min | Max | Target |", "| --- | --- | --- | --- | --- |"]
    command = result.rows["seedrun plan"]
    if not command.skipped and command.walls():
        lines.append(_figure_line("`seedrun plan` wall time, s", command.walls(), "< %g s" % PLAN_SECONDS_TARGET))
        lines.append(_figure_line("`seedrun plan` peak RSS, MB", command.rss_mb(), "", "%.1f"))
    probe = result.rows["load_pipeline + resolve"]
    if not probe.skipped and probe.walls():
        lines.append(_figure_line("load_pipeline + resolve, in process, s", probe.figure("load_and_resolve_s"),
                                  "< %g s" % PLAN_SECONDS_TARGET))
        lines.append(_figure_line("load_pipeline alone, s", probe.figure("load_pipeline_s"), ""))
        lines.append(_figure_line("resolve alone, s", probe.figure("resolve_s"), ""))
        lines.append(_figure_line("Python start and imports, s", probe.figure("import_s"), ""))
    return lines


def _notes(result: ScenarioResult) -> list[str]:
    notes = []
    for row in result.rows.values():
        if row.skipped:
            notes.append("- %s skipped: %s" % (row.label, row.skipped))
        for failure in row.failures:
            notes.append("- %s failed in %s" % (row.label, failure))
    scenario = result.scenario
    if scenario.workload == "W3":
        seedrun = result.row("seedrun")
        for peer in ("doit", "node"):
            differences = paired(seedrun, result.row(peer), lambda s, p: s.wall - p.wall)
            if differences:
                notes.append("- seedrun minus %s, paired by round: median %+.3f s, range %+.3f to %+.3f s" % (
                    RUNNERS[peer].label, *spread(differences)))
    if scenario.workload == "W4":
        seedrun = result.row("seedrun")
        steps = seedrun.figure("step_s") if seedrun else []
        if steps:
            notes.append("- seedrun's step duration in run.json (the log capture alone): median %.3f s, "
                         "range %.3f to %.3f s" % spread(steps))
    if scenario.workload in ("W1", "W2"):
        extra = paired(result.row("seedrun"), result.row("make"),
                       lambda s, m: (s.wall - m.wall) / scenario.step_count * 1000)
        if extra:
            notes.append("- seedrun minus make per step, paired by round: median %.2f ms, range %.2f to %.2f ms"
                         % spread(extra))
    return [""] + notes if notes else []


def _rounds_table(result: ScenarioResult) -> list[str]:
    columns = ["%s" % result.scenario.key] + ["round %d" % (number + 1) for number in range(result.rounds)]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in result.rows.values():
        if row.skipped:
            continue
        cells = [row.label] + [seconds(sample.wall) if sample else "failed" for sample in row.samples]
        cells += [""] * (len(columns) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def summary_text(verdicts: list[Verdict]) -> str:
    """Return the targets as plain lines for the terminal."""
    width = max((len(v.target) for v in verdicts), default=0)
    return "\n".join("%-*s  %s  [%s]" % (width, v.target, v.measured, v.result) for v in verdicts)
