"""Load a pipeline file and validate all of it before anything runs.

Validation collects every problem instead of stopping at the first, so an
operator fixes a broken file in one pass. Each problem names the table and
key it concerns and says what to do.
"""

from __future__ import annotations

import codecs
import datetime
import functools
import json
import os
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Container
from pathlib import Path
from typing import Any

from seedrun.errors import PipelineError, under_make

# CPython's built-in SHA-256, named _sha256 up to Python 3.11 and _sha2 from
# 3.12. hashlib would load OpenSSL to hash one small file, which took about
# 3.5 ms of every run's start on a 2-core VM.
try:
    from _sha256 import sha256
except ImportError:
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256

# Names become file names (NAME.log, NAME.done, NAME.12345.tmp), so they are
# capped well below NAME_MAX (255 bytes on Linux file systems).
MAX_NAME_LENGTH = 200
# A phase barrier's spec, stamps and reply FIFO are named "phase.NAME", next
# to the steps' own, so no step name may start with it.
RESERVED_PREFIX = "phase."
# Goals of seedrun's Makefile (its COMMANDS): `make help` runs the help, so
# a step of that name could not run through make.
MAKEFILE_GOALS = frozenset(("help", "venv", "seed-all", "resume", "plan", "graph", "validate", "report", "clean",
                            "test", "test-deps", "bench"))
# A step's log is NAME.log in the run directory, next to the output of make
# (make.log) and of the [notify] command (notify.log).
RUN_DIRECTORY_LOGS = {"make": "make itself", "notify": "the [notify] command"}
NAME_RULE = "use at most %d letters, digits, '.', '_' and '-', starting with a letter or digit" % MAX_NAME_LENGTH
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}\Z" % (MAX_NAME_LENGTH - 1))
DURATION_PATTERN = re.compile(r"(?:(\d+(?:\.\d+)?)(h|m|s))+\Z")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}
# The maximum of every duration key: 365 days. No sync step, retry delay,
# cool-down or kill grace runs that long, so a longer value is a slip such as
# "9999h" for "99h", and "720h" still serves as "no real timeout".
# The step runner waits in parts of at most an hour (process.MAX_WAIT_MS,
# step.MAX_WAIT_SECONDS), because poll() takes at most INT_MAX ms, about
# 24.8 days.
MAX_DURATION_HOURS = 365 * 24
MAX_DURATION_SECONDS = MAX_DURATION_HOURS * 3600.0
NPM_RUN = re.compile(r"\s*npm\s+(?:run|run-script)\s")
# npm options that may come between `npm run` and the script name, checked against the option
# definitions of npm 11.19 (@npmcli/config). Flags take no value, value options take the next word
# unless written --option=value, and the other-package options make npm read another package.json.
NPM_FLAGS = frozenset(("-s", "--silent", "-q", "--quiet", "-d", "-dd", "-ddd", "--verbose", "--if-present",
                       "--ignore-scripts", "--foreground-scripts", "--json", "--parseable", "-p", "--no-color",
                       "--offline", "--prefer-offline", "--prefer-online", "--no-progress"))
NPM_VALUE_OPTIONS = frozenset(("--loglevel", "--script-shell", "--userconfig", "--globalconfig", "--cache",
                               "--registry", "--node-options"))
NPM_OTHER_PACKAGE_OPTIONS = frozenset(("--prefix", "-C", "-w", "--workspace", "-ws", "--workspaces", "-g",
                                       "--global"))
ON_FAILURE = ("skip-dependents", "abort", "ignore")
PHASE_MODES = ("parallel", "sequential")
PHASE_WAITS = ("succeeded", "finished")
# A variable name as the shell writes it. dash (Debian's /bin/sh, checked with
# 0.5.12) leaves every other name out of the environment of the command it
# runs, and a name that is empty or contains '=' or a NUL character cannot be
# passed to a process at all.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The step runner sets these for every step, over the step's env.
STEP_VARIABLES = ("SEEDRUN_RUN_ID", "SEEDRUN_RUN_DIR", "SEEDRUN_STEP")
# Keys that TOML writes without quotes.
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
# bool comes before int because Python's bool is a subclass of int.
TOML_TYPES = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
              (dict, "table"), (datetime.date, "date"), (datetime.time, "time"))

DEFAULTS_TABLE = "[defaults]"
PIPELINE_KEYS = ("name", "jobs", "workdir", "logs_dir", "reports_dir", "max_failures", "keep_runs", "mask_env")
POOL_KEYS = ("size", "min_interval", "rate_limited_exit_code", "cooldown")
STEP_KEYS = ("command", "needs", "after", "on_failure", "timeout", "retries", "retry_delay",
             "max_retry_delay", "retry_on_exit_codes", "kill_grace", "pool", "env", "enabled",
             "metrics", "metric_floors", "description")
PHASE_KEYS = ("name", "steps", "mode", "wait", "enabled")
PAIR_KEYS = ("main", "dependent")
NOTIFY_KEYS = ("on_failure",)
TOP_KEYS = ("pipeline", "pools", "notify", "defaults", "steps", "phases", "pairs", "targets")

STEP_DEFAULTS: dict[str, Any] = {
    "needs": [], "after": [], "on_failure": "skip-dependents", "timeout": None, "retries": 0,
    "retry_delay": "30s", "max_retry_delay": "15m", "retry_on_exit_codes": None,
    "kill_grace": "30s", "pool": None, "env": {}, "enabled": True, "metrics": {},
    "metric_floors": {}, "description": "",
}


# The classes below are plain classes, not dataclasses: importing dataclasses
# (and inspect with it) and generating each class's methods took about 12 ms
# of every run's start, and seedrun starts once per run.


class Pool:
    __slots__ = ("name", "size", "min_interval", "rate_limited_exit_code", "cooldown")

    def __init__(self, name: str, size: int, min_interval: float = 0.0, rate_limited_exit_code: int | None = None,
                 cooldown: float = 60.0) -> None:
        self.name = name
        self.size = size
        self.min_interval = min_interval
        self.rate_limited_exit_code = rate_limited_exit_code
        self.cooldown = cooldown


class Step:
    __slots__ = ("name", "command", "needs", "after", "on_failure", "timeout", "retries", "retry_delay",
                 "max_retry_delay", "retry_on_exit_codes", "kill_grace", "pool", "env", "enabled", "metrics",
                 "metric_floors", "description", "index")

    def __init__(self, *, name: str, command: str, needs: list[str], after: list[str], on_failure: str,
                 timeout: float | None, retries: int, retry_delay: float, max_retry_delay: float,
                 retry_on_exit_codes: list[int] | None, kill_grace: float, pool: str | None, env: dict[str, str],
                 enabled: bool, metrics: dict[str, str], metric_floors: dict[str, float], description: str,
                 index: int = 0) -> None:
        self.name = name
        self.command = command
        self.needs = needs
        self.after = after
        self.on_failure = on_failure
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.retry_on_exit_codes = retry_on_exit_codes
        self.kill_grace = kill_grace
        self.pool = pool
        self.env = env
        self.enabled = enabled
        self.metrics = metrics
        self.metric_floors = metric_floors
        self.description = description
        self.index = index


class Phase:
    __slots__ = ("name", "steps", "mode", "wait", "enabled")

    def __init__(self, name: str, steps: list[str], mode: str = "parallel", wait: str = "succeeded",
                 enabled: bool = True) -> None:
        self.name = name
        self.steps = steps
        self.mode = mode
        self.wait = wait
        self.enabled = enabled


class Pair:
    __slots__ = ("name", "main", "dependent")

    def __init__(self, name: str, main: str, dependent: str) -> None:
        self.name = name
        self.main = main
        self.dependent = dependent


class Pipeline:
    def __init__(self, *, path: Path, sha256: str, name: str, jobs: int, workdir: Path, logs_dir: Path,
                 reports_dir: Path, max_failures: int | str | None, keep_runs: int, mask_env: list[str],
                 notify_on_failure: str | None) -> None:
        self.path = path
        self.sha256 = sha256
        self.name = name
        self.jobs = jobs
        self.workdir = workdir
        self.logs_dir = logs_dir
        self.reports_dir = reports_dir
        self.max_failures = max_failures
        self.keep_runs = keep_runs
        self.mask_env = mask_env
        self.notify_on_failure = notify_on_failure
        self.pools: dict[str, Pool] = {}
        self.steps: dict[str, Step] = {}
        self.phases: list[Phase] = []
        self.pairs: dict[str, Pair] = {}
        self.targets: dict[str, list[str]] = {}
        self._phase_index: dict[str, Phase] | None = None
        self._pair_mains: dict[str, list[str]] | None = None

    def phase_of(self, step: str) -> Phase | None:
        return self.phase_index().get(step)

    def phase_index(self) -> dict[str, Phase]:
        """Map each step in a phase to its phase; built once, phases do not change after loading."""
        if self._phase_index is None:
            self._phase_index = {name: phase for phase in reversed(self.phases) for name in phase.steps}
        return self._phase_index

    def pair_mains(self, step: str) -> list[str]:
        """Return the main steps of the pairs whose dependent is `step`; the map is built once."""
        if self._pair_mains is None:
            self._pair_mains = {}
            for pair in self.pairs.values():
                self._pair_mains.setdefault(pair.dependent, []).append(pair.main)
        return self._pair_mains.get(step, [])

    def failure_limit(self, step_count: int) -> int | None:
        """Translate max_failures into a count of failed steps for a run of step_count steps."""
        if self.max_failures is None:
            return None
        if isinstance(self.max_failures, int):
            return self.max_failures
        share = float(self.max_failures.rstrip("%")) / 100
        return max(1, -int(-share * step_count // 1))


def parse_duration(value: Any) -> float:
    """Parse "45m", "1h30m", "2.5s" into seconds; raise ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(value)
    return _parse_duration_text(value)


@functools.lru_cache(maxsize=1024)
def _parse_duration_text(value: str) -> float:
    # Cached: a pipeline of thousands of steps repeats the same few defaults.
    if not DURATION_PATTERN.match(value.strip()):
        raise ValueError(value)
    return sum(float(n) * UNIT_SECONDS[unit] for n, unit in DURATION_PART.findall(value))


def closest(name: str, choices: Any) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or ''."""
    # Here, not at the top: only a mistake needs it.
    import difflib

    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return " (did you mean %r?)" % matches[0] if matches else ""


def toml_text(value: Any) -> str:
    """Spell a value parsed from TOML as a pipeline file writes it: true, not Python's True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # A literal string ('...') shows the text as written. Text that needs an escape becomes a basic
        # string, whose escapes JSON spells the same way.
        if "'" not in value and value.isprintable():
            return "'%s'" % value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[%s]" % ", ".join(toml_text(item) for item in value)
    if isinstance(value, dict):
        items = ["%s = %s" % (key if BARE_KEY.match(key) else toml_text(key), toml_text(item))
                 for key, item in value.items()]
        return "{ %s }" % ", ".join(items) if items else "{}"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    # Python's repr of an integer or a float is also TOML's spelling (1.5, inf, nan).
    return repr(value)


def toml_type(value: Any) -> str:
    """Return the TOML name of a parsed value's type."""
    if isinstance(value, datetime.datetime):
        return "date-time"
    for kind, name in TOML_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def describe(value: Any) -> str:
    """Return a value's TOML type and spelling for a message, such as "boolean true", cut to about 80 characters."""
    text = toml_text(value)
    if len(text) > 80:
        text = text[:76] + " ..."
    return "%s %s" % (toml_type(value), text)


class Problems:
    """Collect validation problems, each prefixed with the file name."""

    def __init__(self, path: Path):
        self.path = path
        self.items: list[str] = []
        self._seen: set[str] = set()

    def add(self, where: str, message: str) -> None:
        # Each step that inherits an invalid [defaults] value adds the same problem, which is listed once.
        item = "%s: %s: %s" % (self.path.name, where, message)
        if item not in self._seen:
            self._seen.add(item)
            self.items.append(item)

    def unknown_keys(self, where: str, table: dict, allowed: tuple) -> None:
        for key in table:
            if key not in allowed:
                self.add(where, "unknown key %r%s; valid keys: %s" % (key, closest(key, allowed), ", ".join(allowed)))

    def raise_if_any(self) -> None:
        if self.items:
            raise PipelineError(self.items, self.path)


def load_pipeline(path: Path | str) -> Pipeline:
    """Read, parse and validate a pipeline file; raise PipelineError listing every problem."""
    path = Path(path)
    data, raw = _read_toml(path)
    problems = Problems(path)
    if not isinstance(data, dict):
        problems.raise_if_any()
    problems.unknown_keys("top level", data, TOP_KEYS)
    pipeline = _build(path, raw, data, problems)
    _check_references(pipeline, problems)
    from seedrun.graph import find_cycles

    for cycle in find_cycles(pipeline):
        problems.add("dependencies", "cycle: %s" % cycle)
    problems.raise_if_any()
    return pipeline


def _closest_toml_file(path: Path) -> str:
    """Return ' (did you mean 'dir/x.toml'?)' for the .toml file beside a missing pipeline file with the closest name.

    Return '' when no name is close. Only the file names are compared,
    because with a long folder in front every file would look close.
    """
    import difflib

    try:
        names = sorted(sibling.name for sibling in path.parent.glob("*.toml"))
    except OSError:
        return ""
    matches = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return " (did you mean %r?)" % str(path.with_name(matches[0])) if matches else ""


def _read_toml(path: Path) -> tuple[dict, bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = "pass PIPELINE=FILE" if under_make() else "pass --pipeline FILE or set SEEDRUN_PIPELINE"
        raise PipelineError(["%s: pipeline file not found (%s)%s; %s"
                             % (path, path.absolute(), _closest_toml_file(path), hint)], path) from None
    except OSError as error:
        raise PipelineError(["%s: cannot read the pipeline file: %s" % (path, error.strerror)], path) from None
    if raw.startswith(codecs.BOM_UTF8):
        raise PipelineError(["%s: the file starts with a UTF-8 byte order mark, which TOML does not allow; save it "
                             "as UTF-8 without one" % path.name], path)
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError as error:
        raise PipelineError(["%s: not valid UTF-8 at byte %d" % (path.name, error.start)], path) from None
    except tomllib.TOMLDecodeError as error:
        raise PipelineError(["%s: invalid TOML: %s" % (path.name, error)], path) from None


def _build(path: Path, raw: bytes, data: dict, problems: Problems) -> Pipeline:
    section = _table(data, "pipeline", problems)
    problems.unknown_keys("[pipeline]", section, PIPELINE_KEYS)
    base = path.resolve().parent
    try:
        str(base).encode("utf-8")
    except UnicodeEncodeError:
        # Paths written in the file are UTF-8, as TOML is, so only this directory can break the rules and records.
        escaped = os.fsencode(base).decode("ascii", "backslashreplace")
        problems.add("[pipeline]", "the pipeline file's directory %s is not valid UTF-8, which make's rules, "
                                   "run.json and the report need; rename it" % escaped)
    workdir_value = _path_value(section, "workdir", ".", problems)
    workdir = base / workdir_value
    if "\0" in workdir_value:
        problems.add("[pipeline]", "workdir %r contains a NUL character, which no path can; remove it" % workdir_value)
    elif not workdir.is_dir():
        problems.add("[pipeline]", "workdir %r is not a directory (%s); create it or fix the path, which is "
                                   "relative to the pipeline file" % (workdir_value, workdir))
    logs_dir = _path_value(section, "logs_dir", "logs", problems)
    reports_dir = _path_value(section, "reports_dir", "reports", problems)
    _check_output_dir("logs_dir", logs_dir, base, problems)
    _check_output_dir("reports_dir", reports_dir, base, problems)
    pipeline = Pipeline(
        path=path.resolve(),
        sha256=sha256(raw).hexdigest(),
        name=_name_value(section, "name", path.stem, "[pipeline]", problems),
        jobs=_int_value(section, "jobs", 4, 1, "[pipeline]", problems),
        workdir=workdir,
        logs_dir=base / logs_dir,
        reports_dir=base / reports_dir,
        max_failures=_max_failures(section.get("max_failures"), problems),
        keep_runs=_int_value(section, "keep_runs", 30, 1, "[pipeline]", problems),
        mask_env=_string_list(section, "mask_env", "[pipeline]", problems),
        notify_on_failure=_notify(data, problems),
    )
    pipeline.pools = _pools(_table(data, "pools", problems), problems)
    pipeline.steps = _steps(data, pipeline.workdir, problems)
    pipeline.phases = _phases(data.get("phases", []), problems)
    pipeline.pairs = _pairs(_table(data, "pairs", problems), problems)
    pipeline.targets = _targets(_table(data, "targets", problems), problems)
    return pipeline


def _path_value(section: dict, key: str, default: str, problems: Problems) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        problems.add("[pipeline]", "%s must be a string with a path relative to the pipeline file, not %s; quote "
                                   "it: %s = \"...\"" % (key, describe(value), key))
        return default
    return value


def _check_output_dir(key: str, value: str, base: Path, problems: Problems) -> None:
    """Add a problem when the directory `value` names cannot exist, because it or a parent is not a directory."""
    if "\0" in value:
        problems.add("[pipeline]", "%s %r contains a NUL character, which no path can; remove it" % (key, value))
        return
    path = base / value
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problems.add("[pipeline]", "%s %r cannot be created: %s is not a directory; set %s to another path, which "
                                   "is relative to the pipeline file" % (key, value, existing, key))


def _table(data: dict, key: str, problems: Problems) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.add("[%s]" % key, "must be a table, not %s" % describe(value))
        return {}
    return value


def _name_value(table: dict, key: str, default: str, where: str, problems: Problems) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        problems.add(where, "%s must be a string, not %s; quote it: %s = \"...\"" % (key, describe(value), key))
        return default
    if not NAME_PATTERN.match(value):
        # Without the key, the default is the pipeline file's name, which the operator did not write as a name.
        source = "" if key in table else " (taken from the file name, since %s sets no %s)" % (where, key)
        problems.add(where, "invalid %s %r%s: use at most %d letters, digits, '.', '_' and '-', starting with a "
                            "letter or digit" % (key, value, source, MAX_NAME_LENGTH))
        return default
    return value


def _int_value(table: dict, key: str, default: int, minimum: int, where: str, problems: Problems) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        hint = "; remove the quotes" if isinstance(value, str) and value.strip().isdigit() else ""
        problems.add(where, "%s must be an integer of at least %d, not %s%s" % (key, minimum, describe(value), hint))
        return default
    if value < minimum:
        problems.add(where, "invalid %s %d: must be an integer of at least %d" % (key, value, minimum))
        return default
    return value


def _string_list(table: dict, key: str, where: str, problems: Problems) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add(where, "%s must be a list of strings, like [\"a\", \"b\"], not %s" % (key, describe(value)))
        return []
    return value


def _max_failures(value: Any, problems: Problems) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%", value) and 0 < float(value[:-1]) <= 100:
        return value
    problems.add("[pipeline]", "invalid max_failures %s: use a count of at least 1 or a share such as \"30%%\""
                 % toml_text(value))
    return None


def _duration(value: Any, where: str, key: str, problems: Problems) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        problems.add(where, "invalid duration %s = %s: use a string with units s, m or h, such as \"45m\" or \"1h30m\""
                     % (key, toml_text(value)))
        return None
    if seconds > MAX_DURATION_SECONDS:
        hint = ", or leave timeout out for no timeout" if key == "timeout" else ""
        problems.add(where, "%s = %s is longer than the maximum of \"%dh\" (365 days); use a shorter duration%s"
                     % (key, toml_text(value), MAX_DURATION_HOURS, hint))
        return None
    return seconds


def _positive(seconds: float | None, where: str, key: str, problems: Problems) -> float | None:
    if seconds is not None and seconds <= 0:
        problems.add(where, "%s must be longer than 0s; leave it out for no %s" % (key, key))
        return None
    return seconds


def _notify(data: dict, problems: Problems) -> str | None:
    notify = _table(data, "notify", problems)
    problems.unknown_keys("[notify]", notify, NOTIFY_KEYS)
    command = notify.get("on_failure")
    if command is not None and not isinstance(command, str):
        problems.add("[notify]", "on_failure must be a command string, not %s; quote it: on_failure = \"...\""
                     % describe(command))
        return None
    if command is not None and not command.strip():
        problems.add("[notify]", "on_failure is empty; set it to a command, or leave it out for no notification")
        return None
    if command is not None and "\0" in command:
        problems.add("[notify]", "on_failure contains a NUL character (\\u0000), which cannot be passed to a "
                                 "process; remove it")
        return None
    return command


def _pools(table: dict, problems: Problems) -> dict[str, Pool]:
    pools = {}
    for name, value in table.items():
        where = "[pools.%s]" % name
        if not NAME_PATTERN.match(name):
            problems.add(where, "invalid pool name %r: %s; rename the pool" % (name, NAME_RULE))
        if isinstance(value, int) and not isinstance(value, bool):
            value = {"size": value}
        if not isinstance(value, dict):
            problems.add(where, "must be a size (an integer) or a table with size, min_interval, "
                                "rate_limited_exit_code and cooldown, not %s" % describe(value))
            # Still a pool, so that its steps are not also reported as using an unknown pool.
            value = {}
        else:
            problems.unknown_keys(where, value, POOL_KEYS)
        size = _int_value(value, "size", 1, 1, where, problems)
        code = value.get("rate_limited_exit_code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 255):
            problems.add(where, "invalid rate_limited_exit_code %s: must be an exit code from 1 to 255"
                         % toml_text(code))
            code = None
        cooldown = _duration(value.get("cooldown", "60s"), where, "cooldown", problems)
        if cooldown is not None and cooldown <= 0:
            problems.add(where, "cooldown must be longer than 0s; leave it out for the default of 60s")
        pools[name] = Pool(name, size, _duration(value.get("min_interval", "0s"), where, "min_interval", problems) or 0.0,
                           code, cooldown or 60.0)
    return pools


def _steps(data: dict, workdir: Path, problems: Problems) -> dict[str, Step]:
    defaults = _table(data, "defaults", problems)
    problems.unknown_keys(DEFAULTS_TABLE, defaults, STEP_KEYS)
    inherited = {key: value for key, value in defaults.items() if key in STEP_KEYS}
    if inherited:
        # The [defaults] values are checked on their own, so that a value that every step overrides is checked too.
        _step("", 0, {**STEP_DEFAULTS, "command": "true", **inherited}, (), DEFAULTS_TABLE, workdir, problems)
    steps = {}
    tables = _table(data, "steps", problems)
    if not tables and isinstance(data.get("steps", {}), dict):
        problems.add("[steps]", "the pipeline defines no steps; add one, such as [steps.NAME] with "
                                "command = \"...\"")
    for index, (name, table) in enumerate(tables.items()):
        where = "[steps.%s]" % name
        if not _check_goal_name("step", name, where, problems):
            pass
        elif name.startswith(RESERVED_PREFIX):
            problems.add(where, "invalid step name %r: names starting with %r are reserved for the stamps of "
                                "phase barriers; rename the step" % (name, RESERVED_PREFIX))
        elif name in RUN_DIRECTORY_LOGS:
            problems.add(where, "invalid step name %r: its log would be %s.log, which holds the output of %s; "
                                "rename the step" % (name, name, RUN_DIRECTORY_LOGS[name]))
        if not isinstance(table, dict):
            problems.add(where, "must be a table with at least a command")
            continue
        problems.unknown_keys(where, table, STEP_KEYS)
        merged = {**STEP_DEFAULTS, **inherited, **table}
        steps[name] = _step(name, index, merged, table, where, workdir, problems)
    return steps


def _check_goal_name(kind: str, name: str, where: str, problems: Problems) -> bool:
    """Add a problem and return False when `make NAME` cannot run the step or target of that name."""
    if not NAME_PATTERN.match(name):
        problems.add(where, "invalid %s name %r: use at most %d letters, digits, '.', '_' and '-', starting "
                            "with a letter or digit (no spaces, '/', '$' or leading '.' or '-')"
                     % (kind, name, MAX_NAME_LENGTH))
        return False
    if name in MAKEFILE_GOALS:
        problems.add(where, "invalid %s name %r: it is a goal of seedrun's Makefile, so `make %s` would not "
                            "run the %s; rename the %s" % (kind, name, name, kind, kind))
        return False
    return True


def _step(name: str, index: int, values: dict, own_keys: Container[str], where: str, workdir: Path,
          problems: Problems) -> Step:
    """Check a step's merged values. A problem with a key that the step does not set is reported under [defaults]."""

    def at(key: str) -> str:
        return where if key in own_keys else DEFAULTS_TABLE

    command = values.get("command")
    if command is not None and not isinstance(command, str):
        problems.add(at("command"), "command must be a string, not %s; quote it: command = \"...\""
                     % describe(command))
        command = ""
    elif not isinstance(command, str) or not command.strip():
        problems.add(where, "missing or empty command; set command = \"...\", run with /bin/sh -c")
        command = ""
    elif "\0" in command:
        problems.add(at("command"), "command contains a NUL character (\\u0000), which cannot be passed to a "
                                    "process; remove it")
        command = ""
    else:
        _check_npm_script(command, workdir, at("command"), problems)
    return Step(
        name=name, command=command,
        needs=_name_list(values, "needs", at("needs"), problems),
        after=_name_list(values, "after", at("after"), problems),
        on_failure=_choice(values, "on_failure", ON_FAILURE, at("on_failure"), problems),
        timeout=_positive(_duration(values.get("timeout"), at("timeout"), "timeout", problems), at("timeout"),
                          "timeout", problems),
        retries=_int_value(values, "retries", 0, 0, at("retries"), problems),
        retry_delay=_duration(values.get("retry_delay"), at("retry_delay"), "retry_delay", problems) or 0.0,
        max_retry_delay=_duration(values.get("max_retry_delay"), at("max_retry_delay"), "max_retry_delay",
                                  problems) or 0.0,
        retry_on_exit_codes=_exit_codes(values.get("retry_on_exit_codes"), at("retry_on_exit_codes"), problems),
        kill_grace=_duration(values.get("kill_grace"), at("kill_grace"), "kill_grace", problems) or 0.0,
        pool=_pool_name(values.get("pool"), at("pool"), problems),
        env=_env(values.get("env"), at("env"), problems),
        enabled=_bool(values, "enabled", at("enabled"), problems),
        metrics=_metrics(values.get("metrics"), at("metrics"), problems),
        metric_floors=_floors(values.get("metric_floors"), at("metric_floors"), problems),
        description=_description(values.get("description", ""), at("description"), problems),
        index=index,
    )


def _pool_name(value: Any, where: str, problems: Problems) -> str | None:
    if value is None or isinstance(value, str):
        return value
    problems.add(where, "pool must be the name of a pool under [pools], not %s; quote it: pool = \"...\""
                 % describe(value))
    return None


def _description(value: Any, where: str, problems: Problems) -> str:
    if isinstance(value, str):
        return value
    problems.add(where, "description must be a string, not %s; quote it: description = \"...\"" % describe(value))
    return ""


def _name_list(values: dict, key: str, where: str, problems: Problems) -> list[str]:
    value = values.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add(where, "%s must be a list of step names, like [\"seed-allProducts\"], not %s"
                     % (key, describe(value)))
        return []
    return value


def _choice(values: dict, key: str, choices: tuple, where: str, problems: Problems) -> str:
    value = values.get(key, choices[0])
    if value not in choices:
        suggestion = closest(value, choices) if isinstance(value, str) else ""
        problems.add(where, "invalid %s %s%s; valid values: %s" % (key, toml_text(value), suggestion,
                                                                   ", ".join(choices)))
        return choices[0]
    return value


def _bool(values: dict, key: str, where: str, problems: Problems) -> bool:
    value = values.get(key, True)
    if not isinstance(value, bool):
        problems.add(where, "%s must be true or false, not %s" % (key, describe(value)))
        return True
    return value


def _exit_codes(value: Any, where: str, problems: Problems) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 255
                                              for c in value):
        problems.add(where, "retry_on_exit_codes must be a list of exit codes from 1 to 255, like [1, 75], not %s"
                     % describe(value))
        return None
    # Sorted, so that reordering the list does not count as a changed step on resume.
    return sorted(set(value))


def _env(value: Any, where: str, problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, "env must be a table of strings, like { NODE_ENV = \"production\" }, not %s"
                     % describe(value))
        return {}
    env = {}
    for key, item in value.items():
        if not ENV_NAME.match(key):
            problems.add(where, "invalid env name %s: a variable name contains only letters, digits and '_' and does "
                                "not start with a digit, such as NODE_ENV; rename it" % toml_text(key))
            continue
        if key in STEP_VARIABLES:
            problems.add(where, "env.%s is set by seedrun for every step, which replaces this value; rename the "
                                "variable" % key)
            continue
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            # A number becomes its text, but true would have to become "true" or "1", so it must be quoted.
            problems.add(where, "env.%s must be a string or a number, not %s; quote it: %s = \"...\""
                         % (key, describe(item), key))
            continue
        if isinstance(item, str) and "\0" in item:
            problems.add(where, "env.%s contains a NUL character (\\u0000), which cannot be passed to a process; "
                                "remove it" % key)
            continue
        env[key] = str(item)
    return env


def _metrics(value: Any, where: str, problems: Problems) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.add(where, "metrics must be a table of regular expressions, like { products = 'Upserted (\\d+)' }, "
                            "not %s" % describe(value))
        return {}
    metrics = {}
    for key, pattern in value.items():
        if not isinstance(pattern, str):
            problems.add(where, "metrics.%s must be a string with a regular expression, like 'Upserted (\\d+)', "
                                "not %s" % (key, describe(pattern)))
            continue
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            problems.add(where, "metrics.%s is not a valid regular expression: %s" % (key, error))
            continue
        if compiled.groups < 1:
            problems.add(where, "metrics.%s needs a capture group for the value, like 'Upserted (\\d+) products'"
                         % key)
            continue
        metrics[key] = pattern
    return metrics


def _floors(value: Any, where: str, problems: Problems) -> dict[str, float]:
    if not isinstance(value, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value.values()):
        problems.add(where, "metric_floors must be a table of numbers, like { products = 1000 }, not %s"
                     % describe(value))
        return {}
    return {key: float(v) for key, v in value.items()}


def npm_script_name(command: str) -> str | None:
    """Return the script that `npm run` at the start of a command calls in the workdir's package.json, or None."""
    if not NPM_RUN.match(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    options = iter(words[2:])
    for word in options:
        if word == "--" or not word.startswith("-"):
            return None if word == "--" else word
        option = word.split("=", 1)[0]
        if option in NPM_OTHER_PACKAGE_OPTIONS:
            # The script is looked up in another package.json, which this check does not read.
            return None
        if option in NPM_VALUE_OPTIONS and "=" not in word:
            next(options, None)
        elif option not in NPM_FLAGS and "=" not in word:
            # NOTE: an option that is in neither list may take the next word as its value, so the
            # script name is unknown and the command is not checked.
            return None
    return None


def _check_npm_script(command: str, workdir: Path, where: str, problems: Problems) -> None:
    script = npm_script_name(command)
    if script is None:
        return
    package = workdir / "package.json"
    try:
        document = json.loads(package.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(where, "command runs npm script %r, but %s does not exist; set [pipeline] workdir to the "
                            "folder of your package.json" % (script, package))
        return
    except (OSError, ValueError) as error:
        problems.add(where, "cannot read the scripts of %s: %s" % (package, error))
        return
    # npm reads only an object of names to commands, so anything else (null, a list, a string) has no scripts.
    scripts = document.get("scripts", {}) if isinstance(document, dict) else None
    if not isinstance(scripts, dict):
        key = "\"scripts\"" if isinstance(document, dict) else "the top level"
        problems.add(where, "cannot read the scripts of %s: %s must be an object, like {\"scripts\": {\"%s\": "
                            "\"...\"}}; fix the file" % (package, key, script))
        return
    if script not in scripts:
        problems.add(where, "npm script %r not found in %s%s; add it to \"scripts\" or fix the command"
                     % (script, package, closest(script, scripts)))


def _phases(value: Any, problems: Problems) -> list[Phase]:
    if not isinstance(value, list):
        problems.add("[[phases]]", "phases must be an array of tables: [[phases]] name = ... steps = [...]")
        return []
    phases = []
    for position, table in enumerate(value, start=1):
        where = "[[phases]] #%d" % position
        if not isinstance(table, dict):
            problems.add(where, "must be a table with name and steps")
            continue
        problems.unknown_keys(where, table, PHASE_KEYS)
        if "name" not in table:
            problems.add(where, "missing name; set name = \"NAME\", which make phase-NAME runs")
        name = _name_value(table, "name", "phase-%d" % position, where, problems)
        where = "phase %r" % name
        steps = _name_list(table, "steps", where, problems)
        if not steps and isinstance(table.get("steps", []), list):
            problems.add(where, "lists no steps; list at least one, like steps = [\"seed-meyer\"], or remove "
                                "the phase")
        for duplicate in sorted(name for name, count in Counter(steps).items() if count > 1):
            problems.add(where, "duplicate step %r in phase %s; list each step once" % (duplicate, name))
        phases.append(Phase(name, list(dict.fromkeys(steps)), _choice(table, "mode", PHASE_MODES, where, problems),
                            _choice(table, "wait", PHASE_WAITS, where, problems), _bool(table, "enabled", where, problems)))
    return phases


def _pairs(table: dict, problems: Problems) -> dict[str, Pair]:
    pairs = {}
    for name, value in table.items():
        where = "[pairs.%s]" % name
        if not NAME_PATTERN.match(name):
            problems.add(where, "invalid pair name %r: %s; rename the pair" % (name, NAME_RULE))
        if not isinstance(value, dict):
            problems.add(where, "must be a table with main and dependent")
            continue
        problems.unknown_keys(where, value, PAIR_KEYS)
        main, dependent = value.get("main"), value.get("dependent")
        if not isinstance(main, str) or not isinstance(dependent, str):
            problems.add(where, "needs main = \"STEP\" and dependent = \"STEP\"")
            continue
        if main == dependent:
            problems.add(where, "main and dependent are both %r; a pair needs two different steps" % main)
            continue
        pairs[name] = Pair(name, main, dependent)
    return pairs


def _targets(table: dict, problems: Problems) -> dict[str, list[str]]:
    targets = {}
    for name, value in table.items():
        where = "[targets]"
        _check_goal_name("target", name, where, problems)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            problems.add(where, "%s must be a list of step names, like [\"seed-meyer\"], not %s"
                         % (name, describe(value)))
            continue
        if not value:
            problems.add(where, "target %r lists no steps; list at least one, like %s = [\"seed-meyer\"], or "
                                "remove the target" % (name, name))
            continue
        targets[name] = value
    return targets


# The unknown step names per validation that get a "did you mean" suggestion.
MAX_SUGGESTED_NAMES = 20


def _check_references(pipeline: Pipeline, problems: Problems) -> None:
    steps = pipeline.steps
    # The suggestion for each unknown name, found once: it compares the name with every step,
    # and a renamed step that a fan-out of thousands needs is one name referenced thousands of times.
    # Only the first MAX_SUGGESTED_NAMES unknown names get one, because each costs about 10 ms
    # per 1,000 steps, and a file whose step names all changed has thousands of unknown names.
    suggestions: dict[str, str] = {}

    def check(where: str, kind: str, name: str) -> None:
        if name not in steps:
            if name not in suggestions:
                suggestions[name] = closest(name, steps) if len(suggestions) < MAX_SUGGESTED_NAMES else ""
            problems.add(where, "%s unknown step %r%s" % (kind, name, suggestions[name]))

    for step in steps.values():
        where = "[steps.%s]" % step.name
        for need in step.needs:
            check(where, "needs", need)
        for other in step.after:
            check(where, "after", other)
        if step.pool is not None and step.pool not in pipeline.pools:
            problems.add(where, "uses unknown pool %r%s; define it under [pools]" % (
                step.pool, closest(step.pool, pipeline.pools)))
        for metric in step.metric_floors:
            if metric not in step.metrics:
                problems.add(where, "metric_floors.%s has no matching entry in metrics" % metric)
    _check_phase_references(pipeline, problems, check)
    for pair in pipeline.pairs.values():
        check("[pairs.%s]" % pair.name, "main is", pair.main)
        check("[pairs.%s]" % pair.name, "dependent is", pair.dependent)
    for name, members in pipeline.targets.items():
        for member in members:
            check("[targets] %s" % name, "lists", member)
    _check_names_unique(pipeline, problems)


def _check_phase_references(pipeline: Pipeline, problems: Problems, check: Any) -> None:
    seen: dict[str, str] = {}
    for phase in pipeline.phases:
        kept = []
        for name in phase.steps:
            check("phase %r" % phase.name, "lists", name)
            if name in seen and seen[name] != phase.name:
                problems.add("phase %r" % phase.name, "step %r is already in phase %r; a step belongs to one phase"
                             % (name, seen[name]))
                # Left out of this phase, so that the cycle check finds the step in one phase only.
                continue
            seen.setdefault(name, phase.name)
            kept.append(name)
        phase.steps = kept


def _check_names_unique(pipeline: Pipeline, problems: Problems) -> None:
    owners: dict[str, str] = {}
    names = [("phase", p.name) for p in pipeline.phases]
    # A phase that repeats an earlier phase's name would share its barrier,
    # which the cycle check reports as a cycle. The name error is enough.
    unique: dict[str, Phase] = {}
    for phase in pipeline.phases:
        unique.setdefault(phase.name, phase)
    pipeline.phases = list(unique.values())
    names += [("pair", p) for p in pipeline.pairs]
    names += [("target", t) for t in pipeline.targets]
    for kind, name in names:
        if name in owners and owners[name] == kind:
            problems.add("names", "duplicate %s name %r; give each %s a name of its own" % (kind, name, kind))
        elif name in owners:
            problems.add("names", "%r is used by a %s and a %s; give each a name of its own" % (name, owners[name], kind))
        elif kind == "target" and name in pipeline.steps:
            problems.add("names", "target %r has the name of a step; rename the target" % name)
        owners.setdefault(name, kind)
    # make and seedrun run a pair or a phase by the name pair-NAME or phase-NAME.
    goals = {"pair-" + name: "pair %r" % name for name in pipeline.pairs}
    goals.update(("phase-" + phase.name, "phase %r" % phase.name) for phase in pipeline.phases)
    for kind, names in (("step", pipeline.steps), ("target", pipeline.targets)):
        for name in names:
            if name in goals:
                problems.add("names", "%s %r has the name that runs %s (make %s); rename the %s"
                             % (kind, name, goals[name], name, kind))
