"""The SQLite catalog: schema, connections and the queries that every sync shares.

Connections run in autocommit mode. Every write happens inside
``write_transaction``, which starts with BEGIN IMMEDIATE so that concurrent
writers wait for the write lock (up to the busy timeout) when the transaction
starts. A deferred transaction that upgrades from read to write in WAL mode fails
at once with "database is locked" instead of waiting.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DependencyError
from .parsing import normalize_code
from .vendors import VENDORS

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# Maximum time in seconds that a statement waits for another process's lock.
BUSY_TIMEOUT_SECONDS = 60.0

# Product columns filled from the Magento export that contain each vendor's code
# for the product. keystone_code_site and keystone_ftp_brand are Keystone's site
# code and its vendor prefix (the FTP drop's VENDOR_CODE).
CODE_COLUMNS: tuple[str, ...] = (
    "meyer_code",
    "keystone_code",
    "keystone_code_site",
    "keystone_ftp_brand",
    "quadratec_code",
    "omix_code",
    "wheelpros_code",
    "turn14_code",
    "premier_code",
    "roughcountry_code",
    "tirediscounter_code",
    "aev_code",
    "ctp_code",
    "keyparts_code",
    "alpine_code",
    "tdot_code",
    "lowriders_code",
    "metalcloak_code",
)

_CODE_COLUMN_DDL = ",\n    ".join(f"{column} TEXT" for column in CODE_COLUMNS)

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS vendor (
    vendor_id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    integration TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS product (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    brand TEXT,
    mpn TEXT,
    price REAL,
    status INTEGER NOT NULL,
    {_CODE_COLUMN_DDL},
    updated_at TEXT NOT NULL
)""",
    # The Keystone codes that keystone-codes replaced, as the Magento export has
    # them. While the export still has these values, the products sync keeps the
    # corrected codes instead of writing the outdated ones back.
    """CREATE TABLE IF NOT EXISTS keystone_code_fix (
    sku TEXT PRIMARY KEY REFERENCES product(sku),
    export_code TEXT,
    export_site_code TEXT
)""",
    """CREATE TABLE IF NOT EXISTS vendor_product (
    vendor_product_id INTEGER PRIMARY KEY,
    vendor_id INTEGER NOT NULL REFERENCES vendor(vendor_id),
    sku TEXT NOT NULL REFERENCES product(sku),
    vendor_part_number TEXT NOT NULL,
    cost REAL,
    price REAL,
    inventory INTEGER,
    updated_at TEXT NOT NULL,
    UNIQUE (vendor_id, sku)
)""",
    "CREATE INDEX IF NOT EXISTS vendor_product_sku ON vendor_product(sku)",
    """CREATE TABLE IF NOT EXISTS competitor (
    competitor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    website TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS vendor_prefix (
    prefix TEXT PRIMARY KEY,
    brand TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS orders (
    order_number TEXT PRIMARY KEY,
    entity_id INTEGER,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    customer_email TEXT,
    grand_total REAL NOT NULL,
    updated_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS order_item (
    order_number TEXT NOT NULL REFERENCES orders(order_number) ON DELETE CASCADE,
    line_number INTEGER NOT NULL,
    sku TEXT NOT NULL REFERENCES product(sku),
    quantity INTEGER NOT NULL,
    price REAL NOT NULL,
    PRIMARY KEY (order_number, line_number)
)""",
    """CREATE TABLE IF NOT EXISTS metalcloak_stage (
    source_page TEXT NOT NULL,
    position INTEGER NOT NULL,
    part_number TEXT,
    name TEXT NOT NULL,
    price_text TEXT,
    url TEXT,
    scraped_at TEXT NOT NULL,
    PRIMARY KEY (source_page, position)
)""",
)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl.flock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in a BEGIN IMMEDIATE transaction, committing on success."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def open_catalog(path: Path) -> sqlite3.Connection:
    """Open the catalog, creating the file and the schema if needed.

    Every connection has foreign keys on and a 60 s busy timeout. The switch to
    WAL and the schema creation run under a file lock beside the catalog, because
    concurrent first opens of a new file can otherwise fail on the journal-mode
    change.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    connection.execute("PRAGMA foreign_keys=ON")
    with file_lock(path.with_name(path.name + ".lock")):
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            _create_schema(connection)
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _create_schema(connection: sqlite3.Connection) -> None:
    with write_transaction(connection):
        for statement in SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    log.debug("created catalog schema version %d", SCHEMA_VERSION)


def count_products(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM product").fetchone()[0]


def load_keystone_code_fixes(connection: sqlite3.Connection) -> dict[str, tuple[str | None, str | None]]:
    """Map the SKU of each product whose Keystone codes keystone-codes corrected to its exported codes.

    The exported codes are (keystone_code, keystone_code_site) as the Magento
    export had them when keystone-codes replaced them.
    """
    query = "SELECT sku, export_code, export_site_code FROM keystone_code_fix"
    return {sku: (code, site_code) for sku, code, site_code in connection.execute(query)}


def require_products(connection: sqlite3.Connection) -> None:
    """Raise DependencyError when the product table is empty."""
    if connection.execute("SELECT EXISTS (SELECT 1 FROM product)").fetchone()[0]:
        return
    raise DependencyError(
        "the catalog has no products; run the products sync first (python -m vendor_sync products)"
    )


def ensure_vendor(connection: sqlite3.Connection, code: str) -> int:
    """Return the vendor_id of a vendor from VENDORS, inserting the vendor row if missing."""
    row = connection.execute("SELECT vendor_id FROM vendor WHERE code = ?", (code,)).fetchone()
    if row is not None:
        return row[0]
    vendor = VENDORS[code]
    with write_transaction(connection):
        connection.execute(
            "INSERT OR IGNORE INTO vendor (code, name, integration) VALUES (?, ?, ?)",
            (vendor.code, vendor.name, vendor.integration),
        )
        row = connection.execute("SELECT vendor_id FROM vendor WHERE code = ?", (code,)).fetchone()
    return row[0]


def find_vendor_id(connection: sqlite3.Connection, code: str) -> int | None:
    row = connection.execute("SELECT vendor_id FROM vendor WHERE code = ?", (code,)).fetchone()
    return None if row is None else row[0]


def load_code_index(connection: sqlite3.Connection, column: str) -> dict[str, str]:
    """Map each normalized code in a product code column to its SKU.

    When two products have the same normalized code, the lower SKU wins and the
    collision is logged, so matching stays deterministic.
    """
    if column not in CODE_COLUMNS:
        raise ValueError(f"unknown product code column {column!r}")
    index: dict[str, str] = {}
    query = f"SELECT sku, {column} FROM product WHERE {column} IS NOT NULL ORDER BY sku"
    for sku, raw_code in connection.execute(query):
        code = normalize_code(raw_code)
        if code is None:
            continue
        if code in index:
            log.debug("code %s in %s belongs to %s and %s, matching %s", code, column, index[code], sku, index[code])
            continue
        index[code] = sku
    return index
