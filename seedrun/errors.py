"""Errors that stop seedrun before a run starts; the CLI maps each to an exit code.

A step that fails is not an error: it is an outcome, recorded in run.json.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130

# The Makefile sets this to REPLAN=1 for every command it runs. Its users
# pass REPLAN=1, PIPELINE=FILE and KEEP=N, not seedrun's options, so the
# hints name those.
REPLAN_ARGUMENT_VARIABLE = "SEEDRUN_REPLAN_ARGUMENT"


def under_make() -> bool:
    return bool(os.environ.get(REPLAN_ARGUMENT_VARIABLE))


def replan_argument() -> str:
    """Return the argument that requests a replan from the entry point in use: REPLAN=1 under make, else --replan."""
    return os.environ.get(REPLAN_ARGUMENT_VARIABLE) or "--replan"


def pipeline_argument(path: str) -> str:
    """Return the argument that names a pipeline file in the entry point in use: PIPELINE=FILE under make."""
    if under_make():
        return "PIPELINE=%s" % (path if path == "FILE" else shlex.quote(path))
    return "--pipeline %s" % path


def option_example(option: str, variable: str) -> str:
    """Return the example of a setting for the entry point in use: the make variable under make, else the option."""
    return variable if under_make() else option


class SeedrunError(Exception):
    """Base class of the errors the CLI reports without a traceback."""

    exit_code = EXIT_INVALID


class PipelineError(SeedrunError):
    """The pipeline file is missing, unreadable or invalid; carries every problem found."""

    def __init__(self, problems: list[str], path: Path | None = None):
        self.problems = problems
        self.path = path
        count = len(problems)
        header = "invalid pipeline file %s (%d problem%s); nothing was run:" % (path, count, "" if count == 1 else "s")
        super().__init__("\n".join([header] + ["  " + p for p in problems]))


class UsageError(SeedrunError):
    """The command line requests something that does not exist or cannot be done."""


class SetupError(SeedrunError):
    """A program seedrun needs, such as GNU make, is missing on this machine."""


class LockedError(SeedrunError):
    """Another run of the same pipeline holds the lock of the logs directory."""

    exit_code = EXIT_LOCKED
