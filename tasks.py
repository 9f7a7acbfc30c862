"""Invoke tasks of seedrun: `invoke --list` shows them, `invoke --help TASK` their options.

Every task calls the same Python API as the `seedrun` command and the
Makefile, and exits with the same codes: 0 succeeded, 1 a step failed,
2 invalid pipeline file or selection, 75 another run holds the lock,
130 interrupted. The pipeline file is pipeline.toml unless --pipeline or
SEEDRUN_PIPELINE names another.
"""

from __future__ import annotations

import os
import sys

from invoke import Exit, task

from seedrun import api
from seedrun.cli import format_deleted_runs, format_graph, format_plan, validate as validate_pipeline
from seedrun.errors import SeedrunError
from seedrun.graph import Plan, Selection
from seedrun.runner import display_path

COMMON_HELP = {
    "pipeline": "pipeline file (default: $SEEDRUN_PIPELINE, else pipeline.toml)",
    "jobs": "maximum steps running at once (overrides [pipeline] jobs)",
    "with_needs": "also run what the selected steps wait for",
    "enable": "run a disabled step or phase as if enabled (repeatable)",
}


def _print(text: str) -> None:
    """Print text; a reader that stops reading (invoke plan | head) ends the output without an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Without this, flushing stdout at the interpreter's exit fails again with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _help(*names: str, **extra: str) -> dict[str, str]:
    return dict({name: COMMON_HELP[name] for name in names}, **extra)


def _run(selection: Selection, pipeline: str | None, jobs: int | None) -> None:
    try:
        code = api.run(pipeline, selection, jobs)
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None
    if code:
        raise Exit(code=code)


@task(help=_help("pipeline", "jobs", "with_needs", "enable"), iterable=["enable"])
def all(c, pipeline=None, jobs=None, with_needs=False, enable=None):
    """Run every enabled phase of the pipeline (like make seed-all)."""
    _run(Selection(with_needs=with_needs, enable=enable or []), pipeline, jobs)


@task(help=_help("pipeline", "jobs", "with_needs", "enable", name="phase to run, e.g. vendors"), iterable=["enable"])
def phase(c, name, pipeline=None, jobs=None, with_needs=False, enable=None):
    """Run the steps of one phase, e.g. invoke phase vendors."""
    _run(Selection(phases=[name], with_needs=with_needs, enable=enable or []), pipeline, jobs)


@task(help=_help("pipeline", "jobs", "with_needs", "enable", name="pair to run, e.g. quadratec"), iterable=["enable"])
def pair(c, name, pipeline=None, jobs=None, with_needs=False, enable=None):
    """Run a main/dependent pair, main first, e.g. invoke pair quadratec."""
    _run(Selection(pairs=[name], with_needs=with_needs, enable=enable or []), pipeline, jobs)


@task(help=_help("pipeline", "jobs", "with_needs", "enable", name="step to run, e.g. seed-meyer; repeat the task for more"), iterable=["enable"])
def seed(c, name, pipeline=None, jobs=None, with_needs=False, enable=None):
    """Run one step by name, e.g. invoke seed seed-meyer."""
    _run(Selection(names=[name], with_needs=with_needs, enable=enable or []), pipeline, jobs)


@task(help=_help("pipeline", "jobs", "with_needs", "enable", name="target to run, e.g. daily"), iterable=["enable"])
def target(c, name, pipeline=None, jobs=None, with_needs=False, enable=None):
    """Run a named target from [targets], e.g. invoke target daily."""
    _run(Selection(targets=[name], with_needs=with_needs, enable=enable or []), pipeline, jobs)


@task(help={"pipeline": COMMON_HELP["pipeline"], "run_id": "run to resume (default: the newest)",
            "replan": "use the pipeline file as it is now instead of the run's own plan",
            "jobs": COMMON_HELP["jobs"]})
def resume(c, run_id=None, replan=False, pipeline=None, jobs=None):
    """Rerun, in its own run directory, the steps that did not succeed in a run (default: the newest)."""
    try:
        code = api.resume(pipeline, run_id, replan, jobs)
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None
    if code:
        raise Exit(code=code)


@task(help={"pipeline": COMMON_HELP["pipeline"], "name": "step, target, pair-NAME or phase-NAME (default: all)",
            "with_needs": COMMON_HELP["with_needs"], "jobs": COMMON_HELP["jobs"], "enable": COMMON_HELP["enable"]},
      iterable=["enable"])
def plan(c, name=None, pipeline=None, with_needs=False, jobs=None, enable=None):
    """Print what a selection would run, in start order, and run nothing."""
    the_plan = _plan(pipeline, name, with_needs, enable)
    try:
        limit = api.parse_jobs(jobs, the_plan.pipeline.jobs)
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None
    _print(format_plan(the_plan, limit))


@task(help={"pipeline": COMMON_HELP["pipeline"], "name": "step, target, pair-NAME or phase-NAME (default: all)",
            "with_needs": COMMON_HELP["with_needs"], "enable": COMMON_HELP["enable"]}, iterable=["enable"])
def graph(c, name=None, pipeline=None, with_needs=False, enable=None):
    """Print the plan of a selection as a Graphviz DOT graph, and run nothing."""
    _print(format_graph(_plan(pipeline, name, with_needs, enable)))


def _plan(pipeline: str | None, name: str | None, with_needs: bool, enable: list[str] | None) -> Plan:
    try:
        return api.plan(pipeline, Selection(names=[name] if name else [], with_needs=with_needs,
                                            enable=enable or []))
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None


@task(help={"pipeline": COMMON_HELP["pipeline"]})
def validate(c, pipeline=None):
    """Check the pipeline file and report every problem, without running anything."""
    try:
        _print(validate_pipeline(pipeline))
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None


@task(help={"pipeline": COMMON_HELP["pipeline"], "run_id": "run to report (default: the newest)"})
def report(c, run_id=None, pipeline=None):
    """Render the HTML report of a run again."""
    try:
        print("Report: %s" % display_path(api.report(pipeline, run_id)))
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None


@task(help={"pipeline": COMMON_HELP["pipeline"], "keep": "number of newest runs to keep (default: keep_runs of the pipeline)"})
def clean(c, keep=None, pipeline=None):
    """Delete old run directories and their reports, keeping the newest runs (default: keep_runs)."""
    try:
        deleted = api.clean(pipeline, keep)
    except SeedrunError as error:
        raise Exit("seedrun: error: %s" % error, code=error.exit_code) from None
    print(format_deleted_runs(deleted))
