"""Errors that end a job with a one-line message on stderr and exit code 1."""


class SyncError(Exception):
    """A job cannot run or continue. The message is shown after the job name."""


class DependencyError(SyncError):
    """Something the job reads is missing from the catalog, and another job must run first."""


class FeedError(SyncError):
    """A generated feed is missing, stale or unreadable."""
