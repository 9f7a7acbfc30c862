"""Run the seedrun benchmarks and write bench/results/<UTC date and time>.md.

    python -m bench                       every workload, default rounds
    python -m bench --workload W3         one workload again
    python -m bench --quick --rounds 1    tiny sizes, as the smoke test runs it
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Row, ScenarioResult, judge, render_markdown, summary_text
from bench.runners import ROOT, RUNNERS, RunFailed, measure, seedrun_executable
from bench.workloads import FULL, QUICK, Scenario, build_scenarios, large_pipeline_text, write_report_fixture

WORKLOADS = ("W0", "W1", "W2", "W3", "W4", "W5", "W6")
# Rounds per workload when --rounds is not given, chosen so that `make bench`
# stays under 10 minutes on 2 busy cores. One round of W3 takes about 80 s
# because six runners sleep through two graphs of 4 and 9 s. One round of W1
# takes about 30 s.
DEFAULT_ROUNDS = {"W0": 5, "W1": 5, "W2": 5, "W3": 3, "W4": 3, "W5": 5, "W6": 3}
TIMEOUT_SECONDS = 300.0
QUICK_TIMEOUT_SECONDS = 60.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Workloads: " + ", ".join(WORKLOADS) + "; see bench/README.md.")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="rounds per workload (default: %s)" % ", ".join(
                            "%s %d" % item for item in DEFAULT_ROUNDS.items()))
    parser.add_argument("--workload", action="append", default=[], metavar="W",
                        help="run only this workload (W0 to W6); repeat for several")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test; targets are not judged")
    parser.add_argument("--out", metavar="PATH", type=Path,
                        help="results file (default: bench/results/<UTC date and time>.md)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="kill a measured command after this many seconds (default: %g, with --quick %g)"
                             % (TIMEOUT_SECONDS, QUICK_TIMEOUT_SECONDS))
    args = parser.parse_args(argv)
    args.workload = [name.upper() for name in args.workload]
    unknown = [name for name in args.workload if name not in WORKLOADS]
    if unknown:
        parser.error("unknown workload %s; valid workloads: %s" % (", ".join(unknown), ", ".join(WORKLOADS)))
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1, got %d" % args.rounds)
    return args


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prepare_fixture(scenario: Scenario, scratch: Path) -> dict:
    """Write the inputs a scenario shares between its rounds (W5's run and logs, W6's pipeline file)."""
    if scenario.workload == "W5":
        root = scratch / "report-fixture"
        root.mkdir()
        started = time.perf_counter()
        fixture = write_report_fixture(root, scenario.step_count, scenario.settings["log_bytes"])
        say("W5: wrote %d logs of %s bytes in %.1f s" % (scenario.step_count, format(
            scenario.settings["log_bytes"], ","), time.perf_counter() - started))
        return fixture
    if scenario.workload == "W6":
        path = scratch / "large-pipeline.toml"
        path.write_text(large_pipeline_text(scenario.step_count))
        return {"pipeline": path}
    return {}


def run_scenario(scenario: Scenario, rounds: int, scratch: Path, timeout: float) -> ScenarioResult:
    """Measure every applicable runner `rounds` times, interleaved: A B C, A B C, ..."""
    rows: dict[str, Row] = {}
    active = []
    for name in scenario.runners:
        runner = RUNNERS[name]
        reason = runner.missing() or runner.unsupported(scenario)
        rows[name] = Row(name, skipped=reason)
        if reason:
            say("%s: skipping %s: %s" % (scenario.key, runner.label, reason))
        else:
            active.append(runner)
    result = ScenarioResult(scenario, rounds, rows)
    try:
        fixture = prepare_fixture(scenario, scratch)
    except Exception as error:  # noqa: BLE001 - the page reports a broken workload and the bench goes on
        result.setup_error = "%s: %s" % (type(error).__name__, error)
        say("%s: setting up the workload failed: %s" % (scenario.key, result.setup_error))
        return result
    for number in range(1, rounds + 1):
        for runner in active:
            row = rows[runner.name]
            try:
                sample = measure(runner, scenario, scratch, fixture, timeout)
            except RunFailed as error:
                row.samples.append(None)
                row.failures.append("round %d: %s" % (number, error))
                say("%s round %d/%d: %s failed: %s" % (scenario.key, number, rounds, runner.label, error))
                continue
            row.samples.append(sample)
            say("%s round %d/%d: %-26s %8.3f s" % (scenario.key, number, rounds, runner.label, sample.wall))
    return result


def git_revision() -> str:
    try:
        revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if not revision:
        return "unknown"
    return revision + (" with uncommitted changes" if dirty else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(argv: list[str], rounds_text: str) -> list[tuple[str, str]]:
    tools = []
    for name in ("make", "parallel", "doit", "node", "seedrun"):
        runner = RUNNERS[name]
        tools.append(runner.version() if not runner.missing() else "%s: not available" % runner.label)
    load = os.getloadavg()
    return [
        ("Command", "`python -m bench %s`" % " ".join(argv) if argv else "`python -m bench`"),
        ("Rounds", rounds_text),
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu_model()),
        ("Kernel", platform.release()),
        ("Python", "%s (%s)" % (platform.python_version(), sys.executable)),
        ("Tools", "; ".join(tool for tool in tools if tool)),
        ("seedrun revision", git_revision()),
        ("PYTHONDONTWRITEBYTECODE", os.environ.get("PYTHONDONTWRITEBYTECODE") or "not set"),
        ("Load average at start (1, 5, 15 min)", "%.2f, %.2f, %.2f" % load),
    ]


def default_output() -> Path:
    return ROOT / "bench" / "results" / (time.strftime("%Y%m%dT%H%MZ", time.gmtime()) + ".md")


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def compile_seedrun() -> str:
    """Byte-compile seedrun's modules, as pip does on install, so no round pays for compiling them.

    An editable install (what `make venv` does) leaves them to the first
    import, and with PYTHONDONTWRITEBYTECODE set that would be every import.
    """
    spec = importlib.util.find_spec("seedrun")
    if spec is None or not spec.submodule_search_locations:
        return "seedrun not importable; not compiled"
    folder = list(spec.submodule_search_locations)[0]
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", folder], capture_output=True, text=True)
    if done.returncode != 0:
        say("warning: compiling seedrun's modules failed: %s" % (done.stdout + done.stderr).strip())
        return "compileall failed (exit code %d)" % done.returncode
    return "compiled with compileall before the first round"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    scenarios = [s for s in build_scenarios(sizes) if not args.workload or s.workload in args.workload]
    timeout = args.timeout or (QUICK_TIMEOUT_SECONDS if args.quick else TIMEOUT_SECONDS)
    out = args.out or default_output()
    started = time.time()
    clock = time.perf_counter()

    if seedrun_executable() is None:
        say("warning: seedrun not found beside %s or on PATH; its rows will be skipped (run make venv)"
            % sys.executable)
    facts = machine_facts(argv, "")
    facts.append(("seedrun bytecode", compile_seedrun()))
    scratch = Path(tempfile.mkdtemp(prefix="seedrun-bench-"))
    results = []
    try:
        for scenario in scenarios:
            rounds = args.rounds or DEFAULT_ROUNDS[scenario.workload]
            results.append(run_scenario(scenario, rounds, scratch, timeout))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rounds_text = ", ".join("%s %d" % (r.scenario.key, r.rounds) for r in results)
    facts[1] = ("Rounds", rounds_text + "; runners interleaved in the order of each table")
    facts.append(("Load average at end (1, 5, 15 min)", "%.2f, %.2f, %.2f" % os.getloadavg()))
    facts.append(("Harness wall time", "%.0f s" % (time.perf_counter() - clock)))
    if args.quick:
        facts.append(("Sizes", "--quick: tiny sizes, so the targets are not judged"))

    verdicts = judge(results, args.quick)
    header = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "facts": facts}
    write_atomically(out, render_markdown(results, verdicts, header))
    print(summary_text(verdicts))
    print("Results: %s" % out)

    failed = [(r.scenario.key, row.label) for r in results for row in r.rows.values() if row.failures]
    failed += [(r.scenario.key, "setup") for r in results if r.setup_error]
    if failed:
        say("error: some measurements failed (%s); see the notes in %s" % (
            ", ".join("%s %s" % item for item in failed), out))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
