"""Reference workload for seedrun: vendor data syncs into a SQLite catalog.

Each job reads a generated vendor feed (Magento export pages, Excel price lists,
CSV files, recorded API pages, FTP drops, saved HTML pages), matches the rows to
products through the vendor code columns and upserts them into the catalog.
Run ``python -m vendor_sync --help`` for the job list.
"""
