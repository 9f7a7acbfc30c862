"""Command line of the reference workload: ``python -m vendor_sync JOB``.

Each job prints timestamped progress lines to stdout and ends with one summary line:

    Summary: read 1234, matched 1100, inserted 1000, updated 100, unchanged 0, skipped 134 (missing SKU 20, bad price 30, duplicate 40, unmatched 44)

Environment variables:

VENDOR_SYNC_HOME
    Directory that contains catalog.sqlite3, feeds/ and audit/. Default: var/
    under the current directory.
VENDOR_SYNC_FEED_SCALE
    Size of generated feeds relative to the reference size, a number in (0, 100].
    Default 1.0, which is 24,000 products. A feeds directory is generated at one
    scale only, and a run at another scale fails until the directory is deleted.
VENDOR_SYNC_FAIL
    Failure injection for rehearsals: a comma-separated list of job names, each
    optionally NAME:CODE with CODE from 0 to 255 (default 1). A listed job writes
    its first batch (one page, or up to 1,000 rows of a file), then prints
    "NAME: failing on purpose (VENDOR_SYNC_FAIL)" to stderr and exits with CODE
    without a summary line.
SEEDRUN_RUN_DIR
    Directory for the keystone-codes audit CSV. Default: VENDOR_SYNC_HOME/audit.

Exit codes:

0   success
1   a missing dependency (such as products before a vendor sync), or a feed or
    catalog error, reported in one line on stderr
2   invalid arguments or environment variables
N   the code that VENDOR_SYNC_FAIL requests for an injected failure
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence

from .context import JobContext
from .errors import SyncError
from .feeds import SCALE_ENV, settings_from_environment
from .jobs import JOBS
from .paths import HOME_ENV, RUN_DIR_ENV, resolve_home

FAIL_ENV = "VENDOR_SYNC_FAIL"

log = logging.getLogger("vendor_sync")

EPILOG = f"""\
environment variables:
  {HOME_ENV}        directory with catalog.sqlite3, feeds/ and audit/ (default: var/)
  {SCALE_ENV}  feed size relative to the reference size of 24,000 products (default: 1.0)
  {FAIL_ENV}        comma-separated job names, each optionally NAME:CODE (default code 1).
                           A listed job writes its first batch, prints
                           "NAME: failing on purpose ({FAIL_ENV})" to stderr and exits with CODE
  {RUN_DIR_ENV}         directory for the keystone-codes audit CSV (default: <home>/audit)

Every job ends with a line such as:
  Summary: read 1234, matched 1100, inserted 1000, updated 100, unchanged 0, skipped 134 (missing SKU 20, ...)
"""


def parse_fail_setting(value: str) -> dict[str, int]:
    """Parse VENDOR_SYNC_FAIL ("meyer,turn14:3") into {job: exit code}. Raises ValueError if invalid."""
    codes: dict[str, int] = {}
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, separator, code_text = entry.partition(":")
        name = name.strip()
        code = 1
        if separator:
            code_text = code_text.strip()
            if not code_text.isdigit() or int(code_text) > 255:
                raise ValueError(
                    f"{FAIL_ENV} entry {entry!r} is invalid. Expected NAME or NAME:CODE with CODE from 0 to 255."
                )
            code = int(code_text)
        if not name:
            raise ValueError(f"{FAIL_ENV} entry {entry!r} has no job name")
        # Most of the pipeline's steps are named seed-JOB (seed-meyer), so accept such a step name too.
        if name not in JOBS and name.startswith("seed-") and name[len("seed-"):] in JOBS:
            name = name[len("seed-"):]
        if name not in JOBS:
            raise ValueError(f"{FAIL_ENV} entry {entry!r} names no job. Use one of: {', '.join(sorted(JOBS))}")
        codes[name] = code
    return codes


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    parser = argparse.ArgumentParser(
        prog="python -m vendor_sync",
        description="Run one vendor data-sync job of the seedrun reference workload.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    subparsers = parser.add_subparsers(dest="job", metavar="JOB", required=True, title="jobs")
    for job in JOBS.values():
        subparsers.add_parser(job.name, help=job.help, description=job.help, parents=[common], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def run_job(name: str, environ: Mapping[str, str]) -> int:
    """Run one job and print its summary line. Returns the exit code."""
    try:
        fail_codes = parse_fail_setting(environ.get(FAIL_ENV, ""))
        settings = settings_from_environment(environ)
    except (ValueError, SyncError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2

    home = resolve_home(environ)
    try:
        context = JobContext(name, home, settings, fail_codes.get(name))
        stats = JOBS[name].run(context)
        context.checkpoint()  # for a job that ended before its first checkpoint
    except SyncError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        log.debug("catalog error", exc_info=True)
        print(f"{name}: catalog error in {home.catalog}: {error}", file=sys.stderr)
        return 1
    print(stats.summary_line(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return run_job(args.job, os.environ)


if __name__ == "__main__":
    sys.exit(main())
