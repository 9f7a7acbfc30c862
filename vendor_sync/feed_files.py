"""Builders of the file feeds: Excel price lists, CSV files and the Keystone FTP drops.

Each builder writes one feed to the temporary path it is given. The column
names and layouts imitate what each vendor sends, including title rows above
the header, sheets without data, byte order marks and Latin-1 text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from .feed_rows import FeedSettings, VendorRow, add_quantity_defects, as_number, as_text, vendor_rows
from .feed_writers import SheetContent, write_delimited, write_xlsx

_OMIX_CODE = re.compile(r"^\d{5}\.\d{2}$")


def _omix_cell(part_number: object) -> object:
    """Return an Omix part number as Excel stores a typed-in "17402.10": the number 17402.1."""
    if isinstance(part_number, str) and _OMIX_CODE.match(part_number):
        return float(part_number)
    return part_number


def build_quadratec_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "quadratec")
    data = [
        [row.part_number, row.product.brand.name, row.product.name, as_number(row.price), as_number(row.cost)]
        for row in rows
    ]
    notes = SheetContent(
        "Read Me",
        header=None,
        rows=[["Prices are in USD."], ["MAP Price is the minimum advertised price."]],
    )
    pricing = SheetContent(
        "Dealer Pricing",
        leading_rows=[["Quadratec Dealer Price List"], ["Effective 2026-01-01"], []],
        header=["Quadratec Part #", "Brand", "Description", "MAP Price", "Dealer Cost"],
        rows=data,
    )
    write_xlsx(path, [notes, pricing])


def build_quadratec_inventory(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "quadratec", stream="quadratec-inventory")
    add_quantity_defects(settings.rng("quantities:quadratec"), rows)
    write_delimited(
        path,
        ["Quadratec Part #", "Qty On Hand"],
        ([row.part_number, row.inventory] for row in rows),
    )


def build_omix_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "omix")
    data = [
        [_omix_cell(row.part_number), row.product.name, as_number(row.price), None, as_number(row.cost)]
        for row in rows
    ]
    for line in data:
        if isinstance(line[2], float):
            line[3] = round(line[2] * 0.85, 2)  # Jobber price, which the sync does not read
    split = len(data) * 7 // 10
    header = ["Part Number", "Description", "Retail", "Jobber", "Net"]
    titles = [["Omix-ADA Price List 2026"], ["All prices in USD"]]
    write_xlsx(
        path,
        [
            SheetContent("Jeep Parts", leading_rows=titles, header=header, rows=data[:split]),
            SheetContent("Accessories", leading_rows=titles, header=header, rows=data[split:]),
        ],
    )


def build_omix_inventory(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "omix", stream="omix-inventory")
    add_quantity_defects(settings.rng("quantities:omix"), rows)
    data = [[_omix_cell(row.part_number), row.inventory] for row in rows]
    write_xlsx(path, [SheetContent("Inventory", header=["Part Number", "Qty Available"], rows=data)])


def build_aev_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "aev")
    data = [[row.part_number, row.product.name, as_number(row.price), as_number(row.cost)] for row in rows]
    header = ["Part #", "Product Name", "MSRP", "Dealer"]
    write_xlsx(path, [SheetContent("AEV Pricing", header=header, rows=data)])


def build_ctp_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "ctp")
    data = [
        [row.part_number, row.product.name, as_number(row.price), as_number(row.cost), row.inventory]
        for row in rows
    ]
    header = ["SKU", "Description", "Price", "Cost", "Qty"]
    titles = [["CTP Price File - Confidential"]]
    write_xlsx(path, [SheetContent("Price File", leading_rows=titles, header=header, rows=data)])


def build_keyparts_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "keyparts")
    data = [[row.part_number, row.product.name, as_number(row.price), as_number(row.cost)] for row in rows]
    header = ["Item Number", "Item Description", "List Price", "Your Price"]
    titles = [["KeyParts pricing for dealer 40021"], []]
    write_xlsx(path, [SheetContent("Pricing", leading_rows=titles, header=header, rows=data)])


def build_alpine_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "alpine")
    data = [
        [row.part_number, row.product.name, as_number(row.price), as_number(row.cost), row.inventory]
        for row in rows
    ]
    header = ["Model", "Description", "MAP Price", "Dealer Price", "Stock"]
    titles = [["Alpine"], ["Dealer price list"]]
    write_xlsx(path, [SheetContent("Price List", leading_rows=titles, header=header, rows=data)])


def build_roughcountry_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "roughcountry")
    write_delimited(
        path,
        ["SKU", "Title", "Price", "Cost", "Inventory"],
        ([row.part_number, row.product.name, as_text(row.price), as_text(row.cost), row.inventory] for row in rows),
        encoding="utf-8-sig",
    )


def build_tdot_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "tdot")
    write_delimited(
        path,
        ["ItemNo", "Description", "DealerPrice", "MSRP"],
        ([row.part_number, row.product.name, as_text(row.cost), as_text(row.price)] for row in rows),
        delimiter=";",
    )


def build_lowriders_prices(path: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "lowriders")
    write_delimited(
        path,
        ["Part", "Desc", "Price", "Qty"],
        ([row.part_number, row.product.name, as_text(row.price), row.inventory] for row in rows),
        delimiter="\t",
        line_terminator="\n",
    )


def _keystone_fields(row: VendorRow) -> tuple[str, str]:
    """Return the drop's vendor prefix and part number, both empty for a row without a VCPN."""
    if not isinstance(row.part_number, str) or not row.part_number.strip():
        return "", ""
    return row.product.brand.prefix, row.product.mpn


def build_keystone_ftp_v1(path: Path, settings: FeedSettings) -> None:
    """Write the older Keystone drop: quoted CSV, with prices 3 % below the current drop."""
    rows = vendor_rows(settings, "keystone", stream="keystone-ftp-v1", price_factor=Decimal("0.97"))
    header = [
        "VendorName", "VCPN", "VendorCode", "PartNumber", "ManufacturerPartNo",
        "LongDescription", "JobberPrice", "Cost", "TotalQty",
    ]
    lines = []
    for row in rows:
        prefix, part_number = _keystone_fields(row)
        lines.append([
            row.product.brand.name, row.part_number, prefix, part_number, part_number,
            row.product.name, as_text(row.price), as_text(row.cost), row.inventory,
        ])
    write_delimited(path, header, lines, quote_all=True)


def _latin1_description(name: str) -> str:
    """Add the degree sign that Keystone writes in Latin-1 to suspension part names."""
    if "Arm" in name or "Track Bar" in name:
        return f"{name}, 2\u00b0 caster correction"
    return name


def keystone_v2_rows(settings: FeedSettings) -> list[VendorRow]:
    return vendor_rows(settings, "keystone", stream="keystone-ftp-v2")


def build_keystone_ftp_v2(path: Path, settings: FeedSettings) -> None:
    """Write the current Keystone drop: pipe-delimited Latin-1 text with stock per warehouse."""
    rows = keystone_v2_rows(settings)
    rng = settings.rng("keystone-ftp-v2:warehouses")
    header = [
        "VCPN", "VENDOR_CODE", "PART_NUMBER", "DESCRIPTION", "JOBBER_PRICE", "COST",
        "QTY_EAST", "QTY_MIDWEST", "QTY_WEST",
    ]
    lines = []
    for row in rows:
        prefix, part_number = _keystone_fields(row)
        east = rng.randint(0, row.inventory) if isinstance(row.inventory, int) else 0
        west = row.inventory - east if isinstance(row.inventory, int) else 0
        lines.append([
            row.part_number, prefix, part_number, _latin1_description(row.product.name),
            as_text(row.price), as_text(row.cost), east, 0, west,
        ])
    write_delimited(path, header, lines, delimiter="|", encoding="latin-1")
