"""Step output that is huge, binary or unterminated, console lines of parallel steps, and pipes.

A log contains a header, the bytes the command wrote, unchanged, and a footer
whose lines begin with "[seedrun] ". The console gets one whole line per event.
"""

from __future__ import annotations

import marshal
import re
import shutil
import subprocess
import sys
import time

import pytest

from fault_support import HEADER_LINES, split_log
from support import SEEDRUN

BIG_LINE_BYTES = 50 * 1024 * 1024
# Invalid UTF-8, Latin-1, a NUL, a bare CR, ANSI colours, stderr, a 50 MiB
# line, then the metric line and a tail marker.
AWKWARD_OUTPUT = (
    r"printf 'ok line\n'; printf 'bad: \377\376 \300\257\n'; printf 'latin1: caf\351\n'; "
    r"printf 'nul:\000:end\n'; printf 'cr-only\rover\n'; printf '\033[31mred\033[0m\n'; "
    r"printf 'to-stderr\n' >&2; head -c %d /dev/zero | tr '\0' x; "
    r"printf '\nUpserted 7 products \377\n'; printf 'TAIL-MARKER\n'" % BIG_LINE_BYTES
)


def reference_output(ws, command: str) -> bytes:
    """What the command writes to stdout and stderr when /bin/sh runs it into a file."""
    path = ws.scratch / "reference.out"
    with open(path, "wb") as out:
        subprocess.run(["/bin/sh", "-c", command], cwd=ws.path, env=ws.env, stdin=subprocess.DEVNULL,
                       stdout=out, stderr=subprocess.STDOUT, check=True)
    return path.read_bytes()


def awkward_pipeline(exit_code: int) -> str:
    return """
        [pipeline]
        name = "awkward"
        jobs = 2

        [steps.legacy]
        command = '''%s; exit %d'''
        metrics = { products = 'Upserted (\\d+) products' }

        [steps.after]
        command = "echo after-ok"
        needs = ["legacy"]
    """ % (AWKWARD_OUTPUT, exit_code)


def test_awkward_output_logged_byte_exact(ws):
    ws.write(awkward_pipeline(0))
    result = ws.run("run", timeout=120)

    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.out + result.err
    steps = ws.steps()
    assert steps["legacy"]["status"] == "succeeded"
    assert steps["after"]["status"] == "succeeded"
    header, body, footer = split_log((ws.run_dir / "legacy.log").read_bytes())
    assert header.startswith(b"[seedrun] step legacy, attempt 1 of 1, started ")
    assert body == reference_output(ws, AWKWARD_OUTPUT)
    assert footer.startswith(b"[seedrun] exit code 0 after ")
    assert steps["legacy"]["metrics"] == {"products": 7}

    report = ws.path / "reports" / ("%s.html" % ws.record()["run_id"])
    data = report.read_bytes()
    assert len(data) < 10 * 1024 * 1024
    data.decode("utf-8")


def test_report_of_awkward_failure_is_clean(ws):
    ws.write(awkward_pipeline(3))
    result = ws.run("run", timeout=120)

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.out + result.err
    step = ws.steps()["legacy"]
    assert step["status"] == "failed"
    assert step["exit_code"] == 3
    assert step["metrics"] == {"products": 7}
    report = ws.path / "reports" / ("%s.html" % ws.record()["run_id"])
    data = report.read_bytes()
    assert len(data) < 10 * 1024 * 1024
    text = data.decode("utf-8")
    assert "TAIL-MARKER" in text
    assert "\x00" not in text
    assert "\x1b" not in text


def test_missing_final_newline_added_and_noted(ws):
    ws.write("""
        [pipeline]
        name = "unterminated"

        [steps.partial]
        command = "printf 'first line\\\\nno-newline-at-end'"
    """)
    result = ws.run("run")

    assert result.code == 0, result.out + result.err
    data = (ws.run_dir / "partial.log").read_bytes()
    assert b"\nno-newline-at-end\n[seedrun] the output did not end with a newline; seedrun added one\n" in data
    _, body, footer = split_log(data)
    assert body == b"first line\nno-newline-at-end"
    assert footer.splitlines()[-1].startswith(b"[seedrun] exit code 0 after ")


@pytest.mark.parametrize("device", ["/dev/stderr", "/dev/stdout"])
def test_log_truncated_by_command_keeps_header(ws, device):
    # `> /dev/stderr` opens the log file again with O_TRUNC. The 3 MB written
    # after that take three chunks to shift behind the restored header.
    ws.write("""
        [pipeline]
        name = "truncating"

        [steps.warn]
        command = '''n=$(cat "$T/n" 2>/dev/null || echo 0); echo $((n + 1)) > "$T/n"; echo before; echo warning > %s; [ $n -ge 1 ] && yes | head -c 3000000; echo after; [ $n -ge 1 ]'''
        retries = 1
        retry_delay = "0s"
    """ % device)
    result = ws.run("run")

    assert result.code == 0, result.out + result.err
    assert ("Warning: warn truncated or overwrote its own log, as `> /dev/stderr` does; the output before that is "
            "lost (see logs/%s/warn.log)" % ws.run_dir.name) in result.lines
    lines = ws.log("warn").splitlines()
    assert lines[0].startswith("[seedrun] step warn, attempt 2 of 2, started ")
    assert lines[1].startswith("[seedrun] command: n=$(cat ")
    assert lines[2].startswith("[seedrun] workdir: ")
    assert lines[3].startswith("[seedrun] the command truncated or overwrote this log while it ran, by opening it "
                               "again, as `> /dev/stderr`")
    assert lines[4] == "warning"
    assert lines[5:-2] == ["y"] * 1_500_000
    assert lines[-2] == "after"
    assert lines[-1].startswith("[seedrun] exit code 0 after ")
    assert ws.steps()["warn"]["attempts"] == 2


def test_log_appended_by_name_keeps_header(ws):
    ws.write("""
        [pipeline]
        name = "appending"

        [steps.note]
        command = 'echo one; echo two >> "$SEEDRUN_RUN_DIR/note.log"; echo three'
    """)
    result = ws.run("run")

    assert result.code == 0, result.out + result.err
    assert not any(line.startswith("Warning:") for line in result.lines), result.out
    _, body, _ = split_log((ws.run_dir / "note.log").read_bytes())
    assert body == b"one\ntwo\nthree\n"


def test_gigabyte_output_logged_whole(ws):
    size = 1_000_000_000
    free = shutil.disk_usage(ws.path).free
    if free < 3 * 1024 ** 3:
        pytest.skip("needs 3 GB free on the disk of %s for a 1 GB log; %.1f GB free" % (ws.path, free / 1024 ** 3))
    ws.write("""
        [pipeline]
        name = "gigabyte"

        [steps.flood]
        command = "head -c %d /dev/zero"
    """ % size)
    log = None
    try:
        started = time.monotonic()
        result = ws.run("run", timeout=300)
        seconds = time.monotonic() - started
        log = ws.run_dir / "flood.log"

        assert result.code == 0, result.out + result.err
        assert seconds < 90, "writing 1 GB took %.0fs" % seconds
        assert ws.steps()["flood"]["status"] == "succeeded"
        with open(log, "rb") as f:
            header = b"".join(f.readline() for _ in range(HEADER_LINES))
            assert header.startswith(b"[seedrun] step flood, attempt 1 of 1, started ")
            chunk = 16 * 1024 * 1024
            zeros = bytes(chunk)
            left = size
            while left:
                piece = f.read(min(chunk, left))
                assert piece == zeros[:len(piece)], "the body differs near byte %d" % (size - left)
                left -= len(piece)
            footer = f.read()
        assert log.stat().st_size == len(header) + size + len(footer)
        footer_text = footer.decode().lstrip("\n")
        assert all(line.startswith("[seedrun] ") for line in footer_text.splitlines()), footer_text
        assert footer_text.splitlines()[-1].startswith("[seedrun] exit code 0 after ")
    finally:
        if log is not None:
            log.unlink(missing_ok=True)


DURATION = r"\d+(\.\d)?s|\d+m\d\ds|\d+h\d\dm"


def test_parallel_console_lines_never_mix(ws):
    count = 40
    names = ["vendor-catalog-sync-with-a-deliberately-long-step-name-%02d" % i for i in range(count)]
    steps = "\n".join("[steps.%s]\ncommand = \"printf 'step-output %%0200d\\\\n' 0; sleep 0.%d\"\n"
                      % (name, i % 3) for i, name in enumerate(names))
    deep = "operators/vendor-sync-pipelines-of-the-catalog-team/nightly-production-runs"
    (ws.path / deep).mkdir(parents=True)
    ws.write('[pipeline]\nname = "console"\njobs = %d\n\n%s' % (count, steps), name=deep + "/pipeline.toml")
    result = ws.run("--pipeline", deep + "/pipeline.toml", "run", timeout=180)

    assert result.code == 0, result.out + result.err
    run_id = ws.record(ws.path / deep / "logs" / "latest")["run_id"]
    logs = re.escape("%s/logs/%s" % (deep, run_id))
    name = "(%s)" % "|".join(re.escape(n) for n in names)
    forms = [
        r"Run %s: %d steps, up to %d at once \(logs: %s/\)" % (re.escape(run_id), count, count, logs),
        r"Starting: %s" % name,
        r"Finished: %s in (%s) \(log: %s/(?P<logged>[^/]+)\.log\)" % (name, DURATION, logs),
        r"Run %s succeeded in (%s): %d succeeded" % (re.escape(run_id), DURATION, count),
        r"Report: %s/reports/%s\.html" % (re.escape(deep), re.escape(run_id)),
    ]
    patterns = [re.compile(form) for form in forms]
    assert max(len(line) for line in result.lines) > 100
    started, finished = [], []
    for line in result.lines:
        matches = [m for m in (p.fullmatch(line) for p in patterns) if m]
        assert matches, "console line of no documented form: %r" % line
        if line.startswith("Starting: "):
            started.append(matches[0].group(1))
        if line.startswith("Finished: "):
            assert matches[0].group("logged") == matches[0].group(1), line
            finished.append(matches[0].group(1))
    assert sorted(started) == names
    assert sorted(finished) == names
    assert "step-output" not in result.out + result.err


PIPES = {
    "last-succeeds": "false | true",
    "last-fails": "true | false",
    "writer-fails": "{ echo rows; exit 3; } | cat",
}


def test_pipe_status_recorded_as_shell_reports(ws):
    steps = "\n".join("[steps.%s]\ncommand = '%s'\n" % (name, command) for name, command in PIPES.items())
    ws.write('[pipeline]\nname = "pipes"\njobs = 3\n\n' + steps)
    result = ws.run("run")

    assert result.code == 1, result.out + result.err
    recorded = ws.steps()
    for name, command in PIPES.items():
        expected = subprocess.run(["/bin/sh", "-c", command], stdout=subprocess.DEVNULL).returncode
        assert recorded[name]["exit_code"] == expected, name
        assert recorded[name]["status"] == ("succeeded" if expected == 0 else "failed"), name
    # dash has no pipefail: a pipe reports its last command's status.
    assert recorded["last-succeeds"]["exit_code"] == 0
    assert recorded["last-fails"]["exit_code"] == 1
    assert recorded["writer-fails"]["exit_code"] == 0
    assert "\nrows\n" in ws.log("writer-fails")

    rules = (ws.run_dir / "rules.mk").read_text()
    recipes = [line for line in rules.splitlines() if line.startswith("\t")]
    assert recipes
    assert "tee" not in rules
    for line in recipes:
        assert "|" not in line, line


HUGE_LOGS = """
    [pipeline]
    name = "huge"
    jobs = 3

    [steps.one-line]      # a single 64 MiB line, then a metric
    command = '''head -c 67108864 /dev/zero | tr '\\0' x; printf '\\nUpserted 42 products\\nTAIL-MARKER-1\\n'; exit 1'''
    metrics = { products = 'Upserted (\\d+) products' }

    [steps.many-lines]    # 2,000,000 short lines, about 20 MB
    command = "yes 'row,1,2,3' | head -n 2000000; echo TAIL-MARKER-2; exit 1"

    [steps.small]
    command = "echo small-ok"
"""

# Re-render the report in a fresh interpreter whose only child is seedrun,
# so RUSAGE_CHILDREN reports the peak RSS of the report alone.
MEASURE_REPORT = """
import resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def test_report_of_huge_failed_logs_stays_small(ws):
    ws.write(HUGE_LOGS)
    result = ws.run("run", timeout=180)

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.out + result.err
    steps = ws.steps()
    assert steps["one-line"]["metrics"] == {"products": 42}
    assert steps["small"]["status"] == "succeeded"
    report = ws.path / "reports" / ("%s.html" % ws.record()["run_id"])
    first = report.read_bytes()
    assert len(first) < 10 * 1024 * 1024
    assert "TAIL-MARKER-1" in first.decode("utf-8")
    assert "TAIL-MARKER-2" in first.decode("utf-8")

    measured = ws.call([sys.executable, "-c", MEASURE_REPORT, SEEDRUN, "report"], timeout=120)
    code, seconds, peak = measured.out.split()
    assert int(code) == 0, measured.err
    assert float(seconds) < 30
    assert int(peak) < 1024 ** 3
    assert len(report.read_bytes()) < 10 * 1024 * 1024


def test_metrics_skip_seedrun_header_lines(ws):
    # The header repeats the command line and "attempt 1 of 1": a metric's
    # regex must find only what the command printed.
    ws.write('''
        [pipeline]
        name = "metrics"

        [steps.sync]
        command = "echo sync 50000 products > /dev/null; echo nothing to do"
        metrics = { products = '(\\d+) products', attempts = 'of (\\d+)' }
        metric_floors = { products = 20000 }

        [steps.multi-line]
        command = \'\'\'echo nothing to do
        # upserts 40000 products per batch\'\'\'
        metrics = { products = '(\\d+) products' }
        metric_floors = { products = 20000 }
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    steps = ws.steps()
    assert "[seedrun] command: echo sync 50000 products" in ws.log("sync")
    assert steps["sync"]["metrics"] == {}
    assert steps["sync"]["warnings"] == ["products was not reported, but its floor is 20000"]
    assert ("[seedrun] command: echo nothing to do\n"
            "[seedrun]          # upserts 40000 products per batch\n") in ws.log("multi-line")
    assert steps["multi-line"]["metrics"] == {}
    assert steps["multi-line"]["warnings"] == ["products was not reported, but its floor is 20000"]


def test_metrics_come_from_last_attempt(ws):
    # The first attempt prints the summary line and fails; the retry that
    # succeeds prints none, so its floor warning must fire.
    ws.write('''
        [pipeline]
        name = "metrics"

        [steps.retry]
        command = 'if [ -e "$T/once" ]; then echo quiet; else touch "$T/once"; echo "Upserted 50000 products"; exit 1; fi'
        retries = 1
        retry_delay = "0s"
        metrics = { products = 'Upserted (\\\\d+) products' }
        metric_floors = { products = 10000 }
    ''')
    result = ws.run("run")
    assert result.code == 0, result.out + result.err
    step = ws.steps()["retry"]
    assert step["attempts"] == 2
    assert "Upserted 50000 products" in ws.log("retry")
    assert step["metrics"] == {}
    assert step["warnings"] == ["products was not reported, but its floor is 10000"]


def test_step_runner_error_fails_only_its_step(ws):
    # A spec with an environment variable name that posix_spawn() rejects
    # makes the step runner raise ValueError after it wrote the log header.
    ws.write("""
        [pipeline]
        name = "broken-spec"
        jobs = 2

        [steps.a]
        command = 'echo a'

        [steps.b]
        command = 'test -f "$T/fixed"'

        [steps.c]
        command = 'echo c'
        needs = ["b"]
    """)
    assert ws.run("run").code == 1
    specs_path = ws.run_dir / ".seedrun" / "specs"
    specs = marshal.loads(specs_path.read_bytes())
    specs["b"]["env"] = {"A=B": "v"}
    specs_path.write_bytes(marshal.dumps(specs))

    result = ws.run("resume")
    assert result.code == 1, result.out + result.err
    reason = ("seedrun's step runner failed: ValueError: illegal environment variable name "
              "(the traceback is in make.log)")
    assert "Failed: b, %s (see logs/%s/b.log)" % (reason, ws.run_dir.name) in result.lines, result.out
    assert "Skipped: c (needs b, which failed)" in result.lines
    assert not any(line.startswith(("Error:", "Interrupted:")) for line in result.lines), result.out
    record = ws.record()
    assert record["status"] == "failed"
    steps = ws.steps()
    assert steps["b"]["status"] == "failed"
    assert steps["b"]["reason"] == reason
    assert steps["c"]["status"] == "skipped"
    assert ws.log("b").splitlines()[-1].startswith("[seedrun] failed after ")
    assert "ValueError: illegal environment variable name" in (ws.run_dir / "make.log").read_text()
