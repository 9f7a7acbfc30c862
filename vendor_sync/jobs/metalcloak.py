"""MetalCloak jobs: scrape saved HTML pages into a staging table, then process the stage.

The scrape keeps the text as the pages show it. Cleaning and matching happen
in metalcloak-process, which uses the same engine as the other vendor syncs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..catalog import open_catalog, write_transaction
from ..context import JobContext
from ..errors import DependencyError
from ..parsing import collapse_whitespace
from ..readers import batched
from ..report import SyncStats, utc_timestamp
from ..sync import CHUNK_SIZE, Chunk, FeedRecord, VendorSyncSpec, run_vendor_sync
from .job import Job

MALFORMED_CARD = "malformed card"
SKU_LABEL = "SKU:"


@dataclass
class ScrapedCard:
    """The text of one product card. Absent elements stay None."""

    name: str | None = None
    url: str | None = None
    part_number: str | None = None
    price_text: str | None = None
    _parts: dict[str, list[str]] = field(default_factory=dict, repr=False)


class ProductCardParser(HTMLParser):
    """Collect the product cards (div.product-card) of a saved collection page.

    Inside a card, h2.product-title a gives the name and URL, span.sku the part
    number and span.price the price. For a sale price the struck-through regular
    price in <del> is ignored, so the price text is the price a buyer pays.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[ScrapedCard] = []
        self._card: ScrapedCard | None = None
        self._div_depth = 0
        self._in_title = False
        self._in_del = False
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._card is None:
            if tag == "div" and "product-card" in classes:
                self._card = ScrapedCard()
                self._div_depth = 1
            return
        if tag == "div":
            self._div_depth += 1
        elif tag == "h2" and "product-title" in classes:
            self._in_title = True
        elif tag == "a" and self._in_title:
            self._card.url = dict(attrs).get("href")
            self._field = "name"
        elif tag == "span" and "sku" in classes:
            self._field = "part_number"
        elif tag == "span" and "price" in classes:
            self._field = "price_text"
        elif tag == "del":
            self._in_del = True

    def handle_endtag(self, tag: str) -> None:
        if self._card is None:
            return
        if tag == "div":
            self._div_depth -= 1
            if self._div_depth == 0:
                self._finish_card()
        elif tag == "del":
            self._in_del = False
        elif tag == "h2":
            self._in_title = False
        elif tag in ("a", "span"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._card is not None and self._field is not None and not self._in_del:
            self._card._parts.setdefault(self._field, []).append(data)

    def _finish_card(self) -> None:
        card = self._card
        for name, parts in card._parts.items():
            setattr(card, name, collapse_whitespace("".join(parts)) or None)
        if card.part_number is not None and card.part_number.upper().startswith(SKU_LABEL):
            card.part_number = card.part_number[len(SKU_LABEL):].strip() or None
        self.cards.append(card)
        self._card = None
        self._field = None
        self._in_title = False


def parse_cards(path: Path) -> list[ScrapedCard]:
    parser = ProductCardParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.cards


# source_page, position -> part_number, name, price_text, url
StageKey = tuple[str, int]
StageValues = tuple[str | None, str, str | None, str | None]


def _load_stage(connection: sqlite3.Connection) -> dict[StageKey, StageValues]:
    query = "SELECT source_page, position, part_number, name, price_text, url FROM metalcloak_stage"
    return {(row[0], row[1]): tuple(row[2:]) for row in connection.execute(query)}


def run_scrape(context: JobContext) -> SyncStats:
    """Stage every product card of the saved pages, keyed by page name and position.

    Cards without a title are skipped as malformed. Staged rows of cards that are
    no longer on the pages are deleted, so the stage matches the latest scrape.
    """
    connection = open_catalog(context.home.catalog)
    pages = sorted(context.feed("metalcloak-pages").glob("page-*.html"))
    existing = _load_stage(connection)
    stats = SyncStats((MALFORMED_CARD,))
    scraped: set[StageKey] = set()
    scraped_at = utc_timestamp()
    for number, page in enumerate(pages, start=1):
        writes = [(*key, *values, scraped_at) for key, values in _changed_cards(page, existing, scraped, stats)]
        _write_stage(connection, writes)
        context.progress.line(f"page {number}/{len(pages)} {page.name}, {stats.read} cards")
        context.checkpoint()
    _delete_stale(connection, set(existing) - scraped)
    connection.close()
    return stats


def _changed_cards(
    page: Path, existing: dict[StageKey, StageValues], scraped: set[StageKey], stats: SyncStats
) -> list[tuple[StageKey, StageValues]]:
    """Return the new and changed cards of a page, adding every staged key to ``scraped``."""
    changed = []
    for position, card in enumerate(parse_cards(page), start=1):
        stats.read += 1
        if card.name is None:
            stats.skip(MALFORMED_CARD)
            continue
        key = (page.name, position)
        scraped.add(key)
        values = (card.part_number, card.name, card.price_text, card.url)
        old = existing.get(key)
        if old == values:
            stats.unchanged += 1
            continue
        if old is None:
            stats.inserted += 1
        else:
            stats.updated += 1
        changed.append((key, values))
    return changed


def _write_stage(connection: sqlite3.Connection, writes: list[tuple]) -> None:
    if not writes:
        return
    with write_transaction(connection):
        connection.executemany(
            "INSERT INTO metalcloak_stage (source_page, position, part_number, name, price_text, url, scraped_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_page, position) DO UPDATE SET "
            "part_number = excluded.part_number, name = excluded.name, price_text = excluded.price_text, "
            "url = excluded.url, scraped_at = excluded.scraped_at",
            writes,
        )


def _delete_stale(connection: sqlite3.Connection, keys: set[StageKey]) -> None:
    if not keys:
        return
    with write_transaction(connection):
        connection.executemany("DELETE FROM metalcloak_stage WHERE source_page = ? AND position = ?", sorted(keys))


def _stage_chunks(connection: sqlite3.Connection) -> Iterator[Chunk]:
    query = "SELECT part_number, price_text FROM metalcloak_stage ORDER BY source_page, position"
    rows = connection.execute(query).fetchall()
    for batch in batched(rows, CHUNK_SIZE):
        yield Chunk("metalcloak_stage", [FeedRecord(part_number, price_text) for part_number, price_text in batch])


def run_process(context: JobContext) -> SyncStats:
    """Match the staged MetalCloak rows to products and upsert them into vendor_product."""
    connection = open_catalog(context.home.catalog)
    if not connection.execute("SELECT EXISTS (SELECT 1 FROM metalcloak_stage)").fetchone()[0]:
        raise DependencyError(
            "the metalcloak_stage table is empty; run the scrape first (python -m vendor_sync metalcloak-scrape)"
        )
    try:
        return run_vendor_sync(context, VendorSyncSpec("metalcloak", "metalcloak_code"), _stage_chunks(connection))
    finally:
        connection.close()


JOBS = [
    Job("metalcloak-scrape", "Parse saved MetalCloak pages into metalcloak_stage", run_scrape),
    Job("metalcloak-process", "Load metalcloak_stage rows (run the scrape first)", run_process),
]
