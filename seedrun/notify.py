"""Tell an operator that a run ended badly, through a command of theirs."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120


def notification_environment(run: dict, run_dir: Path, reports_dir: Path) -> dict[str, str]:
    failed = [s["name"] for s in run["steps"] if s["status"] in ("failed", "timed_out") and not s["allowed_failure"]]
    return {
        "SEEDRUN_RUN_ID": run["run_id"], "SEEDRUN_PIPELINE": run["pipeline"], "SEEDRUN_STATUS": run["status"],
        "SEEDRUN_EXIT_CODE": str(run["exit_code"]), "SEEDRUN_FAILED_STEPS": " ".join(failed),
        "SEEDRUN_RUN_DIR": str(run_dir), "SEEDRUN_REPORT": str(reports_dir / ("%s.html" % run["run_id"])),
    }


def notify(command: str, run: dict, run_dir: Path, reports_dir: Path, workdir: Path,
           say: Callable[[str], None]) -> bool:
    """Run the [notify] on_failure command with the run's details in its environment.

    Its output goes to notify.log in the run directory. A failure or timeout
    is reported on the console and never changes the run's exit code.
    """
    env = dict(os.environ, **notification_environment(run, run_dir, reports_dir))
    try:
        with open(run_dir / "notify.log", "ab") as output:
            result = subprocess.run(["/bin/sh", "-c", command], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT, timeout=TIMEOUT_SECONDS,
                                    start_new_session=True)
    except subprocess.TimeoutExpired:
        say("Warning: the notification command timed out after %ds (see notify.log in the run directory)"
            % TIMEOUT_SECONDS)
        return False
    except OSError as error:
        say("Warning: cannot run the notification command: %s" % error)
        return False
    if result.returncode != 0:
        say("Warning: the notification command failed with exit code %d (see notify.log in the run directory)"
            % result.returncode)
        return False
    log.info("notification sent for run %s", run["run_id"])
    return True
