"""Find secret values in the environment and mask them in text.

A variable counts as secret when its name contains TOKEN, SECRET, PASSWORD, PASS,
KEY or AUTH (case-insensitive) or when it is listed explicitly. Values shorter
than MIN_SECRET_LENGTH characters are never masked, because masking "1" or "on"
would garble every log without protecting anything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence

MASK = "***"
MIN_SECRET_LENGTH = 4
SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASS", "KEY", "AUTH")


def is_secret_name(name: str, extra_names: Iterable[str] = ()) -> bool:
    """Return True when a variable name looks secret or is listed in extra_names."""
    upper = name.upper()
    if any(part in upper for part in SECRET_NAME_PARTS):
        return True
    return name in set(extra_names)


def secret_values(env: Mapping[str, str], extra_names: Iterable[str]) -> list[str]:
    """Return the values to mask, longest first and without duplicates.

    Longest first matters when one secret contains another: the longer one must
    be replaced before the shorter one breaks it up.
    """
    listed = set(extra_names)
    values = {
        value
        for name, value in env.items()
        if len(value) >= MIN_SECRET_LENGTH and is_secret_name(name, listed)
    }
    return sorted(values, key=lambda value: (-len(value), value))


def mask(text: str, values: Iterable[str]) -> str:
    """Replace every occurrence of each secret value in text with ***."""
    return _mask_text(text, _usable_values(values))


def _mask_text(text: str, usable: tuple[str, ...]) -> str:
    """Mask text with values that _usable_values() returned."""
    return _mask_with(text, *_text_masker(usable))


def _mask_with(text: str, pattern: re.Pattern[str] | None, starts: frozenset[str]) -> str:
    """Mask text with the pattern and value starts of _text_masker().

    The pattern tries every value at every position, which costs too much
    on a run record with a secret per step. So the text is first checked
    for the first MIN_SECRET_LENGTH characters of some value, and most
    texts of a run record (times, statuses) contain none.
    """
    if pattern is None:
        return text
    if not any(text[i:i + MIN_SECRET_LENGTH] in starts for i in range(len(text) - MIN_SECRET_LENGTH + 1)):
        return text
    return pattern.sub(MASK, text)


def mask_bytes(data: bytes, values: Iterable[str], start: int = 0, end: int | None = None) -> bytes:
    """Return data[start:end] with every UTF-8 encoded secret value replaced by ***.

    A secret that crosses start or end is replaced whole, so cutting a line at a
    fixed length never shows the first or last characters of a secret.
    """
    stop = len(data) if end is None else min(end, len(data))
    usable = _usable_values(values)
    pattern = _bytes_pattern(usable)
    if pattern is None:
        return data[start:stop]
    reach = longest_secret_bytes(usable)
    pieces: list[bytes] = []
    cursor = start
    for match in pattern.finditer(data, max(0, start - reach), min(len(data), stop + reach)):
        if match.end() <= start or match.start() >= stop:
            continue
        pieces.append(data[cursor:max(cursor, match.start())])
        pieces.append(MASK.encode())
        cursor = max(cursor, match.end())
    pieces.append(data[cursor:stop])
    return b"".join(pieces)


def mask_env(env: Mapping[str, str], extra_names: Iterable[str] = ()) -> dict[str, str]:
    """Return a copy of env with the values of secret-looking names replaced by ***."""
    listed = set(extra_names)
    return {
        name: MASK if is_secret_name(name, listed) else value
        for name, value in env.items()
    }


def mask_tree(value: object, values: Sequence[str]) -> object:
    """Return a copy of a JSON-like tree with every string, key included, masked."""
    usable = _usable_values(values)
    if not usable:
        return value
    return _mask_tree(value, _text_masker(usable))


def _mask_tree(value: object, masker: tuple) -> object:
    """Mask a JSON-like tree with the pattern and value starts of _text_masker()."""
    if isinstance(value, str):
        return _mask_with(value, *masker)
    if isinstance(value, dict):
        return {_mask_tree(key, masker): _mask_tree(item, masker) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_tree(item, masker) for item in value]
    return value


# Keys of a run record whose values name what the pipeline file defines: the
# run, its steps, phases, pools and logs. They are no secrets, and masking a
# name that happens to contain a secret's text would break the links between
# run.json, the logs, the report and the history.
RUN_NAME_KEYS = frozenset(("run_id", "pipeline", "pipeline_file", "selection"))
STEP_NAME_KEYS = frozenset(("name", "phase", "log", "needs", "after", "blocked_by", "waits_for_phase", "pool"))
PHASE_NAME_KEYS = frozenset(("name", "steps"))


def mask_run_record(run: Mapping[str, object], values: Sequence[str]) -> object:
    """Return a copy of a run record with every string masked, except the names of the run, its steps, phases and logs."""
    # Sorted and compiled once here: the record of a run of thousands of steps has tens of thousands of strings.
    usable = _usable_values(values)
    if not usable:
        return run
    masker = _text_masker(usable)
    masked = {}
    for key, item in run.items():
        if key in RUN_NAME_KEYS:
            masked[key] = item
        elif key in ("steps", "phases") and isinstance(item, list):
            names = STEP_NAME_KEYS if key == "steps" else PHASE_NAME_KEYS
            masked[key] = [_mask_entry(entry, names, masker) for entry in item]
        else:
            masked[_mask_with(key, *masker)] = _mask_tree(item, masker)
    return masked


def _mask_entry(entry: object, names: frozenset[str], masker: tuple) -> object:
    if not isinstance(entry, dict):
        return _mask_tree(entry, masker)
    return {key: item if key in names else _mask_tree(item, masker) for key, item in entry.items()}


def bytes_pattern(values: Iterable[str]) -> re.Pattern[bytes] | None:
    """Return a pattern that matches the UTF-8 bytes of any secret value, or None when no value is long enough."""
    return _bytes_pattern(_usable_values(values))


def longest_secret_bytes(values: Iterable[str]) -> int:
    """Return the UTF-8 length of the longest usable secret, or 0 when there is none."""
    return max((len(value.encode()) for value in _usable_values(values)), default=0)


def _usable_values(values: Iterable[str]) -> tuple[str, ...]:
    # The report masks each log line it shows with the same values, and sorting
    # thousands of values (one secret per step) for each line cost seconds.
    return _sorted_usable_values(tuple(values))


@functools.lru_cache(maxsize=32)
def _sorted_usable_values(values: tuple[str, ...]) -> tuple[str, ...]:
    unique = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda value: (-len(value), value)))


@functools.lru_cache(maxsize=32)
def _text_masker(values: tuple[str, ...]) -> tuple[re.Pattern[str] | None, frozenset[str]]:
    """Return the pattern of the values and the set of their first MIN_SECRET_LENGTH characters."""
    return _text_pattern(values), frozenset(value[:MIN_SECRET_LENGTH] for value in values)


@functools.lru_cache(maxsize=32)
def _text_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    return re.compile("|".join(re.escape(value) for value in values))


@functools.lru_cache(maxsize=32)
def _bytes_pattern(values: tuple[str, ...]) -> re.Pattern[bytes] | None:
    if not values:
        return None
    return re.compile(b"|".join(re.escape(value.encode()) for value in values))
