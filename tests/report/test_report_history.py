"""Tests for the run history database, metric warnings and step statistics."""

from __future__ import annotations

import copy
import multiprocessing
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from report_fixtures import sample_run

from seedrun import history


def run_with(run_id: str, status: str = "succeeded", **step_changes: dict[str, Any]) -> dict[str, Any]:
    """Return the sample run under another id, with per-step field changes."""
    run = sample_run()
    run["run_id"] = run_id
    run["status"] = status
    for step in run["steps"]:
        step.update(step_changes.get(step["name"], {}))
    return run


def products_run(run_id: str, products: int, status: str = "succeeded") -> dict[str, Any]:
    return run_with(run_id, **{"seed-allProducts": {"metrics": {"products": products}, "status": status}})


def test_record_run_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "var" / "history.db"
    run = sample_run()
    history.record_run(db, run)
    [summary] = history.list_runs(db)
    assert summary.run_id == run["run_id"]
    assert summary.pipeline == "vendor-sync"
    assert summary.selection == "seed-all"
    assert summary.status == "failed"
    assert summary.exit_code == 2
    assert summary.step_count == len(run["steps"])
    assert summary.failed_steps == ("seed-quadratec", "seed-turn14")
    assert summary.allowed_failures == ("seed-keystone",)
    assert summary.duration_s is not None and abs(summary.duration_s - 721.877) < 0.001
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT phase, status, duration_s, attempts, exit_code, metrics FROM steps"
            " WHERE run_id = ? AND name = 'seed-allProducts'",
            (run["run_id"],),
        ).fetchone()
    assert row == ("products", "succeeded", 120.0, 1, 0, '{"products": 3412}')


def test_record_run_replaces_steps(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    run = sample_run()
    history.record_run(db, run)
    shorter = copy.deepcopy(run)
    shorter["status"] = "succeeded"
    shorter["steps"] = shorter["steps"][:2]
    history.record_run(db, shorter)
    [summary] = history.list_runs(db)
    assert summary.status == "succeeded"
    with sqlite3.connect(db) as connection:
        count = connection.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
    assert count == 2


def test_record_run_uses_wal(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    history.record_run(db, sample_run())
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _record_many(db: Path, worker: int) -> None:
    for number in range(10):
        history.record_run(db, products_run(f"20261204T10{worker:02d}{number:02d}Z-vendor-sync", 3000))


def test_record_run_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_many, args=(db, worker)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    assert len(history.list_runs(db)) == 40


def test_wal_switch_waits_for_other_writer(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE other (x)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        # A zero busy timeout makes SQLite report the lock at once, as it can for the WAL switch.
        waiting = sqlite3.connect(db, timeout=0, isolation_level=None)
        history._use_wal(waiting, history.BUSY_TIMEOUT_S)
        assert waiting.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        waiting.close()
    finally:
        release.join()
        holder.close()


def test_optional_reads_give_up_on_locked_history(tmp_path: Path) -> None:
    # Reading the history and preparing the database ahead are optional, so
    # a database locked by another process delays them by about
    # OPTIONAL_BUSY_TIMEOUT_S, not by the 30 s that recording a run waits.
    db = tmp_path / "history.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        actions = (lambda: history.median_durations(db, "x"), lambda: history.prepare(db),
                   lambda: history.list_runs(db), lambda: history.step_stats(db, "x", "run"))
        for action in actions:
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                action()
            assert time.monotonic() - started < 10
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_history_survives_deleted_run_dirs(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    run_dir = tmp_path / "logs" / "run"
    run_dir.mkdir(parents=True)
    history.record_run(db, sample_run())
    shutil.rmtree(tmp_path / "logs")
    assert [summary.run_id for summary in history.list_runs(db)] == [sample_run()["run_id"]]


def test_list_runs_missing_database(tmp_path: Path) -> None:
    assert history.list_runs(tmp_path / "absent.db") == []
    assert not (tmp_path / "absent.db").exists()


def test_metric_warnings_zero(tmp_path: Path) -> None:
    run = products_run("20261204T120000Z-vendor-sync", 0)
    warnings = history.metric_warnings(tmp_path / "history.db", run)
    assert warnings["seed-allProducts"] == ["products is 0, below its floor of 1000"]


def test_metric_warnings_below_half_median(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    for day, products in enumerate([3000, 3412, 3500, 3300, 3600]):
        history.record_run(db, products_run(f"2026120{day}T120000Z-vendor-sync", products))
    # An older sixth run falls outside the last five and must not lower the median.
    history.record_run(db, products_run("20261130T120000Z-vendor-sync", 10))
    current = products_run("20261209T120000Z-vendor-sync", 1200)
    warnings = history.metric_warnings(db, current)
    assert warnings["seed-allProducts"] == [
        "products fell to 1200, below half its median of 3412 over the last 5 successful runs"
    ]


def test_metric_warnings_below_floor(tmp_path: Path) -> None:
    run = products_run("20261204T120000Z-vendor-sync", 120)
    warnings = history.metric_warnings(tmp_path / "history.db", run)
    assert warnings["seed-allProducts"] == ["products is 120, below its floor of 1000"]


def test_metric_warnings_floor_with_locked_history(tmp_path: Path) -> None:
    # The baselines cannot be read, but the floor needs no history.
    db = tmp_path / "history.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run = products_run("20261204T120000Z-vendor-sync", 120)
        warnings = history.metric_warnings(db, run)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert warnings["seed-allProducts"] == ["products is 120, below its floor of 1000"]


def test_metric_warnings_missing_metric_with_floor(tmp_path: Path) -> None:
    run = run_with("20261204T120000Z-vendor-sync", **{"seed-allProducts": {"metrics": {}}})
    warnings = history.metric_warnings(tmp_path / "history.db", run)
    assert warnings["seed-allProducts"] == ["products was not reported, but its floor is 1000"]


def test_metric_warnings_ignores_normal_values(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    for day in range(5):
        history.record_run(db, products_run(f"2026120{day}T120000Z-vendor-sync", 3400))
    warnings = history.metric_warnings(db, products_run("20261209T120000Z-vendor-sync", 3000))
    assert "seed-allProducts" not in warnings


def test_metric_warnings_baseline_rules(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    # Two successful runs are too few for a median, failed runs do not count,
    # another pipeline does not count, and neither does the run itself.
    for day in range(2):
        history.record_run(db, products_run(f"2026120{day}T120000Z-vendor-sync", 5000))
    for day in range(2, 6):
        history.record_run(db, products_run(f"2026120{day}T120000Z-vendor-sync", 5000, status="failed"))
    other = products_run("20261206T120000Z-other", 5000)
    other["pipeline"] = "other"
    history.record_run(db, other)
    current = products_run("20261209T120000Z-vendor-sync", 1500)
    history.record_run(db, current)
    assert history.metric_warnings(db, current) == {}


def test_metric_warnings_only_succeeded_steps(tmp_path: Path) -> None:
    failed = {"metrics": {"products": 0}, "status": "failed"}
    run = run_with("20261204T120000Z-vendor-sync", **{"seed-allProducts": failed})
    assert "seed-allProducts" not in history.metric_warnings(tmp_path / "history.db", run)


def test_step_stats_rates_and_medians(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    for day in range(12):
        status = "failed" if day == 3 else "succeeded"
        run = run_with(f"202612{day + 1:02d}T120000Z-vendor-sync", status,
                       **{"seed-meyer": {"status": status, "duration_s": 100.0 + day}})
        history.record_run(db, run)
    later = run_with("20261230T120000Z-vendor-sync", **{"seed-meyer": {"duration_s": 999.0}})
    history.record_run(db, later)
    stats = history.step_stats(db, "vendor-sync", "20261220T120000Z-vendor-sync", ["seed-meyer", "unknown"])
    assert history.success_rate(stats.run_statuses) == (11, 12)
    meyer = stats.step("seed-meyer")
    assert history.success_rate(meyer.outcomes) == (11, 12)
    assert meyer.durations == tuple(100.0 + day for day in range(12) if day != 3)
    # The last 10 successful durations are 101, 102, 104 ... 111.
    assert meyer.median_duration_s == 106.5
    assert stats.step("unknown") == history.StepHistory()


def test_step_stats_missing_database(tmp_path: Path) -> None:
    stats = history.step_stats(tmp_path / "absent.db", "vendor-sync", "20261204T120000Z-x")
    assert stats.run_statuses == ()
    assert stats.step("seed-meyer").median_duration_s is None
