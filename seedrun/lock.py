"""One run of a pipeline at a time per logs directory.

The lock is an exclusive ``flock`` on ``<logs_dir>/.seedrun/<pipeline>.lock``
held by the ``seedrun`` process for the whole run. The kernel releases it when
that process dies, however it dies, so there is no stale lock to delete by
hand. The file's contents (run id, PID, start time) only describe the holder.
A run that finds the previous holder's run still marked running concludes
that run died, and takes over after its remaining step runners have stopped.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from pathlib import Path

from seedrun.errors import LockedError, SetupError
from seedrun.process import pid_alive

log = logging.getLogger(__name__)

DESCRIBE_WAIT_SECONDS = 1.5
# How long acquire() retries a lock that a probe of holder_is_live() may hold.
PROBE_SECONDS = 0.1


class PipelineLock:
    def __init__(self, logs_dir: Path, pipeline_name: str):
        self.path = logs_dir / ".seedrun" / ("%s.lock" % pipeline_name)
        self.pipeline_name = pipeline_name
        self.fd: int | None = None
        self.previous: dict = {}
        # The details of a dead holder's run until take_over() has settled it.
        self.taking_over: dict | None = None

    def acquire(self) -> dict:
        """Take the lock or raise LockedError naming the holder; return the previous holder's details."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            where = error.filename or self.path
            if error.errno in (errno.EEXIST, errno.ENOTDIR):
                fix = "a file is in the way of the directory; move it"
            else:
                fix = "make the logs directory writable"
            raise SetupError("cannot create %s for the lock of pipeline %r: %s; %s, or set logs_dir in the pipeline "
                             "file to a directory seedrun can write" % (where, self.pipeline_name, error.strerror, fix)) \
                from None
        if not lock_within(fd, PROBE_SECONDS, 0.005):
            holder = self._wait_for_description(fd)
            os.close(fd)
            raise LockedError(self._locked_message(holder)) from None
        self.fd = fd
        previous = self._read(fd)
        # A run that died while it took over a dead run's lock left that run's details nested.
        nested = previous.get("taking_over")
        self.previous = nested if isinstance(nested, dict) and nested else previous
        self.taking_over = self.previous if isinstance(self.previous.get("run_dir"), str) else None
        self.describe(run_id=None, run_dir=None)
        return self.previous

    def holder_is_live(self) -> bool:
        """Tell whether a process holds the lock now, by taking a shared lock and dropping it at once.

        Unlike the PID in the lock file, this cannot take a reused PID for
        the holder. acquire() retries for PROBE_SECONDS, so a run that
        starts during the probe still gets the lock.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def took_over(self) -> None:
        """Note that the previous holder's run is settled, so the lock no longer keeps its details."""
        self.taking_over = None

    def describe(self, run_id: str | None, run_dir: Path | None) -> None:
        """Record who holds the lock, for the message another run prints."""
        details = {"run_id": run_id, "run_dir": str(run_dir) if run_dir else None, "pid": os.getpid(),
                   "host": os.uname().nodename, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.taking_over:
            details["taking_over"] = self.taking_over
        self._write(details)

    def _write(self, details: dict) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(details).encode(), 0)

    def release(self) -> None:
        """Clear the holder's details and drop the lock.

        Only a holder that dies without releasing leaves its details behind,
        which is how the next run detects that a run died. A holder stopped
        while it took over a dead run puts back that run's details, so the
        next run takes it over instead.
        """
        if self.fd is not None:
            try:
                if self.taking_over:
                    self._write(self.taking_over)
                else:
                    os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def _read(self, fd: int) -> dict:
        try:
            details = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}
        # A lock file edited by hand can hold any JSON value.
        return details if isinstance(details, dict) else {}

    def read_holder(self) -> dict:
        """Return the details in the lock file without taking the lock; empty when no run wrote any.

        Details with a dead PID are those of a run that died holding the
        lock (see release()).
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return {}
        try:
            return self._read(fd)
        finally:
            os.close(fd)

    def _wait_for_description(self, fd: int) -> dict:
        """Wait briefly for the holder's details, which it writes right after it takes the lock."""
        deadline = time.monotonic() + DESCRIBE_WAIT_SECONDS
        holder = self._read(fd)
        while not self._describes_live_run(holder) and time.monotonic() < deadline:
            time.sleep(0.05)
            holder = self._read(fd)
        return holder

    @staticmethod
    def _describes_live_run(holder: dict) -> bool:
        """Tell whether the details name a run id and a PID that is still alive."""
        if not holder.get("run_id") or not isinstance(holder.get("pid"), int):
            return False
        return pid_alive(holder["pid"])

    def _locked_message(self, holder: dict) -> str:
        # SIGTERM, because a run started in the background by a script ignores SIGINT (step.IGNORED_AT_START).
        run = holder.get("run_id") or "(starting)"
        pid = holder.get("pid", "?")
        return ("another run of pipeline %r holds the lock %s: run %s, PID %s, started %s; "
                "wait for it to finish, or stop it with: kill -TERM %s"
                % (self.pipeline_name, self.path, run, pid, holder.get("started_at", "?"), pid))

    def __enter__(self) -> "PipelineLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def wait_for_step_runners(run_dir: Path, timeout: float) -> bool:
    """Wait until no step runner of run_dir holds its shared active lock; return True when none does."""
    path = run_dir / ".seedrun" / "active.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        return lock_within(fd, timeout, 0.1)
    finally:
        os.close(fd)


def lock_within(fd: int, timeout: float, interval: float) -> bool:
    """Take an exclusive flock on fd, trying every `interval` seconds for `timeout`; return whether it was taken."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
