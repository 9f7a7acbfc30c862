"""Per-run state handed to every job: names, paths, progress output and failure injection."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from .feed_rows import FeedSettings
from .feeds import ensure_feed
from .paths import Home
from .report import Progress


@dataclass
class JobContext:
    job: str
    home: Home
    feed_settings: FeedSettings = field(default_factory=FeedSettings)
    fail_code: int | None = None  # exit code requested through VENDOR_SYNC_FAIL
    progress: Progress = field(init=False)

    def __post_init__(self) -> None:
        self.progress = Progress(self.job)

    def feed(self, name: str) -> Path:
        """Return the path of a feed, generating it first (with a progress line) if missing."""
        return ensure_feed(self.home, name, self.feed_settings, report=self.progress.line)

    def checkpoint(self) -> None:
        """Exit with the injected code when VENDOR_SYNC_FAIL names this job.

        Jobs call this after each written batch, so an injected failure leaves the
        first batch in the catalog, as a crash in the middle of a sync would.
        """
        if self.fail_code is None:
            return
        print(f"{self.job}: failing on purpose (VENDOR_SYNC_FAIL)", file=sys.stderr, flush=True)
        raise SystemExit(self.fail_code)
