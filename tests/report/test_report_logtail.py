"""Tests for bounded log excerpts and error scans on hostile logs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from seedrun.logtail import MAX_COUNTED_ERRORS, excerpt, scan_errors

MIB = 1024 * 1024


def write_lines(path: Path, count: int) -> None:
    """Write count lines 'line N' quickly, in blocks of 10,000."""
    with open(path, "wb") as log:
        for block in range(0, count, 10_000):
            log.write(b"".join(b"line %d\n" % number for number in range(block, min(count, block + 10_000))))


def write_one_line(path: Path, size: int, tail: bytes = b"") -> None:
    """Write a log whose second line is size bytes long, then tail."""
    with open(path, "wb") as log:
        log.write(b"[seedrun] attempt 1 started\n")
        chunk = b"x" * MIB
        for _ in range(size // MIB):
            log.write(chunk)
        log.write(tail)


def test_excerpt_small_log_shows_all_lines(tmp_path: Path) -> None:
    log = tmp_path / "small.log"
    log.write_bytes(b"one\ntwo\nthree\n")
    found = excerpt(log)
    assert found.lines == ["one", "two", "three"]
    assert found.omission is None
    assert found.note is None


def test_excerpt_cleans_hostile_bytes(tmp_path: Path) -> None:
    log = tmp_path / "hostile.log"
    log.write_bytes(
        b"\x1b[31mred\x1b[0m text\n"
        b"nul\x00byte\n"
        b"bad \xff\xfe utf-8\n"
        b"progress 10%\rprogress 100%\r\n"
        b"bell\x07 and \x1b]0;title\x07osc\n"
        b"\xe2\x80\xaedesrever\xe2\x80\xac and \xe2\x81\xa6isolate\xe2\x81\xa9\n"
    )
    lines = excerpt(log).lines
    assert lines[0] == "red text"
    assert lines[1] == "nul\u2400byte"
    assert lines[2] == "bad \ufffd\ufffd utf-8"
    assert lines[3] == "progress 100%"
    assert lines[4] == "bell\u2407 and osc"
    assert lines[5] == "<U+202E>desrever<U+202C> and <U+2066>isolate<U+2069>"


def test_excerpt_64_mib_single_line(tmp_path: Path) -> None:
    log = tmp_path / "one-line.log"
    write_one_line(log, 64 * MIB, b" last words\n[seedrun] attempt 1 failed\n")
    started = time.perf_counter()
    found = excerpt(log, display_path="logs/run/one-line.log")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    assert found.head[0] == "[seedrun] attempt 1 started"
    assert all(len(line.encode()) <= 4096 + 64 for line in found.lines)
    assert found.tail[-1] == "[seedrun] attempt 1 failed"
    assert found.tail[-2].endswith("x last words")
    assert found.omission is not None
    assert found.omission.endswith("bytes omitted, full log: logs/run/one-line.log")
    shown = sum(len(line.encode()) for line in found.lines)
    assert shown < 64 * 1024


def test_excerpt_omitted_count_is_exact(tmp_path: Path) -> None:
    log = tmp_path / "lines.log"
    write_lines(log, 1000)
    found = excerpt(log, head_lines=2, tail_lines=3)
    assert found.head == ("line 0", "line 1")
    assert found.tail == ("line 997", "line 998", "line 999")
    shown_bytes = len(b"line 0\nline 1\n") + len(b"line 997\nline 998\nline 999\n")
    assert found.omitted_bytes == log.stat().st_size - shown_bytes
    assert found.omission == f"… {found.omitted_bytes:,} bytes omitted, full log: {log}"


def test_excerpt_two_million_lines(tmp_path: Path) -> None:
    log = tmp_path / "many.log"
    write_lines(log, 2_000_000)
    started = time.perf_counter()
    found = excerpt(log)
    assert time.perf_counter() - started < 0.2
    assert found.head == tuple(f"line {number}" for number in range(5))
    assert found.tail == tuple(f"line {number}" for number in range(1_999_960, 2_000_000))


def test_excerpt_long_line_cut_with_note(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    log.write_bytes(b"short\n" + b"y" * 300 + b"\nend\n")
    found = excerpt(log, max_line_bytes=100)
    assert found.lines == ["short", "y" * 100 + " … 200 bytes omitted", "end"]


def test_excerpt_masks_secret_across_cut(tmp_path: Path) -> None:
    log = tmp_path / "secret.log"
    log.write_bytes(b"a" * 95 + b"topsecretvalue" + b"b" * 200 + b"\n")
    line = excerpt(log, max_line_bytes=100, secret_values=["topsecretvalue"]).lines[0]
    assert "tops" not in line
    assert line.startswith("a" * 95 + "***")


def test_excerpt_masks_secret_split_by_colour(tmp_path: Path) -> None:
    log = tmp_path / "colour.log"
    log.write_bytes(b"token: top\x1b[1msecretvalue\x1b[0m\n")
    assert excerpt(log, secret_values=["topsecretvalue"]).lines == ["token: ***"]


def test_excerpt_missing_log(tmp_path: Path) -> None:
    found = excerpt(tmp_path / "absent.log", display_path="logs/run/absent.log")
    assert found.note == "log not found: logs/run/absent.log"
    assert found.lines == []


def test_excerpt_directory_in_place_of_log(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    found = excerpt(tmp_path / "dir.log")
    assert found.note is not None
    assert "not a regular file" in found.note


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file with mode 000")
def test_excerpt_unreadable_log(tmp_path: Path) -> None:
    log = tmp_path / "locked.log"
    log.write_text("secret stuff\n")
    log.chmod(0)
    found = excerpt(log)
    assert found.note is not None
    assert found.note.startswith("log could not be read")


def test_excerpt_empty_log(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_bytes(b"")
    found = excerpt(log)
    assert found.lines == []
    assert found.size == 0


def test_scan_errors_finds_error_lines(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    log.write_text(
        "[seedrun] attempt 1 started\n"
        "fetching\n"
        "Traceback (most recent call last):\n"
        "ValueError: bad price\n"
        "error: upload failed\n"
        "0 errors reported\n"
        "FATAL out of memory\n"
        "[seedrun] attempt 1 failed with exit code 1\n"
    )
    found = scan_errors(log)
    assert found.lines == (
        "Traceback (most recent call last):",
        "ValueError: bad price",
        "error: upload failed",
        "FATAL out of memory",
    )
    assert found.found == 4
    assert found.note is None


def test_scan_errors_keeps_first_and_last(tmp_path: Path) -> None:
    log = tmp_path / "repeated.log"
    log.write_text("".join(f"error: retry {number}\n" for number in range(100)))
    found = scan_errors(log, max_lines=4)
    assert found.lines == ("error: retry 0", "error: retry 1", "error: retry 98", "error: retry 99")
    assert found.found == 100


def test_scan_errors_bounded_on_large_log(tmp_path: Path) -> None:
    log = tmp_path / "large.log"
    with open(log, "wb") as output:
        output.write(b"Error: early, outside the scanned range\n")
        output.truncate(64 * MIB)
        output.seek(0, os.SEEK_END)
        output.write(b"\nerror: near the end\n")
    started = time.perf_counter()
    found = scan_errors(log, max_scan_bytes=MIB)
    assert time.perf_counter() - started < 0.5
    assert found.lines == ("error: near the end",)
    assert found.note == f"scanned only the last {MIB:,} of {log.stat().st_size:,} bytes"


def test_scan_errors_counts_up_to_limit(tmp_path: Path) -> None:
    log = tmp_path / "all-errors.log"
    log.write_text("".join(f"error: line {number}\n" for number in range(5000)))
    found = scan_errors(log, max_lines=2)
    assert found.found == MAX_COUNTED_ERRORS
    assert found.lines == ("error: line 0", "error: line 4999")


def test_scan_errors_long_line_match(tmp_path: Path) -> None:
    log = tmp_path / "long-error.log"
    log.write_bytes(b"z" * 20_000 + b" Error: token abcd1234efgh rejected\n")
    found = scan_errors(log, max_line_bytes=200, secret_values=["abcd1234efgh"])
    assert len(found.lines) == 1
    assert "Error: token *** rejected" in found.lines[0]
    assert "abcd1234" not in found.lines[0]


def test_scan_errors_missing_log(tmp_path: Path) -> None:
    found = scan_errors(tmp_path / "absent.log")
    assert found.lines == ()
    assert found.note is not None
    assert found.note.startswith("log not found")


def test_excerpt_open_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "locked.log"
    log.write_text("hidden\n")

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Root can read files with mode 000, so the denial is simulated.
    monkeypatch.setattr("seedrun.logtail.open", deny, raising=False)
    found = excerpt(log, display_path="logs/run/locked.log")
    assert found.note == "log could not be read: logs/run/locked.log (Permission denied)"
    scan = scan_errors(log, display_path="logs/run/locked.log")
    assert scan.note == "log could not be read: logs/run/locked.log (Permission denied)"


def test_scan_errors_near_misses_on_one_line(tmp_path: Path) -> None:
    # One line of minified JSON with a key such as "is_error" in every
    # record: each key looks like an error word, but none is one.
    log = tmp_path / "minified.log"
    record = b'{"id": 1, "is_error": false}, '
    log.write_bytes(b"[" + record * (2 * MIB // len(record)) + b"]\nError: upload rejected\n")
    started = time.perf_counter()
    found = scan_errors(log)
    assert time.perf_counter() - started < 1.0
    assert found.lines == ("Error: upload rejected",)


def test_excerpt_masks_coloured_secret_across_cut(tmp_path: Path) -> None:
    # A colour code splits the secret in the bytes, and a cut at
    # max_line_bytes falls inside it, on the right of a head line and on
    # the left of the tail line that only partly fits.
    log = tmp_path / "colour-cut.log"
    secret = b"top\x1b[1msecretvalue\x1b[0m"
    head_line = b"x" * 90 + b"Error: " + secret + b"y" * 200
    tail_line = b"z" * 150 + b"Error: " + secret + b"y" * 80
    log.write_bytes(b"header\n" + head_line + b"\n" + tail_line + b"\n")
    found = excerpt(log, head_lines=2, tail_lines=1, max_line_bytes=100, secret_values=["topsecretvalue"])
    assert found.head[1].startswith("x" * 90 + "Error: ***")
    assert "top" not in found.head[1]
    assert found.tail[0].startswith("…***")
    assert "value" not in found.tail[0]
    errors = scan_errors(log, max_line_bytes=100, secret_values=["topsecretvalue"])
    assert len(errors.lines) == 2
    for error_line in errors.lines:
        assert "top" not in error_line
        assert "Error: ***" in error_line


def test_scan_errors_finds_coloured_error_words(tmp_path: Path) -> None:
    # Compilers and loggers colour the error word itself, so a colour code
    # ends right before it, as gcc, rustc and coloured log levels do.
    log = tmp_path / "coloured.log"
    log.write_bytes(
        b"building\n"
        b"main.c:3:5: \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[K'x' undeclared\n"
        b"\x1b[0m\x1b[1m\x1b[38;5;9merror[E0425]\x1b[0m: cannot find value\n"
        b"2026-12-05 \x1b[31mERROR\x1b[0m could not connect to the database\n"
        b"a \x1b[32mterror\x1b[0m story, with no word of the list\n"
    )
    found = scan_errors(log)
    assert found.lines == (
        "main.c:3:5: error: 'x' undeclared",
        "error[E0425]: cannot find value",
        "2026-12-05 ERROR could not connect to the database",
    )
    assert found.found == 3
