"""Builders of the paged feeds: the Magento export, recorded API pages and saved HTML pages.

Each builder writes a directory of pages into the temporary path it is given.
Page sizes are fixed per feed, so a smaller feed scale gives fewer pages.
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from .feed_rows import FeedSettings, VendorRow, add_quantity_defects, as_number, pad_with_whitespace, vendor_rows
from .feed_writers import split_pages, write_json_pages
from .universe import Product, keystone_site_code, phantom_products

MAGENTO_PAGE_SIZE = 500
ORDER_PAGE_SIZE = 100
ORDER_COUNT = 3000  # at feed scale 1.0
METALCLOAK_CARDS_PER_PAGE = 24


# ---------------------------------------------------------------- Magento products


def build_magento_products(directory: Path, settings: FeedSettings) -> None:
    rng = settings.rng("magento-products")
    items = [_magento_item(rng, product) for product in settings.universe()]

    # Items with an empty SKU, which the products job must skip.
    for i in rng.sample(range(len(items)), max(1, len(items) // 100)):
        items[i]["sku"] = rng.choice(("", None, " "))

    # Items repeated on a later page, as offset paging returns them when products
    # are saved during the export.
    for i in sorted(rng.sample(range(len(items)), max(1, len(items) // 200)), reverse=True):
        items.insert(min(len(items), i + rng.randint(1, MAGENTO_PAGE_SIZE)), dict(items[i]))

    pages = split_pages(items, MAGENTO_PAGE_SIZE)
    write_json_pages(directory, (_magento_page(items, page, number) for number, page in enumerate(pages, 1)))


def _magento_page(items: Sequence[dict], page: Sequence[dict], number: int) -> dict:
    return {
        "items": list(page),
        "search_criteria": {"filter_groups": [], "page_size": MAGENTO_PAGE_SIZE, "current_page": number},
        "total_count": len(items),
    }


def _magento_item(rng: random.Random, product: Product) -> dict:
    attributes = [
        {"attribute_code": "brand", "value": product.brand.name},
        {"attribute_code": "mpn", "value": product.mpn},
    ]
    for vendor, code in product.codes.items():
        if vendor == "keystone":
            attributes.extend(_keystone_attributes(rng, product, code))
        elif rng.random() >= 0.02:  # 2 % of vendor codes were never entered in Magento
            attributes.append({"attribute_code": f"{vendor}_code", "value": _messy_code(rng, code)})
    price = None if rng.random() < 0.01 else float(product.price)
    return {
        "id": product.index + 1,
        "sku": product.sku,
        "name": product.name,
        "price": price,
        "status": 2 if rng.random() < 0.03 else 1,
        "type_id": "simple",
        "custom_attributes": attributes,
    }


def _messy_code(rng: random.Random, code: str) -> str:
    draw = rng.random()
    if draw < 0.04:
        return code.lower()
    if draw < 0.08:
        return pad_with_whitespace(rng, code)
    return code


def _keystone_attributes(rng: random.Random, product: Product, code: str) -> list[dict]:
    """Return Keystone attributes, 10 % with an outdated code that keystone-codes fixes."""
    prefix, mpn = product.brand.prefix, product.mpn
    site = keystone_site_code(prefix, mpn)
    draw = rng.random()
    if draw < 0.04:
        code, site = f"{prefix} {mpn}", f"{prefix.lower()} {mpn.lower()}"
    elif draw < 0.08:
        code, site = f"{prefix}{mpn.replace('-', '')}", f"{prefix.lower()}{mpn.replace('-', '').lower()}"
    elif draw < 0.10:
        code, site = "", ""
    elif draw < 0.14:
        code = _messy_code(rng, code)

    attributes = []
    if code:
        attributes.append({"attribute_code": "keystone_code", "value": code})
    if site:
        attributes.append({"attribute_code": "keystone_code_site", "value": site})
    brand_draw = rng.random()
    if brand_draw >= 0.04:  # 4 % have no Keystone prefix, so keystone-codes cannot match them
        value = prefix.lower() if brand_draw < 0.09 else prefix
        attributes.append({"attribute_code": "keystone_ftp_brand", "value": value})
    return attributes


# ---------------------------------------------------------------- Magento orders


def build_magento_orders(directory: Path, settings: FeedSettings) -> None:
    rng = settings.rng("magento-orders")
    products = settings.universe()
    count = max(10, round(ORDER_COUNT * settings.scale))
    phantoms = phantom_products(settings.seed, settings.product_count + 90_000, 50)
    orders = [_order(rng, number, products, phantoms) for number in range(1, count + 1)]

    for i in rng.sample(range(len(orders)), max(1, count // 100)):
        orders[i]["increment_id"] = rng.choice(("", None))
    for i in rng.sample(range(len(orders)), max(1, count // 100)):
        orders[i]["grand_total"] = rng.choice(("N/A", None))
    for i in sorted(rng.sample(range(len(orders)), max(1, count // 100)), reverse=True):
        orders.insert(min(len(orders), i + rng.randint(1, ORDER_PAGE_SIZE)), dict(orders[i]))

    pages = split_pages(orders, ORDER_PAGE_SIZE)
    write_json_pages(
        directory,
        (
            {
                "items": list(page),
                "search_criteria": {"filter_groups": [], "page_size": ORDER_PAGE_SIZE, "current_page": number},
                "total_count": len(orders),
            }
            for number, page in enumerate(pages, 1)
        ),
    )


def _order(rng: random.Random, number: int, products: Sequence[Product], phantoms: Sequence[Product]) -> dict:
    lines = []
    for line_number in range(1, rng.choice((1, 1, 1, 2, 2, 3, 4)) + 1):
        # 2 % of lines name a product that is no longer in the catalog.
        product = rng.choice(phantoms) if rng.random() < 0.02 else rng.choice(products)
        quantity = rng.choice((1, 1, 1, 2, 4))
        lines.append(
            {"item_id": number * 10 + line_number, "sku": product.sku, "name": product.name,
             "qty_ordered": quantity, "price": float(product.price)}
        )
    total = sum(Decimal(str(line["price"])) * line["qty_ordered"] for line in lines) + Decimal("9.95")
    created = datetime(2026, 1, 1) + timedelta(minutes=151 * number)
    return {
        "entity_id": number,
        "increment_id": f"{100000000 + number}",
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
        "status": rng.choice(("complete", "complete", "complete", "processing", "canceled", "closed")),
        "customer_email": f"customer{rng.randint(1, 5000)}@example.com",
        "grand_total": float(total),
        "items": lines,
    }


# ---------------------------------------------------------------- recorded API pages


def _write_api_pages(
    directory: Path,
    rows: Sequence[VendorRow],
    page_size: int,
    item: Callable[[VendorRow], dict],
    page: Callable[[int, int, list[dict]], dict],
) -> None:
    chunks = split_pages(rows, page_size)
    total = len(chunks)
    pages = (page(number, total, [item(row) for row in chunk]) for number, chunk in enumerate(chunks, 1))
    write_json_pages(directory, pages)


def build_meyer_pages(directory: Path, settings: FeedSettings) -> None:
    def item(row: VendorRow) -> dict:
        return {"ItemNumber": row.part_number, "Description": row.product.name,
                "ManufacturerName": row.product.brand.name, "JobberPrice": as_number(row.price),
                "CustomerPrice": as_number(row.cost), "QtyAvailable": row.inventory}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"PageNumber": number, "TotalPages": total, "PageSize": 250, "Items": items}

    _write_api_pages(directory, vendor_rows(settings, "meyer"), 250, item, page)


def build_wheelpros_pages(directory: Path, settings: FeedSettings) -> None:
    def item(row: VendorRow) -> dict:
        return {"sku": row.part_number, "title": row.product.name,
                "prices": {"msrp": as_number(row.price), "dealer": as_number(row.cost)}}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"page": number, "pageSize": 1000, "totalPages": total, "results": items}

    _write_api_pages(directory, vendor_rows(settings, "wheelpros"), 1000, item, page)


def build_wheelpros_inventory_pages(directory: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "wheelpros", stream="wheelpros-inventory")
    add_quantity_defects(settings.rng("quantities:wheelpros"), rows)
    rng = settings.rng("wheelpros-inventory:warehouses")

    def item(row: VendorRow) -> dict:
        if not isinstance(row.inventory, int):
            return {"sku": row.part_number, "inventory": [{"warehouse": "CA", "quantity": row.inventory}]}
        west = rng.randint(0, row.inventory)
        return {"sku": row.part_number, "inventory": [
            {"warehouse": "CA", "quantity": west}, {"warehouse": "TX", "quantity": row.inventory - west}]}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"page": number, "pageSize": 1000, "totalPages": total, "results": items}

    _write_api_pages(directory, rows, 1000, item, page)


def build_tirediscounter_pages(directory: Path, settings: FeedSettings) -> None:
    def item(row: VendorRow) -> dict:
        return {"partNumber": row.part_number, "description": row.product.name,
                "price": as_number(row.price), "cost": as_number(row.cost), "stock": row.inventory}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"products": items, "pagination": {"page": number, "pages": total, "perPage": 100}}

    _write_api_pages(directory, vendor_rows(settings, "tirediscounter"), 100, item, page)


def _turn14_page(number: int, total: int, items: list[dict]) -> dict:
    links = {"self": f"/v1/items?page={number}"}
    if number < total:
        links["next"] = f"/v1/items?page={number + 1}"
    return {"data": items, "meta": {"total_pages": total}, "links": links}


def _turn14_item(row: VendorRow) -> dict:
    return {
        "id": str(row.product.index + 1),
        "type": "Item",
        "attributes": {
            "part_number": row.part_number,
            "mfr_part_number": row.product.mpn,
            "brand": row.product.brand.name,
            "product_name": row.product.name,
            "pricing": {"purchase_cost": as_number(row.cost), "map": as_number(row.price)},
            "inventory": {"total": row.inventory},
        },
    }


def build_turn14_pages(directory: Path, settings: FeedSettings) -> None:
    _write_api_pages(directory, vendor_rows(settings, "turn14"), 100, _turn14_item, _turn14_page)


def _daily_products(settings: FeedSettings, vendor: str, share: float) -> list[Product]:
    carried = [product for product in settings.universe() if vendor in product.codes]
    rng = settings.rng(f"daily-products:{vendor}")
    return sorted(rng.sample(carried, round(len(carried) * share)), key=lambda product: product.index)


def build_turn14_daily_pages(directory: Path, settings: FeedSettings) -> None:
    """Write the daily delta: one product in five, with prices 3 % above the full sync."""
    products = _daily_products(settings, "turn14", 0.2)
    rows = vendor_rows(settings, "turn14", stream="turn14-daily", products=products, price_factor=Decimal("1.03"))
    _write_api_pages(directory, rows, 100, _turn14_item, _turn14_page)


def build_premier_daily_pages(directory: Path, settings: FeedSettings) -> None:
    def item(row: VendorRow) -> dict:
        return {"itemNumber": row.part_number, "description": row.product.name,
                "cost": as_number(row.cost), "jobber": as_number(row.price), "inventory": {"total": row.inventory}}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"page": number, "pageCount": total, "items": items}

    _write_api_pages(directory, vendor_rows(settings, "premier", stream="premier-daily"), 100, item, page)


def build_keystone_api_pages(directory: Path, settings: FeedSettings) -> None:
    def item(row: VendorRow) -> dict:
        return {"vcpn": row.part_number, "description": row.product.name, "jobberPrice": as_number(row.price),
                "customerPrice": as_number(row.cost), "quantityAvailable": row.inventory}

    def page(number: int, total: int, items: list[dict]) -> dict:
        return {"pageNumber": number, "totalPages": total, "parts": items}

    _write_api_pages(directory, vendor_rows(settings, "keystone", stream="keystone-api"), 250, item, page)


# ---------------------------------------------------------------- MetalCloak HTML


def build_metalcloak_pages(directory: Path, settings: FeedSettings) -> None:
    rows = vendor_rows(settings, "metalcloak")
    rng = settings.rng("metalcloak-html")
    pages = split_pages(rows, METALCLOAK_CARDS_PER_PAGE)
    directory.mkdir(parents=True)
    for number, page in enumerate(pages, 1):
        cards = "\n".join(_metalcloak_card(rng, row) for row in page)
        next_link = f'<a class="next" href="/collections/all?page={number + 1}">Next</a>' if number < len(pages) else ""
        document = (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>All Products - Page {number} - MetalCloak</title></head>\n"
            f'<body>\n<div class="collection">\n{cards}\n</div>\n'
            f'<nav class="pagination">{next_link}</nav>\n</body></html>\n'
        )
        (directory / f"page-{number:03d}.html").write_text(document, encoding="utf-8")


def _metalcloak_card(rng: random.Random, row: VendorRow) -> str:
    slug = row.product.name.lower().replace(" ", "-")
    link = f'<a href="/products/{html.escape(slug)}">{html.escape(row.product.name)}</a>'
    title = f'<h2 class="product-title">{link}</h2>'
    if rng.random() < 0.02:
        title = ""  # a card that lost its title in the saved page
    sku = ""
    if isinstance(row.part_number, str) and row.part_number.strip():
        sku = f'<span class="sku">SKU: {html.escape(row.part_number)}</span>'
    return (
        f'<div class="product-card" data-product-id="{row.product.index + 1}">'
        f"{title}{sku}{_metalcloak_price(rng, row.price)}</div>"
    )


def _metalcloak_price(rng: random.Random, price: object) -> str:
    if isinstance(price, Decimal):
        if rng.random() < 0.05:
            regular = price * Decimal("1.15")
            return f'<span class="price"><del>${regular:,.2f}</del> <ins>${price:,.2f}</ins></span>'
        return f'<span class="price">${price:,.2f}</span>'
    if isinstance(price, str) and price.startswith("$"):
        return f'<span class="price">{html.escape(price)}</span>'
    return '<span class="price">Call for price</span>'
