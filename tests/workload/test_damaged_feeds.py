"""Damaged feeds: a job fails with one line on stderr that names the file and the row."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from .conftest import Workload


@pytest.fixture
def private(tmp_path: Path, shared_feeds: Path, products_catalog: Path) -> Workload:
    """A catalog home with the products and its own copy of the feeds, which a test may damage."""
    home = tmp_path / "home"
    shutil.copytree(shared_feeds, home / "feeds")
    shutil.copyfile(products_catalog, home / "catalog.sqlite3")
    return Workload(home)


def assert_one_line_error(workload: Workload, job: str, *expected: str) -> str:
    result = workload.run(job, check=False)
    message = result.stderr.strip()

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{job}: ")
    for text in expected:
        assert text in message
    assert "Summary:" not in result.stdout
    return message


def test_csv_unterminated_quote_fails(private: Workload) -> None:
    path = private.home / "feeds" / "roughcountry" / "rough_country_dealer.csv"
    lines = path.read_bytes().split(b"\r\n")
    # A quote that opens a field and never closes swallows every later line into that field.
    damaged = len(lines) - 5
    lines[damaged - 1] = b'"' + lines[damaged - 1]
    path.write_bytes(b"\r\n".join(lines))

    assert_one_line_error(private, "roughcountry", str(path), f"line {damaged}")
    assert private.vendor_rows("roughcountry") == []


def test_csv_invalid_encoding_fails(private: Workload) -> None:
    path = private.home / "feeds" / "tdot" / "tdot_pricelist.csv"
    content = path.read_bytes()
    line_count = content.count(b"\n")
    path.write_bytes(content + b"T99999D;Caf\xe9 Tray;1.00;2.00\r\n")

    assert_one_line_error(private, "tdot", str(path), f"line {line_count + 1}", "utf-8")


def test_truncated_workbook_fails(private: Workload) -> None:
    path = private.home / "feeds" / "aev" / "aev_dealer_price_list.xlsx"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])

    assert_one_line_error(private, "aev", str(path))


def test_workbook_damaged_sheet_fails(private: Workload) -> None:
    path = private.home / "feeds" / "aev" / "aev_dealer_price_list.xlsx"
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    members[sheet] = members[sheet][: len(members[sheet]) // 2]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)

    assert_one_line_error(private, "aev", str(path), "ParseError")


def test_page_not_an_object_fails(private: Workload) -> None:
    path = private.home / "feeds" / "meyer" / "items" / "page-0002.json"
    path.write_text("[]", encoding="utf-8")

    assert_one_line_error(private, "meyer", str(path), "object")


def test_page_item_not_an_object_fails(private: Workload) -> None:
    path = private.home / "feeds" / "meyer" / "items" / "page-0001.json"
    page = json.loads(path.read_text(encoding="utf-8"))
    page["Items"][3] = "ABC123"
    path.write_text(json.dumps(page), encoding="utf-8")

    assert_one_line_error(private, "meyer", str(path), "item 4")


def test_order_not_an_object_is_skipped(private: Workload) -> None:
    # Export items that are not objects count as missing an order number, as products count them missing a SKU.
    path = private.home / "feeds" / "magento" / "orders" / "page-0001.json"
    page = json.loads(path.read_text(encoding="utf-8"))
    page["items"][2] = None
    path.write_text(json.dumps(page), encoding="utf-8")

    result = private.run("orders", check=False)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.summary["reasons"]["missing order number"] >= 1
