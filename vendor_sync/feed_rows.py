"""Vendor feed rows drawn from the product universe, with the defects of real feeds.

Each feed gets its own random stream seeded from the feed name, so feeds can be
generated in any order and in any process and still come out identical. Every
defect kind is applied to at least one row, so even a small feed contains each.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from .universe import SEED, Product, build_universe, phantom_products, product_count

CENT = Decimal("0.01")
BAD_PRICES: tuple[object, ...] = ("N/A", "", None, "Call", "TBD", "n/a")
BAD_QUANTITIES: tuple[object, ...] = ("N/A", "", "-", "call", None)
MISSING_PART_NUMBERS: tuple[object, ...] = ("", None, "   ")


@dataclass(frozen=True)
class FeedSettings:
    """Seed and scale that every feed of one feeds directory is generated with."""

    seed: int = SEED
    scale: float = 1.0

    @property
    def product_count(self) -> int:
        return product_count(self.scale)

    def universe(self) -> tuple[Product, ...]:
        return build_universe(self.product_count, self.seed)

    def rng(self, stream: str) -> random.Random:
        """Return a random generator of its own for ``stream``, independent of call order."""
        return random.Random(f"{self.seed}:{stream}")


@dataclass(frozen=True)
class DefectRates:
    """Share of rows that get each defect. Each defect hits at least one row."""

    missing_part_number: float = 0.012
    bad_price: float = 0.015
    duplicate: float = 0.015
    unmatched: float = 0.015
    lower_case: float = 0.05
    stray_whitespace: float = 0.04
    dollar_text: float = 0.08


@dataclass(frozen=True)
class VendorRow:
    """One feed row: the part number and prices as the feed writes them, and its product."""

    part_number: object
    price: object  # Decimal when clean, else defective text or None
    cost: object
    inventory: object
    product: Product


def vendor_rows(
    settings: FeedSettings,
    vendor: str,
    *,
    stream: str | None = None,
    products: Sequence[Product] | None = None,
    price_factor: Decimal = Decimal(1),
    rates: DefectRates = DefectRates(),
) -> list[VendorRow]:
    """Build the defective rows of one vendor feed.

    ``products`` defaults to every product that the vendor carries. ``stream``
    names the random stream and defaults to the vendor, so two feeds of one
    vendor (a full and a daily file) pass different streams.
    """
    rng = settings.rng(f"rows:{stream or vendor}")
    if products is None:
        products = [product for product in settings.universe() if vendor in product.codes]
    markup = Decimal(f"{rng.uniform(0.95, 1.05):.3f}") * price_factor
    cost_ratio = Decimal(f"{rng.uniform(0.55, 0.75):.3f}")
    rows = [_clean_row(rng, product, vendor, markup, cost_ratio) for product in products]

    phantom_count = _defect_count(len(rows), rates.unmatched)
    start = settings.product_count + 1000 * (1 + sum(map(ord, vendor)) % 50)
    for phantom in phantom_products(settings.seed, start, phantom_count):
        rows.insert(rng.randint(0, len(rows)), _clean_row(rng, phantom, vendor, markup, cost_ratio))

    _apply_defects(rng, rows, rates)
    return rows


def _clean_row(rng: random.Random, product: Product, vendor: str, markup: Decimal, cost_ratio: Decimal) -> VendorRow:
    price = (product.price * markup).quantize(CENT, rounding=ROUND_HALF_UP)
    cost = (price * cost_ratio).quantize(CENT, rounding=ROUND_HALF_UP)
    inventory = 0 if rng.random() < 0.15 else rng.randint(1, 150)
    return VendorRow(product.code(vendor), price, cost, inventory, product)


def _defect_count(size: int, rate: float) -> int:
    if size == 0:
        return 0
    return min(size, max(1, round(size * rate)))


def _pick(rng: random.Random, rows: list[VendorRow], rate: float) -> list[int]:
    return sorted(rng.sample(range(len(rows)), _defect_count(len(rows), rate)))


def _apply_defects(rng: random.Random, rows: list[VendorRow], rates: DefectRates) -> None:
    for i in _pick(rng, rows, rates.lower_case):
        rows[i] = replace(rows[i], part_number=str(rows[i].part_number).lower())
    for i in _pick(rng, rows, rates.stray_whitespace):
        rows[i] = replace(rows[i], part_number=pad_with_whitespace(rng, str(rows[i].part_number)))
    for i in _pick(rng, rows, rates.dollar_text):
        if isinstance(rows[i].price, Decimal):
            rows[i] = replace(rows[i], price=f"${rows[i].price:,.2f}")
    for i in _pick(rng, rows, rates.bad_price):
        rows[i] = replace(rows[i], price=rng.choice(BAD_PRICES))
    for i in _pick(rng, rows, rates.missing_part_number):
        rows[i] = replace(rows[i], part_number=rng.choice(MISSING_PART_NUMBERS))

    # Insert copies after their originals, highest index first so lower indexes stay valid.
    for i in reversed(_pick(rng, rows, rates.duplicate)):
        copy = rows[i]
        if isinstance(copy.part_number, str) and copy.part_number.strip() and rng.random() < 0.5:
            copy = replace(copy, part_number=copy.part_number.strip().lower())
        rows.insert(rng.randint(i + 1, len(rows)), copy)


def pad_with_whitespace(rng: random.Random, text: str) -> str:
    return rng.choice((" ", "  ", "", "\u00a0")) + text + rng.choice((" ", "   ", ""))


def add_quantity_defects(rng: random.Random, rows: list[VendorRow], rate: float = 0.02) -> None:
    """Replace some inventory values with placeholders and capped counts such as ">50"."""
    for i in _pick(rng, rows, rate):
        rows[i] = replace(rows[i], inventory=rng.choice(BAD_QUANTITIES))
    for i in _pick(rng, rows, rate):
        if isinstance(rows[i].inventory, int):
            rows[i] = replace(rows[i], inventory=rng.choice((">50", "50+", "1,200")))


def as_text(value: object) -> object:
    """Render a Decimal price as "12.50" for text formats. Other values pass through."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def as_number(value: object) -> object:
    """Render a Decimal price as a float for JSON and Excel. Other values pass through."""
    if isinstance(value, Decimal):
        return float(value)
    return value
