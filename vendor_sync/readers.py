"""Readers of the feed formats: Excel workbooks, delimited text and recorded JSON pages.

Readers yield rows as dicts keyed by field names that the caller chooses, so the
jobs do not depend on each vendor's column names or order.
"""

from __future__ import annotations

import csv
import json
import logging
import zipfile
import zlib
from xml.etree.ElementTree import ParseError
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

# Errors that openpyxl 3.1 raises for a damaged .xlsx file: a truncated or non-zip
# archive, a missing or damaged member, or invalid XML in a member.
_WORKBOOK_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile, zlib.error, EOFError, KeyError, OSError, ParseError, ValueError
)

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
    are empty rows. Raises FeedError when no sheet has the header, and when the
    file or a sheet is damaged (truncated, not a workbook, invalid XML).
    """
    import openpyxl  # imported here because only the Excel jobs need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (*_WORKBOOK_ERRORS, InvalidFileException) as error:
        raise FeedError(f"{path} is not a readable Excel workbook ({_describe_error(error)})") from error
    sheets_read = 0
    try:
        for worksheet in workbook.worksheets:
            for row in _sheet_rows(path, worksheet, columns):
                if row is None:
                    sheets_read += 1
                else:
                    yield row
    finally:
        workbook.close()
    if sheets_read == 0:
        raise FeedError(f"no sheet in {path} has a header row with the columns {list(columns.values())}")


def _sheet_rows(path: Path, worksheet, columns: ColumnMap) -> Iterator[SheetRow | None]:
    """Yield None once the sheet's header row is found, then its data rows.

    In read-only mode openpyxl reads rows while they are iterated, so errors
    are caught here too. NOTE: every truncated sheet tried so far failed
    already in load_workbook, so this path is not covered by a test.
    """
    row_number = 0
    try:
        rows = worksheet.iter_rows(values_only=True)
        positions = None
        for row in islice(rows, HEADER_SEARCH_ROWS):
            row_number += 1
            positions = _column_positions(row, columns)
            if positions is not None:
                break
        if positions is None:
            headers = list(columns.values())
            log.debug("skipped sheet %r of %s without a header row %s", worksheet.title, path, headers)
            return
        yield None
        for row in rows:
            row_number += 1
            if all(cell is None or cell == "" for cell in row):
                continue
            values = {name: row[i] if i < len(row) else None for name, i in positions.items()}
            yield SheetRow(worksheet.title, values)
    except _WORKBOOK_ERRORS as error:
        raise FeedError(
            f"sheet {worksheet.title!r} of {path} is damaged after row {row_number} ({_describe_error(error)})"
        ) from error


def _describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def read_delimited(
    path: Path,
    columns: ColumnMap,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
) -> Iterator[dict[str, str]]:
    """Yield the rows of a delimited text file with a header line, skipping blank lines.

    Raises FeedError, with the line number, for text that is not valid in
    ``encoding`` and for invalid quoting. The reader runs in strict mode, so a
    quote that never closes fails at the end of the file instead of turning
    every later line into one field.
    """
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        rows = _delimited_records(path, reader, encoding)
        header = next(rows, None)
        positions = _column_positions(header or [], columns)
        if positions is None:
            raise FeedError(f"the header of {path} lacks one of the columns {list(columns.values())}")
        for row in rows:
            if not any(field.strip() for field in row):
                continue
            yield {name: row[i] if i < len(row) else None for name, i in positions.items()}


def _delimited_records(path: Path, reader, encoding: str) -> Iterator[list[str]]:
    """Yield the records of a csv reader, turning its errors into FeedError with the line number."""
    while True:
        first_line = reader.line_num + 1  # a quoted field may span several lines
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FeedError(f"line {first_line} of {path} is not valid delimited text ({error})") from error
        except UnicodeDecodeError as error:
            line = _undecodable_line(path, encoding)
            raise FeedError(f"line {line} of {path} is not valid {encoding} text ({error.reason})") from error
        yield record


def _undecodable_line(path: Path, encoding: str) -> int | str:
    """Return the number of the first line of ``path`` that ``encoding`` cannot decode."""
    content = path.read_bytes()
    try:
        content.decode(encoding)
    except UnicodeDecodeError as error:
        return content.count(b"\n", 0, error.start) + 1
    return "unknown"  # the file changed since it was read


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
        page = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FeedError(f"recorded page {path} is missing. Delete {directory} to regenerate the feed.") from error
    except ValueError as error:
        message = f"recorded page {path} is invalid JSON ({error}). Delete {directory} to regenerate it."
        raise FeedError(message) from error
    if not isinstance(page, dict):
        raise FeedError(f"recorded page {path} is not a JSON object. Delete {directory} to regenerate the feed.")
    return page


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
