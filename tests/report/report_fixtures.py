"""Build realistic run records, logs and run directories for the report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUN_ID = "20261204T193712Z-vendor-sync"
SECRET = "tok_live_9f8e7d6c5b4a"


def _step(name: str, phase: str | None, status: str, **fields: Any) -> dict[str, Any]:
    step = {
        "name": name,
        "phase": phase,
        "command": f"python -m vendor_sync {name.removeprefix('seed-')}",
        "status": status,
        "exit_code": 0 if status == "succeeded" else None,
        "signal": None,
        "attempts": 1,
        "queued_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_s": None,
        "log": f"{name}.log",
        "reason": None,
        "blocked_by": None,
        "on_failure": "skip-dependents",
        "allowed_failure": False,
        "metrics": {},
        "metric_floors": {},
        "warnings": [],
        "needs": [],
        "after": [],
        "waits_for_phase": None,
        "pool": None,
        "attempt_history": [],
        "carried_over": False,
    }
    step.update(fields)
    return step


def _timed(queued: str | None, started: str, finished: str | None, duration: float | None) -> dict[str, Any]:
    return {
        "queued_at": queued and f"2026-12-04T{queued}Z",
        "started_at": f"2026-12-04T{started}Z",
        "finished_at": finished and f"2026-12-04T{finished}Z",
        "duration_s": duration,
    }


def sample_run() -> dict[str, Any]:
    """Return a finished, failed run of the vendor-sync pipeline with every kind of step."""
    steps = [
        _step("seed-allProducts", "products", "succeeded", metrics={"products": 3412},
              metric_floors={"products": 1000}, **_timed("19:37:12.200", "19:37:12.300", "19:39:12.300", 120.0)),
        _step("seed-meyer", "vendors", "succeeded", needs=["seed-allProducts"], pool="turn14_api",
              waits_for_phase="products", metrics={"products": 3000},
              **_timed("19:39:12.400", "19:39:40.000", "19:43:52.100", 252.1)),
        _step("seed-quadratec", "vendors", "failed", exit_code=1, attempts=2, needs=["seed-allProducts"],
              waits_for_phase="products",
              attempt_history=[
                  {"attempt": 1, "started_at": "2026-12-04T19:39:12.500Z", "finished_at": "2026-12-04T19:40:00.000Z",
                   "exit_code": 1, "signal": None, "outcome": "failed"},
                  {"attempt": 2, "started_at": "2026-12-04T19:40:05.000Z", "finished_at": "2026-12-04T19:41:00.000Z",
                   "exit_code": 1, "signal": None, "outcome": "failed"},
              ],
              **_timed("19:39:12.400", "19:39:12.500", "19:41:00.000", 107.5)),
        _step("seed-turn14", "vendors", "timed_out", signal="SIGKILL", exit_code=None, pool="turn14_api",
              waits_for_phase="products", **_timed("19:39:12.400", "19:39:13.000", "19:49:13.000", 600.0)),
        _step("seed-keystone", "vendors", "failed", exit_code=3, allowed_failure=True, on_failure="ignore",
              waits_for_phase="products", **_timed("19:39:12.400", "19:39:14.000", "19:39:20.000", 6.0)),
        _step("pair-quadratec", "pairs", "skipped", log=None, needs=["seed-quadratec"],
              blocked_by="seed-quadratec", reason="needs seed-quadratec, which failed"),
        _step("pair-meyer", "pairs", "succeeded", needs=["seed-meyer"], metrics={"pairs": 120},
              warnings=["pairs fell to 120, below half its median of 3412 over the last 5 successful runs"],
              **_timed("19:43:52.200", "19:43:52.300", "19:44:30.000", 37.7)),
        _step("seed-premier", "vendors", "succeeded", carried_over=True, metrics={"products": 900},
              **_timed(None, "19:00:00.000", "19:05:00.000", 300.0)),
        _step("report-upload", None, "not_run", log=None, reason="the run stopped after a failure"),
    ]
    return {
        "run_id": RUN_ID,
        "pipeline": "vendor-sync",
        "selection": "seed-all",
        "pipeline_file": "/srv/seedrun/pipeline.toml",
        "pipeline_sha256": "3f1c9a0d5b7e2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a",
        "host": "sync-01",
        "pid": 4242,
        "jobs": 10,
        "status": "failed",
        "started_at": "2026-12-04T19:37:12.123Z",
        "finished_at": "2026-12-04T19:49:14.000Z",
        "exit_code": 2,
        "mask_env": ["VENDOR_CREDENTIAL"],
        "phases": [
            {"name": "products", "mode": "parallel", "wait": "succeeded", "steps": ["seed-allProducts"]},
            {"name": "vendors", "mode": "parallel", "wait": "succeeded",
             "steps": ["seed-meyer", "seed-quadratec", "seed-turn14", "seed-keystone", "seed-premier"]},
            {"name": "pairs", "mode": "parallel", "wait": "succeeded", "steps": ["pair-quadratec", "pair-meyer"]},
        ],
        "steps": steps,
    }


def write_logs(run: dict[str, Any], run_dir: Path) -> None:
    """Write a small realistic log for every step that has a log name and started."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for step in run["steps"]:
        if not step.get("log") or not step.get("started_at"):
            continue
        body = [f"[seedrun] attempt 1 of {step['name']} started {step['started_at']}",
                f"[seedrun] command: {step['command']}"]
        body += [f"fetched page {page} of the catalogue" for page in range(60)]
        if step["status"] in ("failed", "timed_out"):
            body += ["Traceback (most recent call last):",
                     '  File "vendor_sync/client.py", line 88, in fetch',
                     f"requests.exceptions.HTTPError: 401 Client Error for token {SECRET}",
                     "error: vendor API rejected the credentials"]
        body.append(f"[seedrun] attempt 1 {step['status']} exit code {step.get('exit_code')}")
        (run_dir / step["log"]).write_text("\n".join(body) + "\n", encoding="utf-8")


def write_run(run: dict[str, Any], run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
