"""Cleaning of the messy values found in vendor feeds: codes, part numbers, prices, quantities.

Every function returns None for a value that cannot be cleaned, so the caller can
skip the row and count the reason.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")

# Text that vendors put in place of a missing value.
PLACEHOLDERS = frozenset({"", "-", "--", "N/A", "NA", "NULL", "NONE", "TBD", "CALL", "#N/A"})

_WHITESPACE = re.compile(r"\s+")
_CURRENCY = re.compile(r"^(?:USD|US\$|\$)\s*|\s*(?:USD)$", re.IGNORECASE)
_PRICE_TEXT = re.compile(r"^\d+(?:\.\d+)?$")
_QUANTITY_TEXT = re.compile(r"^(?:>\s*)?(\d+)\s*\+?$")


def _text(value: object) -> str:
    """Convert a cell value to text, turning non-breaking spaces into plain spaces."""
    return str(value).replace("\u00a0", " ").strip()


def normalize_code(value: object) -> str | None:
    """Return a vendor code trimmed and upper-cased, or None when it is empty or a placeholder.

    Inner whitespace is kept because vendors treat "ABC 123" and "ABC123" as
    different codes.
    """
    if value is None:
        return None
    code = _text(value).upper()
    if code in PLACEHOLDERS:
        return None
    return code


def clean_part_number(value: object, float_decimals: int | None = None) -> str | None:
    """Return a normalized vendor part number from a feed cell, or None when it is missing.

    Excel stores part numbers such as "17402.10" as the number 17402.1, and
    "10005.00" as the whole number 10005, which openpyxl reads as an int. When the
    vendor's part numbers have a fixed number of decimals, ``float_decimals``
    restores the lost trailing zeros. Other numbers are written without ".0".
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float_decimals is not None:
        return f"{value:.{float_decimals}f}"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return normalize_code(value)


def parse_price(value: object) -> Decimal | None:
    """Parse a price such as 1299, "1299.5", "$1,299.00" or "USD 12.50" into a Decimal in cents.

    Returns None for empty values, placeholders such as "N/A", text that is not a
    number, and prices that are zero or negative.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        price = Decimal(str(value))
    else:
        text = _CURRENCY.sub("", _text(value)).replace(",", "").replace(" ", "")
        if not _PRICE_TEXT.match(text):
            return None
        price = Decimal(text)
    try:
        price = price.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    if not price.is_finite() or price <= 0:
        return None
    return price


def parse_quantity(value: object) -> int | None:
    """Parse a stock quantity such as 12, 12.0, "1,200", ">50" or "50+", or return None if invalid.

    Vendors cap large stock counts as ">50" or "50+", which parse as 50.
    Negative and fractional quantities are invalid.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        if value.is_integer() and value >= 0:
            return int(value)
        return None
    match = _QUANTITY_TEXT.match(_text(value).replace(",", ""))
    if match is None:
        return None
    return int(match.group(1))


def price_to_float(price: Decimal | None) -> float | None:
    """Convert a parsed price to the float stored in a SQLite REAL column."""
    if price is None:
        return None
    return float(price)


def collapse_whitespace(value: object) -> str:
    """Return text with runs of whitespace replaced by one space, for names and titles."""
    if value is None:
        return ""
    return _WHITESPACE.sub(" ", _text(value))
