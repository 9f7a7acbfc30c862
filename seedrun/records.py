"""The run record: step records from the step runners, assembled into run.json.

The step runner writes a small marshal record per step, because ``json``
costs too much on its hot path. This module reads those records, adds the
plan's facts (phase, command, prerequisites) and writes ``run.json``
atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from seedrun.pipeline import NAME_PATTERN
from seedrun.step import LOG_LINE_PREFIX, RunFiles, iso, load_record

log = logging.getLogger(__name__)

METRIC_SCAN_BYTES = 8 * 1024 * 1024
METRIC_LINE_LIMIT = 64 * 1024
RUNNER_LINE_PREFIX = LOG_LINE_PREFIX.encode()
# The first line of each attempt in a step's log: "[seedrun] step NAME, attempt N of M, started ...".
ATTEMPT_HEADER = RUNNER_LINE_PREFIX + b"step "
FAILED_STATUSES = ("failed", "timed_out")


def read_step_record(files: RunFiles, name: str) -> dict | None:
    return load_record(files, name)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename; raise OSError on failure."""
    # No indent: with indent the json module falls back to its pure-Python
    # encoder, which costs about ten times as much on a run of many steps.
    text = json.dumps(data, ensure_ascii=False) + "\n"
    tmp = path.with_name(".%s.%d.tmp" % (path.name, os.getpid()))
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


# The JSON types of the run.json fields that readers of other runs rely on
# (report, index, history, retention, resume), checked before they read a
# run.json that seedrun did not write in this process. None is allowed
# everywhere except in the run's run_id and a step's name.
RUN_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "pipeline": str, "selection": str, "pipeline_file": str, "host": str,
    "status": str, "started_at": str, "finished_at": str, "exit_code": int, "jobs": int,
    "resumed_at": list, "mask_env": list, "phases": list, "counts": dict, "steps": list, "error": str,
}
STEP_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "phase": str, "command": str, "status": str, "outcome": str, "signal": str,
    "exit_code": int, "attempts": int, "duration_s": (int, float), "log": str, "reason": str,
    "queued_at": str, "started_at": str, "finished_at": str, "pool": str, "blocked_by": str,
    "metrics": dict, "metric_floors": dict, "warnings": list, "needs": list, "after": list,
    "attempt_history": list,
}
REQUIRED_RUN_FIELDS = ("run_id",)
REQUIRED_STEP_FIELDS = ("name",)
# The same for plan.json, which resume and the take-over of a dead run's lock read.
PLAN_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "pipeline": str, "pipeline_file": str, "selection": str, "selection_args": dict,
    "jobs": int, "logs_dir": str, "reports_dir": str, "workdir": str, "mask_env": list, "keep_runs": int,
    "notify_on_failure": str, "phases": list, "barriers": dict, "steps": list, "notes": list, "resumed_at": list,
    "pipeline_sha256": str,
}
PLAN_STEP_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "phase": str, "command": str, "log": str, "on_failure": str, "pool": str, "metrics": dict,
    "metric_floors": dict, "needs": list, "after": list, "needs_phase": str, "after_phase": str,
    "timeout_s": (int, float), "kill_grace_s": (int, float), "retries": int, "retry_delay_s": (int, float),
    "max_retry_delay_s": (int, float), "retry_on_exit_codes": list, "env": dict, "fingerprint": str,
    "fingerprint_v1": str,
}
REQUIRED_PLAN_FIELDS = ("run_id", "pipeline", "jobs", "steps", "barriers", "phases", "mask_env", "selection_args")
# Keys that a resume reads by name, where null can be a value; every seedrun version wrote them.
PRESENT_PLAN_KEYS = ("selection", "selection_args", "pipeline_file", "pipeline_sha256", "logs_dir", "reports_dir",
                     "workdir", "mask_env", "keep_runs", "phases", "barriers")
PRESENT_PLAN_STEP_KEYS = ("phase", "on_failure", "pool", "metrics", "metric_floors", "needs", "after",
                          "needs_phase", "after_phase", "fingerprint")
# The keyword arguments of graph.Selection that plan.json keeps, to plan a resume again.
SELECTION_LISTS = ("names", "phases", "pairs", "targets", "enable")
REQUIRED_PLAN_STEP_FIELDS = ("name", "command", "log", "needs", "after")


def read_run_record(path: Path, check_steps: bool = True) -> dict:
    """Read a run.json and check the types of its fields; raise OSError or ValueError naming the problem.

    check_steps=False checks the run's own fields only, for readers that use
    no step; the check of 1,000 steps costs about 2 ms.
    """
    run = json.loads(path.read_text(encoding="utf-8"))
    check_run_record(run, check_steps)
    return run


def read_run_fields(path: Path, keys: tuple[str, ...]) -> dict:
    """Read some of a run.json's own fields, such as pipeline and status, without decoding its steps.

    Readers of every run in a logs directory (retention, the catch-up of the
    run history) need only fields that seedrun writes before "steps", and a
    run of thousands of steps has a run.json of megabytes. The members of the
    top-level object are decoded one at a time from the first
    RUN_FIELDS_BYTES, up to the last key asked for. A file that is smaller,
    or whose head does not hold those keys, is read whole, as
    read_run_record(check_steps=False) reads it. The returned dict has the
    keys found among `keys` and run_id, checked as read_run_record() checks
    them. Raise OSError or ValueError as it does.
    """
    with open(path, "rb") as f:
        head = f.read(RUN_FIELDS_BYTES + 1)
    if len(head) <= RUN_FIELDS_BYTES:
        run = json.loads(head.decode("utf-8"))
        check_run_record(run, check_steps=False)
        return {key: run[key] for key in ("run_id",) + keys if key in run}
    fields = _leading_members(head, set(keys) | {"run_id"})
    if fields is None:
        return {key: value for key, value in read_run_record(path, check_steps=False).items()
                if key in ("run_id",) + keys}
    _check_fields(fields, RUN_FIELD_TYPES, REQUIRED_RUN_FIELDS, "", "the run record")
    return fields


# How much of a run.json read_run_fields() decodes before it reads the whole file.
RUN_FIELDS_BYTES = 64 * 1024


def _leading_members(head: bytes, keys: set[str]) -> dict | None:
    """Decode the members of the JSON object that starts `head` until each of `keys` was seen.

    Return None when the object ends, or `head` ends, before that.
    """
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # Only a character cut at the end of the head is expected; anything else is damage.
        if error.start < len(head) - 3:
            return None
        text = head[:error.start].decode("utf-8")
    decoder = json.JSONDecoder()
    found: dict = {}
    seen: set[str] = set()
    position = _skip_space(text, 0)
    if not text.startswith("{", position):
        return None
    position += 1
    try:
        while not keys <= seen:
            position = _skip_space(text, position)
            key, position = decoder.raw_decode(text, position)
            position = _skip_space(text, position)
            if not isinstance(key, str) or not text.startswith(":", position):
                return None
            value, position = decoder.raw_decode(text, _skip_space(text, position + 1))
            seen.add(key)
            if key in keys:
                found[key] = value
            position = _skip_space(text, position)
            if not text.startswith(",", position):
                return None
            position += 1
    except ValueError:
        return None
    return found


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\n\r":
        position += 1
    return position


def check_run_record(run: Any, check_steps: bool = True) -> None:
    """Raise ValueError when a decoded run.json lacks a field or has one of the wrong JSON type."""
    _check_fields(run, RUN_FIELD_TYPES, REQUIRED_RUN_FIELDS, "", "the run record")
    if not check_steps:
        return
    for index, step in enumerate(run.get("steps") or []):
        prefix = "steps[%d]." % index
        _check_fields(step, STEP_FIELD_TYPES, REQUIRED_STEP_FIELDS, prefix)
        for number, attempt in enumerate(step.get("attempt_history") or []):
            if not isinstance(attempt, dict):
                raise ValueError("%sattempt_history[%d] is not an object: %s" % (prefix, number, _shorten(attempt)))


def read_plan_document(path: Path) -> dict:
    """Read a plan.json and check its fields; raise OSError or ValueError naming the problem."""
    document = json.loads(path.read_text(encoding="utf-8"))
    _check_fields(document, PLAN_FIELD_TYPES, REQUIRED_PLAN_FIELDS, "", "the plan")
    _check_present(document, PRESENT_PLAN_KEYS, "")
    _check_selection(document["selection_args"])
    for phase, members in document["barriers"].items():
        if not isinstance(members, list) or not all(isinstance(name, str) for name in members):
            raise ValueError("barriers.%s is not a list of step names: %s" % (phase, _shorten(members)))
    for index, phase in enumerate(document["phases"]):
        if not isinstance(phase, dict):
            raise ValueError("phases[%d] is not an object: %s" % (index, _shorten(phase)))
    for index, step in enumerate(document["steps"]):
        prefix = "steps[%d]." % index
        _check_fields(step, PLAN_STEP_FIELD_TYPES, REQUIRED_PLAN_STEP_FIELDS, prefix)
        _check_present(step, PRESENT_PLAN_STEP_KEYS, prefix)
        # Step names become file names in the run directory, so a name edited into a path must not be used.
        names = [step["name"], *(step.get("needs") or []), *(step.get("after") or [])]
        for name in names:
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise ValueError("%s names an invalid step: %s" % (prefix.rstrip("."), _shorten(name)))
        if step["log"] != step["name"] + ".log":
            raise ValueError("%slog is not %s.log: %s" % (prefix, step["name"], _shorten(step["log"])))
    return document


def _check_selection(selection: dict) -> None:
    for key, value in selection.items():
        if key == "with_needs":
            if not isinstance(value, bool):
                raise ValueError("selection_args.with_needs is not true or false: %s" % _shorten(value))
        elif key not in SELECTION_LISTS:
            raise ValueError("selection_args has an unknown key: %s" % _shorten(key))
        elif not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("selection_args.%s is not a list of names: %s" % (key, _shorten(value)))


def _check_present(table: dict, keys: tuple[str, ...], prefix: str) -> None:
    for key in keys:
        if key not in table:
            raise ValueError("%s%s is missing" % (prefix, key))


JSON_TYPE_NAMES = {str: "a string", int: "an integer", (int, float): "a number", list: "a list", dict: "an object"}


def _check_fields(value: Any, types: dict, required: tuple[str, ...], prefix: str, label: str = "") -> None:
    if not isinstance(value, dict):
        raise ValueError("%s is not an object: %s" % (prefix.rstrip(".") or label, _shorten(value)))
    for key in required:
        if value.get(key) is None:
            raise ValueError("%s%s is missing" % (prefix, key))
    for key, expected in types.items():
        field = value.get(key)
        if field is not None and not isinstance(field, expected):
            raise ValueError("%s%s is not %s: %s" % (prefix, key, JSON_TYPE_NAMES[expected], _shorten(field)))


def _shorten(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def iso_or_none(value: float | None) -> str | None:
    return iso(value) if value else None


def step_entry(planned: dict, record: dict | None, metrics: dict | None = None) -> dict:
    """Build one element of run.json's "steps": the plan's facts plus the runner's record."""
    record = record or {}
    history = [dict(item, started_at=iso_or_none(item.get("started_at")),
                    finished_at=iso_or_none(item.get("finished_at")))
               for item in record.get("attempt_history", [])]
    return {
        "name": planned["name"], "phase": planned["phase"], "command": planned["command"],
        "status": record.get("status", "pending"), "outcome": record.get("status", "pending"),
        "exit_code": record.get("exit_code"), "signal": record.get("signal"),
        "attempts": record.get("attempts", 0),
        "queued_at": iso_or_none(record.get("queued_at")),
        "started_at": iso_or_none(record.get("started_at")),
        "finished_at": iso_or_none(record.get("finished_at")),
        "duration_s": record.get("duration_s"),
        "log": planned["log"], "reason": record.get("reason"), "blocked_by": record.get("blocked_by"),
        "on_failure": planned["on_failure"], "allowed_failure": bool(record.get("allowed_failure")),
        "metrics": metrics or {}, "metric_floors": planned["metric_floors"], "warnings": [],
        "needs": planned["needs"], "after": planned["after"],
        "waits_for_phase": planned["needs_phase"] or planned["after_phase"],
        "pool": planned["pool"], "attempt_history": history,
        "leftovers_killed": record.get("leftovers_killed", 0), "log_error": record.get("log_error"),
        "carried_over": planned.get("carried_over", False),
    }


def extract_metrics(log_path: Path, patterns: dict[str, str]) -> dict[str, float | int]:
    """Apply each metric's regex to the output of the log's last attempt; the last match wins.

    A step's log contains every attempt, and after a resume those of earlier
    runs. Output before the last attempt's header is left out, so that a
    value an earlier failed attempt printed does not count for the attempt
    that decided the outcome.

    Only the last METRIC_SCAN_BYTES are read and lines longer than
    METRIC_LINE_LIMIT are skipped, so a huge log or a single huge line costs
    bounded time and memory. Summary lines come at the end of a job's output.
    The header and footer lines that seedrun writes (LOG_LINE_PREFIX) are
    skipped too, because a regex for "N products" would otherwise match the
    command line in the header. Output of the command that starts with the
    same prefix is skipped as well.
    """
    if not patterns:
        return {}
    compiled = {name: re.compile(pattern.encode("utf-8")) for name, pattern in patterns.items()}
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - METRIC_SCAN_BYTES))
            data = f.read(METRIC_SCAN_BYTES)
    except OSError:
        return {}
    last_header = data.rfind(b"\n" + ATTEMPT_HEADER)
    if last_header >= 0:
        data = data[last_header + 1:]
    values: dict[str, float | int] = {}
    for line in data.split(b"\n"):
        if len(line) > METRIC_LINE_LIMIT or line.startswith(RUNNER_LINE_PREFIX):
            continue
        for name, regex in compiled.items():
            match = regex.search(line)
            if match:
                value = _number(match.group(1))
                if value is not None:
                    values[name] = value
    return values


def _number(raw: bytes | None) -> float | int | None:
    """Return the number in raw, or None when there is none or it is not finite.

    float() also reads "nan" and "inf", which json.dumps writes as NaN and
    Infinity. Those are not JSON, and JavaScript's JSON.parse rejects them.
    """
    if raw is None:
        return None
    text = raw.decode("ascii", "ignore").replace(",", "").strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def run_status(steps: list[dict], interrupted: bool, running_at_interrupt: bool = False) -> tuple[str, int]:
    """Return the run's status and exit code from its steps.

    An interrupt that arrived after every step had ended (while the record
    was written) stopped nothing, so the steps decide the status. One that
    arrived while a step was running (running_at_interrupt) interrupted the
    run, even when every step then ended with an outcome of its own, as a
    step that had timed out and was inside its kill_grace does.
    """
    if interrupted and (running_at_interrupt or any(step["status"] in ("interrupted", "not_run") for step in steps)):
        return "interrupted", 130
    for step in steps:
        if step["status"] in FAILED_STATUSES and not step["allowed_failure"]:
            return "failed", 1
        if step["status"] in ("skipped", "interrupted") or (step["status"] == "not_run" and step["reason"]):
            return "failed", 1
    return "succeeded", 0


def count_statuses(steps: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    return counts


class RunJsonWriter:
    """Write run.json, falling back to the temp directory when the run directory fails.

    A run whose logs directory fills up or turns read-only must still leave
    a readable record somewhere, and print where it went.
    """

    def __init__(self, run_dir: Path, say: Callable[[str], None], mask: Callable[[dict], dict]):
        self.path = run_dir / "run.json"
        self.say = say
        self.mask = mask
        self.failed_once = False
        self.fallback: Path | None = None

    def write(self, record: dict) -> Path | None:
        """Write the record with secret values masked; return where it went, or None."""
        record = self.mask(record)
        try:
            write_json_atomically(self.path, record)
            return self.path
        except OSError as error:
            if not self.failed_once:
                self.failed_once = True
                self.say("Warning: cannot write %s: %s" % (self.path, error.strerror))
        return self._write_fallback(record)

    def _write_fallback(self, record: dict) -> Path | None:
        # Here, not at the top: tempfile imports shutil and random, and only a failed write needs it.
        import tempfile

        path = Path(tempfile.gettempdir()) / ("seedrun-%s.run.json" % record["run_id"])
        try:
            write_json_atomically(path, record)
        except OSError as error:
            log.warning("cannot write the fallback run record %s: %s", path, error)
            return None
        if self.fallback is None:
            self.fallback = path
            self.say("The run record is written to %s instead" % path)
        return path
