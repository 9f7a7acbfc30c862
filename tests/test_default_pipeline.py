"""The default pipeline on the reference workload: the production order, for real."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from support import REPO, Workspace, parse_time

PAIRS = ["seed-quadratec", "seed-quad-inventory", "seed-omix", "seed-omix-inventory",
         "seed-wheelPros", "seed-wp-inventory", "seed-keystone-ftp2", "seed-keystone-ftp-codes-pair"]
VENDORS = ["seed-roughCountry", "seed-tireDiscounter", "seed-aev", "seed-ctp", "seed-keyparts",
           "seed-alpine", "seed-meyer", "seed-tdot", "seed-lowriders", "seed-turn14-production"]

pytestmark = pytest.mark.slow


def workspace(path: Path) -> Workspace:
    path.mkdir(parents=True, exist_ok=True)
    ws = Workspace(path)
    shutil.copy(REPO / "pipeline.toml", path / "pipeline.toml")
    return ws


def start(step: dict) -> float:
    return parse_time(step["started_at"])


def end(step: dict) -> float:
    return parse_time(step["finished_at"])


def catalog_counts(ws: Workspace) -> tuple[int, int]:
    with sqlite3.connect(ws.path / "var" / "catalog.sqlite3") as db:
        products = db.execute("SELECT count(*) FROM product").fetchone()[0]
        vendor_products = db.execute("SELECT count(*) FROM vendor_product").fetchone()[0]
    return products, vendor_products


def updated_at_by_row(ws: Workspace, table: str) -> dict[int, str]:
    with closing(sqlite3.connect(ws.path / "var" / "catalog.sqlite3")) as db:
        return dict(db.execute(f"SELECT rowid, updated_at FROM {table}"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Workspace, object]:
    ws = workspace(tmp_path_factory.mktemp("default") / "project")
    result = ws.run("run", timeout=600)
    return ws, result


def test_full_run_succeeds(full_run):
    ws, result = full_run
    assert result.code == 0, result.out + result.err
    steps = ws.steps()
    assert len(steps) == 20
    assert all(s["status"] == "succeeded" for s in steps.values())


def test_products_finish_before_anything_starts(full_run):
    ws, _ = full_run
    steps = ws.steps()
    products = steps.pop("seed-allProducts")
    assert all(start(s) >= end(products) for s in steps.values())


def test_code_fix_runs_before_every_vendor_step(full_run):
    ws, _ = full_run
    steps = ws.steps()
    codes = steps["seed-keystone-ftp-codes"]
    assert start(codes) >= end(steps["seed-allProducts"])
    for name in PAIRS + VENDORS:
        assert start(steps[name]) >= end(codes), name


def test_pairs_run_one_after_another(full_run):
    ws, _ = full_run
    steps = ws.steps()
    for before, after in zip(PAIRS, PAIRS[1:]):
        assert start(steps[after]) >= end(steps[before]), (before, after)


def test_vendor_steps_overlap(full_run):
    ws, _ = full_run
    steps = ws.steps()
    last_pair_end = end(steps[PAIRS[-1]])
    vendors = [steps[name] for name in VENDORS]
    assert min(start(v) for v in vendors) >= last_pair_end
    assert max(start(v) for v in vendors) < min(end(v) for v in vendors), "the vendor steps did not run at once"


def test_each_step_has_its_own_log_and_metrics(full_run):
    ws, _ = full_run
    for name, step in ws.steps().items():
        log = ws.log(name)
        assert log.startswith("[seedrun] step %s, attempt 1" % name)
        assert "\nSummary: read " in log, name
        assert step["metrics"]["read"] > 0, name
        assert "matched" in step["metrics"], name


def test_code_fix_ran_three_times_with_three_logs(full_run):
    ws, _ = full_run
    steps = ws.steps()
    assert steps["seed-keystone-ftp-codes"]["command"] == steps["seed-keystone-ftp-codes-pair"]["command"]
    assert (ws.run_dir / "seed-keystone-ftp-codes.log").exists()
    assert (ws.run_dir / "seed-keystone-ftp-codes-pair.log").exists()
    assert list(ws.run_dir.glob("keystone-code-fix-*.csv"))


def test_catalog_holds_the_synced_data(full_run):
    ws, _ = full_run
    products, vendor_products = catalog_counts(ws)
    assert products >= 20000
    assert vendor_products >= 50000


def test_second_run_keeps_counts_and_rows(full_run):
    ws, _ = full_run
    before = catalog_counts(ws)
    products_before = updated_at_by_row(ws, "product")
    vendor_products_before = updated_at_by_row(ws, "vendor_product")
    result = ws.run("run", timeout=600)
    assert result.code == 0, result.out
    assert catalog_counts(ws) == before
    # The feeds did not change, so the second run writes no row again.
    assert updated_at_by_row(ws, "product") == products_before
    assert updated_at_by_row(ws, "vendor_product") == vendor_products_before


def test_report_and_companions_exist(full_run):
    ws, _ = full_run
    run_id = ws.record()["run_id"]
    assert (ws.path / "reports" / ("%s.html" % run_id)).exists()
    assert (ws.path / "reports" / "index.html").exists()
    assert (ws.run_dir / "junit.xml").exists()
    assert (ws.path / "logs" / "history.sqlite3").exists()


def test_failed_products_stops_the_run(tmp_path):
    ws = workspace(tmp_path / "p")
    ws.env["VENDOR_SYNC_FAIL"] = "products"
    result = ws.run("run", timeout=300)
    assert result.code == 1
    steps = ws.steps()
    assert steps["seed-allProducts"]["status"] == "failed"
    others = [s for n, s in steps.items() if n != "seed-allProducts"]
    assert all(s["started_at"] is None for s in others)
    assert all(s["status"] in ("skipped", "not_run") for s in others)


def test_failed_pair_main_stops_later_pairs(tmp_path):
    ws = workspace(tmp_path / "p")
    ws.env["VENDOR_SYNC_FAIL"] = "quadratec"
    result = ws.run("run", timeout=300)
    assert result.code == 1
    steps = ws.steps()
    assert steps["seed-quadratec"]["status"] == "failed"
    assert steps["seed-quad-inventory"]["reason"] == "needs seed-quadratec, which failed"
    for name in PAIRS[1:] + VENDORS:
        assert steps[name]["status"] == "skipped", name
        assert steps[name]["blocked_by"] == "seed-quadratec", name
    assert "Failed: seed-quadratec, exit code 1 (see logs/" in result.out


def test_one_failed_vendor_stops_none_of_the_others(tmp_path):
    ws = workspace(tmp_path / "p")
    ws.env["VENDOR_SYNC_FAIL"] = "meyer"
    result = ws.run("run", timeout=600)
    assert result.code == 1
    steps = ws.steps()
    assert steps["seed-meyer"]["status"] == "failed"
    for name in VENDORS:
        if name != "seed-meyer":
            assert steps[name]["status"] == "succeeded", name


def test_vendor_step_needs_products_first(tmp_path):
    ws = workspace(tmp_path / "p")
    result = ws.run("run", "seed-meyer", timeout=300)
    assert result.code == 1
    assert "run the products sync first" in ws.log("seed-meyer")
