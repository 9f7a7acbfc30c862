"""The matching and upsert engines that the vendor jobs share.

A job turns its feed into chunks of FeedRecord (one chunk per page, or per
CHUNK_SIZE rows of a file). The engine cleans each record, matches it to a
product through the vendor's code column, and writes each chunk in one
BEGIN IMMEDIATE transaction. Rows whose stored values already equal the feed's
are not written, so a second run changes nothing, updated_at included.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .catalog import ensure_vendor, find_vendor_id, load_code_index, open_catalog, require_products, write_transaction
from .context import JobContext
from .errors import DependencyError
from .parsing import clean_part_number, parse_price, parse_quantity, price_to_float
from .report import BAD_PRICE, BAD_QUANTITY, DUPLICATE, MISSING_SKU, NOT_LISTED, UNMATCHED, SyncStats, utc_timestamp

log = logging.getLogger(__name__)

# Rows per chunk for file feeds. Page feeds use their page size.
CHUNK_SIZE = 1000

VENDOR_REASONS = (MISSING_SKU, BAD_PRICE, DUPLICATE, UNMATCHED)
INVENTORY_REASONS = (MISSING_SKU, BAD_QUANTITY, DUPLICATE, UNMATCHED, NOT_LISTED)


@dataclass(frozen=True)
class FeedRecord:
    """One feed row with its raw values, before cleaning."""

    part_number: object
    price: object = None
    cost: object = None
    inventory: object = None


@dataclass(frozen=True)
class Chunk:
    label: str  # shown in the progress line, such as "page 3/40"
    records: Sequence[FeedRecord]


@dataclass(frozen=True)
class VendorSyncSpec:
    vendor: str  # code in the vendor table
    code_column: str  # product column that contains the vendor's part number
    has_inventory: bool = False  # False keeps the inventory that an inventory job wrote
    part_number_decimals: int | None = None  # see parsing.clean_part_number


@dataclass(frozen=True)
class InventorySyncSpec:
    vendor: str
    code_column: str
    main_job: str  # the job that creates the vendor's rows
    part_number_decimals: int | None = None


# vendor_part_number, cost, price, inventory
VendorValues = tuple[str, float | None, float, int | None]


@dataclass
class _Plan:
    inserts: list[tuple] = field(default_factory=list)
    updates: list[tuple] = field(default_factory=list)


_INSERT_VENDOR_PRODUCT = """
INSERT INTO vendor_product (vendor_id, sku, vendor_part_number, cost, price, inventory, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (vendor_id, sku) DO UPDATE SET
    vendor_part_number = excluded.vendor_part_number,
    cost = excluded.cost,
    price = excluded.price,
    inventory = coalesce(excluded.inventory, vendor_product.inventory),
    updated_at = excluded.updated_at
"""
_UPDATE_WITH_INVENTORY = """
UPDATE vendor_product SET vendor_part_number = ?, cost = ?, price = ?, inventory = ?, updated_at = ?
WHERE vendor_id = ? AND sku = ?
"""
_UPDATE_WITHOUT_INVENTORY = """
UPDATE vendor_product SET vendor_part_number = ?, cost = ?, price = ?, updated_at = ?
WHERE vendor_id = ? AND sku = ?
"""
_UPDATE_INVENTORY = "UPDATE vendor_product SET inventory = ?, updated_at = ? WHERE vendor_id = ? AND sku = ?"


def run_vendor_sync(context: JobContext, spec: VendorSyncSpec, chunks: Iterable[Chunk]) -> SyncStats:
    """Match and upsert a vendor feed into vendor_product.

    ``chunks`` should be lazy (a generator), so that a missing dependency is
    reported before the feed is generated.
    """
    connection = open_catalog(context.home.catalog)
    require_products(connection)
    vendor_id = ensure_vendor(connection, spec.vendor)
    index = load_code_index(connection, spec.code_column)
    existing = _load_vendor_values(connection, vendor_id)
    log.debug("%s: %d codes in %s, %d existing rows", spec.vendor, len(index), spec.code_column, len(existing))

    stats = SyncStats(VENDOR_REASONS)
    seen_part_numbers: set[str] = set()
    seen_skus: set[str] = set()
    updated_at = utc_timestamp()
    for chunk in chunks:
        plan = _Plan()
        for record in chunk.records:
            stats.read += 1
            matched = _match_record(record, spec, index, seen_part_numbers, seen_skus, stats)
            if matched is not None:
                _classify(spec, vendor_id, matched, existing, plan, stats, updated_at)
        _write_vendor_plan(connection, spec, plan)
        context.progress.line(f"{chunk.label}, {stats.read} rows")
        context.checkpoint()
    connection.close()
    return stats


def _load_vendor_values(connection: sqlite3.Connection, vendor_id: int) -> dict[str, VendorValues]:
    query = "SELECT sku, vendor_part_number, cost, price, inventory FROM vendor_product WHERE vendor_id = ?"
    return {row[0]: tuple(row[1:]) for row in connection.execute(query, (vendor_id,))}


def _match_record(
    record: FeedRecord,
    spec: VendorSyncSpec,
    index: dict[str, str],
    seen_part_numbers: set[str],
    seen_skus: set[str],
    stats: SyncStats,
) -> tuple[str, VendorValues] | None:
    """Clean one record and return (sku, values), or count why it is skipped and return None."""
    part_number = clean_part_number(record.part_number, spec.part_number_decimals)
    if part_number is None:
        stats.skip(MISSING_SKU)
        return None
    price = parse_price(record.price)
    if price is None:
        stats.skip(BAD_PRICE)
        return None
    if part_number in seen_part_numbers:
        stats.skip(DUPLICATE)
        return None
    seen_part_numbers.add(part_number)
    sku = index.get(part_number)
    if sku is None:
        stats.skip(UNMATCHED)
        return None
    if sku in seen_skus:
        stats.skip(DUPLICATE)
        return None
    seen_skus.add(sku)
    inventory = parse_quantity(record.inventory) if spec.has_inventory else None
    return sku, (part_number, price_to_float(parse_price(record.cost)), price_to_float(price), inventory)


def _classify(
    spec: VendorSyncSpec,
    vendor_id: int,
    matched: tuple[str, VendorValues],
    existing: dict[str, VendorValues],
    plan: _Plan,
    stats: SyncStats,
    updated_at: str,
) -> None:
    sku, values = matched
    old = existing.get(sku)
    if old is None:
        plan.inserts.append((vendor_id, sku, *values, updated_at))
        stats.inserted += 1
        existing[sku] = values
        return
    if not spec.has_inventory:
        values = (*values[:3], old[3])
    if values == old:
        stats.unchanged += 1
        return
    if spec.has_inventory:
        plan.updates.append((*values, updated_at, vendor_id, sku))
    else:
        plan.updates.append((*values[:3], updated_at, vendor_id, sku))
    stats.updated += 1
    existing[sku] = values


def _write_vendor_plan(connection: sqlite3.Connection, spec: VendorSyncSpec, plan: _Plan) -> None:
    if not plan.inserts and not plan.updates:
        return
    update = _UPDATE_WITH_INVENTORY if spec.has_inventory else _UPDATE_WITHOUT_INVENTORY
    with write_transaction(connection):
        connection.executemany(_INSERT_VENDOR_PRODUCT, plan.inserts)
        connection.executemany(update, plan.updates)


def require_vendor_rows(connection: sqlite3.Connection, vendor: str, main_job: str) -> int:
    """Return the vendor_id, or raise DependencyError when the vendor has no vendor_product rows."""
    vendor_id = find_vendor_id(connection, vendor)
    query = "SELECT EXISTS (SELECT 1 FROM vendor_product WHERE vendor_id = ?)"
    if vendor_id is None or not connection.execute(query, (vendor_id,)).fetchone()[0]:
        raise DependencyError(
            f"the catalog has no {vendor} vendor rows; "
            f"run the {main_job} sync first (python -m vendor_sync {main_job})"
        )
    return vendor_id


def run_inventory_sync(context: JobContext, spec: InventorySyncSpec, chunks: Iterable[Chunk]) -> SyncStats:
    """Update vendor_product.inventory of rows that the vendor's main sync created.

    Records for products without a row of this vendor are skipped as "not listed".
    """
    connection = open_catalog(context.home.catalog)
    vendor_id = require_vendor_rows(connection, spec.vendor, spec.main_job)
    index = load_code_index(connection, spec.code_column)
    query = "SELECT sku, inventory FROM vendor_product WHERE vendor_id = ?"
    existing: dict[str, int | None] = dict(connection.execute(query, (vendor_id,)).fetchall())

    stats = SyncStats(INVENTORY_REASONS)
    seen: set[str] = set()
    updated_at = utc_timestamp()
    for chunk in chunks:
        updates = []
        for record in chunk.records:
            stats.read += 1
            matched = _match_inventory(record, spec, index, existing, seen, stats)
            if matched is None:
                continue
            sku, quantity = matched
            if existing[sku] == quantity:
                stats.unchanged += 1
            else:
                updates.append((quantity, updated_at, vendor_id, sku))
                existing[sku] = quantity
                stats.updated += 1
        if updates:
            with write_transaction(connection):
                connection.executemany(_UPDATE_INVENTORY, updates)
        context.progress.line(f"{chunk.label}, {stats.read} rows")
        context.checkpoint()
    connection.close()
    return stats


def _match_inventory(
    record: FeedRecord,
    spec: InventorySyncSpec,
    index: dict[str, str],
    existing: dict[str, int | None],
    seen: set[str],
    stats: SyncStats,
) -> tuple[str, int] | None:
    part_number = clean_part_number(record.part_number, spec.part_number_decimals)
    if part_number is None:
        stats.skip(MISSING_SKU)
        return None
    quantity = parse_quantity(record.inventory)
    if quantity is None:
        stats.skip(BAD_QUANTITY)
        return None
    if part_number in seen:
        stats.skip(DUPLICATE)
        return None
    seen.add(part_number)
    sku = index.get(part_number)
    if sku is None:
        stats.skip(UNMATCHED)
        return None
    if sku not in existing:
        stats.skip(NOT_LISTED)
        return None
    return sku, quantity
