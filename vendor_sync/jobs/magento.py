"""Jobs that read Magento REST export pages: products and orders."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator

from ..catalog import CODE_COLUMNS, load_keystone_code_fixes, open_catalog, require_products, write_transaction
from ..context import JobContext
from ..errors import FeedError
from ..parsing import collapse_whitespace, parse_price, price_to_float
from ..readers import read_recorded_pages
from ..report import DUPLICATE, MISSING_SKU, UNMATCHED, SyncStats, utc_timestamp
from .job import Job

# Product columns that the export fills, in the order of the value tuples below.
PRODUCT_COLUMNS: tuple[str, ...] = ("name", "brand", "mpn", "price", "status", *CODE_COLUMNS)

# Positions in those tuples of the two codes that keystone-codes corrects.
_KEYSTONE_CODE_INDEX = PRODUCT_COLUMNS.index("keystone_code")
_KEYSTONE_SITE_CODE_INDEX = PRODUCT_COLUMNS.index("keystone_code_site")

MISSING_ORDER_NUMBER = "missing order number"
BAD_TOTAL = "bad total"

_UPSERT_PRODUCT = (
    f"INSERT INTO product (sku, {', '.join(PRODUCT_COLUMNS)}, updated_at) "
    f"VALUES ({', '.join('?' * (len(PRODUCT_COLUMNS) + 2))}) "
    f"ON CONFLICT (sku) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in (*PRODUCT_COLUMNS, "updated_at"))
)


def magento_page_count(page: dict) -> int:
    """Compute the page count from total_count and search_criteria.page_size, as Magento clients do."""
    total = page.get("total_count")
    size = (page.get("search_criteria") or {}).get("page_size")
    if not isinstance(total, int) or not isinstance(size, int) or size < 1:
        raise FeedError(f"the first Magento page has no valid total_count and page_size: {total!r}, {size!r}")
    return max(1, math.ceil(total / size))


def magento_pages(context: JobContext, feed: str) -> Iterator[tuple[str, list]]:
    """Yield (label, items) for each export page, paced at the Magento rate."""
    for number, total, page in read_recorded_pages(context.feed(feed), "magento", magento_page_count):
        items = page.get("items")
        if not isinstance(items, list):
            raise FeedError(f"Magento page {number} has no 'items' list")
        yield f"page {number}/{total}", items


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def product_values(item: dict) -> tuple:
    """Return the PRODUCT_COLUMNS values of an export item.

    Vendor codes are stored as Magento has them, with stray whitespace and case,
    because the syncs normalize them when they match.
    """
    # Only the attributes present are cleaned: most products carry 3 or 4 of the 18 codes.
    attributes = {
        entry.get("attribute_code"): _optional_text(entry.get("value"))
        for entry in item.get("custom_attributes") or []
        if isinstance(entry, dict)
    }
    status = item.get("status")
    return (
        collapse_whitespace(item.get("name")),
        attributes.get("brand"),
        attributes.get("mpn"),
        price_to_float(parse_price(item.get("price"))),
        status if isinstance(status, int) else 1,
        *map(attributes.get, CODE_COLUMNS),
    )


def run_products(context: JobContext) -> SyncStats:
    """Load the Magento export into the product table, writing only new and changed products.

    Keystone codes that keystone-codes corrected stay as corrected while the
    export still has the codes they replaced, so a run over an unchanged export
    writes nothing. When the export changes such a code, the export's code is
    written and the correction is forgotten, so keystone-codes decides again.
    """
    connection = open_catalog(context.home.catalog)
    query = f"SELECT sku, {', '.join(PRODUCT_COLUMNS)} FROM product"
    existing = {row[0]: tuple(row[1:]) for row in connection.execute(query)}
    fixes = load_keystone_code_fixes(connection)
    stats = SyncStats((MISSING_SKU, DUPLICATE))
    seen: set[str] = set()
    updated_at = utc_timestamp()
    for label, items in magento_pages(context, "magento-products"):
        writes = []
        outdated_fixes: list[tuple[str]] = []
        for item in items:
            stats.read += 1
            values = _changed_product(item, existing, fixes, outdated_fixes, seen, stats)
            if values is not None:
                writes.append((*values, updated_at))
        if writes or outdated_fixes:
            with write_transaction(connection):
                connection.executemany(_UPSERT_PRODUCT, writes)
                connection.executemany("DELETE FROM keystone_code_fix WHERE sku = ?", outdated_fixes)
        context.progress.line(f"{label}, {stats.read} rows")
        context.checkpoint()
    connection.close()
    return stats


def _changed_product(
    item: object,
    existing: dict[str, tuple],
    fixes: dict[str, tuple],
    outdated_fixes: list[tuple[str]],
    seen: set[str],
    stats: SyncStats,
) -> tuple | None:
    """Return (sku, *values) of a new or changed product, or count the item and return None."""
    sku = _optional_text(item.get("sku")) if isinstance(item, dict) else None
    if sku is None:
        stats.skip(MISSING_SKU)
        return None
    sku = sku.strip()
    if sku in seen:
        stats.skip(DUPLICATE)
        return None
    seen.add(sku)
    values = product_values(item)
    old = existing.get(sku)
    fix = fixes.pop(sku, None)
    if fix is not None and old is not None:
        if (values[_KEYSTONE_CODE_INDEX], values[_KEYSTONE_SITE_CODE_INDEX]) == fix:
            values = _with_keystone_codes(values, old[_KEYSTONE_CODE_INDEX], old[_KEYSTONE_SITE_CODE_INDEX])
        else:
            outdated_fixes.append((sku,))
    if old == values:
        stats.unchanged += 1
        return None
    if old is None:
        stats.inserted += 1
    else:
        stats.updated += 1
    return (sku, *values)


def _with_keystone_codes(values: tuple, code: str | None, site_code: str | None) -> tuple:
    replaced = list(values)
    replaced[_KEYSTONE_CODE_INDEX] = code
    replaced[_KEYSTONE_SITE_CODE_INDEX] = site_code
    return tuple(replaced)


# ---------------------------------------------------------------- orders

# entity_id, created_at, status, customer_email, grand_total, lines of (line_number, sku, quantity, price)
OrderValues = tuple[int, str, str, str | None, float, tuple[tuple[int, str, int, float], ...]]


def _load_orders(connection: sqlite3.Connection) -> dict[str, OrderValues]:
    lines: dict[str, list[tuple[int, str, int, float]]] = {}
    query = "SELECT order_number, line_number, sku, quantity, price FROM order_item ORDER BY order_number, line_number"
    for order_number, *line in connection.execute(query):
        lines.setdefault(order_number, []).append(tuple(line))
    query = "SELECT order_number, entity_id, created_at, status, customer_email, grand_total FROM orders"
    return {row[0]: (*row[1:], tuple(lines.get(row[0], ()))) for row in connection.execute(query)}


def _order_lines(order: dict) -> tuple[tuple[int, str, int, float], ...] | None:
    """Return the order's lines, or None when one is invalid."""
    lines = []
    for number, line in enumerate(order.get("items") or [], start=1):
        price = parse_price(line.get("price")) if isinstance(line, dict) else None
        sku = _optional_text(line.get("sku")) if isinstance(line, dict) else None
        quantity = line.get("qty_ordered") if isinstance(line, dict) else None
        if price is None or sku is None or not isinstance(quantity, (int, float)):
            return None
        lines.append((number, sku.strip(), int(quantity), float(price)))
    return tuple(lines)


def _write_order(
    connection: sqlite3.Connection, number: str, values: OrderValues, is_new: bool, updated_at: str
) -> None:
    *header, lines = values
    if is_new:
        connection.execute(
            "INSERT INTO orders (order_number, entity_id, created_at, status, customer_email, grand_total, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (number, *header, updated_at),
        )
    else:
        connection.execute(
            "UPDATE orders SET entity_id = ?, created_at = ?, status = ?, customer_email = ?, grand_total = ?, "
            "updated_at = ? WHERE order_number = ?",
            (*header, updated_at, number),
        )
        connection.execute("DELETE FROM order_item WHERE order_number = ?", (number,))
    connection.executemany(
        "INSERT INTO order_item (order_number, line_number, sku, quantity, price) VALUES (?, ?, ?, ?, ?)",
        [(number, *line) for line in lines],
    )


def run_orders(context: JobContext) -> SyncStats:
    """Load order pages into orders and order_item.

    An order with a line whose SKU is not in the product table is skipped as a
    whole, because a partial order would misstate its lines against its total.
    """
    connection = open_catalog(context.home.catalog)
    require_products(connection)
    known_skus = {row[0] for row in connection.execute("SELECT sku FROM product")}
    existing = _load_orders(connection)
    stats = SyncStats((MISSING_ORDER_NUMBER, BAD_TOTAL, DUPLICATE, UNMATCHED))
    seen: set[str] = set()
    updated_at = utc_timestamp()
    for label, orders in magento_pages(context, "magento-orders"):
        with write_transaction(connection):
            for order in orders:
                stats.read += 1
                _sync_order(connection, order, known_skus, existing, seen, stats, updated_at)
        context.progress.line(f"{label}, {stats.read} orders")
        context.checkpoint()
    connection.close()
    return stats


def _order_values(
    order: object, known_skus: set[str], seen: set[str], stats: SyncStats
) -> tuple[str, OrderValues] | None:
    """Return (order number, values) of a valid order, or count why it is skipped and return None."""
    number = _optional_text(order.get("increment_id")) if isinstance(order, dict) else None
    if number is None:
        stats.skip(MISSING_ORDER_NUMBER)
        return None
    number = number.strip()
    total = parse_price(order.get("grand_total"))
    lines = _order_lines(order)
    if total is None or lines is None:
        stats.skip(BAD_TOTAL)
        return None
    if number in seen:
        stats.skip(DUPLICATE)
        return None
    seen.add(number)
    if any(line[1] not in known_skus for line in lines):
        stats.skip(UNMATCHED)
        return None
    entity_id = order.get("entity_id")
    return number, (
        entity_id if isinstance(entity_id, int) else None,
        str(order.get("created_at")),
        str(order.get("status")),
        _optional_text(order.get("customer_email")),
        float(total),
        lines,
    )


def _sync_order(
    connection: sqlite3.Connection,
    order: dict,
    known_skus: set[str],
    existing: dict[str, OrderValues],
    seen: set[str],
    stats: SyncStats,
    updated_at: str,
) -> None:
    valid = _order_values(order, known_skus, seen, stats)
    if valid is None:
        return
    number, values = valid
    old = existing.get(number)
    if old == values:
        stats.unchanged += 1
        return
    _write_order(connection, number, values, old is None, updated_at)
    if old is None:
        stats.inserted += 1
    else:
        stats.updated += 1
    existing[number] = values


JOBS = [
    Job("products", "Load Magento product export pages (run this first)", run_products),
    Job("orders", "Load Magento order pages into orders, order_item", run_orders),
]
