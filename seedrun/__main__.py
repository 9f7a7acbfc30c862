"""Allow ``python -m seedrun``."""

from seedrun.cli import entry_point

entry_point()
