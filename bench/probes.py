"""The child side of the W5 and W6 measurements: time seedrun calls inside a fresh process.

    python -m bench.probes render RUN_JSON RUN_DIR REPORTS_DIR HISTORY_DB OUT_JSON
    python -m bench.probes plan PIPELINE OUT_JSON

Each writes its figures as JSON to OUT_JSON. Times are seconds from
time.perf_counter. read_mb counts the bytes that the process read through
read() and similar calls during the call (rchar in /proc/self/io), in MB of
10^6 bytes.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def bytes_read() -> int:
    """Return rchar from /proc/self/io, or 0 where that file does not exist."""
    try:
        with open("/proc/self/io") as counters:
            for line in counters:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def render(run_json: str, run_dir: str, reports_dir: str, history_db: str) -> dict[str, float]:
    started = time.perf_counter()
    from seedrun import report

    imported = time.perf_counter()
    run = json.loads(Path(run_json).read_text(encoding="utf-8"))
    loaded = time.perf_counter()
    read_before = bytes_read()
    report.render_run(run, Path(run_dir), Path(reports_dir), history_db=Path(history_db), live=False)
    rendered = time.perf_counter()
    return {
        "import_s": imported - started,
        "load_run_json_s": loaded - imported,
        "render_run_s": rendered - loaded,
        "read_mb": (bytes_read() - read_before) / 1e6,
        "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    }


def plan(pipeline_file: str) -> dict[str, float]:
    started = time.perf_counter()
    from seedrun.graph import Selection, resolve
    from seedrun.pipeline import load_pipeline

    imported = time.perf_counter()
    pipeline = load_pipeline(pipeline_file)
    loaded = time.perf_counter()
    planned = resolve(pipeline, Selection())
    resolved = time.perf_counter()
    return {
        "import_s": imported - started,
        "load_pipeline_s": loaded - imported,
        "resolve_s": resolved - loaded,
        "load_and_resolve_s": resolved - imported,
        "planned_steps": len(planned.steps),
    }


def main(argv: list[str]) -> int:
    if len(argv) == 6 and argv[0] == "render":
        figures = render(*argv[1:5])
    elif len(argv) == 3 and argv[0] == "plan":
        figures = plan(argv[1])
    else:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    Path(argv[-1]).write_text(json.dumps(figures), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
