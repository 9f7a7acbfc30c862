"""Tell an operator that a run ended badly, through a command of theirs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120
# How often the wait for the command checks for an interrupt.
POLL_SECONDS = 0.1


def notification_environment(run: dict, run_dir: Path, reports_dir: Path) -> dict[str, str]:
    failed = [s["name"] for s in run["steps"] if s["status"] in ("failed", "timed_out") and not s["allowed_failure"]]
    return {
        "SEEDRUN_RUN_ID": run["run_id"], "SEEDRUN_PIPELINE": run["pipeline"], "SEEDRUN_STATUS": run["status"],
        "SEEDRUN_EXIT_CODE": str(run["exit_code"]), "SEEDRUN_FAILED_STEPS": " ".join(failed),
        "SEEDRUN_RUN_DIR": str(run_dir), "SEEDRUN_REPORT": str(reports_dir / ("%s.html" % run["run_id"])),
    }


def notify(command: str, run: dict, run_dir: Path, reports_dir: Path, workdir: Path,
           say: Callable[[str], None], interrupted: Callable[[], bool] = lambda: False) -> bool:
    """Run the [notify] on_failure command with the run's details in its environment.

    Its output goes to notify.log in the run directory, or to a new
    $TMPDIR/seedrun-<run-id>.*.notify.log when the run directory cannot take
    it (deleted, or on a full disk), and it runs in the temp directory when
    the workdir is gone: a failed run must still be notified. A
    failure or timeout is reported on the console and never changes the
    run's exit code. The command is killed, with its process group, after
    TIMEOUT_SECONDS or as soon as interrupted() returns True.
    """
    from seedrun.launcher import environment

    # The steps' environment: without the variables of the make that started seedrun.
    env = dict(environment(), **notification_environment(run, run_dir, reports_dir))
    try:
        output, output_path = _open_output(run_dir, run["run_id"], say)
    except OSError as error:
        say("Warning: cannot run the notification command: cannot open a file for its output: %s" % error)
        return False
    if not workdir.is_dir():
        say("Warning: the workdir %s no longer exists; the notification command runs in %s"
            % (workdir, tempfile.gettempdir()))
        workdir = Path(tempfile.gettempdir())
    try:
        with output:
            process = subprocess.Popen(["/bin/sh", "-c", command], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                       stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as error:
        say("Warning: cannot run the notification command: %s" % error)
        return False
    try:
        returncode = _wait(process, interrupted)
    finally:
        # The command leads a session and process group of its own: what it left in the group goes with it.
        _kill_group(process.pid)
    if returncode is None:
        say("Warning: the notification command %s (see %s)"
            % ("was stopped by an interrupt" if interrupted() else "timed out after %ds" % TIMEOUT_SECONDS,
               output_path))
        return False
    if returncode != 0:
        say("Warning: the notification command failed with exit code %d (see %s)" % (returncode, output_path))
        return False
    log.info("notification sent for run %s", run["run_id"])
    return True


def _open_output(run_dir: Path, run_id: str, say: Callable[[str], None]):
    """Open the command's output file; return it with the text that names it on the console."""
    try:
        return open(run_dir / "notify.log", "ab"), "notify.log in the run directory"
    except OSError as error:
        # A new file with a random name, so that no link or readable file can be planted at it beforehand.
        fd, fallback = tempfile.mkstemp(prefix="seedrun-%s." % run_id, suffix=".notify.log")
        say("Warning: cannot write notify.log in %s: %s; the notification command's output goes to %s"
            % (run_dir, error.strerror, fallback))
        return os.fdopen(fd, "ab"), fallback


def _wait(process: subprocess.Popen, interrupted: Callable[[], bool]) -> int | None:
    """Return the command's exit code, or None if it timed out or the run was interrupted first."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not interrupted() and time.monotonic() < deadline:
        try:
            return process.wait(POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue
    return None


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        # Nothing of the command is left (Linux does not reuse a process group's ID while it has members).
        pass
