"""Read bounded excerpts of step logs for reports.

Step logs contain arbitrary bytes and can be gigabytes long, so every function
here reads a bounded window: the cost depends on the limits passed in, not on
the size of the log. Displayed text is decoded as UTF-8 with replacement
characters, ANSI escape codes are stripped, carriage returns are resolved the way
a terminal shows the line, and other control characters (NUL included) are shown
as Unicode control pictures such as ␀.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from seedrun.secrets import MASK, bytes_pattern, longest_secret_bytes, mask, mask_bytes
from seedrun.step import LOG_LINE_PREFIX

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
MAX_COUNTED_ERRORS = 1000
ELLIPSIS = "…"
RUNNER_LINE_PREFIX = LOG_LINE_PREFIX.encode()

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks),
# DCS/SOS/PM/APC strings, two-byte escapes, and a CSI cut off at the end of a line.
ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|[@-Z\\-_]"
    r"|\[[0-?]*[ -/]*$)"
)
ANSI_ESCAPE_BYTES = re.compile(ANSI_ESCAPE.pattern.encode())
# How many bytes of escape codes a secret split by colour codes may contain
# and still be kept whole when a line is cut inside it.
SPLIT_SECRET_ESCAPE_BYTES = 256
# How far before an error keyword the colour codes that precede it are looked for.
ESCAPE_LOOKBEHIND = 64
# Tab stays as it is. Other C0 controls and DEL become their control pictures (U+2400 block).
CONTROL_PICTURES = {code: 0x2400 + code for code in range(0x20) if code != 0x09}
CONTROL_PICTURES[0x7F] = 0x2421
# Bidirectional formatting characters reorder the text around them (U+202E
# shows "reversed" as "desrever"), so a log line could read as something it
# is not. They are shown by their code point instead.
BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
CONTROL_PICTURES.update({code: "<U+%04X>" % code for code in BIDI_CONTROLS})

ERROR_KEYWORDS = re.compile(rb"traceback|error\b|exception\b|fatal\b|failed\b|panic:")
ERROR_PATTERN = re.compile(
    rb"Traceback|Error\b|Exception\b|\berror\b|\bERROR\b|\bFATAL\b|\bfatal\b"
    rb"|\b[Ff]ailed\b|\bFAILED\b|\bpanic:"
)


@dataclass(frozen=True)
class Excerpt:
    """Display lines from the start and the end of a log.

    `omission` is the note shown between head and tail when bytes were left out.
    `note` is set instead of lines when the log is missing or cannot be read.
    """

    head: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    omitted_bytes: int = 0
    omission: str | None = None
    size: int | None = None
    note: str | None = None

    @property
    def lines(self) -> list[str]:
        """Return head, omission note and tail as one list of display lines."""
        middle = [self.omission] if self.omission else []
        return [*self.head, *middle, *self.tail]


@dataclass(frozen=True)
class ErrorScan:
    """Error-looking lines found near the end of a log.

    `found` counts the matching lines in the scanned range up to
    MAX_COUNTED_ERRORS, so found == MAX_COUNTED_ERRORS means "at least that many".
    `lines` keeps at most the limit passed to scan_errors, taken from the start and
    the end of the range.
    """

    lines: tuple[str, ...] = ()
    found: int = 0
    scanned_bytes: int = 0
    size: int | None = None
    note: str | None = None


class _Span(NamedTuple):
    begin: int
    end: int
    match_start: int


@dataclass(frozen=True)
class _Limits:
    max_line_bytes: int
    margin: int
    secret_values: Sequence[str]


def excerpt(
    path: Path,
    *,
    tail_lines: int = 40,
    head_lines: int = 5,
    max_line_bytes: int = 4096,
    secret_values: Sequence[str] = (),
    display_path: str | None = None,
) -> Excerpt:
    """Read the first head_lines and last tail_lines lines of a log.

    Reads at most about (head_lines + tail_lines + 1) * max_line_bytes bytes. Longer
    lines are cut with a "… N bytes omitted" note. A missing or unreadable log
    returns an Excerpt whose `note` gives the reason. display_path names the full log in
    the omission note and defaults to str(path).
    """
    shown_path = display_path or str(path)
    limits = _Limits(max_line_bytes, longest_secret_bytes(secret_values), secret_values)
    opened = _open_log(path, shown_path)
    if isinstance(opened, str):
        return Excerpt(note=opened)
    log, size = opened
    try:
        with log:
            head, head_end, head_partial = _read_head(log, size, head_lines, limits)
            tail, tail_start = _read_tail(log, size, head_end, head_partial, tail_lines, limits)
    except OSError as error:
        return Excerpt(size=size, note=_read_failure_note(path, shown_path, error))
    omitted = tail_start - head_end
    omission = None
    if omitted > 0:
        omission = f"{ELLIPSIS} {omitted:,} bytes omitted, full log: {shown_path}"
    return Excerpt(tuple(head), tuple(tail), omitted, omission, size)


def scan_errors(
    path: Path,
    *,
    max_scan_bytes: int = 2 * 1024 * 1024,
    max_lines: int = 20,
    max_line_bytes: int = 512,
    secret_values: Sequence[str] = (),
    display_path: str | None = None,
) -> ErrorScan:
    """Find error-looking lines in the last max_scan_bytes of a log.

    Lines written by the runner itself (starting with "[seedrun] ") are ignored.
    When more than max_lines match, the first and last halves of the matches are
    kept. `note` is set when the scan covered only part of the log.
    """
    shown_path = display_path or str(path)
    opened = _open_log(path, shown_path)
    if isinstance(opened, str):
        return ErrorScan(note=opened)
    log, size = opened
    start = max(0, size - max_scan_bytes)
    try:
        with log:
            log.seek(start)
            data = log.read(size - start)
    except OSError as error:
        return ErrorScan(size=size, note=_read_failure_note(path, shown_path, error))
    limits = _Limits(max_line_bytes, longest_secret_bytes(secret_values), secret_values)
    spans, found = _find_error_spans(data, max_lines, skip_first=limits.margin if start else 0)
    lines = tuple(_render_error_line(data, span, limits) for span in spans)
    note = None
    if start > 0:
        note = f"scanned only the last {len(data):,} of {size:,} bytes"
    return ErrorScan(lines, found, len(data), size, note)


def clean_text(raw: bytes, secret_values: Sequence[str] = ()) -> str:
    """Decode one line of log output for display.

    Invalid UTF-8 becomes U+FFFD, ANSI escape codes are removed, text before the
    last carriage return is dropped (as a terminal overwrites it), control
    characters become visible control pictures, and bidirectional formatting
    characters their code points (<U+202E>). Secrets are masked again after
    escape codes are gone, because colour codes can split a secret in the bytes.
    """
    text = raw.decode("utf-8", "replace")
    text = ANSI_ESCAPE.sub("", text)
    text = _resolve_carriage_returns(text)
    return mask(text, secret_values).translate(CONTROL_PICTURES)


def _open_log(path: Path, shown_path: str) -> tuple[BinaryIO, int] | str:
    """Open a regular file for reading, or return a note saying why it cannot be read."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return f"log is not a regular file: {shown_path}"
        log = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        return f"log not found: {shown_path}"
    except OSError as error:
        return _read_failure_note(path, shown_path, error)
    return log, os.fstat(log.fileno()).st_size


def _read_failure_note(path: Path, shown_path: str, error: OSError) -> str:
    logger.warning("cannot read log %s: %s", path, error)
    return f"log could not be read: {shown_path} ({error.strerror or error})"


def _read_head(
    log: BinaryIO, size: int, head_lines: int, limits: _Limits
) -> tuple[list[str], int, bool]:
    """Return the first lines, the file offset where they end, and whether the last one was cut."""
    if head_lines <= 0:
        return [], 0, False
    window = min(size, head_lines * (limits.max_line_bytes + 1) + limits.margin)
    log.seek(0)
    data = log.read(window)
    lines: list[str] = []
    position = 0
    while len(lines) < head_lines and position < len(data):
        newline = data.find(b"\n", position)
        if newline == -1 and len(data) < size:
            cut = _partial_head_end(data, position, limits)
            lines.append(_render_line(data, position, cut, limits))
            return lines, cut, True
        end = len(data) if newline == -1 else newline
        lines.append(_render_line(data, position, end, limits))
        position = end + 1
    return lines, min(position, size), False


def _partial_head_end(data: bytes, position: int, limits: _Limits) -> int:
    """Return where to cut a head line that continues past the bytes read.

    The last `margin` bytes stay hidden, because a secret there may continue
    beyond the window and could not be recognised.
    """
    end = min(position + limits.max_line_bytes, len(data) - limits.margin)
    return _char_start(data, max(end, position))


def _read_tail(
    log: BinaryIO,
    size: int,
    floor: int,
    floor_is_partial: bool,
    tail_lines: int,
    limits: _Limits,
) -> tuple[list[str], int]:
    """Return the last lines after offset floor and the file offset where they start."""
    if tail_lines <= 0 or floor >= size:
        return [], size
    max_window = (tail_lines + 1) * (limits.max_line_bytes + 1) + limits.margin
    start, data = _read_backwards(log, size, floor, tail_lines, max_window)
    at_line_start = _is_line_start(log, start, floor, floor_is_partial)
    body_end = len(data) - 1 if data.endswith(b"\n") else len(data)
    offsets = _line_starts(data, body_end, tail_lines)
    first = offsets[0]
    if first == 0 and not at_line_start:
        return _tail_from_fragment(data, body_end, offsets, start, limits)
    lines = _render_lines(data, body_end, offsets, limits)
    return lines, start + first


def _tail_from_fragment(
    data: bytes, body_end: int, offsets: list[int], start: int, limits: _Limits
) -> tuple[list[str], int]:
    """Render tail lines whose first line began before the bytes that were read.

    Of that first line only its last max_line_bytes are shown, and never its first
    `margin` bytes, where a secret could begin before the window.
    """
    fragment_end = offsets[1] - 1 if len(offsets) > 1 else body_end
    shown_from = max(limits.margin, fragment_end - limits.max_line_bytes)
    shown_from = _char_end(data, min(shown_from, fragment_end))
    rest = _render_lines(data, body_end, offsets[1:], limits)
    if shown_from >= fragment_end:
        return rest, start + min(fragment_end + 1, len(data))
    fragment = ELLIPSIS + _render_line(data, shown_from, fragment_end, limits)
    return [fragment, *rest], start + shown_from


def _read_backwards(
    log: BinaryIO, size: int, floor: int, tail_lines: int, max_window: int
) -> tuple[int, bytes]:
    """Read chunks backwards from the end until tail_lines + 1 line breaks or max_window bytes."""
    chunks: list[bytes] = []
    position = size
    line_breaks = 0
    while position > floor and size - position < max_window:
        step = min(CHUNK_BYTES, position - floor, max_window - (size - position))
        position -= step
        log.seek(position)
        chunk = log.read(step)
        chunks.append(chunk)
        line_breaks += chunk.count(b"\n")
        if line_breaks > tail_lines + 1:
            break
    return position, b"".join(reversed(chunks))


def _is_line_start(log: BinaryIO, start: int, floor: int, floor_is_partial: bool) -> bool:
    if start == floor:
        return not floor_is_partial
    log.seek(start - 1)
    return log.read(1) == b"\n"


def _line_starts(data: bytes, body_end: int, tail_lines: int) -> list[int]:
    """Return the offsets in data of the last tail_lines lines (all of them when fewer)."""
    starts: deque[int] = deque(maxlen=tail_lines)
    position = body_end
    while len(starts) < tail_lines:
        newline = data.rfind(b"\n", 0, position)
        starts.appendleft(newline + 1)
        if newline == -1:
            break
        position = newline
    return list(starts)


def _render_lines(data: bytes, body_end: int, offsets: list[int], limits: _Limits) -> list[str]:
    """Render the lines that start at offsets, the last one ending at body_end."""
    if not offsets:
        return []
    ends = [offset - 1 for offset in offsets[1:]] + [body_end]
    return [_render_line(data, begin, end, limits) for begin, end in zip(offsets, ends, strict=True)]


def _render_line(data: bytes, begin: int, end: int, limits: _Limits) -> str:
    """Mask, cut and clean data[begin:end], adding a note for the bytes cut off."""
    cut = end
    if end - begin > limits.max_line_bytes:
        cut = _char_start(data, begin + limits.max_line_bytes)
    begin, lead, cut, trail = _bounds_outside_split_secrets(data, begin, cut, limits)
    raw = mask_bytes(data, limits.secret_values, begin, cut) if begin < cut else b""
    text = lead + clean_text(raw, limits.secret_values) + trail
    if cut < end:
        text += f" {ELLIPSIS} {end - cut:,} bytes omitted"
    return text


def _bounds_outside_split_secrets(
    data: bytes, begin: int, cut: int, limits: _Limits
) -> tuple[int, str, int, str]:
    """Move begin and cut out of any secret they fall inside; return (begin, lead, cut, trail).

    mask_bytes() finds a secret only when its bytes are contiguous, and
    clean_text() masks one that escape codes split only when all of it is
    shown. A bound in the middle of a line can fall inside such a secret, so
    that bound moves to the secret's edge and lead or trail is *** for it.
    """
    pattern = bytes_pattern(limits.secret_values)
    cuts_left = begin > 0 and data[begin - 1:begin] != b"\n"
    cuts_right = cut < len(data) and data[cut:cut + 1] != b"\n"
    if pattern is None or not (cuts_left or cuts_right):
        return begin, "", cut, ""
    reach = limits.margin + SPLIT_SECRET_ESCAPE_BYTES
    low = max(0, begin - reach) if cuts_left else begin
    high = min(len(data), cut + reach) if cuts_right else cut
    stripped, stripped_starts, raw_starts = _strip_escapes(data, low, high)
    lead = trail = ""
    new_begin, new_cut = begin, cut
    for match in pattern.finditer(stripped):
        first = _raw_offset(stripped_starts, raw_starts, match.start())
        last = _raw_offset(stripped_starts, raw_starts, match.end() - 1) + 1
        if first < begin < last:
            new_begin, lead = max(new_begin, last), MASK
        if first < cut < last:
            new_cut, trail = min(new_cut, first), MASK
    return new_begin, lead, max(new_cut, new_begin), trail


def _strip_escapes(data: bytes, low: int, high: int) -> tuple[bytes, list[int], list[int]]:
    """Return data[low:high] without ANSI escape codes, and where each kept run of bytes starts in both."""
    pieces: list[bytes] = []
    stripped_starts: list[int] = []
    raw_starts: list[int] = []
    length = 0
    position = low
    for escape in [*ANSI_ESCAPE_BYTES.finditer(data, low, high), None]:
        stop = high if escape is None else escape.start()
        if stop > position:
            stripped_starts.append(length)
            raw_starts.append(position)
            pieces.append(data[position:stop])
            length += stop - position
        if escape is not None:
            position = escape.end()
    return b"".join(pieces), stripped_starts, raw_starts


def _raw_offset(stripped_starts: list[int], raw_starts: list[int], offset: int) -> int:
    """Map an offset in the stripped bytes back to its offset in the log data."""
    index = bisect.bisect_right(stripped_starts, offset) - 1
    return raw_starts[index] + offset - stripped_starts[index]


def _find_error_spans(data: bytes, max_lines: int, skip_first: int) -> tuple[list[_Span], int]:
    """Return the kept error lines and the number of error lines found.

    Counting stops at MAX_COUNTED_ERRORS. Past that, the last half of the kept
    lines comes from a search of growing windows at the end of data, so a log
    made of error lines costs about as much as a log with a thousand of them.
    """
    lowered = data.lower()
    spans, complete = _collect_error_spans(data, lowered, 0, MAX_COUNTED_ERRORS, skip_first)
    first_count = max_lines // 2
    last_count = max_lines - first_count
    if complete:
        kept_last = spans[first_count:][-last_count:] if last_count else []
        return spans[:first_count] + kept_last, len(spans)
    floor = spans[first_count - 1].end + 1 if first_count else 0
    return spans[:first_count] + _last_error_spans(data, lowered, floor, last_count), len(spans)


def _last_error_spans(data: bytes, lowered: bytes, floor: int, count: int) -> list[_Span]:
    """Return the last `count` error lines that start at or after offset floor."""
    window = CHUNK_BYTES
    while count > 0:
        start = max(floor, len(data) - window)
        if start > floor:
            start = data.find(b"\n", start) + 1 or len(data)
        spans, _ = _collect_error_spans(data, lowered, start, None, 0)
        if len(spans) >= count or start <= floor:
            return spans[-count:]
        window *= 4
    return []


def _collect_error_spans(
    data: bytes, lowered: bytes, position: int, limit: int | None, skip_first: int
) -> tuple[list[_Span], bool]:
    """Collect error lines from offset position on, and return whether the search reached the end.

    ERROR_KEYWORDS over the lowercased bytes finds candidates, and ERROR_PATTERN
    checks a few bytes around each one. The word boundaries in ERROR_PATTERN make it
    several times slower when run over the whole scan. skip_first hides the first
    bytes of data, which may start in the middle of a line.
    """
    spans: list[_Span] = []
    while (candidate := ERROR_KEYWORDS.search(lowered, position)) is not None:
        if limit is not None and len(spans) >= limit:
            return spans, False
        # The check looks only a few bytes around the candidate, so the ends
        # of the line are found only after a match. Finding them first made the
        # scan quadratic on a long line with many near misses such as "is_error".
        match_start = _error_match_start(data, candidate.start(), candidate.end())
        if match_start is None:
            position = candidate.end()
            continue
        line_start = data.rfind(b"\n", 0, candidate.start()) + 1
        end = _find_or(data, b"\n", candidate.end(), len(data), len(data))
        position = end + 1
        begin = max(line_start, skip_first) if line_start == 0 else line_start
        if begin < end and not data.startswith(RUNNER_LINE_PREFIX, line_start):
            spans.append(_Span(begin, end, match_start))
    return spans, True


def _error_match_start(data: bytes, start: int, end: int) -> int | None:
    """Return where ERROR_PATTERN matches around the error keyword at data[start:end], or None.

    A colour code that ends right before the word ("\x1b[31mERROR", as gcc,
    rustc and coloured log levels write) hides its word boundary, so the
    bytes are checked again without escape codes, from up to
    ESCAPE_LOOKBEHIND bytes before the word.
    """
    window_end = min(len(data), end + 16)
    window_end = _find_or(data, b"\n", end, window_end, window_end)
    window_start = _line_bound_before(data, start, 16)
    match = ERROR_PATTERN.search(data, window_start, window_end)
    if match is not None:
        return match.start()
    escapes_start = _line_bound_before(data, start, ESCAPE_LOOKBEHIND)
    if b"\x1b" not in data[escapes_start:start]:
        return None
    plain = ANSI_ESCAPE_BYTES.sub(b"", data[escapes_start:window_end])
    return start if ERROR_PATTERN.search(plain) else None


def _line_bound_before(data: bytes, position: int, distance: int) -> int:
    """Return position - distance, or the start of the line when that is nearer."""
    low = max(0, position - distance)
    return data.rfind(b"\n", low, position) + 1 or low


def _find_or(data: bytes, sub: bytes, start: int, end: int, default: int) -> int:
    """Return the offset of sub in data[start:end], or default when it is not there."""
    found = data.find(sub, start, end)
    return default if found == -1 else found


def _render_error_line(data: bytes, span: _Span, limits: _Limits) -> str:
    """Render an error line, starting shortly before the match when the line is long."""
    lead = limits.max_line_bytes // 4
    if span.match_start - span.begin <= limits.max_line_bytes - lead:
        return _render_line(data, span.begin, span.end, limits)
    shown_from = _char_end(data, span.match_start - lead)
    return ELLIPSIS + _render_line(data, shown_from, span.end, limits)


def _resolve_carriage_returns(text: str) -> str:
    text = text.rstrip("\r")
    if "\r" not in text:
        return text
    parts = [part for part in text.split("\r") if part]
    return parts[-1] if parts else ""


def _char_start(data: bytes, position: int) -> int:
    """Move position back to the start of a UTF-8 character (at most 3 bytes)."""
    for _ in range(3):
        if position <= 0 or position >= len(data) or data[position] & 0xC0 != 0x80:
            break
        position -= 1
    return position


def _char_end(data: bytes, position: int) -> int:
    """Move position forward past UTF-8 continuation bytes (at most 3 bytes)."""
    for _ in range(3):
        if position >= len(data) or data[position] & 0xC0 != 0x80:
            break
        position += 1
    return position
