"""The reference-data job: vendors, competitors and Keystone vendor prefixes.

The data is built into the package, so this job needs no feed and no products.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..catalog import open_catalog, write_transaction
from ..context import JobContext
from ..report import SyncStats
from ..universe import BRANDS
from ..vendors import VENDORS
from .job import Job

# Competitor storefronts whose prices the catalog tracks.
COMPETITORS: tuple[tuple[str, str], ...] = (
    ("Trailgear Outlet", "https://trailgear-outlet.example"),
    ("Offroad Depot", "https://offroad-depot.example"),
    ("4x4 Parts Warehouse", "https://4x4-parts-warehouse.example"),
    ("Rock Crawler Supply", "https://rock-crawler-supply.example"),
    ("Overland Outfitters", "https://overland-outfitters.example"),
    ("Jeep Mods Direct", "https://jeep-mods-direct.example"),
)


def _sync_table(
    connection: sqlite3.Connection,
    table: str,
    key_column: str,
    value_columns: Sequence[str],
    rows: Sequence[tuple],
    stats: SyncStats,
) -> None:
    """Insert missing rows and update changed ones, keyed by ``key_column``."""
    columns = ", ".join((key_column, *value_columns))
    existing = {row[0]: tuple(row[1:]) for row in connection.execute(f"SELECT {columns} FROM {table}")}
    assignments = ", ".join(f"{column} = excluded.{column}" for column in value_columns)
    upsert = (
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * (1 + len(value_columns)))}) "
        f"ON CONFLICT ({key_column}) DO UPDATE SET {assignments}"
    )
    writes = []
    for key, *values in rows:
        stats.read += 1
        old = existing.get(key)
        if old == tuple(values):
            stats.unchanged += 1
            continue
        if old is None:
            stats.inserted += 1
        else:
            stats.updated += 1
        writes.append((key, *values))
    if writes:
        with write_transaction(connection):
            connection.executemany(upsert, writes)


def run_reference_data(context: JobContext) -> SyncStats:
    connection = open_catalog(context.home.catalog)
    stats = SyncStats()
    tables = (
        ("vendor", "code", ("name", "integration"),
         [(vendor.code, vendor.name, vendor.integration) for vendor in VENDORS.values()]),
        ("competitor", "name", ("website",), list(COMPETITORS)),
        ("vendor_prefix", "prefix", ("brand",), [(brand.prefix, brand.name) for brand in BRANDS]),
    )
    for table, key_column, value_columns, rows in tables:
        _sync_table(connection, table, key_column, value_columns, rows, stats)
        context.progress.line(f"{table}: {len(rows)} rows, {stats.read} in total")
        context.checkpoint()
    connection.close()
    return stats


JOBS = [
    Job("reference-data", "Load vendors, competitors, prefixes (needs nothing)", run_reference_data),
]
