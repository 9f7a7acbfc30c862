"""Helpers of the fault tests: finding and stopping a run's processes, reading log bodies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from support import pid_alive

HEADER_LINES = 3
FOOTER_PREFIX = b"[seedrun] "
NEWLINE_NOTE = b"[seedrun] the output did not end with a newline; seedrun added one\n"


def run_processes(scratch: Path) -> list[int]:
    """PIDs of live processes started by a workspace's run.

    Every process of a run inherits the workspace's environment, which contains
    T=<scratch>. No other process on the machine has that variable, so a
    process counts as part of the run when its environment contains it.
    """
    marker = b"T=" + str(scratch).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                variables = f.read().split(b"\0")
        except OSError:
            continue
        if marker in variables and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def kill_run_processes(scratch: Path) -> None:
    """SIGKILL every live process of the workspace's run, for test teardown."""
    for _ in range(50):
        pids = run_processes(scratch)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def read_pid(path: Path) -> int | None:
    """The PID a step wrote into path, or None while the file is missing or incomplete."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def split_log(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split the bytes of a one-attempt log into header, body and footer.

    The header is the first three lines (step, command, workdir). The footer
    is the run of trailing lines that start with "[seedrun] ". When the footer
    states that seedrun added a final newline, that newline moves from the body
    to the footer, so the body is exactly what the command wrote.
    """
    cut = 0
    for _ in range(HEADER_LINES):
        cut = data.index(b"\n", cut) + 1
    header, rest = data[:cut], data[cut:]
    start = len(rest)
    while start > 0:
        line_start = rest.rfind(b"\n", 0, start - 1) + 1
        if not rest.startswith(FOOTER_PREFIX, line_start):
            break
        start = line_start
    body, footer = rest[:start], rest[start:]
    if footer.startswith(NEWLINE_NOTE) and body.endswith(b"\n"):
        body, footer = body[:-1], b"\n" + footer
    return header, body, footer


def footer_lines(log: str) -> list[str]:
    """The footer of a one-attempt log: the trailing "[seedrun] " lines after the header."""
    lines = log.rstrip("\n").split("\n")[HEADER_LINES:]
    footer = []
    while lines and lines[-1].startswith("[seedrun] "):
        footer.insert(0, lines.pop())
    return footer
