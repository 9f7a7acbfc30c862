"""Job registry: every job that ``python -m vendor_sync JOB`` can run, in --help order."""

from __future__ import annotations

from . import api, csv_files, excel, generate, keystone, magento, metalcloak, reference
from .job import Job

_ORDER = (
    "products", "keystone-codes",
    "quadratec", "quadratec-inventory", "omix", "omix-inventory", "wheelpros", "wheelpros-inventory",
    "keystone-ftp2", "roughcountry", "tirediscounter", "aev", "ctp", "keyparts", "alpine", "meyer",
    "tdot", "lowriders", "turn14", "turn14-daily", "premier-daily", "orders", "reference-data",
    "keystone", "keystone-ftp", "metalcloak-scrape", "metalcloak-process", "feeds",
)

_ALL = {job.name: job for module in (magento, keystone, excel, csv_files, api, metalcloak, reference, generate)
        for job in module.JOBS}

if set(_ALL) != set(_ORDER):
    raise RuntimeError(f"job registry and order differ: {sorted(set(_ALL) ^ set(_ORDER))}")

JOBS: dict[str, Job] = {name: _ALL[name] for name in _ORDER}

__all__ = ["JOBS", "Job"]
