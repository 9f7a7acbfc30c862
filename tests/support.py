"""Shared helpers: a scratch workspace with a pipeline file, and real seedrun processes.

Tests import these from ``support``; tests/conftest.py turns the workspace
into the ``ws`` fixture.
"""

from __future__ import annotations

import json
import marshal
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every process this test session starts inherits this variable. With it,
# processes_with_args() ignores processes with the same command line that
# other test sessions or tools on the machine started.
SESSION_VARIABLE = "SEEDRUN_TEST_SESSION"
os.environ.setdefault(SESSION_VARIABLE, "%d.%d" % (os.getpid(), time.time_ns()))
SESSION_ENTRY = ("%s=%s" % (SESSION_VARIABLE, os.environ[SESSION_VARIABLE])).encode()
BIN = Path(sys.executable).parent
SEEDRUN = str(BIN / "seedrun")
INVOKE = str(BIN / "invoke")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def _restore_default_signals() -> None:
    """Child setup: SIGINT, SIGQUIT and SIGHUP at their defaults, in a process group of its own.

    A process started in the background by a script ignores SIGINT, and one
    started under nohup ignores SIGHUP. seedrun keeps both ignored then, so
    without this a test run that way would see no interrupt at all.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    os.setpgid(0, 0)


class Workspace:
    """A folder with a pipeline file, where seedrun runs for real."""

    def __init__(self, path: Path):
        self.path = path
        self.scratch = path / "scratch"
        self.scratch.mkdir()
        self.env = dict(os.environ, T=str(self.scratch))
        self.env.pop("SEEDRUN_PIPELINE", None)
        self.env.pop("VENDOR_SYNC_FAIL", None)

    def write(self, text: str, name: str = "pipeline.toml") -> Path:
        path = self.path / name
        path.write_text(textwrap.dedent(text))
        return path

    def run(self, *args: str, timeout: float = 120, env: dict | None = None) -> Result:
        return self.call([SEEDRUN, *args], timeout=timeout, env=env)

    def call(self, command: list[str], timeout: float = 120, env: dict | None = None) -> Result:
        done = subprocess.run(command, cwd=self.path, env=env or self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    def launch(self, *args: str, command: list[str] | None = None, **kwargs) -> subprocess.Popen:
        """Start seedrun (or a command) as a terminal would: own group, default SIGINT."""
        return subprocess.Popen(command or [SEEDRUN, *args], cwd=self.path, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=kwargs.get("stdout", subprocess.PIPE), stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_restore_default_signals)

    @property
    def run_dir(self) -> Path:
        return (self.path / "logs" / "latest").resolve()

    def record(self, run_dir: Path | None = None) -> dict:
        return json.loads(((run_dir or self.run_dir) / "run.json").read_text())

    def steps(self, run_dir: Path | None = None) -> dict[str, dict]:
        return {s["name"]: s for s in self.record(run_dir)["steps"]}

    def log(self, step: str) -> str:
        return (self.run_dir / (step + ".log")).read_text(errors="replace")


def status_of(ws: Workspace, name: str, run_dir: Path | None = None) -> str | None:
    """Return the step's status in run.json, or None while run.json or the step is not there."""
    try:
        return ws.steps(run_dir)[name]["status"]
    except (OSError, ValueError, KeyError):
        return None


def parent_of(pid: int) -> int | None:
    """The PID of the process's parent, or None once the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def record_now(ws: Workspace, step: str) -> dict:
    """The record a step runner has written so far for `step` in the newest run, or {}."""
    try:
        return marshal.loads((ws.path / "logs" / "latest" / ".seedrun" / "records" / step).read_bytes())
    except (OSError, EOFError, ValueError):
        return {}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def processes_with_args(args: str) -> list[int]:
    """PIDs of live processes of this test session whose whole command line is exactly args."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
            if cmdline != args:
                continue
            with open("/proc/%s/environ" % entry, "rb") as f:
                in_session = SESSION_ENTRY in f.read().split(b"\0")
        except OSError:
            continue
        if in_session and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
