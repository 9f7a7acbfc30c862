"""Feed readers: header search below title rows, delimited files, request pacing."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from vendor_sync.errors import FeedError
from vendor_sync.jobs.metalcloak import parse_cards
from vendor_sync.pacing import Pacer
from vendor_sync.readers import read_delimited, read_workbook

COLUMNS = {"part_number": "Part Number", "price": "Retail"}


def write_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "Read Me"
    notes.append(["Prices in USD"])
    sheet = workbook.create_sheet("Jeep Parts")
    sheet.append(["Omix-ADA Price List 2026"])
    sheet.append(["All prices in USD"])
    sheet.append([])
    sheet.append(["Description", " part  number ", "RETAIL"])
    sheet.append(["Grab handle", 17402.1, 19.99])
    sheet.append([None, None, None])
    sheet.append(["Bumper", "12000.05", "$1,299.00"])
    workbook.save(path)


def test_workbook_header_below_title_rows(tmp_path: Path) -> None:
    path = tmp_path / "prices.xlsx"
    write_workbook(path)

    rows = list(read_workbook(path, COLUMNS))

    assert [row.sheet for row in rows] == ["Jeep Parts", "Jeep Parts"]
    assert rows[0].values == {"part_number": 17402.1, "price": 19.99}
    assert rows[1].values == {"part_number": "12000.05", "price": "$1,299.00"}


def test_workbook_without_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "prices.xlsx"
    write_workbook(path)

    with pytest.raises(FeedError, match="no sheet"):
        list(read_workbook(path, {"part_number": "Item Number"}))


def test_delimited_bom_semicolon_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes("\ufeffItemNo;MSRP;Note\r\n t123d ;$1,299.00;x\r\n\r\n;N/A;\r\n".encode("utf-8"))

    rows = list(read_delimited(path, {"part_number": "itemno", "price": "msrp"}, delimiter=";"))

    assert rows == [{"part_number": " t123d ", "price": "$1,299.00"}, {"part_number": "", "price": "N/A"}]


def test_delimited_missing_column_raises(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("SKU,Price\nA,1\n", encoding="utf-8")

    with pytest.raises(FeedError, match="lacks one of the columns"):
        list(read_delimited(path, {"part_number": "SKU", "cost": "Cost"}))


def test_pacer_spaces_requests() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    pacer = Pacer(5.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait()
    now[0] += 0.05  # work on the first page
    pacer.wait()
    now[0] += 0.5  # slow page: no sleep needed
    pacer.wait()

    assert sleeps == [pytest.approx(0.15)]


def test_metalcloak_cards_sale_and_defects(tmp_path: Path) -> None:
    page = tmp_path / "page-001.html"
    page.write_text(
        '<div class="collection">'
        '<div class="product-card"><h2 class="product-title"><a href="/products/a">Rock  Rails</a></h2>'
        '<span class="sku">SKU: mc00012 </span>'
        '<span class="price"><del>$1,150.00</del> <ins>$1,000.00</ins></span></div>'
        '<div class="product-card"><h2 class="product-title"><a href="/products/b">Skid &amp; Plate</a></h2>'
        '<span class="price">Call for price</span></div>'
        '<div class="product-card"><div class="badge">New</div><span class="sku">SKU: MC00013</span>'
        '<span class="price">$5.00</span></div>'
        "</div>",
        encoding="utf-8",
    )

    sale, no_sku, no_title = parse_cards(page)

    assert (sale.name, sale.url) == ("Rock Rails", "/products/a")
    assert (sale.part_number, sale.price_text) == ("mc00012", "$1,000.00")
    assert (no_sku.name, no_sku.part_number, no_sku.price_text) == ("Skid & Plate", None, "Call for price")
    assert no_title.name is None
    assert no_title.part_number == "MC00013"
