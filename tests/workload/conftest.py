"""Fixtures for the reference workload tests: catalog homes in tmp dirs and a job runner.

Jobs run as real subprocesses of ``python -m vendor_sync`` with VENDOR_SYNC_HOME
pointing at a tmp dir. Most tests use feeds at SMALL_SCALE (1,200 products),
generated once per session and shared through a symlinked feeds/ directory.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Import vendor_sync from this checkout, as the job subprocesses do through PYTHONPATH,
# even when another copy is installed.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SMALL_SCALE = "0.05"

# Maximum seconds one job subprocess may take before the test fails.
JOB_TIMEOUT_SECONDS = 120

SUMMARY_PATTERN = re.compile(
    r"^Summary: read (?P<read>\d+), matched (?P<matched>\d+), inserted (?P<inserted>\d+), "
    r"updated (?P<updated>\d+), unchanged (?P<unchanged>\d+), skipped (?P<skipped>\d+)"
    r"(?: \((?P<reasons>[^()]*)\))?$"
)

TABLES = (
    "vendor", "product", "keystone_code_fix", "vendor_product", "competitor", "vendor_prefix",
    "orders", "order_item", "metalcloak_stage",
)


def parse_summary(stdout: str) -> dict:
    """Parse the last stdout line as a summary line into counts and a reasons dict."""
    lines = stdout.strip().splitlines()
    assert lines, "the job printed nothing"
    match = SUMMARY_PATTERN.match(lines[-1])
    assert match, f"last line is not a summary line: {lines[-1]!r}"
    counts = {key: int(value) for key, value in match.groupdict().items() if key != "reasons"}
    reasons = {}
    if match.group("reasons"):
        for part in match.group("reasons").split(", "):
            name, _, count = part.rpartition(" ")
            reasons[name] = int(count)
    counts["reasons"] = reasons
    return counts


@dataclass
class JobResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        return parse_summary(self.stdout)


def job_environment(home: Path, scale: str = SMALL_SCALE, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("VENDOR_SYNC_FAIL", "SEEDRUN_RUN_DIR", "VENDOR_SYNC_FEED_SCALE")}
    environment["VENDOR_SYNC_HOME"] = str(home)
    environment["VENDOR_SYNC_FEED_SCALE"] = scale
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    environment.update(extra or {})
    return environment


def start_job(job: str, environment: Mapping[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vendor_sync", job],
        env=dict(environment),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Workload:
    """A catalog home in a tmp dir, with helpers to run jobs and read the catalog."""

    home: Path
    scale: str = SMALL_SCALE

    @property
    def catalog(self) -> Path:
        return self.home / "catalog.sqlite3"

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return job_environment(self.home, self.scale, extra)

    def run(self, job: str, extra_env: Mapping[str, str] | None = None, check: bool = True) -> JobResult:
        process = start_job(job, self.environment(extra_env))
        stdout, stderr = process.communicate(timeout=JOB_TIMEOUT_SECONDS)
        result = JobResult(process.returncode, stdout, stderr)
        if check:
            assert result.returncode == 0, f"{job} exited {result.returncode}: {stderr}"
        return result

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        connection = sqlite3.connect(self.catalog)
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            connection.close()

    def dump(self) -> dict[str, list[tuple]]:
        """Return every row of every catalog table, sorted, for whole-catalog comparisons."""
        return {table: sorted(self.query(f"SELECT * FROM {table}"), key=repr) for table in TABLES}

    def vendor_rows(self, vendor: str) -> list[tuple]:
        return self.query(
            "SELECT vp.sku, vp.vendor_part_number, vp.cost, vp.price, vp.inventory FROM vendor_product vp "
            "JOIN vendor v USING (vendor_id) WHERE v.code = ? ORDER BY vp.sku",
            (vendor,),
        )


@pytest.fixture(scope="session")
def shared_feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Feeds at SMALL_SCALE, generated once per session by the feeds job."""
    home = tmp_path_factory.mktemp("shared-feeds")
    Workload(home).run("feeds")
    return home / "feeds"


@pytest.fixture(scope="session")
def products_catalog(tmp_path_factory: pytest.TempPathFactory, shared_feeds: Path) -> Path:
    """A catalog file after the products job at SMALL_SCALE, to copy into test homes."""
    home = tmp_path_factory.mktemp("products-catalog")
    (home / "feeds").symlink_to(shared_feeds)
    Workload(home).run("products")
    return home / "catalog.sqlite3"


@pytest.fixture
def workload(tmp_path: Path, shared_feeds: Path) -> Workload:
    """An empty catalog home that uses the shared small feeds."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "feeds").symlink_to(shared_feeds)
    return Workload(home)


@pytest.fixture
def loaded(workload: Workload, products_catalog: Path) -> Workload:
    """A catalog home whose catalog already contains the products."""
    shutil.copyfile(products_catalog, workload.catalog)
    return workload
