"""Process-level behaviour: concurrent writers, injected failures, the audit CSV, real size."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

from .conftest import JOB_TIMEOUT_SECONDS, Workload, parse_summary, start_job

# The parallel step of the default pipeline, plus a second writer of the turn14
# vendor rows and a writer of the vendor table.
PARALLEL_JOBS = [
    "roughcountry", "tirediscounter", "aev", "ctp", "keyparts", "alpine", "meyer", "tdot", "lowriders", "turn14",
]


def test_ten_concurrent_writers(tmp_path: Path, products_catalog: Path) -> None:
    # A fresh feeds directory, so the jobs also race to generate their feeds.
    workload = Workload(tmp_path / "home")
    workload.home.mkdir()
    shutil.copyfile(products_catalog, workload.catalog)
    environment = workload.environment()

    processes = {job: start_job(job, environment) for job in PARALLEL_JOBS}
    outputs = {job: process.communicate(timeout=JOB_TIMEOUT_SECONDS) for job, process in processes.items()}

    for job, process in processes.items():
        stdout, stderr = outputs[job]
        assert process.returncode == 0, f"{job} exited {process.returncode}: {stderr}"
        assert "locked" not in stderr, f"{job}: {stderr}"
        summary = parse_summary(stdout)
        vendor_rows = workload.query(
            "SELECT count(*) FROM vendor_product JOIN vendor USING (vendor_id) WHERE code = ?", (job,)
        )[0][0]
        assert summary["inserted"] == vendor_rows > 0, job
    assert workload.query("PRAGMA foreign_key_check") == []
    assert workload.query("PRAGMA integrity_check") == [("ok",)]


def test_concurrent_same_vendor_and_tables(loaded: Workload) -> None:
    jobs = ["turn14", "turn14-daily", "reference-data", "orders", "keystone-codes", "metalcloak-scrape"]
    environment = loaded.environment()
    processes = {job: start_job(job, environment) for job in jobs}

    for job, process in processes.items():
        _, stderr = process.communicate(timeout=JOB_TIMEOUT_SECONDS)
        assert process.returncode == 0, f"{job} exited {process.returncode}: {stderr}"


def test_injected_failure_exits_with_code(loaded: Workload) -> None:
    result = loaded.run("meyer", {"VENDOR_SYNC_FAIL": "tdot, meyer:3"}, check=False)

    assert result.returncode == 3
    assert result.stderr.strip() == "meyer: failing on purpose (VENDOR_SYNC_FAIL)"
    assert "Summary:" not in result.stdout
    partial = len(loaded.vendor_rows("meyer"))
    assert partial > 0, "the failing job committed nothing before failing"

    complete = loaded.run("meyer").summary
    assert complete["inserted"] > 0
    assert len(loaded.vendor_rows("meyer")) == partial + complete["inserted"]


def test_injected_failure_default_code(loaded: Workload) -> None:
    result = loaded.run("reference-data", {"VENDOR_SYNC_FAIL": "reference-data"}, check=False)

    assert result.returncode == 1
    assert result.stderr.strip() == "reference-data: failing on purpose (VENDOR_SYNC_FAIL)"


def test_unlisted_job_runs_normally(loaded: Workload) -> None:
    result = loaded.run("tdot", {"VENDOR_SYNC_FAIL": "meyer:3,turn14"})

    assert result.summary["inserted"] > 0


def test_invalid_fail_setting(loaded: Workload) -> None:
    result = loaded.run("tdot", {"VENDOR_SYNC_FAIL": "tdot:abc"}, check=False)

    assert result.returncode == 2
    assert "VENDOR_SYNC_FAIL entry 'tdot:abc' is invalid" in result.stderr


def test_fail_setting_takes_step_name(loaded: Workload) -> None:
    result = loaded.run("meyer", {"VENDOR_SYNC_FAIL": "seed-meyer:4"}, check=False)

    assert result.returncode == 4
    assert result.stderr.strip() == "meyer: failing on purpose (VENDOR_SYNC_FAIL)"


def test_fail_setting_rejects_unknown_job(loaded: Workload) -> None:
    result = loaded.run("tdot", {"VENDOR_SYNC_FAIL": "meyr"}, check=False)

    assert result.returncode == 2
    assert "VENDOR_SYNC_FAIL entry 'meyr' names no job. Use one of: aev, alpine," in result.stderr


def read_audit(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_keystone_codes_audit_csv(loaded: Workload, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-logs"
    result = loaded.run("keystone-codes", {"SEEDRUN_RUN_DIR": str(run_dir)})
    summary = result.summary
    files = sorted(run_dir.iterdir())

    assert len(files) == 1
    assert re.fullmatch(r"keystone-code-fix-\d{8}T\d{6}Z\.csv", files[0].name)
    rows = read_audit(files[0])
    assert rows[0] == ["sku", "old_code", "new_code", "old_site_code", "new_site_code"]
    assert summary["updated"] == len(rows) - 1 > 0
    codes = dict((sku, (code, site)) for sku, code, site in
                 loaded.query("SELECT sku, keystone_code, keystone_code_site FROM product"))
    for sku, old_code, new_code, old_site, new_site in rows[1:]:
        assert codes[sku] == (new_code, new_site)
        assert (old_code, old_site) != (new_code, new_site)

    second = loaded.run("keystone-codes", {"SEEDRUN_RUN_DIR": str(run_dir)})

    assert second.summary["updated"] == 0
    new_files = set(run_dir.iterdir()) - set(files)
    assert len(new_files) == 1
    assert read_audit(new_files.pop()) == [rows[0]]


def test_audit_csv_default_directory(loaded: Workload) -> None:
    loaded.run("keystone-codes")

    files = list((loaded.home / "audit").glob("keystone-code-fix-*.csv"))
    assert len(files) == 1


def test_keystone_codes_let_ftp_drop_match(loaded: Workload) -> None:
    before_fix = loaded.run("keystone-ftp2").summary["reasons"]["unmatched"]
    loaded.run("keystone-codes")

    after_fix = loaded.run("keystone-ftp2").summary

    assert after_fix["reasons"]["unmatched"] < before_fix
    assert after_fix["inserted"] > 0


def test_real_size_products_and_vendor(tmp_path: Path) -> None:
    workload = Workload(tmp_path / "home", scale="1.0")

    products = workload.run("products").summary
    quadratec = workload.run("quadratec").summary

    assert products["inserted"] >= 20_000
    assert workload.query("SELECT count(*) FROM product")[0][0] == products["inserted"]
    assert quadratec["inserted"] > 2000
    assert quadratec["reasons"]["unmatched"] > 0
