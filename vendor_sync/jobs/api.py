"""Jobs that replay recorded API pages: meyer, wheelpros, tirediscounter, turn14, premier, keystone.

Pages are read one request at a time at the vendor's rate in pacing.RATE_LIMITS,
so these jobs take as long as a real client would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..context import JobContext
from ..errors import FeedError
from ..feed_writers import page_file_name
from ..parsing import parse_quantity
from ..readers import read_recorded_pages
from ..report import SyncStats
from ..sync import Chunk, FeedRecord, InventorySyncSpec, VendorSyncSpec, run_inventory_sync, run_vendor_sync
from .job import Job


def _get(mapping: object, *keys: str) -> object:
    """Return mapping[k1][k2]..., or None where a level is missing or not a dict."""
    value = mapping
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _items(page: dict, key: str, path: Path) -> list[dict]:
    """Return the item objects of a page. Raises FeedError if the list or an item is not JSON of that type."""
    items = page.get(key)
    if not isinstance(items, list):
        raise FeedError(f"recorded page {path} has no {key!r} list")
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise FeedError(f"item {position} of {key!r} in recorded page {path} is not a JSON object: {item!r:.60}")
    return items


def page_chunks(
    context: JobContext,
    feed: str,
    api: str,
    page_count: Callable[[dict], int],
    items_key: str,
    record: Callable[[dict], FeedRecord],
) -> Iterator[Chunk]:
    """Yield one chunk per recorded page, paced at the API's rate."""
    directory = context.feed(feed)
    for number, total, page in read_recorded_pages(directory, api, page_count):
        items = _items(page, items_key, directory / page_file_name(number))
        yield Chunk(f"page {number}/{total}", [record(item) for item in items])


def _meyer_record(item: dict) -> FeedRecord:
    return FeedRecord(
        item.get("ItemNumber"), item.get("JobberPrice"), item.get("CustomerPrice"), item.get("QtyAvailable")
    )


def _wheelpros_record(item: dict) -> FeedRecord:
    return FeedRecord(item.get("sku"), _get(item, "prices", "msrp"), _get(item, "prices", "dealer"))


def _wheelpros_inventory_record(item: dict) -> FeedRecord:
    """Sum the warehouse quantities. An invalid quantity is passed on raw, so the row is skipped."""
    total = 0
    for warehouse in item.get("inventory") or []:
        raw = _get(warehouse, "quantity")
        quantity = parse_quantity(raw)
        if quantity is None:
            return FeedRecord(item.get("sku"), inventory=raw)
        total += quantity
    return FeedRecord(item.get("sku"), inventory=total)


def _tirediscounter_record(item: dict) -> FeedRecord:
    return FeedRecord(item.get("partNumber"), item.get("price"), item.get("cost"), item.get("stock"))


def _turn14_record(item: dict) -> FeedRecord:
    attributes = item.get("attributes") or {}
    return FeedRecord(
        attributes.get("part_number"),
        _get(attributes, "pricing", "map"),
        _get(attributes, "pricing", "purchase_cost"),
        _get(attributes, "inventory", "total"),
    )


def _premier_record(item: dict) -> FeedRecord:
    return FeedRecord(item.get("itemNumber"), item.get("jobber"), item.get("cost"), _get(item, "inventory", "total"))


def _keystone_record(item: dict) -> FeedRecord:
    return FeedRecord(
        item.get("vcpn"), item.get("jobberPrice"), item.get("customerPrice"), item.get("quantityAvailable")
    )


def _count(*keys: str) -> Callable[[dict], int]:
    def page_count(page: dict) -> int:
        value = _get(page, *keys)
        if not isinstance(value, int) or value < 1:
            raise FeedError(f"the first recorded page has no valid page count at {'.'.join(keys)}: {value!r}")
        return value

    return page_count


def _api_job(
    name: str,
    help_text: str,
    spec: VendorSyncSpec,
    feed: str,
    api: str,
    page_count: Callable[[dict], int],
    items_key: str,
    record: Callable[[dict], FeedRecord],
) -> Job:
    def run(context: JobContext) -> SyncStats:
        chunks = page_chunks(context, feed, api, page_count, items_key, record)
        return run_vendor_sync(context, spec, chunks)

    return Job(name, help_text, run)


def _run_wheelpros_inventory(context: JobContext) -> SyncStats:
    spec = InventorySyncSpec("wheelpros", "wheelpros_code", main_job="wheelpros")
    chunks = page_chunks(
        context, "wheelpros-inventory-api", "wheelpros", _count("totalPages"), "results", _wheelpros_inventory_record
    )
    return run_inventory_sync(context, spec, chunks)


JOBS = [
    _api_job(
        "wheelpros", "Load Wheel Pros pricing API pages",
        VendorSyncSpec("wheelpros", "wheelpros_code"),
        "wheelpros-api", "wheelpros", _count("totalPages"), "results", _wheelpros_record,
    ),
    Job(
        "wheelpros-inventory",
        "Update wheelpros stock from inventory API pages",
        _run_wheelpros_inventory,
    ),
    _api_job(
        "tirediscounter", "Load Tire Discounter API pages",
        VendorSyncSpec("tirediscounter", "tirediscounter_code", has_inventory=True),
        "tirediscounter-api", "tirediscounter", _count("pagination", "pages"), "products", _tirediscounter_record,
    ),
    _api_job(
        "meyer", "Load Meyer API pages",
        VendorSyncSpec("meyer", "meyer_code", has_inventory=True),
        "meyer-api", "meyer", _count("TotalPages"), "Items", _meyer_record,
    ),
    _api_job(
        "turn14", "Load all Turn 14 API pages at 5 requests/s (slowest)",
        VendorSyncSpec("turn14", "turn14_code", has_inventory=True),
        "turn14-api", "turn14", _count("meta", "total_pages"), "data", _turn14_record,
    ),
    _api_job(
        "turn14-daily", "Load the Turn 14 daily delta API pages",
        VendorSyncSpec("turn14", "turn14_code", has_inventory=True),
        "turn14-daily-api", "turn14", _count("meta", "total_pages"), "data", _turn14_record,
    ),
    _api_job(
        "premier-daily", "Load the Premier Performance daily API pages",
        VendorSyncSpec("premier", "premier_code", has_inventory=True),
        "premier-daily-api", "premier", _count("pageCount"), "items", _premier_record,
    ),
    _api_job(
        "keystone", "Load Keystone API pages",
        VendorSyncSpec("keystone", "keystone_code", has_inventory=True),
        "keystone-api", "keystone", _count("totalPages"), "parts", _keystone_record,
    ),
]
