"""Jobs run as subprocesses: summaries, matching, idempotence and missing dependencies."""

from __future__ import annotations

import re
import sys
import subprocess

import pytest

from vendor_sync.catalog import CODE_COLUMNS
from vendor_sync.jobs import JOBS
from vendor_sync.parsing import normalize_code

from .conftest import REPO_ROOT, SUMMARY_PATTERN, Workload, job_environment

VENDOR_REASONS = {"missing SKU", "bad price", "duplicate", "unmatched"}
TIMESTAMPED_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [a-z0-9-]+: ")

# job, vendor code, product code column: one job per feed format.
VENDOR_JOBS = [
    ("quadratec", "quadratec", "quadratec_code"),  # Excel with a notes sheet and title rows
    ("omix", "omix", "omix_code"),  # Excel, two sheets, part numbers stored as numbers
    ("aev", "aev", "aev_code"),  # Excel, header in the first row
    ("roughcountry", "roughcountry", "roughcountry_code"),  # CSV with byte order mark
    ("tdot", "tdot", "tdot_code"),  # semicolon-delimited
    ("lowriders", "lowriders", "lowriders_code"),  # tab-delimited
    ("meyer", "meyer", "meyer_code"),  # recorded API pages
    ("turn14", "turn14", "turn14_code"),  # JSON:API pages
    ("keystone-ftp2", "keystone", "keystone_code"),  # pipe-delimited Latin-1 FTP drop
    ("keystone-ftp", "keystone", "keystone_code"),  # quoted CSV FTP drop
]


def assert_consistent(summary: dict) -> None:
    assert summary["read"] == summary["matched"] + summary["skipped"]
    assert summary["matched"] == summary["inserted"] + summary["updated"] + summary["unchanged"]
    assert summary["skipped"] == sum(summary["reasons"].values())


def test_help_lists_every_job() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vendor_sync", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    for name in JOBS:
        assert re.search(rf"^\s+{re.escape(name)}\s", result.stdout, re.MULTILINE), name
    assert "VENDOR_SYNC_FAIL" in result.stdout
    assert "VENDOR_SYNC_HOME" in result.stdout


@pytest.mark.parametrize(("job", "vendor", "column"), VENDOR_JOBS)
def test_vendor_job_skips_messy_rows(loaded: Workload, job: str, vendor: str, column: str) -> None:
    result = loaded.run(job)
    summary = result.summary

    assert_consistent(summary)
    assert set(summary["reasons"]) == VENDOR_REASONS
    for reason, count in summary["reasons"].items():
        assert count > 0, f"{job} counted no rows as {reason}"
    assert summary["inserted"] == len(loaded.vendor_rows(vendor))
    assert summary["inserted"] > 0


@pytest.mark.parametrize(("job", "vendor", "column"), VENDOR_JOBS)
def test_vendor_rows_match_code_column(loaded: Workload, job: str, vendor: str, column: str) -> None:
    loaded.run(job)
    codes = dict(loaded.query(f"SELECT sku, {column} FROM product"))

    rows = loaded.vendor_rows(vendor)

    assert rows
    for sku, part_number, cost, price, inventory in rows:
        assert normalize_code(codes[sku]) == part_number
        assert price > 0


def test_messy_codes_still_match(loaded: Workload) -> None:
    """Product codes with stray whitespace or lower case in Magento still match the feed."""
    loaded.run("meyer")
    messy = [
        (sku, code) for sku, code in loaded.query("SELECT sku, meyer_code FROM product WHERE meyer_code IS NOT NULL")
        if code != code.strip().upper()
    ]
    matched = {sku for sku, *_ in loaded.vendor_rows("meyer")}

    assert messy, "the small Magento export has no messy meyer_code"
    assert any(sku in matched for sku, _ in messy)


def test_omix_numeric_part_numbers(loaded: Workload) -> None:
    loaded.run("omix")
    part_numbers = [row[1] for row in loaded.vendor_rows("omix")]

    # 17402.10 stored by Excel as 17402.1 comes back with its trailing zero.
    assert any(re.fullmatch(r"\d{5}\.\d0", number) for number in part_numbers)
    assert all(re.fullmatch(r"\d{5}\.\d{2}", number) for number in part_numbers)


def test_omix_whole_number_part_numbers_match(loaded: Workload) -> None:
    # Excel stores 10005.00 as the whole number 10005, so the cell reads back as an int.
    loaded.run("omix")
    expected = {
        sku for sku, code in loaded.query("SELECT sku, omix_code FROM product WHERE omix_code IS NOT NULL")
        if normalize_code(code).endswith(".00")
    }
    matched = {sku for sku, *_ in loaded.vendor_rows("omix")}

    assert expected, "the small Magento export has no omix_code ending in .00"
    assert expected <= matched


def test_progress_lines_have_timestamps(loaded: Workload) -> None:
    result = loaded.run("meyer")
    lines = result.stdout.strip().splitlines()

    assert len(lines) >= 2
    for line in lines[:-1]:
        assert TIMESTAMPED_LINE.match(line), line
    assert re.search(r"meyer: page 1/\d+, \d+ rows", result.stdout)
    assert sum(1 for line in lines if line.startswith("Summary:")) == 1


@pytest.mark.parametrize(
    "jobs",
    [
        ["products"],
        ["quadratec", "quadratec-inventory"],
        ["wheelpros", "wheelpros-inventory"],
        ["omix", "omix-inventory"],
        ["turn14"],
        ["turn14-daily"],
        ["keystone-codes"],
        ["orders"],
        ["reference-data"],
        ["metalcloak-scrape", "metalcloak-process"],
        ["premier-daily", "keystone", "ctp", "keyparts", "alpine", "tirediscounter"],
    ],
)
def test_second_run_changes_nothing(loaded: Workload, jobs: list[str]) -> None:
    for job in jobs:
        loaded.run(job)
    before = loaded.dump()

    for job in jobs:
        summary = loaded.run(job).summary
        assert summary["inserted"] == 0, job
        assert summary["updated"] == 0, job
        assert summary["unchanged"] == summary["matched"], job

    assert loaded.dump() == before


def test_inventory_keeps_main_sync_prices(loaded: Workload) -> None:
    loaded.run("quadratec")
    loaded.run("quadratec-inventory")
    after_inventory = loaded.vendor_rows("quadratec")

    summary = loaded.run("quadratec").summary

    assert summary["updated"] == 0
    assert loaded.vendor_rows("quadratec") == after_inventory
    assert any(row[4] is not None for row in after_inventory)


def test_daily_delta_updates_prices(loaded: Workload) -> None:
    loaded.run("turn14")
    summary = loaded.run("turn14-daily").summary

    assert summary["updated"] > 0
    assert_consistent(summary)


@pytest.mark.parametrize("job", ["meyer", "quadratec", "turn14", "keystone-ftp2", "keystone-codes", "orders",
                                 "metalcloak-process"])
def test_empty_catalog_names_products_job(workload: Workload, job: str) -> None:
    if job == "metalcloak-process":
        workload.run("metalcloak-scrape")
    result = workload.run(job, check=False)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{job}: the catalog has no products; run the products sync first (python -m vendor_sync products)"
    )
    assert "Summary:" not in result.stdout


def test_empty_catalog_generates_no_feed(tmp_path) -> None:
    workload = Workload(tmp_path / "home")
    result = workload.run("meyer", check=False)

    assert result.returncode == 1
    assert not (workload.home / "feeds" / "meyer").exists()


@pytest.mark.parametrize(
    ("job", "main_job"),
    [("quadratec-inventory", "quadratec"), ("omix-inventory", "omix"), ("wheelpros-inventory", "wheelpros")],
)
def test_inventory_before_main_sync(loaded: Workload, job: str, main_job: str) -> None:
    result = loaded.run(job, check=False)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{job}: the catalog has no {main_job} vendor rows; "
        f"run the {main_job} sync first (python -m vendor_sync {main_job})"
    )


def test_process_before_scrape(loaded: Workload) -> None:
    result = loaded.run("metalcloak-process", check=False)

    assert result.returncode == 1
    assert "run the scrape first (python -m vendor_sync metalcloak-scrape)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_reference_data_needs_nothing(workload: Workload) -> None:
    summary = workload.run("reference-data").summary

    assert summary["inserted"] == summary["read"] > 0
    assert summary["reasons"] == {}
    assert workload.query("SELECT count(*) FROM vendor")[0][0] >= 16
    assert workload.query("SELECT count(*) FROM vendor_prefix")[0][0] > 0


def test_vendor_job_creates_vendor_row(loaded: Workload) -> None:
    loaded.run("tdot")

    assert loaded.query("SELECT code, name FROM vendor") == [("tdot", "TDot")]


def test_products_fill_code_columns(loaded: Workload) -> None:
    for column in CODE_COLUMNS:
        count = loaded.query(f"SELECT count(*) FROM product WHERE {column} IS NOT NULL")[0][0]
        assert count > 0, column


def test_summary_line_format(loaded: Workload) -> None:
    line = loaded.run("tdot").stdout.strip().splitlines()[-1]

    assert SUMMARY_PATTERN.match(line)
    assert re.fullmatch(
        r"Summary: read \d+, matched \d+, inserted \d+, updated \d+, unchanged \d+, skipped \d+ "
        r"\(missing SKU \d+, bad price \d+, duplicate \d+, unmatched \d+\)",
        line,
    )


def test_invalid_scale_is_usage_error(tmp_path) -> None:
    environment = job_environment(tmp_path, scale="zero")
    result = subprocess.run(
        [sys.executable, "-m", "vendor_sync", "feeds"], env=environment, capture_output=True, text=True
    )

    assert result.returncode == 2
    assert "VENDOR_SYNC_FEED_SCALE='zero' is invalid" in result.stderr
