"""Jobs that read the Keystone FTP drops: the code fix and the two drop formats.

The first drop format is a quoted CSV file. The current format is pipe-delimited
Latin-1 text with stock per warehouse. keystone-codes reads the current drop to
correct the Keystone codes in the product table.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..catalog import open_catalog, require_products, write_transaction
from ..context import JobContext
from ..parsing import normalize_code, parse_quantity
from ..readers import batched, read_delimited
from ..report import DUPLICATE, MISSING_SKU, UNMATCHED, SyncStats, utc_timestamp
from ..sync import CHUNK_SIZE, Chunk, FeedRecord, VendorSyncSpec, run_vendor_sync
from ..universe import keystone_site_code
from .job import Job

KEYSTONE_SPEC = VendorSyncSpec("keystone", "keystone_code", has_inventory=True)

V1_COLUMNS = {"part_number": "VCPN", "price": "JobberPrice", "cost": "Cost", "inventory": "TotalQty"}
V2_COLUMNS = {
    "part_number": "VCPN",
    "price": "JOBBER_PRICE",
    "cost": "COST",
    "east": "QTY_EAST",
    "midwest": "QTY_MIDWEST",
    "west": "QTY_WEST",
}
V2_DELIMITER = "|"
V2_ENCODING = "latin-1"

AUDIT_HEADER = ("sku", "old_code", "new_code", "old_site_code", "new_site_code")

_SET_CODES = "UPDATE product SET keystone_code = ?, keystone_code_site = ?, updated_at = ? WHERE sku = ?"


def _v1_chunks(context: JobContext) -> Iterator[Chunk]:
    path = context.feed("keystone-ftp-v1")
    for batch in batched(read_delimited(path, V1_COLUMNS), CHUNK_SIZE):
        yield Chunk(path.name, [FeedRecord(**row) for row in batch])


def _v2_record(row: dict[str, str]) -> FeedRecord:
    """Sum the warehouse quantities. An invalid quantity is passed on raw, so the row is skipped."""
    total = 0
    for column in ("east", "midwest", "west"):
        quantity = parse_quantity(row[column])
        if quantity is None:
            return FeedRecord(row["part_number"], row["price"], row["cost"], row[column])
        total += quantity
    return FeedRecord(row["part_number"], row["price"], row["cost"], total)


def _v2_chunks(context: JobContext) -> Iterator[Chunk]:
    path = context.feed("keystone-ftp-v2")
    rows = read_delimited(path, V2_COLUMNS, delimiter=V2_DELIMITER, encoding=V2_ENCODING)
    for batch in batched(rows, CHUNK_SIZE):
        yield Chunk(path.name, [_v2_record(row) for row in batch])


def _run_ftp_v1(context: JobContext) -> SyncStats:
    return run_vendor_sync(context, KEYSTONE_SPEC, _v1_chunks(context))


def _run_ftp_v2(context: JobContext) -> SyncStats:
    return run_vendor_sync(context, KEYSTONE_SPEC, _v2_chunks(context))


# ---------------------------------------------------------------- keystone-codes

# sku, keystone_code, keystone_code_site
ProductCodes = tuple[str, str | None, str | None]


def _products_by_prefix_and_mpn(connection: sqlite3.Connection) -> dict[tuple[str, str], ProductCodes]:
    """Map (Keystone prefix, manufacturer part number), both normalized, to the product's codes."""
    query = (
        "SELECT sku, keystone_ftp_brand, mpn, keystone_code, keystone_code_site FROM product "
        "WHERE keystone_ftp_brand IS NOT NULL AND mpn IS NOT NULL ORDER BY sku"
    )
    products: dict[tuple[str, str], ProductCodes] = {}
    for sku, prefix, mpn, code, site_code in connection.execute(query):
        key = (normalize_code(prefix), normalize_code(mpn))
        if None not in key:
            products.setdefault(key, (sku, code, site_code))
    return products


def open_audit_file(directory: Path) -> tuple[Path, TextIO]:
    """Create keystone-code-fix-<UTC timestamp>.csv in ``directory``, adding -2, -3 ... if taken."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    attempt = 1
    while True:
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = directory / f"keystone-code-fix-{stamp}{suffix}.csv"
        try:
            return path, open(path, "x", encoding="utf-8", newline="")
        except FileExistsError:
            attempt += 1


def run_keystone_codes(context: JobContext) -> SyncStats:
    """Correct product.keystone_code and keystone_code_site from the current Keystone drop.

    Drop rows match products through keystone_ftp_brand and mpn. The codes that
    a correction replaces are kept in keystone_code_fix, so the products sync
    does not write them back. A corrected product that the drop no longer
    matches gets those exported codes back. Every changed product gets a row in
    the audit CSV. A run that changes nothing still writes the file, with only
    the header.
    """
    connection = open_catalog(context.home.catalog)
    require_products(connection)
    products = _products_by_prefix_and_mpn(connection)
    drop = context.feed("keystone-ftp-v2")
    columns = {"vcpn": "VCPN", "prefix": "VENDOR_CODE", "part_number": "PART_NUMBER"}
    rows = read_delimited(drop, columns, delimiter=V2_DELIMITER, encoding=V2_ENCODING)

    stats = SyncStats((MISSING_SKU, DUPLICATE, UNMATCHED))
    seen: set[tuple[str, str]] = set()
    updated_at = utc_timestamp()
    audit_path, audit_file = open_audit_file(context.home.audit)
    context.progress.line(f"writing audit file {audit_path}")
    with audit_file:
        audit = csv.writer(audit_file, lineterminator="\n")
        audit.writerow(AUDIT_HEADER)
        for batch in batched(rows, CHUNK_SIZE):
            changes = [change for row in batch if (change := _code_change(row, products, seen, stats)) is not None]
            _update_codes(connection, changes, updated_at)
            audit.writerows(changes)
            audit_file.flush()
            context.progress.line(f"{drop.name}, {stats.read} rows, {stats.updated} codes changed")
            context.checkpoint()
        matched = {products[key][0] for key in seen if key in products}
        restored = _restore_export_codes(connection, matched, updated_at)
        audit.writerows(restored)
        if restored:
            context.progress.line(f"restored the exported codes of {len(restored)} products the drop no longer matches")
    connection.close()
    context.progress.line(f"audit file {audit_path} lists {stats.updated + len(restored)} changed products")
    return stats


def _update_codes(connection: sqlite3.Connection, changes: list[tuple], updated_at: str) -> None:
    if not changes:
        return
    with write_transaction(connection):
        connection.executemany(
            _SET_CODES, [(new_code, new_site, updated_at, sku) for sku, _, new_code, _, new_site in changes]
        )
        # A product corrected before keeps its row, because its old codes here are an earlier correction's.
        connection.executemany(
            "INSERT INTO keystone_code_fix (sku, export_code, export_site_code) VALUES (?, ?, ?) "
            "ON CONFLICT (sku) DO NOTHING",
            [(sku, old_code, old_site) for sku, old_code, _, old_site, _ in changes],
        )


def _restore_export_codes(connection: sqlite3.Connection, matched: set[str], updated_at: str) -> list[tuple]:
    """Restore the exported codes of corrected products outside ``matched`` and return their audit rows.

    Their keystone_code_fix rows are deleted, so the products sync writes the export's codes again.
    """
    query = (
        "SELECT sku, product.keystone_code, export_code, product.keystone_code_site, export_site_code "
        "FROM keystone_code_fix JOIN product USING (sku) ORDER BY sku"
    )
    with write_transaction(connection):
        unmatched = [row for row in connection.execute(query) if row[0] not in matched]
        restored = [row for row in unmatched if (row[1], row[3]) != (row[2], row[4])]
        connection.executemany(_SET_CODES, [(code, site, updated_at, sku) for sku, _, code, _, site in restored])
        connection.executemany("DELETE FROM keystone_code_fix WHERE sku = ?", [(row[0],) for row in unmatched])
    return restored


def _code_change(
    row: dict[str, str],
    products: dict[tuple[str, str], ProductCodes],
    seen: set[tuple[str, str]],
    stats: SyncStats,
) -> tuple[str, str | None, str, str | None, str] | None:
    """Return the audit row (sku, old code, new code, old site, new site) if the product changes."""
    stats.read += 1
    prefix, part_number, vcpn = (normalize_code(row[key]) for key in ("prefix", "part_number", "vcpn"))
    if prefix is None or part_number is None or vcpn is None:
        stats.skip(MISSING_SKU)
        return None
    key = (prefix, part_number)
    if key in seen:
        stats.skip(DUPLICATE)
        return None
    seen.add(key)
    product = products.get(key)
    if product is None:
        stats.skip(UNMATCHED)
        return None
    sku, old_code, old_site = product
    new_site = keystone_site_code(prefix, part_number)
    if old_code == vcpn and old_site == new_site:
        stats.unchanged += 1
        return None
    stats.updated += 1
    products[key] = (sku, vcpn, new_site)
    return sku, old_code, vcpn, old_site, new_site


JOBS = [
    Job(
        "keystone-codes",
        "Fix product Keystone codes from the FTP drop, with audit CSV",
        run_keystone_codes,
    ),
    Job("keystone-ftp", "Load the Keystone FTP drop, first CSV format", _run_ftp_v1),
    Job("keystone-ftp2", "Load the Keystone FTP drop, current pipe format", _run_ftp_v2),
]
