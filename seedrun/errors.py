"""Errors that stop seedrun before a run starts; the CLI maps each to an exit code.

A step that fails is not an error: it is an outcome, recorded in run.json.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130


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
