"""The ``seedrun`` command line, and the one place that turns errors into exit codes.

Exit codes: 0 every step succeeded (or failed with on_failure = "ignore");
1 a step failed, timed out or was skipped because of a failure, or seedrun
stopped the run on an error of its own (make or the launcher); 2 the
pipeline file or the command line is invalid and nothing ran; 75 another run
of the pipeline holds the lock; 130 the run was interrupted.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from seedrun import __version__
from seedrun.errors import EXIT_INTERRUPTED, EXIT_LOCKED, SeedrunError, UsageError
from seedrun.step import ensure_standard_fds, handled_signals

if TYPE_CHECKING:
    import subprocess

    from seedrun.graph import Plan, Selection

log = logging.getLogger(__name__)

# The Makefile sets this to 1: make can only exit 0, 1 or 2, and 2 means an
# invalid pipeline, so under make a run refused by the lock exits 1.
LOCKED_EXIT_VARIABLE = "SEEDRUN_LOCKED_EXIT_CODE"


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="steps or targets to run (also make's pair-NAME and phase-NAME); default: every enabled phase")
    parser.add_argument("--phase", action="append", default=[], metavar="NAME", help="run the steps of a phase")
    parser.add_argument("--pair", action="append", default=[], metavar="NAME", help="run a main/dependent pair")
    parser.add_argument("--target", action="append", default=[], metavar="NAME", help="run a named target")
    parser.add_argument("--with-needs", action="store_true",
                        help="also run what the selected steps wait for (by default it counts as done)")
    parser.add_argument("--enable", action="append", default=[], metavar="NAME",
                        help="run a disabled step or phase as if it were enabled")


def _selection(args: argparse.Namespace) -> Selection:
    from seedrun.graph import Selection

    return Selection(names=args.names, phases=args.phase, pairs=args.pair, targets=args.target,
                     with_needs=args.with_needs, enable=args.enable)


PIPELINE_HELP = "pipeline file (default: $SEEDRUN_PIPELINE, else pipeline.toml)"
VERBOSE_HELP = "log seedrun's own decisions to stderr"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seedrun", description="Run a data-sync pipeline with make: dependency "
                                     "order, a parallel pool, a log per step, a run record and an HTML report.",
                                     epilog="Exit codes: 0 succeeded, 1 a step failed, 2 invalid pipeline or "
                                            "command line, 75 another run holds the lock, 130 interrupted.")
    parser.add_argument("--pipeline", metavar="FILE", help=PIPELINE_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version="seedrun " + __version__)
    # The same options after the command: `seedrun run --pipeline FILE`. SUPPRESS
    # keeps a value given before the command when the option is not repeated.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pipeline", metavar="FILE", default=argparse.SUPPRESS, help=PIPELINE_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=functools.partial(argparse.ArgumentParser, parents=[common]))

    run = commands.add_parser("run", help="run the pipeline or a selection of it")
    _add_selection(run)
    run.add_argument("-j", "--jobs", metavar="N", help="maximum steps running at once (overrides [pipeline] jobs)")

    plan = commands.add_parser("plan", help="print what a selection would run, in start order; run nothing")
    _add_selection(plan)
    plan.add_argument("-j", "--jobs", metavar="N", help="steps at once, as seedrun run would use them")
    plan.add_argument("--resume", nargs="?", const="", metavar="RUN_ID",
                      help="explain what seedrun resume would keep and run again")
    plan.add_argument("--replan", action="store_true", help="with --resume: explain seedrun resume --replan")

    graph = commands.add_parser("graph", help="print the plan as a Graphviz DOT graph")
    _add_selection(graph)

    resume = commands.add_parser("resume", help="rerun the steps that did not succeed in a run (default: the "
                                                "newest), in its directory")
    resume.add_argument("run_id", nargs="?", metavar="RUN_ID", help="run to resume (default: the newest)")
    _add_run_id_option(resume)
    resume.add_argument("--replan", action="store_true", help="use the pipeline file as it is now")
    resume.add_argument("-j", "--jobs", metavar="N", help="maximum steps running at once")

    report = commands.add_parser("report", help="render the HTML report of a run again")
    report.add_argument("run_id", nargs="?", metavar="RUN_ID", help="run to report (default: the newest)")
    _add_run_id_option(report)

    clean = commands.add_parser("clean", help="delete old run directories and their reports")
    # Checked by api.clean(), whose message names KEEP=N under make, where argparse's would name --keep.
    clean.add_argument("--keep", metavar="N",
                       help="number of newest runs to keep (default: keep_runs of the pipeline)")

    commands.add_parser("validate", help="check the pipeline file and report every problem")

    step = commands.add_parser("step", help="run one step of a run directory (what the make rules call)")
    step.add_argument("run_dir", metavar="RUN_DIR")
    step.add_argument("step", metavar="STEP")
    return parser


def _add_run_id_option(parser: argparse.ArgumentParser) -> None:
    # The invoke tasks take the run id as --run-id, so operators type it here too.
    parser.add_argument("--run-id", dest="run_id_option", metavar="RUN_ID", help="the same as RUN_ID")


def _run_id(args: argparse.Namespace) -> str | None:
    """Return the run id given as RUN_ID or as --run-id; raise UsageError when the two differ."""
    if args.run_id_option is None or args.run_id_option == args.run_id:
        return args.run_id
    if args.run_id is not None:
        raise UsageError("two run ids, %s and --run-id %s: give one" % (args.run_id, args.run_id_option))
    return args.run_id_option


def format_plan(plan: Plan, jobs: int | None = None) -> str:
    """Return the plan as `seedrun plan` prints it; jobs defaults to the pipeline file's value."""
    pipeline = plan.pipeline
    count = len(plan.steps)
    lines = ["Plan of %s (%s), selection %s: %d step%s, up to %d at once" % (
        pipeline.name, pipeline.path, plan.selection.label(), count, "" if count == 1 else "s",
        jobs or pipeline.jobs)]
    width = max(len(s.name) for s in plan.steps)
    for number, step in enumerate(plan.steps, start=1):
        waits = []
        if step.needs:
            waits.append("needs " + ", ".join(step.needs))
        if step.after:
            waits.append("after " + ", ".join(step.after))
        if step.needs_phase:
            waits.append("needs phase " + step.needs_phase)
        if step.after_phase:
            waits.append("after phase " + step.after_phase + " finished")
        phase = "[%s]" % step.phase if step.phase else ""
        lines.append("%3d. %-*s %-12s %s" % (number, width, step.name, phase,
                                              "; ".join(waits) or "starts at once"))
    lines += ["Note: " + note for note in plan.notes]
    return "\n".join(lines)


def validate(path: str | None) -> str:
    """Load and check the pipeline file; return a one-line summary of it, or raise PipelineError."""
    from seedrun import api

    pipeline = api.load_pipeline(api.pipeline_path(path))
    steps, phases = len(pipeline.steps), len(pipeline.phases)
    return "%s is valid: %d step%s, %d phase%s" % (pipeline.path, steps, "" if steps == 1 else "s",
                                                   phases, "" if phases == 1 else "s")


def format_deleted_runs(deleted: list[str]) -> str:
    """Format the line that `seedrun clean` and `invoke clean` print about the runs they deleted."""
    return "Deleted %d old run%s%s" % (len(deleted), "" if len(deleted) == 1 else "s",
                                      (": " + ", ".join(deleted)) if deleted else "")


def format_graph(plan: Plan) -> str:
    lines = ["digraph %s {" % _dot_id(plan.pipeline.name), "  rankdir=LR;", "  node [shape=box];"]
    for phase, members in plan.barriers.items():
        lines.append("  %s [shape=point, label=\"\", xlabel=%s];" % (_dot_id("phase:" + phase), _dot_id(phase)))
        lines += ["  %s -> %s [style=dotted];" % (_dot_id(m), _dot_id("phase:" + phase)) for m in members]
    for step in plan.steps:
        lines.append("  %s;" % _dot_id(step.name))
        lines += ["  %s -> %s;" % (_dot_id(n), _dot_id(step.name)) for n in step.needs]
        lines += ["  %s -> %s [style=dashed];" % (_dot_id(n), _dot_id(step.name)) for n in step.after]
        if step.needs_phase:
            lines.append("  %s -> %s;" % (_dot_id("phase:" + step.needs_phase), _dot_id(step.name)))
        if step.after_phase:
            lines.append("  %s -> %s [style=dashed];" % (_dot_id("phase:" + step.after_phase), _dot_id(step.name)))
    lines.append("}")
    return "\n".join(lines)


def _dot_id(name: str) -> str:
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def _interrupt(number: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_working_directory() -> None:
    """Raise UsageError if the working directory was deleted: every relative path and console path needs it."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UsageError("the current directory (%s) no longer exists; cd to an existing directory and run again"
                         % os.environ.get("PWD", "unknown")) from None


def spawn_launcher(argv: list[str]) -> subprocess.Popen | None:
    """Start the step launcher early when the command line may start a run, else return None.

    The launcher's start (about 17 ms) then overlaps building the parser and
    importing the rest of seedrun (see seedrun.launcher). argparse has not
    parsed argv yet, so any argument spelled "run" or "resume" counts. A
    launcher that gets no run exits once its stdin closes.
    """
    if "run" not in argv and "resume" not in argv:
        return None
    from seedrun import launcher

    try:
        return launcher.spawn()
    except OSError as error:
        # The run spawns one again when it starts, and reports a failure there.
        log.debug("cannot start the step launcher early: %s", error)
        return None


def release_launcher(process: subprocess.Popen | None) -> None:
    """Close the stdin of a launcher that got no run, so that it exits, and wait for it."""
    if process is not None and not process.stdin.closed:
        process.stdin.close()
        process.wait()


def dispatch(args: argparse.Namespace, launcher: subprocess.Popen | None = None) -> int:
    """Run the parsed command; `launcher` is one from spawn_launcher(), used by run and resume."""
    _check_working_directory()
    if args.command not in ("run", "resume"):
        # Released now rather than when the command ends. Without a launcher,
        # a run spawns its own.
        release_launcher(launcher)
        launcher = None
    return _dispatch(args, launcher)


def _dispatch(args: argparse.Namespace, launcher: subprocess.Popen | None) -> int:
    from seedrun import api

    if args.command == "run":
        return api.run(args.pipeline, _selection(args), args.jobs, launcher)
    if args.command == "plan":
        if args.replan and args.resume is None:
            raise UsageError("--replan explains a resume: use seedrun plan --resume --replan")
        if args.resume is not None:
            print(api.explain_resume(args.pipeline, args.resume or None, args.replan))
        else:
            the_plan = api.plan(args.pipeline, _selection(args))
            print(format_plan(the_plan, api.parse_jobs(args.jobs, the_plan.pipeline.jobs)))
        return 0
    if args.command == "graph":
        print(format_graph(api.plan(args.pipeline, _selection(args))))
        return 0
    if args.command == "resume":
        return api.resume(args.pipeline, _run_id(args), args.replan, args.jobs, launcher)
    if args.command == "report":
        from seedrun.runner import display_path
        print("Report: %s" % display_path(api.report(args.pipeline, _run_id(args))))
        return 0
    if args.command == "clean":
        deleted = api.clean(args.pipeline, args.keep)
        print(format_deleted_runs(deleted))
        return 0
    if args.command == "validate":
        print(validate(args.pipeline))
        return 0
    from seedrun import step

    return step.main([args.run_dir, args.step])


def main(argv: list[str] | None = None) -> int:
    # From here, and until a run installs its own handlers, SIGTERM and
    # SIGHUP stop seedrun as Ctrl-C does, with exit code 130, unless SIGHUP
    # was ignored at start (nohup). Before this line (Python's start and the
    # imports above, about 40 ms) they still end the process with the signal.
    for number in handled_signals((signal.SIGTERM, signal.SIGHUP)):
        signal.signal(number, _interrupt)
    # A closed stdout would otherwise be reused by the first file seedrun
    # opens, and the console lines would go into it.
    ensure_standard_fds()
    try:
        return parse_and_dispatch(argv)
    except SeedrunError as error:
        _print_error("seedrun: error: %s" % error)
        if error.exit_code == EXIT_LOCKED and os.environ.get(LOCKED_EXIT_VARIABLE, "").isdigit():
            return int(os.environ[LOCKED_EXIT_VARIABLE])
        return error.exit_code
    except KeyboardInterrupt:
        _print_error("seedrun: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of the output stopped reading (seedrun plan | head), which is no error of seedrun's.
        return 0


def _print_error(text: str) -> None:
    """Print to stderr; a closed reader (seedrun validate 2>&1 | head -1) must not change the exit code."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def parse_and_dispatch(argv: list[str] | None) -> int:
    """Parse the command line and run the command, then release the early launcher, also when argparse exits.

    The release waits for the launcher to exit. It runs here, inside main()'s
    handlers, so that an interrupt during that wait exits 130 like any other.
    """
    launcher = None
    try:
        launcher = spawn_launcher(sys.argv[1:] if argv is None else argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                            format="seedrun: %(levelname)s: %(name)s: %(message)s")
        return dispatch(args, launcher)
    finally:
        # argparse exits on --help, --version and invalid arguments.
        release_launcher(launcher)


def entry_point() -> None:
    """Run the command line and end the process with its exit code: the ``seedrun`` console script.

    Every file a command writes is closed by the time main() returns. The
    interpreter's teardown frees every module (Jinja2 and SQLite after a
    run) and only delays the exit, by about 25 ms after a run on a 2-core
    VM. So flush what is buffered and exit at once.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            # None when the process started with that fd closed.
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
