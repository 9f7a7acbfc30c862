"""Fixtures that build run directories, logs and run records in tmp_path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import sample_run, write_logs, write_run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with logs/ and reports/ directories."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "reports").mkdir()
    return tmp_path


@pytest.fixture
def make_run(project: Path) -> Callable[..., tuple[dict[str, Any], Path]]:
    """Return a function that writes the sample run (optionally changed) with logs and run.json."""

    def build(run: dict[str, Any] | None = None, *, logs: bool = True) -> tuple[dict[str, Any], Path]:
        record = copy.deepcopy(run) if run is not None else sample_run()
        run_dir = project / "logs" / record["run_id"]
        if logs:
            write_logs(record, run_dir)
        write_run(record, run_dir)
        return record, run_dir

    return build
