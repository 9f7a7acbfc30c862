"""Locations of the catalog, the generated feeds and the audit files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "VENDOR_SYNC_HOME"
RUN_DIR_ENV = "SEEDRUN_RUN_DIR"

# Relative to the current working directory, which seedrun sets to the project root.
DEFAULT_HOME = Path("var")


@dataclass(frozen=True)
class Home:
    """Directory that contains catalog.sqlite3, feeds/ and audit/."""

    root: Path
    run_dir: Path | None = None

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite3"

    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    @property
    def audit(self) -> Path:
        """Directory for audit files: the seedrun run directory if set, else audit/."""
        if self.run_dir is not None:
            return self.run_dir
        return self.root / "audit"


def resolve_home(environ: Mapping[str, str] | None = None) -> Home:
    """Build the Home from VENDOR_SYNC_HOME and SEEDRUN_RUN_DIR, falling back to var/."""
    if environ is None:
        environ = os.environ
    root = Path(environ.get(HOME_ENV) or DEFAULT_HOME)
    run_dir = environ.get(RUN_DIR_ENV)
    return Home(root=root, run_dir=Path(run_dir) if run_dir else None)
