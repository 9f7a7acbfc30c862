"""Stop every run a recovery test launched, even when the test failed before it waited for the run."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

STOP_SECONDS = 15


def _stop(process: subprocess.Popen) -> None:
    """Send SIGTERM to the launched process group so seedrun stops its steps, and SIGKILL the group if it hangs."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


@pytest.fixture(autouse=True)
def stop_launched_runs(ws):
    launched: list[subprocess.Popen] = []
    launch = ws.launch

    def tracked_launch(*args, **kwargs):
        process = launch(*args, **kwargs)
        launched.append(process)
        return process

    ws.launch = tracked_launch
    yield
    for process in launched:
        _stop(process)
