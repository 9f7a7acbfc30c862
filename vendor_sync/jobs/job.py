"""The Job record that each integration module registers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..context import JobContext
from ..report import SyncStats


@dataclass(frozen=True)
class Job:
    name: str  # command-line name, such as "quadratec-inventory"
    help: str  # one line for --help
    run: Callable[[JobContext], SyncStats]
