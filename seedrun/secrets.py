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
    pattern = _text_pattern(_usable_values(values))
    if pattern is None:
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
    if not _usable_values(values):
        return value
    if isinstance(value, str):
        return mask(value, values)
    if isinstance(value, dict):
        return {mask_tree(key, values): mask_tree(item, values) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_tree(item, values) for item in value]
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
    if not _usable_values(values):
        return run
    masked = {}
    for key, item in run.items():
        if key in RUN_NAME_KEYS:
            masked[key] = item
        elif key in ("steps", "phases") and isinstance(item, list):
            names = STEP_NAME_KEYS if key == "steps" else PHASE_NAME_KEYS
            masked[key] = [_mask_entry(entry, names, values) for entry in item]
        else:
            masked[mask(key, values)] = mask_tree(item, values)
    return masked


def _mask_entry(entry: object, names: frozenset[str], values: Sequence[str]) -> object:
    if not isinstance(entry, dict):
        return mask_tree(entry, values)
    return {key: item if key in names else mask_tree(item, values) for key, item in entry.items()}


def bytes_pattern(values: Iterable[str]) -> re.Pattern[bytes] | None:
    """Return a pattern that matches the UTF-8 bytes of any secret value, or None when no value is long enough."""
    return _bytes_pattern(_usable_values(values))


def longest_secret_bytes(values: Iterable[str]) -> int:
    """Return the UTF-8 length of the longest usable secret, or 0 when there is none."""
    return max((len(value.encode()) for value in _usable_values(values)), default=0)


def _usable_values(values: Iterable[str]) -> tuple[str, ...]:
    unique = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda value: (-len(value), value)))


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
