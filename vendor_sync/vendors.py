"""The vendors that the workload syncs, keyed by the code used in the vendor table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vendor:
    code: str
    name: str
    integration: str  # feed kind: api, excel, csv, ftp or scrape


VENDORS: dict[str, Vendor] = {
    vendor.code: vendor
    for vendor in (
        Vendor("quadratec", "Quadratec", "excel"),
        Vendor("omix", "Omix-ADA", "excel"),
        Vendor("aev", "AEV", "excel"),
        Vendor("ctp", "CTP", "excel"),
        Vendor("keyparts", "KeyParts", "excel"),
        Vendor("alpine", "Alpine", "excel"),
        Vendor("roughcountry", "Rough Country", "csv"),
        Vendor("tdot", "TDot", "csv"),
        Vendor("lowriders", "Lowriders", "csv"),
        Vendor("meyer", "Meyer Distributing", "api"),
        Vendor("wheelpros", "Wheel Pros", "api"),
        Vendor("tirediscounter", "Tire Discounter", "api"),
        Vendor("turn14", "Turn 14 Distribution", "api"),
        Vendor("premier", "Premier Performance", "api"),
        Vendor("keystone", "Keystone Automotive", "ftp"),
        Vendor("metalcloak", "MetalCloak", "scrape"),
    )
}
