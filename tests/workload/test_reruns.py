"""Reruns over unchanged feeds: no row is written again, so updated_at moves only on a real change."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from vendor_sync.parsing import normalize_code

from .conftest import Workload

# The jobs of the default pipeline (pipeline.toml) in its order, without the
# second keystone-codes of the keystone-ftp2 pair.
PIPELINE_JOBS = [
    "products", "keystone-codes",
    "quadratec", "quadratec-inventory", "omix", "omix-inventory", "wheelpros", "wheelpros-inventory",
    "keystone-ftp2", "keystone-codes",
    "roughcountry", "tirediscounter", "aev", "ctp", "keyparts", "alpine", "meyer", "tdot", "lowriders", "turn14",
]

# Jobs that run only when selected and write rows that no pipeline job writes.
# turn14-daily, keystone and keystone-ftp are left out: they write the turn14
# and keystone vendor rows from other feeds, so they change those rows for real.
SELECTED_JOBS = ["reference-data", "orders", "metalcloak-scrape", "metalcloak-process", "premier-daily"]

# The column of each table that records when a sync last wrote the row.
CHANGE_COLUMNS = {
    "product": "updated_at",
    "vendor_product": "updated_at",
    "orders": "updated_at",
    "metalcloak_stage": "scraped_at",
}

MAGENTO_PAGES = Path("magento") / "products"
KEYSTONE_DROP = Path("keystone") / "ftp_v2" / "KAI_INVENTORY.txt"


def change_stamps(workload: Workload) -> dict[str, dict[int, str]]:
    """Map each table with a change column to {rowid: value of that column}."""
    return {
        table: dict(workload.query(f"SELECT rowid, {column} FROM {table}"))
        for table, column in CHANGE_COLUMNS.items()
    }


def log_row_writes(workload: Workload) -> None:
    """Add triggers that log every insert, update and delete in the catalog's tables to row_write_log."""
    with closing(sqlite3.connect(workload.catalog)) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        connection.execute("CREATE TABLE row_write_log (table_name TEXT NOT NULL, operation TEXT NOT NULL)")
        for table in tables:
            for operation in ("INSERT", "UPDATE", "DELETE"):
                connection.execute(
                    f"CREATE TRIGGER log_{table}_{operation.lower()} AFTER {operation} ON {table} "
                    f"BEGIN INSERT INTO row_write_log VALUES ('{table}', '{operation}'); END"
                )
        connection.commit()


def row_writes(workload: Workload) -> Counter:
    return Counter(workload.query("SELECT table_name, operation FROM row_write_log"))


def product_rows(workload: Workload) -> list[tuple]:
    """Return every product row without updated_at, sorted by SKU."""
    columns = [row[1] for row in workload.query("PRAGMA table_info(product)") if row[1] != "updated_at"]
    return workload.query(f"SELECT {', '.join(columns)} FROM product ORDER BY sku")


def keystone_codes(workload: Workload, sku: str) -> tuple:
    return workload.query("SELECT keystone_code, keystone_code_site FROM product WHERE sku = ?", (sku,))[0]


def read_audit_rows(workload: Workload) -> list[list[str]]:
    """Return the rows, without header, of the newest keystone-codes audit CSV."""
    newest = max((workload.home / "audit").glob("keystone-code-fix-*.csv"), key=lambda path: path.stat().st_mtime_ns)
    with open(newest, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def run_jobs(workload: Workload, jobs: list[str]) -> list[tuple[str, dict]]:
    return [(job, workload.run(job).summary) for job in jobs]


@pytest.fixture
def private(tmp_path: Path, shared_feeds: Path) -> Workload:
    """An empty catalog home with its own copy of the feeds, which a test may edit."""
    home = tmp_path / "home"
    shutil.copytree(shared_feeds, home / "feeds")
    return Workload(home)


def fresh_product_rows(tmp_path: Path, feeds: Path) -> list[tuple]:
    """Return the product rows that products and keystone-codes give on a new catalog from ``feeds``."""
    fresh = Workload(tmp_path / "fresh")
    fresh.home.mkdir()
    (fresh.home / "feeds").symlink_to(feeds)
    run_jobs(fresh, ["products", "keystone-codes"])
    return product_rows(fresh)


def test_pipeline_rerun_writes_no_row(workload: Workload) -> None:
    jobs = PIPELINE_JOBS + SELECTED_JOBS
    run_jobs(workload, jobs)
    before = change_stamps(workload)
    dump = workload.dump()
    log_row_writes(workload)

    second = run_jobs(workload, jobs)

    for job, summary in second:
        assert summary["inserted"] == 0, job
        assert summary["updated"] == 0, job
    after = change_stamps(workload)
    for table in CHANGE_COLUMNS:
        assert before[table], f"the first run wrote no {table} rows"
        changed = sorted(rowid for rowid, stamp in after[table].items() if before[table].get(rowid) != stamp)
        assert changed == [], f"{len(changed)} {table} rows got a new {CHANGE_COLUMNS[table]}"
    assert row_writes(workload) == Counter()
    assert workload.dump() == dump


def test_products_rerun_keeps_corrected_codes(loaded: Workload) -> None:
    fixed = loaded.run("keystone-codes").summary
    assert fixed["updated"] > 0
    before = change_stamps(loaded)["product"]
    log_row_writes(loaded)

    products = loaded.run("products").summary
    codes = loaded.run("keystone-codes").summary

    assert products["updated"] == 0
    assert codes["updated"] == 0
    assert change_stamps(loaded)["product"] == before
    assert row_writes(loaded) == Counter()
    assert read_audit_rows(loaded) == []


def test_export_change_replaces_corrected_code(private: Workload, tmp_path: Path) -> None:
    run_jobs(private, ["products", "keystone-codes"])
    sku, _, corrected_code, exported_site, corrected_site = read_audit_rows(private)[0]
    page = edit_export_item(private.home / "feeds" / MAGENTO_PAGES, sku, "keystone_code", "KS-RENAMED-1")

    products = private.run("products").summary

    assert products["updated"] == 1, page
    assert keystone_codes(private, sku)[0] == "KS-RENAMED-1"

    codes = private.run("keystone-codes").summary

    assert codes["updated"] == 1
    assert keystone_codes(private, sku) == (corrected_code, corrected_site)
    assert read_audit_rows(private) == [[sku, "KS-RENAMED-1", corrected_code, exported_site, corrected_site]]
    assert product_rows(private) == fresh_product_rows(tmp_path, private.home / "feeds")

    second = run_jobs(private, ["products", "keystone-codes"])

    assert [summary["updated"] for _, summary in second] == [0, 0]


def test_drop_without_product_restores_export_codes(private: Workload, tmp_path: Path) -> None:
    run_jobs(private, ["products", "keystone-codes"])
    sku, exported_code, corrected_code, exported_site, corrected_site = read_audit_rows(private)[0]
    prefix, mpn = private.query("SELECT keystone_ftp_brand, mpn FROM product WHERE sku = ?", (sku,))[0]
    removed = remove_drop_rows(private.home / "feeds" / KEYSTONE_DROP, prefix, mpn)
    assert removed > 0

    products = private.run("products").summary
    codes = private.run("keystone-codes").summary

    assert products["updated"] == 0
    assert codes["updated"] == 0
    assert keystone_codes(private, sku) == (exported_code or None, exported_site or None)
    assert read_audit_rows(private) == [[sku, corrected_code, exported_code, corrected_site, exported_site]]
    assert private.query("SELECT count(*) FROM keystone_code_fix WHERE sku = ?", (sku,)) == [(0,)]
    assert product_rows(private) == fresh_product_rows(tmp_path, private.home / "feeds")

    before = change_stamps(private)["product"]
    second = run_jobs(private, ["products", "keystone-codes"])

    assert [summary["updated"] for _, summary in second] == [0, 0]
    assert change_stamps(private)["product"] == before


def test_failed_code_fix_then_reruns_settle(loaded: Workload, tmp_path: Path) -> None:
    failed = loaded.run("keystone-codes", {"VENDOR_SYNC_FAIL": "keystone-codes"}, check=False)
    assert failed.returncode == 1
    partial = loaded.query("SELECT count(*) FROM keystone_code_fix")[0][0]
    assert partial > 0, "the failing code fix committed no correction before failing"

    products = loaded.run("products").summary
    codes = loaded.run("keystone-codes").summary

    assert products["updated"] == 0
    assert loaded.query("SELECT count(*) FROM keystone_code_fix")[0][0] == partial + codes["updated"]
    assert product_rows(loaded) == fresh_product_rows(tmp_path, loaded.home / "feeds")

    second = run_jobs(loaded, ["products", "keystone-codes"])

    assert [summary["updated"] for _, summary in second] == [0, 0]


def edit_export_item(directory: Path, sku: str, attribute: str, value: str) -> Path:
    """Set one custom attribute of the first export item with ``sku``, returning the page file it is in."""
    for page in sorted(directory.glob("page-*.json")):
        content = json.loads(page.read_text(encoding="utf-8"))
        for item in content["items"]:
            if item.get("sku") != sku:
                continue
            attributes = [entry for entry in item["custom_attributes"] if entry["attribute_code"] != attribute]
            item["custom_attributes"] = [*attributes, {"attribute_code": attribute, "value": value}]
            page.write_text(json.dumps(content), encoding="utf-8")
            return page
    raise AssertionError(f"no export item has SKU {sku}")


def remove_drop_rows(path: Path, prefix: str, mpn: str) -> int:
    """Delete the Keystone drop rows whose VENDOR_CODE and PART_NUMBER match, returning how many."""
    key = (normalize_code(prefix), normalize_code(mpn))
    lines = path.read_bytes().decode("latin-1").split("\r\n")
    kept = [line for line in lines if tuple(map(normalize_code, line.split("|")[1:3])) != key]
    path.write_bytes("\r\n".join(kept).encode("latin-1"))
    return len(lines) - len(kept)

