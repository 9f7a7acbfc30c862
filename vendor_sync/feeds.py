"""Registry of the generated feeds, and generation on first use.

A job calls ``ensure_feed`` before it reads a feed. The first caller generates
the feed under an fcntl.flock of its own, so two processes never generate the
same feed at once. The builder writes to a temporary name in the same directory
and the result is renamed into place, so a reader never sees a half-written feed.

Generation is deterministic: the same seed, scale and GENERATOR_VERSION give
byte-identical feeds. feeds/GENERATOR.json records these settings, and a feeds
directory made with other settings is rejected instead of being mixed with new feeds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import feed_files, feed_pages
from .catalog import file_lock
from .errors import FeedError
from .feed_rows import FeedSettings
from .paths import Home
from .universe import SEED

log = logging.getLogger(__name__)

SCALE_ENV = "VENDOR_SYNC_FEED_SCALE"

# Bump when a change to the builders changes feed content, so old feeds are rejected.
GENERATOR_VERSION = 1

STAMP_NAME = "GENERATOR.json"
LOCK_DIRECTORY = ".locks"


@dataclass(frozen=True)
class Feed:
    name: str
    path: str  # relative to the feeds directory
    build: Callable[[Path, FeedSettings], None]
    description: str


FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        Feed("magento-products", "magento/products", feed_pages.build_magento_products, "Magento product export pages"),
        Feed("magento-orders", "magento/orders", feed_pages.build_magento_orders, "Magento order pages"),
        Feed("quadratec-prices", "quadratec/quadratec_dealer_pricing.xlsx", feed_files.build_quadratec_prices,
             "Quadratec dealer price list"),
        Feed("quadratec-inventory", "quadratec/quadratec_inventory.csv", feed_files.build_quadratec_inventory,
             "Quadratec stock file"),
        Feed("omix-prices", "omix/omix_ada_price_list.xlsx", feed_files.build_omix_prices, "Omix-ADA price list"),
        Feed("omix-inventory", "omix/omix_inventory.xlsx", feed_files.build_omix_inventory, "Omix-ADA stock file"),
        Feed("aev-prices", "aev/aev_dealer_price_list.xlsx", feed_files.build_aev_prices, "AEV dealer prices"),
        Feed("ctp-prices", "ctp/ctp_price_file.xlsx", feed_files.build_ctp_prices, "CTP price file"),
        Feed("keyparts-prices", "keyparts/keyparts_pricing.xlsx", feed_files.build_keyparts_prices, "KeyParts pricing"),
        Feed("alpine-prices", "alpine/alpine_price_list.xlsx", feed_files.build_alpine_prices, "Alpine price list"),
        Feed("roughcountry-prices", "roughcountry/rough_country_dealer.csv", feed_files.build_roughcountry_prices,
             "Rough Country dealer CSV"),
        Feed("tdot-prices", "tdot/tdot_pricelist.csv", feed_files.build_tdot_prices, "TDot semicolon CSV"),
        Feed("lowriders-prices", "lowriders/lowriders_stock.txt", feed_files.build_lowriders_prices,
             "Lowriders tab-delimited file"),
        Feed("keystone-ftp-v1", "keystone/ftp_v1/Inventory.csv", feed_files.build_keystone_ftp_v1,
             "Keystone FTP drop, first format"),
        Feed("keystone-ftp-v2", "keystone/ftp_v2/KAI_INVENTORY.txt", feed_files.build_keystone_ftp_v2,
             "Keystone FTP drop, current format"),
        Feed("keystone-api", "keystone/api", feed_pages.build_keystone_api_pages, "Keystone API pages"),
        Feed("meyer-api", "meyer/items", feed_pages.build_meyer_pages, "Meyer API pages"),
        Feed("wheelpros-api", "wheelpros/pricing", feed_pages.build_wheelpros_pages, "Wheel Pros pricing pages"),
        Feed("wheelpros-inventory-api", "wheelpros/inventory", feed_pages.build_wheelpros_inventory_pages,
             "Wheel Pros inventory pages"),
        Feed("tirediscounter-api", "tirediscounter/products", feed_pages.build_tirediscounter_pages,
             "Tire Discounter API pages"),
        Feed("turn14-api", "turn14/items", feed_pages.build_turn14_pages, "Turn 14 item pages"),
        Feed("turn14-daily-api", "turn14/daily", feed_pages.build_turn14_daily_pages, "Turn 14 daily delta pages"),
        Feed("premier-daily-api", "premier/daily", feed_pages.build_premier_daily_pages, "Premier daily pages"),
        Feed("metalcloak-pages", "metalcloak/pages", feed_pages.build_metalcloak_pages, "saved MetalCloak HTML pages"),
    )
}


def settings_from_environment(environ: Mapping[str, str] | None = None) -> FeedSettings:
    """Read the feed scale from VENDOR_SYNC_FEED_SCALE (a positive number, default 1.0)."""
    if environ is None:
        environ = os.environ
    text = environ.get(SCALE_ENV, "").strip()
    if not text:
        return FeedSettings(seed=SEED, scale=1.0)
    try:
        scale = float(text)
    except ValueError:
        scale = 0.0
    if not 0 < scale <= 100:
        raise FeedError(f"{SCALE_ENV}={text!r} is invalid. Expected a number greater than 0 and at most 100.")
    return FeedSettings(seed=SEED, scale=scale)


def ensure_feed(
    home: Home,
    name: str,
    settings: FeedSettings | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Return the path of a feed, generating it first if it does not exist yet.

    ``report`` receives one message when this call generated the feed.
    """
    if settings is None:
        settings = settings_from_environment()
    feed = FEEDS[name]
    target = home.feeds / feed.path
    _check_stamp(home, settings)
    if target.exists():
        return target
    with file_lock(home.feeds / LOCK_DIRECTORY / f"{name}.lock"):
        if not target.exists():
            seconds = _generate(feed, target, settings)
            if report is not None:
                report(f"generated feed {name} ({feed.description}) in {seconds:.2f} s")
    return target


def feed_exists(home: Home, name: str) -> bool:
    return (home.feeds / FEEDS[name].path).exists()


def _generate(feed: Feed, target: Path, settings: FeedSettings) -> float:
    """Build a feed under a temporary name, rename it into place and return the seconds taken."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # The caller holds the feed's lock, so any temporary file left here is from a
    # process that was killed while generating.
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        _remove(leftover)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    started = time.monotonic()
    try:
        feed.build(temporary, settings)
        os.rename(temporary, target)
    except BaseException:
        _remove(temporary)
        raise
    seconds = time.monotonic() - started
    log.info("generated feed %s in %.2f s at %s", feed.name, seconds, target)
    return seconds


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _stamp_content(settings: FeedSettings) -> dict:
    return {"generator_version": GENERATOR_VERSION, "seed": settings.seed, "scale": settings.scale}


def _check_stamp(home: Home, settings: FeedSettings) -> None:
    """Write GENERATOR.json into a new feeds directory, or check that it matches ``settings``."""
    stamp = home.feeds / STAMP_NAME
    expected = _stamp_content(settings)
    if not stamp.exists():
        with file_lock(home.feeds / LOCK_DIRECTORY / "stamp.lock"):
            if not stamp.exists():
                temporary = stamp.with_name(f".{STAMP_NAME}.tmp-{os.getpid()}")
                temporary.write_text(json.dumps(expected, sort_keys=True) + "\n", encoding="utf-8")
                os.rename(temporary, stamp)
                return
    try:
        found = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FeedError(f"cannot read {stamp} ({error}). Delete {home.feeds} to regenerate the feeds.") from error
    if found != expected:
        raise FeedError(
            f"the feeds in {home.feeds} were generated with {_describe(found)}, but this run needs "
            f"{_describe(expected)}. Delete {home.feeds} to regenerate them, or set {SCALE_ENV} to match."
        )


def _describe(stamp: object) -> str:
    if not isinstance(stamp, dict):
        return repr(stamp)
    return ", ".join(f"{key.replace('_', ' ')} {stamp.get(key)}" for key in ("generator_version", "seed", "scale"))
