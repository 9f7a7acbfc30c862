"""Jobs that read delimited text files: roughcountry, tdot, lowriders, quadratec-inventory."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import JobContext
from ..readers import ColumnMap, batched, read_delimited
from ..report import SyncStats
from ..sync import CHUNK_SIZE, Chunk, FeedRecord, InventorySyncSpec, VendorSyncSpec, run_inventory_sync, run_vendor_sync
from .job import Job


def delimited_chunks(context: JobContext, feed: str, columns: ColumnMap, delimiter: str = ",") -> Iterator[Chunk]:
    """Yield the rows of a generated text feed in chunks labelled with the file name."""
    path = context.feed(feed)
    for batch in batched(read_delimited(path, columns, delimiter=delimiter), CHUNK_SIZE):
        yield Chunk(path.name, [FeedRecord(**row) for row in batch])


def _csv_job(name: str, help_text: str, feed: str, spec: VendorSyncSpec, columns: ColumnMap, delimiter: str) -> Job:
    def run(context: JobContext) -> SyncStats:
        return run_vendor_sync(context, spec, delimited_chunks(context, feed, columns, delimiter))

    return Job(name, help_text, run)


def _run_quadratec_inventory(context: JobContext) -> SyncStats:
    spec = InventorySyncSpec("quadratec", "quadratec_code", main_job="quadratec")
    columns = {"part_number": "Quadratec Part #", "inventory": "Qty On Hand"}
    return run_inventory_sync(context, spec, delimited_chunks(context, "quadratec-inventory", columns))


JOBS = [
    Job(
        "quadratec-inventory",
        "Update quadratec stock from the Quadratec CSV",
        _run_quadratec_inventory,
    ),
    _csv_job(
        "roughcountry",
        "Load the Rough Country dealer CSV",
        "roughcountry-prices",
        VendorSyncSpec("roughcountry", "roughcountry_code", has_inventory=True),
        {"part_number": "SKU", "price": "Price", "cost": "Cost", "inventory": "Inventory"},
        ",",
    ),
    _csv_job(
        "tdot",
        "Load the TDot price list (semicolon CSV)",
        "tdot-prices",
        VendorSyncSpec("tdot", "tdot_code"),
        {"part_number": "ItemNo", "price": "MSRP", "cost": "DealerPrice"},
        ";",
    ),
    _csv_job(
        "lowriders",
        "Load the Lowriders stock list (tab-delimited)",
        "lowriders-prices",
        VendorSyncSpec("lowriders", "lowriders_code", has_inventory=True),
        {"part_number": "Part", "price": "Price", "inventory": "Qty"},
        "\t",
    ),
]
