"""Jobs that read Excel price lists: quadratec, omix, aev, ctp, keyparts, alpine, omix-inventory."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import JobContext
from ..readers import ColumnMap, batched, read_workbook
from ..report import SyncStats
from ..sync import CHUNK_SIZE, Chunk, FeedRecord, InventorySyncSpec, VendorSyncSpec, run_inventory_sync, run_vendor_sync
from .job import Job


def workbook_chunks(context: JobContext, feed: str, columns: ColumnMap) -> Iterator[Chunk]:
    """Yield the rows of a generated workbook in chunks labelled with their sheet."""
    rows = read_workbook(context.feed(feed), columns)
    for batch in batched(rows, CHUNK_SIZE):
        yield Chunk(f"sheet {batch[-1].sheet!r}", [FeedRecord(**row.values) for row in batch])


def _price_list_job(name: str, help_text: str, feed: str, spec: VendorSyncSpec, columns: ColumnMap) -> Job:
    def run(context: JobContext) -> SyncStats:
        return run_vendor_sync(context, spec, workbook_chunks(context, feed, columns))

    return Job(name, help_text, run)


def _run_omix_inventory(context: JobContext) -> SyncStats:
    spec = InventorySyncSpec("omix", "omix_code", main_job="omix", part_number_decimals=2)
    columns = {"part_number": "Part Number", "inventory": "Qty Available"}
    return run_inventory_sync(context, spec, workbook_chunks(context, "omix-inventory", columns))


JOBS = [
    _price_list_job(
        "quadratec",
        "Load the Quadratec price list (Excel)",
        "quadratec-prices",
        VendorSyncSpec("quadratec", "quadratec_code"),
        {"part_number": "Quadratec Part #", "price": "MAP Price", "cost": "Dealer Cost"},
    ),
    _price_list_job(
        "omix",
        "Load the Omix-ADA price list (Excel, two sheets)",
        "omix-prices",
        VendorSyncSpec("omix", "omix_code", part_number_decimals=2),
        {"part_number": "Part Number", "price": "Retail", "cost": "Net"},
    ),
    Job("omix-inventory", "Update omix stock from the Omix-ADA file (Excel)", _run_omix_inventory),
    _price_list_job(
        "aev",
        "Load the AEV dealer price list (Excel)",
        "aev-prices",
        VendorSyncSpec("aev", "aev_code"),
        {"part_number": "Part #", "price": "MSRP", "cost": "Dealer"},
    ),
    _price_list_job(
        "ctp",
        "Load the CTP price file with stock (Excel)",
        "ctp-prices",
        VendorSyncSpec("ctp", "ctp_code", has_inventory=True),
        {"part_number": "SKU", "price": "Price", "cost": "Cost", "inventory": "Qty"},
    ),
    _price_list_job(
        "keyparts",
        "Load the KeyParts price list (Excel)",
        "keyparts-prices",
        VendorSyncSpec("keyparts", "keyparts_code"),
        {"part_number": "Item Number", "price": "List Price", "cost": "Your Price"},
    ),
    _price_list_job(
        "alpine",
        "Load the Alpine price list with stock (Excel)",
        "alpine-prices",
        VendorSyncSpec("alpine", "alpine_code", has_inventory=True),
        {"part_number": "Model", "price": "MAP Price", "cost": "Dealer Price", "inventory": "Stock"},
    ),
]
