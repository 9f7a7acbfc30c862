"""Helpers shared by the recovery tests: run directories, event files, processes of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from support import Workspace, pid_alive


def run_dirs(ws: Workspace, logs: str = "logs") -> list[Path]:
    """Run directories under the workspace's logs directory, oldest first."""
    root = ws.path / logs
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def overlapping_starts(events: list[str]) -> list[str]:
    """Return the "start" events that came while an earlier start had no "end" yet.

    Each line is "<something>start PID" or "<something>end PID". The step
    commands write their end line from an EXIT trap. dash skips that trap
    when a signal kills it, so a command that must write it when stopped
    with SIGTERM also needs `trap 'exit 143' TERM`.
    """
    running: set[str] = set()
    overlaps = []
    for line in events:
        word, pid = line.split()[:2]
        if word.endswith("start"):
            if running:
                overlaps.append(line)
            running.add(pid)
        elif word.endswith("end"):
            running.discard(pid)
    return overlaps


def processes_of_run(run_dir: Path) -> list[int]:
    """PIDs of live processes that belong to a run.

    make, the recipes and the launcher work in the run directory. A step
    runner started by a recipe has it among its arguments, and one in a
    launcher's worker has the run's files open (its log and the active lock).
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink("/proc/%s/cwd" % entry)
        except OSError:
            continue
        belongs = str(run_dir) in cmdline or cwd == str(run_dir) or _has_open_file_in(int(entry), run_dir)
        if belongs and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def processes_with_open_file_in(folder: Path) -> list[int]:
    """PIDs of live processes that have a file under folder open."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _has_open_file_in(int(entry), folder)]


def _has_open_file_in(pid: int, run_dir: Path) -> bool:
    prefix = str(run_dir) + os.sep
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(prefix):
                return True
    except OSError:
        pass
    return False


def make_of_run(run_dir: Path) -> list[int]:
    """PIDs of the make processes that schedule a run's steps."""
    found = []
    for pid in processes_of_run(run_dir):
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "make":
                    found.append(pid)
        except OSError:
            continue
    return found


def wait_all(processes: list[subprocess.Popen], timeout: float = 60) -> list[float]:
    """Wait for every process; return the monotonic time at which each one exited."""
    ends: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(ends) < len(processes) and time.monotonic() < deadline:
        for index, process in enumerate(processes):
            if index not in ends and process.poll() is not None:
                ends[index] = time.monotonic()
        time.sleep(0.02)
    for index, process in enumerate(processes):
        if index not in ends:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError("%s did not exit within %ss" % (process.args, timeout))
    return [ends[i] for i in range(len(processes))]


def kill_runner(process: subprocess.Popen) -> None:
    """Send SIGKILL to the seedrun process only, not to its process group, and reap it."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
