"""Delete old run directories and their reports, keeping the newest runs.

The running run and the newest failed run are never deleted, whatever the
count: an operator fixing a failure needs its logs. The run history in the
SQLite database is kept.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from seedrun.records import read_run_fields

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"\d{8}T\d{6}Z-")


def list_runs(logs_dir: Path, pipeline_name: str) -> list[tuple[str, dict]]:
    """Run ids of a pipeline with the pipeline and status fields of their run.json, oldest first.

    Only those fields are read, because each run's end lists every run of
    the logs directory, and a run of thousands of steps has a run.json of
    megabytes.
    """
    runs = []
    try:
        entries = sorted(p for p in logs_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name))
    except OSError:
        return []
    for path in entries:
        try:
            record = read_run_fields(path / "run.json", ("pipeline", "status"))
        except (OSError, ValueError):
            # A run that has not written run.json yet, or whose run.json is damaged, still has its plan.
            try:
                record = json.loads((path / "plan.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        if isinstance(record, dict) and record.get("pipeline") == pipeline_name:
            runs.append((path.name, record))
    return runs


def prune_runs(logs_dir: Path, reports_dir: Path, pipeline_name: str, keep: int, current: str | None) -> list[str]:
    """Delete all but the newest `keep` runs; return the deleted run ids."""
    runs = list_runs(logs_dir, pipeline_name)
    protected = {current}
    failed = [run_id for run_id, record in runs if record.get("status") in ("failed", "interrupted")]
    if failed:
        protected.add(failed[-1])
    protected |= {run_id for run_id, record in runs if record.get("status") == "running"}
    deleted = []
    for run_id, _ in runs[:-keep] if keep > 0 else runs:
        if run_id in protected:
            continue
        shutil.rmtree(logs_dir / run_id, ignore_errors=True)
        report = reports_dir / ("%s.html" % run_id)
        # latest.html is a copy of the newest report, or of the report of the
        # run that logs/latest named. A copy of a deleted run's report goes too.
        if _same_file_content(report, reports_dir / "latest.html"):
            _unlink(reports_dir / "latest.html")
        _unlink(report)
        deleted.append(run_id)
        log.info("deleted old run %s", run_id)
    if deleted:
        _repoint_latest(logs_dir)
    return deleted


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _same_file_content(one: Path, other: Path) -> bool:
    try:
        return one.stat().st_size == other.stat().st_size and one.read_bytes() == other.read_bytes()
    except OSError:
        return False


def _repoint_latest(logs_dir: Path) -> None:
    """Point logs/latest at the newest run left when it pointed at a deleted one, as after a resume of an old run."""
    from seedrun.runner import point_latest

    latest = logs_dir / "latest"
    if not latest.is_symlink() or latest.exists():
        return
    try:
        remaining = sorted(p.name for p in logs_dir.iterdir()
                           if RUN_ID.match(p.name) and p.is_dir() and not p.is_symlink())
        if remaining:
            point_latest(logs_dir, remaining[-1])
        else:
            latest.unlink()
    except OSError as error:
        log.warning("cannot point %s at the newest run left: %s", latest, error)
