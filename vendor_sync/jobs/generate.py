"""The feeds job: generate every feed that is missing."""

from __future__ import annotations

from ..context import JobContext
from ..feeds import FEEDS, feed_exists
from ..report import SyncStats
from .job import Job


def run_generate_feeds(context: JobContext) -> SyncStats:
    """Generate each missing feed. Feeds that exist count as unchanged and are not rebuilt."""
    stats = SyncStats()
    for name in FEEDS:
        stats.read += 1
        if feed_exists(context.home, name):
            stats.unchanged += 1
            context.progress.line(f"feed {name} exists")
        else:
            context.feed(name)
            stats.inserted += 1
        context.checkpoint()
    context.progress.line(f"{stats.read} feeds in {context.home.feeds}")
    return stats


JOBS = [
    Job("feeds", "Generate every missing feed now", run_generate_feeds),
]
