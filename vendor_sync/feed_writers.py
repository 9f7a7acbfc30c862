"""Byte-reproducible writers for the feed formats: JSON pages, delimited text and .xlsx.

The same input always gives the same bytes. For .xlsx this takes a rewrite of
the archive that openpyxl saves, because openpyxl stamps the save time into
docProps/core.xml and into every zip entry.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Timestamp written into .xlsx archives and document properties.
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
FIXED_DOCUMENT_TIME = "2026-01-01T00:00:00Z"

_CORE_TIMESTAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def page_file_name(number: int) -> str:
    return f"page-{number:04d}.json"


def split_pages(items: Sequence[object], page_size: int) -> list[Sequence[object]]:
    """Split items into pages of ``page_size``. An empty list still gives one empty page."""
    if not items:
        return [items]
    return [items[start : start + page_size] for start in range(0, len(items), page_size)]


def write_json_pages(directory: Path, pages: Iterable[dict]) -> int:
    """Write each page as page-0001.json, page-0002.json, ... and return the page count."""
    directory.mkdir(parents=True)
    count = 0
    for number, page in enumerate(pages, start=1):
        text = json.dumps(page, ensure_ascii=False, separators=(",", ":"))
        (directory / page_file_name(number)).write_text(text + "\n", encoding="utf-8")
        count += 1
    return count


def write_delimited(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    line_terminator: str = "\r\n",
    quote_all: bool = False,
) -> None:
    """Write a delimited text file. None becomes an empty field."""
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator=line_terminator, quoting=quoting)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])


@dataclass
class SheetContent:
    """One worksheet: rows above the header (titles, notes), the header and the data rows."""

    title: str
    header: Sequence[str] | None
    rows: Sequence[Sequence[object]]
    leading_rows: Sequence[Sequence[object]] = field(default_factory=list)


def write_xlsx(path: Path, sheets: Sequence[SheetContent]) -> None:
    """Write a workbook with openpyxl in write-only mode, then fix its timestamps."""
    import openpyxl  # imported here because only the Excel feeds need it

    workbook = openpyxl.Workbook(write_only=True)
    for sheet in sheets:
        worksheet = workbook.create_sheet(sheet.title)
        for row in sheet.leading_rows:
            worksheet.append(list(row))
        if sheet.header is not None:
            worksheet.append(list(sheet.header))
        for row in sheet.rows:
            worksheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(_fix_xlsx_timestamps(buffer.getvalue()))


def _fix_xlsx_timestamps(archive_bytes: bytes) -> bytes:
    """Rewrite an .xlsx archive with fixed entry times and fixed document properties."""
    source = zipfile.ZipFile(io.BytesIO(archive_bytes))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename == "docProps/core.xml":
                data = _CORE_TIMESTAMP.sub(rb"\g<1>" + FIXED_DOCUMENT_TIME.encode() + rb"\g<2>", data)
            info = zipfile.ZipInfo(entry.filename, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)
    return output.getvalue()
