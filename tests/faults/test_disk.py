"""A logs directory that turns unwritable or fills up while a run is live.

The run must end without a traceback and keep every step's outcome in a
run record that parses at every moment. That record is run.json in the run
directory, or the fallback in the temp directory that the console names. The
console names each file that seedrun could not write, with the OS error.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import sys
import subprocess
import time
from pathlib import Path

import pytest

from support import REPO, SEEDRUN, wait_for
from fault_support import kill_run_processes, run_processes

IS_ROOT = os.geteuid() == 0
FALLBACK_LINE = "The run record is written to "


def lock_command(path: str) -> str:
    """A shell command that makes a directory reject new entries for the user running the tests.

    chmod 0555 does not stop root, so as root the directory gets the
    immutable attribute instead. The kernel then rejects creating, renaming
    and deleting entries with EPERM, while files already open stay writable.
    """
    if IS_ROOT:
        return 'chattr +i "%s"' % path
    return 'chmod 0555 "%s"' % path


def unlock(path: Path) -> None:
    if IS_ROOT:
        subprocess.run(["chattr", "-i", str(path)], stderr=subprocess.DEVNULL, check=False)
    else:
        os.chmod(path, 0o755)


def refused_error() -> str:
    """The strerror a write into a locked directory gets."""
    return os.strerror(errno.EPERM if IS_ROOT else errno.EACCES)


def require_directory_lock(ws) -> None:
    probe = ws.path / "lock-probe"
    probe.mkdir()
    locked = subprocess.run(["/bin/sh", "-c", lock_command(str(probe))], capture_output=True, text=True)
    try:
        if locked.returncode != 0:
            pytest.skip("cannot make a directory unwritable here: %s" % locked.stderr.strip())
        try:
            (probe / "file").touch()
        except OSError:
            return
        pytest.skip("the locked probe directory %s still accepts new files" % probe)
    finally:
        unlock(probe)


class RecordPoller:
    """Parse run.json, and the fallback record once it exists, every 0.2 s while seedrun runs."""

    def __init__(self, ws):
        self.ws = ws
        self.parses = 0
        self.failures: list[str] = []

    def watch(self, process, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            for path in [self.ws.path / "logs" / "latest" / "run.json", *self.fallbacks()]:
                self._parse(path)
            time.sleep(0.2)
        output, _ = process.communicate(timeout=30)
        return output

    def fallbacks(self) -> list[Path]:
        return sorted((self.ws.path / "tmp").glob("seedrun-*.run.json"))

    def _parse(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            json.loads(text)
            self.parses += 1
        except ValueError as error:
            self.failures.append("%s: %s" % (path, error))


@pytest.fixture
def tmp_workspace(ws):
    """The workspace with TMPDIR inside it, so a fallback run record lands there."""
    (ws.path / "tmp").mkdir()
    ws.env["TMPDIR"] = str(ws.path / "tmp")
    yield ws
    kill_run_processes(ws.scratch)


def fallback_record(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith(FALLBACK_LINE)]
    assert lines, "the console does not say where the run record went:\n" + output
    path = lines[0][len(FALLBACK_LINE):-len(" instead")]
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_run_dir_unwritable_mid_run(tmp_workspace):
    ws = tmp_workspace
    require_directory_lock(ws)
    ws.write("""
        [pipeline]
        name = "locked-dir"
        jobs = 3

        [steps.lock-dir]
        command = 'sleep 0.5; %s; echo locked'

        [steps.long]        # its log is open before the directory is locked
        command = 'sleep 2; echo long-done'

        [steps.later]       # its log cannot be created
        command = 'echo ran > "$T/later.ran"; echo later-output'
        needs = ["lock-dir"]

        [steps.later-fails]
        command = 'sleep 0.3; exit 4'
        needs = ["lock-dir"]
    """ % lock_command("$SEEDRUN_RUN_DIR"))
    poller = RecordPoller(ws)
    try:
        process = ws.launch("run")
        output = poller.watch(process)
    finally:
        if (ws.path / "logs" / "latest").exists():
            unlock(ws.run_dir)

    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert poller.failures == []
    assert poller.parses > 3
    run_id = ws.record()["run_id"]
    error = refused_error()
    assert ("Warning: cannot open the log of later: %s (logs/%s/later.log); its output is discarded"
            % (error, run_id)) in output.splitlines()
    assert "Warning: cannot write %s: %s" % (ws.run_dir / "run.json", error) in output.splitlines()

    final = fallback_record(output)
    assert final["status"] == "failed"
    assert final["exit_code"] == 1
    steps = {s["name"]: s for s in final["steps"]}
    assert steps["lock-dir"]["status"] == "succeeded"
    assert steps["long"]["status"] == "succeeded"
    assert steps["later"]["status"] == "succeeded"
    assert steps["later"]["log_error"] == "cannot open the log: %s (logs/%s/later.log)" % (error, run_id)
    assert steps["later-fails"]["status"] == "failed"
    assert steps["later-fails"]["exit_code"] == 4
    assert (ws.scratch / "later.ran").exists()
    assert "\nlong-done\n[seedrun] exit code 0 after " in ws.log("long")
    assert (ws.path / "reports" / ("%s.html" % run_id)).exists()
    assert run_processes(ws.scratch) == []


def test_run_dir_deleted_mid_run(tmp_workspace):
    ws = tmp_workspace
    ws.write("""
        [pipeline]
        name = "deleted-dir"
        jobs = 3

        [notify]
        on_failure = 'echo "$SEEDRUN_STATUS" > "$T/notified"; echo notify-output'

        [steps.wipe]
        command = 'sleep 0.5; rm -rf "$SEEDRUN_RUN_DIR"'

        [steps.long]        # runs on while its reply FIFO is deleted
        command = 'sleep 2; echo long-done'

        [steps.later]
        command = 'echo ran > "$T/later.ran"'
        needs = ["wipe", "long"]
    """)
    process = ws.launch("run")
    latest = ws.path / "logs" / "latest"
    assert wait_for(lambda: os.path.lexists(latest))
    run_dir = latest.parent / os.readlink(latest)
    # The recipes of wipe and long wait for replies through FIFOs whose names are gone.
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1, output
    assert "Traceback" not in output
    # Writing junit.xml must not create the directory again, holding only that file.
    assert not run_dir.exists()
    assert "Warning: cannot write junit.xml: the run directory logs/%s no longer exists" % run_dir.name \
        in output.splitlines()
    final = fallback_record(output)
    assert final["status"] == "failed"
    steps = {s["name"]: s for s in final["steps"]}
    assert steps["wipe"]["status"] == "succeeded"
    assert steps["long"]["status"] == "succeeded"
    assert steps["later"]["status"] == "not_run"
    assert not (ws.scratch / "later.ran").exists()
    # The failed run is still notified; the command's output goes to TMPDIR instead.
    assert (ws.scratch / "notified").read_text() == "failed\n"
    fallbacks = list((ws.path / "tmp").glob("seedrun-%s.*.notify.log" % run_dir.name))
    assert len(fallbacks) == 1, output
    assert ("Warning: cannot write notify.log in %s: No such file or directory; the notification command's output "
            "goes to %s" % (run_dir, fallbacks[0])) in output.splitlines()
    assert fallbacks[0].read_text() == "notify-output\n"
    assert run_processes(ws.scratch) == []


def test_step_outcome_survives_unwritable_records(tmp_workspace):
    ws = tmp_workspace
    require_directory_lock(ws)
    ws.write("""
        [pipeline]
        name = "locked-records"
        jobs = 3

        [steps.lock-records]
        command = 'sleep 1; %s'

        [steps.long]
        command = 'sleep 2; echo long-done'

        [steps.fails-late]
        command = 'sleep 2; exit 4'
    """ % lock_command("$SEEDRUN_RUN_DIR/.seedrun/records"))
    poller = RecordPoller(ws)
    try:
        process = ws.launch("run")
        output = poller.watch(process)
    finally:
        if (ws.path / "logs" / "latest").exists():
            unlock(ws.run_dir / ".seedrun" / "records")

    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert poller.failures == []
    warnings = [line for line in output.splitlines() if line.startswith("Warning: cannot write the record of long")]
    assert len(warnings) == 1, output
    assert refused_error() in warnings[0]
    steps = ws.steps()
    assert steps["long"]["status"] == "succeeded", steps["long"]["reason"]
    assert steps["long"]["exit_code"] == 0
    assert steps["fails-late"]["status"] == "failed"
    assert steps["fails-late"]["exit_code"] == 4
    assert steps["lock-records"]["status"] == "succeeded", steps["lock-records"]["reason"]
    assert run_processes(ws.scratch) == []


FULL_DISK = """
    [pipeline]
    name = "full-disk"
    jobs = 2

    [steps.big]          # 4 MiB of output into a 1 MiB logs file system
    command = "sleep 1; set -e; head -c 4194304 /dev/zero | tr '\\\\0' d; echo; echo BIG-DONE; echo done > \\"$T/big.done\\""

    [steps.small]        # its log and record exist before the file system fills
    command = "sleep 3; echo small-ok"
"""


@pytest.fixture
def full_logs(tmp_workspace):
    """The workspace with a 1 MiB tmpfs mounted on its logs directory."""
    ws = tmp_workspace
    if not IS_ROOT:
        pytest.skip("mounting a 1 MiB tmpfs on the logs directory needs root")
    logs = ws.path / "logs"
    logs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(logs)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % mounted.stderr.strip())
    yield ws
    kill_run_processes(ws.scratch)
    if subprocess.run(["umount", str(logs)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(logs)], check=True)


def run_into_full_logs(ws) -> tuple[subprocess.Popen, str, RecordPoller]:
    ws.write(FULL_DISK)
    poller = RecordPoller(ws)
    process = ws.launch("run")
    output = poller.watch(process)
    return process, output, poller


def test_full_logs_keep_every_outcome(full_logs):
    ws = full_logs
    process, output, poller = run_into_full_logs(ws)

    assert process.returncode == 1, output
    assert poller.failures == []
    run_id = ws.record()["run_id"]
    lines = output.splitlines()
    assert "Warning: cannot write logs/%s/big.log: No space left on device" % run_id in lines
    assert "Warning: cannot write %s: No space left on device" % (ws.run_dir / "run.json") in lines

    # The log is the command's stdout, so tr itself gets ENOSPC and set -e
    # ends the step with tr's exit code 1 before it writes big.done.
    assert "Failed: big, exit code 1 (see logs/%s/big.log)" % run_id in lines
    assert not (ws.scratch / "big.done").exists()
    small_lines = [line for line in lines if line.startswith("Finished: small in ")]
    assert len(small_lines) == 1, output
    assert small_lines[0].endswith(" (log: logs/%s/small.log)" % run_id)

    final = fallback_record(output)
    assert final["status"] == "failed"
    assert final["exit_code"] == 1
    steps = {s["name"]: s for s in final["steps"]}
    assert steps["big"]["status"] == "failed", steps["big"]["reason"]
    assert steps["big"]["exit_code"] == 1
    assert steps["big"]["log_error"] == "cannot write the log: No space left on device"
    assert steps["small"]["status"] == "succeeded", steps["small"]["reason"]
    assert run_processes(ws.scratch) == []


def test_full_logs_print_no_traceback(full_logs):
    ws = full_logs
    process, output, _ = run_into_full_logs(ws)

    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert run_processes(ws.scratch) == []


def test_short_header_write_is_no_truncation(ws):
    # A file size limit of 1 MiB lets the second attempt's header in only in part.
    # That is a log that cannot be written, not a command that truncated its log.
    limit = 1024 * 1024
    ws.write("""
        [pipeline]
        name = "size-limit"

        [steps.fill]
        command = '''if [ ! -f "$T/first" ]; then touch "$T/first"; size=$(stat -c %%s "$SEEDRUN_RUN_DIR/fill.log"); head -c $((%d - 60 - size)) /dev/zero; echo; exit 1; fi'''
        retries = 1
        retry_delay = "0s"
    """ % limit)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([SEEDRUN, "run"], cwd=ws.path, env=ws.env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size)
    output = done.stdout + done.stderr
    assert not any("its own log" in line for line in output.splitlines()), output
    assert "Warning: cannot write logs/%s/fill.log: File too large" % ws.run_dir.name in output.splitlines(), output
    log = (ws.run_dir / "fill.log").read_bytes()
    assert log.startswith(b"[seedrun] step fill, attempt 1 of 2, started ")
    assert len(log) == limit


def rename_workspace(ws) -> None:
    ws.path.rename(ws.path.with_name(ws.path.name + "-renamed"))


def run_and_move_workspace(ws, move) -> tuple[int, str]:
    """Run the pipeline, call move(ws) once a step has touched $T/started, and return the exit code and output."""
    process = ws.launch("run")
    assert wait_for(lambda: (ws.scratch / "started").exists())
    move(ws)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def test_workspace_renamed_mid_run(tmp_workspace, tmp_path_factory):
    # pytest renames a test's folder before it deletes it. The run's paths are then gone,
    # but the reply must still reach the recipe, because make waits for it for ever.
    ws = tmp_workspace
    ws.env["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    ws.write("""
        [pipeline]
        name = "renamed"

        [steps.slow]
        command = 'touch "$T/started"; sleep 1.5'
    """)
    code, output = run_and_move_workspace(ws, rename_workspace)
    assert code == 0, output
    assert "Traceback" not in output
    assert "Finished: slow in " in output
    assert "Run %s succeeded" % fallback_record(output)["run_id"] in output
    # Nothing of the workspace is created again under its old name.
    assert "Warning: cannot write the report: %s no longer exists" % (ws.path / "logs") in output.splitlines()
    assert not ws.path.exists()


def test_header_restore_on_full_disk_keeps_log(tmp_path):
    # Moving a log behind its restored header needs room for the longer file. Without that
    # room the log must stay exactly as it was, not half moved.
    log = tmp_path / "step.log"
    data = b"".join(b"line %04d\n" % number for number in range(100))
    log.write_bytes(data)
    script = ("import os, sys; from seedrun.step import insert_at_start\n"
              "fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)\n"
              "try:\n    insert_at_start(fd, b'x' * 26)\nexcept OSError as error:\n    print(error.errno)\n")

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) + 10, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-c", script, str(log)], capture_output=True, text=True, timeout=60,
                          preexec_fn=limit_file_size, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.stdout.strip() == str(errno.EFBIG), done.stdout + done.stderr
    assert log.read_bytes() == data


def test_renamed_workspace_still_notifies(tmp_workspace, tmp_path_factory):
    ws = tmp_workspace
    outside = tmp_path_factory.mktemp("outside")
    ws.env["TMPDIR"] = str(outside)
    ws.write("""
        [pipeline]
        name = "renamed-failing"

        [notify]
        on_failure = 'echo "$SEEDRUN_STATUS" > "$TMPDIR/notified"'

        [steps.slow]
        command = 'touch "$T/started"; sleep 1.5; exit 3'
    """)
    code, output = run_and_move_workspace(ws, rename_workspace)
    assert code == 1, output
    assert "Traceback" not in output
    assert ("Warning: the workdir %s no longer exists; the notification command runs in %s" % (ws.path, outside)
            in output.splitlines()), output
    assert (outside / "notified").read_text() == "failed\n"


def test_workspace_copied_back_mid_run(tmp_workspace, tmp_path_factory):
    # mv ws ws.old && cp -a ws.old ws during a step puts a new reply FIFO at the old name,
    # which no recipe reads. The reply must still reach the recipe through the FIFO it opened.
    ws = tmp_workspace
    ws.env["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    ws.write("""
        [pipeline]
        name = "copied"

        [steps.slow]
        command = 'touch "$T/started"; sleep 1.5'
    """)

    def move_and_copy_back(ws) -> None:
        moved = ws.path.with_name(ws.path.name + "-old")
        ws.path.rename(moved)
        subprocess.run(["cp", "-a", str(moved), str(ws.path)], check=True)

    code, output = run_and_move_workspace(ws, move_and_copy_back)
    assert code == 0, output
    assert "Finished: slow in " in output
    assert "Traceback" not in output


def test_renamed_workspace_not_made_again_by_pool(tmp_workspace, tmp_path_factory):
    # The rate-limited exit starts the pool's cool-down, whose file lives in the logs directory.
    ws = tmp_workspace
    ws.env["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    ws.write("""
        [pipeline]
        name = "renamed-pool"

        [pools.api]
        size = 1
        rate_limited_exit_code = 75
        cooldown = "0.2s"

        [steps.limited]
        pool = "api"
        command = 'touch "$T/started"; sleep 1.5; exit 75'
    """)
    code, output = run_and_move_workspace(ws, rename_workspace)
    assert code == 1, output
    assert "Failed: limited, seedrun's step runner failed: FileNotFoundError: " in output, output
    assert not ws.path.exists()
