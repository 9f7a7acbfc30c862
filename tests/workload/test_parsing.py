"""Cleaning of messy feed values: prices, quantities, codes and part numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vendor_sync.parsing import clean_part_number, normalize_code, parse_price, parse_quantity


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,299.00", Decimal("1299.00")),
        ("1299", Decimal("1299.00")),
        (" 12.5 ", Decimal("12.50")),
        ("USD 12.50", Decimal("12.50")),
        ("$ 7.99", Decimal("7.99")),
        (1299, Decimal("1299.00")),
        (12.345, Decimal("12.35")),
        (Decimal("3.1"), Decimal("3.10")),
    ],
)
def test_parse_price_valid(raw: object, expected: Decimal) -> None:
    assert parse_price(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["N/A", "n/a", "", "   ", None, "Call", "TBD", "-", "12,99 EUR", "1.2.3", 0, "0.00", -5, "-5.00",
     float("nan"), float("inf"), True],
)
def test_parse_price_invalid(raw: object) -> None:
    assert parse_price(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(12, 12), (0, 0), (12.0, 12), ("7", 7), (" 7 ", 7), ("1,200", 1200), (">50", 50), ("50+", 50)],
)
def test_parse_quantity_valid(raw: object, expected: int) -> None:
    assert parse_quantity(raw) == expected


@pytest.mark.parametrize("raw", ["N/A", "", "-", "call", None, -1, 2.5, "-3", "lots", False])
def test_parse_quantity_invalid(raw: object) -> None:
    assert parse_quantity(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  rdg42-00123 ", "RDG42-00123"),
        ("\u00a0Td-000123", "TD-000123"),
        ("ABC 123", "ABC 123"),
        ("abc123\t", "ABC123"),
        ("", None),
        ("   ", None),
        ("N/A", None),
        (None, None),
    ],
)
def test_normalize_code(raw: object, expected: str | None) -> None:
    assert normalize_code(raw) == expected


def test_part_number_float_restores_decimals() -> None:
    # Excel stores the typed-in Omix part number 17402.10 as the number 17402.1.
    assert clean_part_number(17402.1, float_decimals=2) == "17402.10"
    assert clean_part_number(17402.09, float_decimals=2) == "17402.09"


def test_part_number_integer_restores_decimals() -> None:
    # Excel stores a typed-in 10005.00 as the whole number 10005, which openpyxl reads as an int.
    assert clean_part_number(10005, float_decimals=2) == "10005.00"
    assert clean_part_number(10005.0, float_decimals=2) == "10005.00"


def test_part_number_numbers_without_decimals() -> None:
    assert clean_part_number(1030000123) == "1030000123"
    assert clean_part_number(12345.0) == "12345"
    assert clean_part_number(" mc00012 ") == "MC00012"
    assert clean_part_number(None) is None
    assert clean_part_number("  ") is None
