"""Progress lines and the closing summary line that every job prints to stdout.

seedrun parses the summary line with regular expressions, so its format is fixed:

    Summary: read 1234, matched 1100, inserted 1000, updated 100, unchanged 0, skipped 134 (missing SKU 20, bad price 30, duplicate 40, unmatched 44)

The six leading counts are always present. The bracketed list names each skip
reason that the job can count, with zero counts included, and is left out for
jobs that skip nothing (reference-data, feeds). Counts satisfy
read = matched + skipped and matched = inserted + updated + unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TextIO

# Skip reasons shared by the jobs. Each job declares the subset it can count.
MISSING_SKU = "missing SKU"
BAD_PRICE = "bad price"
BAD_QUANTITY = "bad quantity"
DUPLICATE = "duplicate"
UNMATCHED = "unmatched"
NOT_LISTED = "not listed"


def utc_timestamp() -> str:
    """Return the current UTC time as 2026-12-04T19:37:12Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Progress:
    """Writer of timestamped progress lines such as ``... meyer: page 3/40, 1500 rows``."""

    def __init__(self, job: str, stream: TextIO | None = None) -> None:
        self.job = job
        self._stream = stream

    def line(self, message: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        print(f"{utc_timestamp()} {self.job}: {message}", file=stream, flush=True)


class SyncStats:
    """Row counters of one job run, with a count per declared skip reason."""

    def __init__(self, reasons: Sequence[str] = ()) -> None:
        self.read = 0
        self.inserted = 0
        self.updated = 0
        self.unchanged = 0
        self._skips = dict.fromkeys(reasons, 0)

    @property
    def matched(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def skipped(self) -> int:
        return sum(self._skips.values())

    def skip(self, reason: str) -> None:
        """Count one skipped row. Raises KeyError for a reason the job did not declare."""
        if reason not in self._skips:
            raise KeyError(f"undeclared skip reason {reason!r}")
        self._skips[reason] += 1

    def skips(self) -> dict[str, int]:
        return dict(self._skips)

    def summary_line(self) -> str:
        line = (
            f"Summary: read {self.read}, matched {self.matched}, inserted {self.inserted}, "
            f"updated {self.updated}, unchanged {self.unchanged}, skipped {self.skipped}"
        )
        if not self._skips:
            return line
        reasons = ", ".join(f"{reason} {count}" for reason, count in self._skips.items())
        return f"{line} ({reasons})"
