"""The feed generator: determinism, defects in each format, and the settings stamp."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from vendor_sync.errors import FeedError
from vendor_sync.feed_rows import FeedSettings
from vendor_sync.feeds import FEEDS, ensure_feed
from vendor_sync.paths import Home
from vendor_sync.universe import build_universe

from .conftest import Workload


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Map each file under root (lock files excluded) to its content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".locks" not in path.parts
    }


def test_generation_byte_identical(tmp_path: Path) -> None:
    # Different hash seeds guard against output that depends on set or dict hashing.
    first = Workload(tmp_path / "first")
    second = Workload(tmp_path / "second")
    first.run("feeds", {"PYTHONHASHSEED": "1"})
    second.run("feeds", {"PYTHONHASHSEED": "2"})

    first_files = tree_bytes(first.home / "feeds")
    second_files = tree_bytes(second.home / "feeds")

    assert len(first_files) > len(FEEDS)
    assert first_files.keys() == second_files.keys()
    different = [name for name in first_files if first_files[name] != second_files[name]]
    assert different == []


def test_universe_same_for_same_seed() -> None:
    first = build_universe(300, seed=7)
    build_universe.cache_clear()
    second = build_universe(300, seed=7)

    assert first == second
    assert len({product.sku for product in first}) == 300
    assert build_universe(300, seed=8) != first


def test_feeds_job_counts_existing(workload: Workload) -> None:
    result = workload.run("feeds")

    assert result.summary["read"] == len(FEEDS)
    assert result.summary["unchanged"] == len(FEEDS)
    assert result.summary["inserted"] == 0


def test_stamp_rejects_other_scale(tmp_path: Path) -> None:
    home = Home(tmp_path)
    ensure_feed(home, "tdot-prices", FeedSettings(scale=0.02))

    with pytest.raises(FeedError, match="scale 0.02"):
        ensure_feed(home, "tdot-prices", FeedSettings(scale=0.03))


def test_excel_title_rows_above_header(shared_feeds: Path) -> None:
    workbook = openpyxl.load_workbook(shared_feeds / FEEDS["quadratec-prices"].path, read_only=True)
    sheet = workbook["Dealer Pricing"]
    top_rows = [row for _, row in zip(range(4), sheet.iter_rows(values_only=True))]
    workbook.close()

    assert top_rows[0][0] == "Quadratec Dealer Price List"
    assert top_rows[3][0] == "Quadratec Part #"


def test_csv_feed_contains_defects(shared_feeds: Path) -> None:
    path = shared_feeds / FEEDS["roughcountry-prices"].path
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    skus = [row["SKU"] for row in rows]
    prices = [row["Price"] for row in rows]

    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert any(not sku.strip() for sku in skus), "no row without SKU"
    assert any(price.startswith("$") for price in prices), "no price written as $1,299.00"
    assert any(price in ("N/A", "n/a", "", "Call", "TBD") for price in prices)
    assert any(sku != sku.strip() for sku in skus), "no SKU with stray whitespace"
    assert any(sku.strip() and sku.strip() != sku.strip().upper() for sku in skus), "no lower-case SKU"
    normalized = [sku.strip().upper() for sku in skus if sku.strip()]
    assert len(normalized) > len(set(normalized)), "no duplicate SKU"


def test_magento_export_pages(shared_feeds: Path) -> None:
    directory = shared_feeds / FEEDS["magento-products"].path
    pages = [json.loads(path.read_text()) for path in sorted(directory.glob("page-*.json"))]
    items = [item for page in pages for item in page["items"]]
    skus = [item["sku"] for item in items]

    assert pages[0]["total_count"] == len(items)
    assert pages[0]["search_criteria"]["page_size"] == 500
    assert [page["search_criteria"]["current_page"] for page in pages] == list(range(1, len(pages) + 1))
    assert any(not (sku or "").strip() for sku in skus)
    present = [sku for sku in skus if sku and sku.strip()]
    assert len(present) > len(set(present))
    codes = {entry["attribute_code"] for item in items for entry in item["custom_attributes"]}
    assert {"meyer_code", "keystone_code", "keystone_code_site", "keystone_ftp_brand", "quadratec_code",
            "omix_code", "wheelpros_code", "turn14_code"} <= codes


def test_leftover_temporary_feed_removed(tmp_path: Path) -> None:
    home = Home(tmp_path)
    settings = FeedSettings(scale=0.02)
    target = home.feeds / FEEDS["tdot-prices"].path
    target.parent.mkdir(parents=True)
    leftover = target.with_name(f".{target.name}.tmp-99999999")
    leftover.write_text("half-written", encoding="utf-8")

    path = ensure_feed(home, "tdot-prices", settings)

    assert path == target
    assert not leftover.exists()
    assert path.read_text(encoding="utf-8").startswith("ItemNo;Description;DealerPrice;MSRP")
