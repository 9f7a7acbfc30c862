"""Readers of the feed formats: Excel workbooks, delimited text and recorded JSON pages.

Readers yield rows as dicts keyed by field names that the caller chooses, so the
jobs do not depend on each vendor's column names or order.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from .errors import FeedError
from .feed_writers import page_file_name
from .pacing import RATE_LIMITS, Pacer

log = logging.getLogger(__name__)

T = TypeVar("T")

# Number of rows at the top of a sheet that are searched for the header row.
HEADER_SEARCH_ROWS = 10

# Maps a field name to the column header that contains it, compared case-insensitively.
ColumnMap = Mapping[str, str]


@dataclass(frozen=True)
class SheetRow:
    sheet: str
    values: dict[str, object]


def _header_key(value: object) -> str:
    return " ".join(str(value).split()).casefold() if value is not None else ""


def _column_positions(row: Sequence[object], columns: ColumnMap) -> dict[str, int] | None:
    """Return each field's column index if ``row`` is the header row, else None."""
    positions = {_header_key(cell): i for i, cell in enumerate(row) if cell is not None}
    found = {}
    for field_name, header in columns.items():
        position = positions.get(_header_key(header))
        if position is None:
            return None
        found[field_name] = position
    return found


def read_workbook(path: Path, columns: ColumnMap) -> Iterator[SheetRow]:
    """Yield the data rows of every sheet that has a header row with all ``columns``.

    The header may sit below title rows, so the first HEADER_SEARCH_ROWS rows are
    searched for it. Sheets without it (notes, cover sheets) are skipped, and so
    are empty rows. Raises FeedError when no sheet has the header.
    """
    import openpyxl  # imported here because only the Excel jobs need it

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheets_read = 0
    try:
        for worksheet in workbook.worksheets:
            rows = worksheet.iter_rows(values_only=True)
            positions = None
            for row in islice(rows, HEADER_SEARCH_ROWS):
                positions = _column_positions(row, columns)
                if positions is not None:
                    break
            if positions is None:
                headers = list(columns.values())
                log.debug("skipped sheet %r of %s without a header row %s", worksheet.title, path, headers)
                continue
            sheets_read += 1
            for row in rows:
                if all(cell is None or cell == "" for cell in row):
                    continue
                values = {name: row[i] if i < len(row) else None for name, i in positions.items()}
                yield SheetRow(worksheet.title, values)
    finally:
        workbook.close()
    if sheets_read == 0:
        raise FeedError(f"no sheet in {path} has a header row with the columns {list(columns.values())}")


def read_delimited(
    path: Path,
    columns: ColumnMap,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
) -> Iterator[dict[str, str]]:
    """Yield the rows of a delimited text file with a header line, skipping blank lines."""
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        positions = _column_positions(header or [], columns)
        if positions is None:
            raise FeedError(f"the header of {path} lacks one of the columns {list(columns.values())}")
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            yield {name: row[i] if i < len(row) else None for name, i in positions.items()}


def read_recorded_pages(
    directory: Path,
    api: str,
    page_count: Callable[[dict], int],
) -> Iterator[tuple[int, int, dict]]:
    """Yield (number, total, page) for each recorded page, paced by RATE_LIMITS[api].

    ``page_count`` reads the total number of pages from the first page, as a
    client reads it from the first response.
    """
    pacer = Pacer(RATE_LIMITS[api])
    pacer.wait()
    first = _load_page(directory, 1)
    total = page_count(first)
    yield 1, total, first
    for number in range(2, total + 1):
        pacer.wait()
        yield number, total, _load_page(directory, number)


def _load_page(directory: Path, number: int) -> dict:
    path = directory / page_file_name(number)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FeedError(f"recorded page {path} is missing. Delete {directory} to regenerate the feed.") from error
    except ValueError as error:
        message = f"recorded page {path} is invalid JSON ({error}). Delete {directory} to regenerate it."
        raise FeedError(message) from error


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
