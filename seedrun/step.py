"""The step runner: the recipe of every make rule, run once per step.

Each recipe calls ``main([RUN_DIR, STEP])`` for a step and ``main([RUN_DIR,
"--phase", PHASE])`` for a phase barrier. Under ``seedrun run`` the call
happens in a worker of the run's launcher (see launcher.py), which calls
``main`` for one step after another and then closes the fds, restores the
signal handlers and the working directory that a step changed; a make
started by hand runs ``python -I -S -c`` per recipe instead (see rules.py).
The runner reads the step's spec from the run directory and decides whether
the step may start: its prerequisites, an aborted run, the failure threshold.
It takes a pool slot and runs the command in its own session, with stdout and
stderr going straight into the log file. It enforces timeout and retries,
kills whatever the command left behind, and writes the step's record and
stamps.

This path runs once per step, so it imports builtin modules and seedrun's own
builtin-only modules (process.py, pools.py) and nothing else. ``json``,
``re``, ``signal`` and ``subprocess`` would each cost more than the rest of
the runner. Internal files are written with ``marshal``, and the
orchestrator turns them into ``run.json``.

Every recipe exits 0 unless the run is being interrupted, so make's own
failure handling never decides anything. A step whose prerequisite did not
succeed records itself as skipped and returns.
"""

import _signal
import marshal
import os
import select
import sys
import time

from seedrun.process import SIGNAL_NAMES, Attempt, become_subreaper, is_zombie, kill_leftovers, signal_name

SIGHUP, SIGINT, SIGKILL, SIGTERM = 1, 2, 9, 15
# SIGHUP and SIGINT ignored when this process started stay ignored, as in
# GNU make: nohup ignores SIGHUP, and a shell script starts a background job
# with SIGINT ignored. SIGTERM is always handled, because seedrun stops its
# steps with it. A step's command starts in a session of its own with all
# of them at their defaults (process.RESET_SIGNALS).
IGNORED_AT_START = frozenset(number for number in (SIGHUP, SIGINT) if _signal.getsignal(number) == _signal.SIG_IGN)


# The PID of the seedrun process that runs the steps, set by the launcher that
# forks the step runners; None in a step runner that make started directly.
ORCHESTRATOR_PID = None


def handled_signals(numbers):
    """Return the signals of numbers that this process handles: all but those in IGNORED_AT_START."""
    return [number for number in numbers if number not in IGNORED_AT_START]
# Variables GNU make sets for its recipes; a step that runs make itself must
# not join the jobserver of the make that schedules the steps.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                  "MAKE_TERMOUT", "MAKE_TERMERR", "MAKE_RESTARTS")
# A step that keeps exiting with its pool's rate_limited_exit_code runs this many times more
# at most, outside its retries. With cooldown = "60s", doubling up to an hour,
# that is at most about 5 h of waiting before such an exit counts as a failure.
MAX_RATE_LIMITED_RETRIES = 10
# The start of every line that seedrun writes into a step's log (headers and footers).
LOG_LINE_PREFIX = "[seedrun] "
# The maximum length of one sleep of a retry delay or cool-down; a longer one sleeps again.
MAX_WAIT_SECONDS = 3600.0
# How often a step waiting to retry checks whether the run stopped (an abort, say) or ended.
STOP_CHECK_SECONDS = 0.5
# The footer gives the time spent stopping a step's leftover processes when it reaches this.
LEFTOVER_WAIT_SHOWN_SECONDS = 1.0
# A step that waits this long for its pool, or that waits at least this long to
# retry, lends its make job slot meanwhile. It equals pools.WAIT_SHOWN_SECONDS,
# after which the console prints a step's pool wait.
LEND_AFTER_SECONDS = 2.0
# The log footer's description of how leftover processes were stopped: normally, and after a second interrupt.
LEFTOVERS_STOPPED_WITH = "SIGTERM, then SIGKILL after kill_grace"
LEFTOVERS_KILLED_AT_ONCE = "SIGTERM, then SIGKILL at once on a second interrupt"
# A command still running after this long gets its PID in the step's record.
PID_RECORD_DELAY_SECONDS = 0.05
INTERRUPTED_EXIT = 130
# The words for the outcome of the step that a skipped step waited for, in its reason; "failed" for
# any other outcome.
ENDED_AS = {"timed_out": "timed out", "interrupted": "was interrupted"}


def iso(t):
    """Format epoch seconds as UTC ISO 8601 with milliseconds, e.g. 2026-12-04T19:37:12.123Z."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % ms


def format_duration(seconds):
    """Format seconds for people: 0.4s, 12.3s, 4m12s, 2h05m."""
    if seconds < 60:
        text = "%.1fs" % seconds
        return text.replace(".0s", "s")
    seconds = int(seconds + 0.5)
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


class RunFiles:
    """Paths inside a run directory that the step runner reads and writes."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.state = os.path.join(run_dir, ".seedrun")

    def specs(self):
        """Return the path of the file that contains every step's spec and every phase barrier's members."""
        return os.path.join(self.state, "specs")

    def record(self, name):
        return os.path.join(self.state, "records", name)

    def fallback_record(self, name):
        """Return where a record goes when the run directory cannot be written (a full or read-only disk)."""
        tmp = os.environ.get("TMPDIR") or "/tmp"
        return os.path.join(tmp, "seedrun-" + os.path.basename(self.run_dir), name)

    def stamp(self, name, kind):
        return os.path.join(self.state, "stamps", name + "." + kind)

    def phase_stamp(self, name, kind):
        return os.path.join(self.state, "stamps", "phase." + name + "." + kind)

    def flag(self, name):
        return os.path.join(self.state, name)

    def failed_dir(self):
        return os.path.join(self.state, "failed")


def write_atomically(path, data):
    """Replace path with data so that a reader sees the old or the new bytes, never a mix."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load(path):
    with open(path, "rb") as f:
        return marshal.load(f)


# Spec files loaded so far, by path, for the step runner only. A launcher
# worker serves many steps of one execution and loads the file once for all
# of them. The file changes only between executions (resume --replan), and
# each execution has its own launcher and workers.
_loaded_specs = {}


def load_spec(files, name):
    """Return the spec of a step, or the member list of "phase.NAME", from the run's spec file.

    One file contains them all, because creating a file per step costs more
    than loading them together (see runner.write_run_files).
    """
    path = files.specs()
    if path not in _loaded_specs:
        _loaded_specs[path] = load(path)
    return _loaded_specs[path][name]


def load_record(files, name):
    """Load a step's record from the run directory or, if newer there, from the fallback place; None if neither."""
    found = []
    for path in (files.record(name), files.fallback_record(name)):
        try:
            found.append((os.stat(path).st_mtime_ns, path))
        except OSError:
            pass
    for _, path in sorted(found, reverse=True):
        try:
            record = load(path)
        except (OSError, EOFError, ValueError, TypeError):
            continue
        if valid_record(record):
            return record
    return None


def valid_record(record):
    """Tell whether a loaded record has the types that its readers rely on; a damaged one counts as missing."""
    if not isinstance(record, dict) or not isinstance(record.get("status", ""), str):
        return False
    if not _numbers(record, ("queued_at", "started_at", "finished_at", "duration_s")):
        return False
    attempts, history = record.get("attempts", 0), record.get("attempt_history", [])
    if type(attempts) is not int or not isinstance(history, list):
        return False
    pid = record.get("pid")
    if pid is not None and (type(pid) is not int or pid <= 1):
        return False
    return all(isinstance(item, dict) and _numbers(item, ("started_at", "finished_at")) for item in history)


def _numbers(table, keys):
    """Tell whether the keys hold None or times that iso() can format: finite, from 1970 to about 2242."""
    for key in keys:
        value = table.get(key)
        if value is not None and (type(value) not in (int, float) or not 0 <= value < 2 ** 33):
            return False
    return True


def pending_record(previous):
    """Return the record of a step not started yet in this run, with the attempts of the earlier runs in `previous`."""
    return {
        "status": "pending", "exit_code": None, "signal": None,
        "attempts": previous.get("attempts", 0), "queued_at": None,
        "started_at": None, "finished_at": None, "duration_s": None,
        "reason": None, "blocked_by": None,
        "attempt_history": previous.get("attempt_history", []),
        "leftovers_killed": 0, "log_error": None, "pid": None,
    }


def succeeded(files, name):
    """Tell whether a step succeeded (or failed with on_failure = "ignore"): by its stamp, else its record."""
    if os.path.exists(files.stamp(name, "ok")):
        return True
    record = load_record(files, name)
    return bool(record) and (record.get("status") == "succeeded" or bool(record.get("allowed_failure")))


def not_started_reason(files):
    """Return why a step of a stopped run does not start, or None while the run goes on.

    The "interrupted" flag file stops the run. It is empty after an
    interrupt, and contains the reason when seedrun stops the run on an error.
    """
    try:
        with open(files.flag("interrupted"), "rb") as f:
            reason = f.read().decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    except OSError:
        reason = ""
    return "not started: %s" % (reason or "the run was interrupted")


def touch(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def stamp(path, record_path):
    """Create a stamp as a hard link to the step's record file, or as an empty file where no link can be made.

    Only a stamp's existence counts, never its content. A link gives a new
    name to an inode that already exists, and on ext4 that costs a fraction
    of allocating one, which a file system full of recently deleted files
    makes slower still.
    """
    try:
        os.link(record_path, path)
    except FileExistsError:
        pass
    except OSError:
        touch(path)


class Console:
    """Write whole lines to the run's console, one writer at a time.

    Steps run in parallel and share make's stdout. Each line is written under
    an exclusive flock on the run's console lock, so lines never mix, even
    when one is longer than the pipe buffer. A closed or broken console is
    ignored: the step's outcome must still be recorded.

    Given the PIDs that may be the step runner's parent, a Console drops its
    lines when its parent is not one of them. A step runner's parent is its
    launcher, or seedrun when only the launcher died (seedrun is a
    subreaper). seedrun killed with SIGKILL takes its launcher along, and
    a step runner left behind would print its outcome at the operator's
    shell prompt.
    """

    def __init__(self, lock_path, parents=None):
        self.lock_path = lock_path
        self.parents = parents
        # True while say() holds the lock, so that a line written from its `then` does not wait for the lock itself.
        self.holding = False

    def say(self, line, then=None):
        """Write line to the console, then call then() before another process may write, or seedrun kill this one."""
        import fcntl

        if self.parents is not None and os.getppid() not in self.parents:
            if then is not None:
                then()
            return
        fd = None
        if not self.holding:
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.holding = True
            except OSError:
                # The line is written without the lock. It may mix with another line, which is better than losing it.
                pass
        try:
            self._write(line)
            if then is not None:
                then()
        finally:
            if fd is not None:
                self.holding = False
                os.close(fd)

    @staticmethod
    def _write(line):
        view = memoryview((line + "\n").encode("utf-8", "backslashreplace"))
        try:
            while view:
                view = view[os.write(1, view):]
        except OSError:
            pass


class Signals:
    """Turn SIGINT, SIGTERM and SIGHUP into a flag and a byte on a pipe that wakes poll()."""

    def __init__(self):
        self.received = []
        self.read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for number in handled_signals((SIGINT, SIGTERM, SIGHUP)):
            _signal.signal(number, self._handle)

    def _handle(self, number, frame):
        self.received.append(number)

    def drain(self):
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass

    def sleep(self, seconds, stopped=None, wake_fd=None):
        """Sleep, waking early on a signal, once stopped() returns a true value, or once wake_fd is readable.

        Return True if a signal arrived. stopped() is called every STOP_CHECK_SECONDS.
        """
        deadline = time.monotonic() + seconds
        longest = MAX_WAIT_SECONDS if stopped is None else STOP_CHECK_SECONDS
        fds = [self.read_fd] if wake_fd is None else [self.read_fd, wake_fd]
        while not self.received:
            if stopped is not None and stopped():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # In parts, as Attempt.wait() waits for poll(), which takes at most INT_MAX ms.
            readable = select.select(fds, [], [], min(left, longest))[0]
            self.drain()
            if wake_fd is not None and wake_fd in readable:
                return bool(self.received)
        return True


class StepRunner:
    """Run one step from its spec and leave its record, stamps and log."""

    def __init__(self, run_dir, name):
        self.files = RunFiles(run_dir)
        self.name = name
        self.spec = load_spec(self.files, name)
        # The launcher, or the recipe shell of a make without one. It lives
        # as long as this step runner, unless the run ends first.
        self.parent = os.getppid()
        self.console = Console(self.files.flag("console.lock"), {self.parent, ORCHESTRATOR_PID})
        self.warned = set()
        self.slot = None
        # The make job slot this step lent while it waits (see jobslots.py), or None.
        self.lent = None
        # Set by run(), which turns signals into a flag from then on.
        self.signals = None
        self.record = self._previous_record()
        self.attempt = None
        # True from the command's start until it has been waited for; its PID is free for reuse after that.
        self.command_running = False

    def _previous_record(self):
        return pending_record(load_record(self.files, self.name) or {})

    def save(self, **changes):
        self.record.update(changes)
        data = marshal.dumps(self.record)
        try:
            write_atomically(self.files.record(self.name), data)
            return
        except OSError as error:
            problem = error.strerror
        fallback = self.files.fallback_record(self.name)
        try:
            os.makedirs(os.path.dirname(fallback), exist_ok=True)
            write_atomically(fallback, data)
        except OSError as error:
            self._warn_once("Warning: cannot write the record of %s: %s, and not in %s either: %s"
                            % (self.name, problem, fallback, error.strerror))
            return
        self._warn_once("Warning: cannot write the record of %s in %s: %s; it is written to %s instead"
                        % (self.name, self.files.run_dir, problem, fallback))

    def _warn_once(self, line):
        if line not in self.warned:
            self.warned.add(line)
            self.console.say(line)

    # Deciding whether the step may start

    def blocker(self):
        """Return (status, reason, blocked_by) when the step must not start, else None.

        A failed prerequisite comes before a stopped run, so that the
        dependents of a failed step read "skipped" even when the failure also
        reached max_failures or aborted the run.
        """
        reason = not_started_reason(self.files)
        if reason:
            return "not_run", reason, None
        for need in self.spec["needs"]:
            if not succeeded(self.files, need):
                return self._blocked_by_step(need)
        phase = self.spec["needs_phase"]
        if phase and not os.path.exists(self.files.phase_stamp(phase, "ok")):
            return phase_blocker(self.files, phase)
        # The launcher or recipe has just handed this step over, so its run is alive:
        # checking that here would cost every step a read of /proc.
        return self._run_stopped(check_run_ended=False)

    def _run_stopped(self, check_run_ended=True):
        """Return (status, reason, blocked_by) when the step must not start because of _stop_cause(), else None."""
        stopped = self._stop_cause(check_run_ended)
        if stopped is None:
            return None
        return "not_run", "not started: " + stopped[0], stopped[1]

    def _stop_cause(self, check_run_ended=True):
        """Return (cause, failed step or None) once the run starts no more commands, else None.

        That is after a failure with on_failure = "abort", once max_failures
        is reached, and once the run that started this step has ended
        (seedrun killed with SIGKILL, say), because nothing would supervise a
        command then. A step checks this before it starts, while it waits for
        its pool, and before and while it waits to retry.
        """
        if check_run_ended and self._parent_gone():
            if self._orchestrator_gone():
                # The launcher may not have died with seedrun yet, and the console
                # would still print this step's outcome at the operator's prompt.
                # When only the launcher died, seedrun adopts this process and its lines still count.
                self.console.parents = ()
            return "the run that started this step has ended", None
        try:
            with open(self.files.flag("abort")) as f:
                failed = f.read().strip()
            return 'the run stopped after %s failed (on_failure = "abort")' % failed, failed
        except OSError:
            pass
        limit = self.spec["max_failures"]
        if limit:
            try:
                failed = os.listdir(self.files.failed_dir())
            except OSError:
                failed = []
            if len(failed) >= limit:
                return ("%d step%s failed, which reaches max_failures (%d)"
                        % (len(failed), "" if len(failed) == 1 else "s", limit), None)
        return None

    def _blocked_by_step(self, need):
        other = load_record(self.files, need) or {"status": "not_run", "blocked_by": None}
        status = other.get("status")
        if status == "not_run":
            return "not_run", "not started: needs %s, which did not run" % need, other.get("blocked_by")
        if status == "skipped":
            root = other.get("blocked_by") or need
            reason = "needs %s, which was skipped because %s %s" % (need, root, ended_as(self.files, root))
            return "skipped", reason, root
        return "skipped", "needs %s, which %s" % (need, ENDED_AS.get(status, "failed")), need

    # Running

    def run(self):
        blocked = self.blocker()
        if blocked:
            return self._finish_unstarted(*blocked)
        signals = self.signals = Signals()
        self.record["queued_at"] = time.time()
        if self.spec["pool"]:
            self.save(status="waiting")
        self.slot = self._take_pool_slot(signals)
        if signals.received:
            self._release_slot()
            return self._finish_interrupted_before_start()
        stopped = self._run_stopped() if self.spec["pool"] else None
        if stopped:
            # The run stopped or ended while this step waited for its pool, which then ended without a
            # slot, or the failure that stopped the run freed the slot that this step took.
            self._release_slot()
            return self._finish_unstarted(*stopped)
        try:
            outcome = self._run_attempts(signals)
        finally:
            self._release_slot()
        return outcome

    def _release_slot(self):
        if self.slot:
            self.slot.release()
            self.slot = None

    def _take_pool_slot(self, signals):
        pool = self.spec["pool"]
        if not pool:
            return None
        from seedrun.pools import PoolSlot

        slot = PoolSlot(pool)
        if not slot.acquire(signals, self._say_pool_wait, self._stop_cause, self._job_slot_wait):
            return None
        return slot

    def take_back_lent_slot(self):
        """Take back a job slot that the step still has lent as it ends, unless the run stops first.

        make counts the step's own slot as busy until the step runner exits,
        so a slot left lent would let make run more than `jobs` steps. That
        happens after an error, and after a signal that ended this step
        alone while the run goes on. The signal that ended the step is
        handled already, so only a further one ends this wait.
        """
        if self.lent is None:
            return
        del self.signals.received[:]
        if self.lent.take_back(self.signals, self._run_over):
            self.lent = None

    def _run_over(self):
        """Tell whether the run starts no more commands: it was interrupted, stopped (see _stop_cause()) or ended."""
        return not_started_reason(self.files) is not None or self._stop_cause() is not None

    def _job_slot_wait(self):
        """Return None if this step has its make job slot, taking back a lent one if one is free; else the fd to wait on."""
        if self.lent is None or self.lent.try_take_back():
            self.lent = None
            return None
        return self.lent.fd

    def _lend_job_slot(self):
        """Let make start another step with this step's job slot while this one waits."""
        if self.lent is None:
            from seedrun import jobslots

            self.lent = jobslots.lend(self.files.flag(jobslots.FIFO_NAME))

    def _take_back_job_slot(self, signals):
        """Wait for a free job slot if this step lent its own; False if a signal came or the run stopped first.

        A slot not taken back stays lent, for take_back_lent_slot() to take back as the step ends.
        """
        if self.lent is None or self.lent.take_back(signals, self._stop_cause, self._say_job_slot_wait,
                                                    LEND_AFTER_SECONDS):
            self.lent = None
            return True
        return False

    def _say_job_slot_wait(self):
        self.console.say("Waiting: %s for a free job slot (it lent its own while it waited)" % self.name)

    def _parent_gone(self):
        """Tell whether the launcher, or the recipe shell of a make without one, has ended, and with it the run.

        seedrun's own end counts too. Its launcher dies with it, but may still
        be exiting when make, stopping, frees the job slots of its recipes.
        """
        return os.getppid() != self.parent or self._orchestrator_gone()

    def _orchestrator_gone(self):
        """Tell whether the seedrun process that runs the steps has ended; False without a launcher, which sets it."""
        return ORCHESTRATOR_PID is not None and is_zombie(ORCHESTRATOR_PID)

    def _say_pool_wait(self, reason):
        """Say why the step waits, once it has waited WAIT_SHOWN_SECONDS, and lend its job slot from then on."""
        self.console.say("Waiting: %s for pool %s (%s)" % (self.name, self.spec["pool"]["name"], reason))
        self._lend_job_slot()

    def _finish_unstarted(self, status, reason, blocked_by):
        self.save(status=status, reason=reason, blocked_by=blocked_by, finished_at=time.time())
        try:
            stamp(self.files.stamp(self.name, "done"), self.files.record(self.name))
        except OSError as error:
            self._warn_once("Warning: cannot write the stamps of %s: %s" % (self.name, error.strerror))
        if status == "skipped":
            self.console.say("Skipped: %s (%s)" % (self.name, reason))
        else:
            self.console.say("Not run: %s (%s)" % (self.name, reason))
        return 0

    def _finish_interrupted_before_start(self):
        reason = not_started_reason(self.files)
        if reason is None:
            # The signal reached this step runner alone and the run goes on,
            # so make must go on too: the steps that need this one do not run.
            return self._finish_unstarted("not_run", "not started: %s" % self._signalled_alone(), None)
        self.save(status="not_run", reason=reason, finished_at=time.time())
        self.console.say("Not run: %s (%s)" % (self.name, reason))
        return INTERRUPTED_EXIT

    def _signalled_alone(self):
        received = self.signals.received if self.signals else []
        name = signal_name(received[0]) if received else "a signal"
        return "its step runner (PID %d) received %s while the run went on" % (os.getpid(), name)

    def _run_attempts(self, signals):
        log_fd, log_error = self._open_log()
        env = self._environment()
        limit = 1 + self.spec["retries"]
        counted = 0
        rate_limited = 0
        first_start = None
        become_subreaper()
        self.console.say("Starting: %s" % self.name)
        while True:
            counted += 1
            self.record["attempts"] += 1
            attempt = self.attempt = Attempt(self.spec, log_fd, signals, env)
            started, result = self._run_one(attempt, counted, limit)
            first_start = first_start or started
            if result["outcome"] == "rate_limited" and rate_limited < MAX_RATE_LIMITED_RETRIES:
                if self._not_retried(log_fd):
                    break
                rate_limited += 1
                counted -= 1
                self._forget_command()
                if not self._cool_down(signals, result):
                    result = self._interrupted_between_attempts(
                        log_fd, result, "interrupted while the pool cooled down after %s")
                    break
                if self._not_retried(log_fd):
                    break
                continue
            if not self._should_retry(result, counted, limit):
                break
            if self._not_retried(log_fd):
                break
            if signals.received:
                # The interrupt came while the attempt ended (during kill_grace), so no retry follows.
                result = self._interrupted_between_attempts(log_fd, result, "interrupted before the retry after %s")
                break
            delay = self._retry_delay(counted)
            self._forget_command()
            self.console.say("Retrying: %s in %s (attempt %d of %d, %s)" % (
                self.name, format_duration(delay), self.record["attempts"] + 1, self._last_attempt(counted, limit),
                result["summary"]))
            # A step waiting to retry gives its pool slot to others, and takes
            # one again (with the pool's min_interval) before the next attempt.
            # A long wait lends its job slot too, as a long wait for a pool does.
            self._release_slot()
            if delay >= LEND_AFTER_SECONDS:
                self._lend_job_slot()
            if signals.sleep(delay, self._stop_cause) or not self._retake_slot(signals):
                result = self._interrupted_between_attempts(
                    log_fd, result, "interrupted while waiting to retry after %s")
                break
            if self._not_retried(log_fd):
                break
        return self._finish_started(result, first_start, log_fd, log_error)

    def _not_retried(self, log_fd):
        """Tell whether the step must start no more attempts (see _stop_cause()), and if so write to the log why.

        The step then ends with the outcome of its last attempt. After seedrun
        was killed with SIGKILL, which takes its launcher along, and make its
        recipes, nothing would supervise or wait for a retry, and the next run
        takes this one over.
        """
        stopped = self._stop_cause()
        if stopped is None:
            return False
        self._log_write(log_fd, "[seedrun] not retried: %s\n" % stopped[0])
        return True

    def _forget_command(self):
        """Save the record before a wait between attempts, with the ended attempt and without its command's PID.

        The PID is free for reuse once the command was waited for. A launcher
        that finds this step runner dead during the wait, or a second
        interrupt, would otherwise signal that PID's process group as the
        step's command. The ended attempt shows in run.json and the live
        report during the wait. Saved only here, so that a step without a
        retry writes no extra record on its way to the next step.
        """
        self.save(pid=None)

    def _interrupted_between_attempts(self, log_fd, result, summary):
        """Write to the log that the step was interrupted after an attempt ended, and return that outcome."""
        summary = summary % result["summary"]
        self._log_write(log_fd, "[seedrun] %s\n" % summary)
        return dict(result, outcome="interrupted", stopped_with=None, summary=summary, finished_at=time.time())

    def _retake_slot(self, signals):
        if self.spec["pool"]:
            self.slot = self._take_pool_slot(signals)
        else:
            self._take_back_job_slot(signals)
        return not signals.received

    def _run_one(self, attempt, counted, limit):
        started = time.time()
        # Saved before the header, so that a step runner killed from here on
        # leaves a record of a started step. _wait() adds the command's PID,
        # but only for a command that outlives PID_RECORD_DELAY_SECONDS. Until
        # then the launcher finds the command by its environment, and a short
        # step writes one record fewer.
        self.save(status="running", started_at=self.record["started_at"] or started, pid=None)
        header_at = log_size(attempt.log_fd)
        header = self._log_header(attempt.log_fd, counted, limit, started)
        if self.record["log_error"]:
            header_at = None
        try:
            os.chdir(self.spec["workdir"])
            pid = attempt.spawn()
            self.command_running = True
        except OSError as error:
            result = self._spawn_failure(error, started)
            self._log_footer(attempt.log_fd, result, 0)
            return started, result
        result = self._wait(attempt, started)
        self.command_running = False
        on_found = None
        if self._last_attempt_result(result, counted, limit):
            # Stopping leftovers can take kill_grace. A second interrupt that kills this step runner
            # meanwhile leaves the saved result to seedrun (see finish_ended_command()).
            def on_found(found):
                self.save(ended_command=dict(result, leftovers=found))
        leftovers = kill_leftovers(pid, attempt.remaining_grace(self.spec["kill_grace"]), attempt.stopped_leftovers,
                                   on_found)
        self.record["leftovers_killed"] += leftovers
        if header_at is not None and not log_starts_with(attempt.log_fd, header_at, header):
            self._restore_header(attempt.log_fd, header)
        self._log_footer(attempt.log_fd, result, leftovers)
        self._add_attempt_history(result)
        return started, result

    def _last_attempt_result(self, result, counted, limit):
        """Tell whether the attempt's result is the step's outcome, because no retry or rerun follows it.

        An interrupt that comes later does not change such an outcome.
        """
        if result["outcome"] in ("succeeded", "interrupted"):
            return True
        return result["outcome"] != "rate_limited" and not self._should_retry(result, counted, limit)

    def _add_attempt_history(self, result):
        self.record["attempt_history"].append({
            "attempt": self.record["attempts"], "started_at": result["started_at"],
            "finished_at": result["finished_at"], "exit_code": result["exit_code"], "signal": result["signal"],
            "outcome": result["outcome"],
        })

    def _wait(self, attempt, started):
        timeout = self.spec["timeout"]
        first = PID_RECORD_DELAY_SECONDS if timeout is None else min(timeout, PID_RECORD_DELAY_SECONDS)
        how, value = attempt.wait(first)
        if how == "timeout" and (timeout is None or timeout > first):
            self.save(pid=attempt.pid)
            how, value = attempt.wait(None if timeout is None else max(0.0, started + timeout - time.time()))
        if how == "exited":
            return self._result(value, started, None)
        if how == "signal" and not self.record.get("pid"):
            # Stopping takes up to kill_grace; a second interrupt meanwhile kills the command by this PID.
            self.save(pid=attempt.pid)
        status = attempt.stop(self.spec["kill_grace"])
        cause = "timeout" if how == "timeout" else "interrupt"
        return self._result(status, started, (cause, attempt.stopped_with))

    def _result(self, status, started, stopped):
        finished = time.time()
        code = os.waitstatus_to_exitcode(status)
        exit_code = code if code >= 0 else None
        sig = signal_name(-code) if code < 0 else None
        if stopped and stopped[0] == "timeout":
            outcome = "timed_out"
            summary = "timed out after %s" % format_duration(self.spec["timeout"])
        elif stopped:
            outcome = "interrupted"
            summary = "interrupted after %s" % format_duration(finished - started)
        elif exit_code == 0:
            outcome, summary = "succeeded", "exit code 0"
        else:
            outcome = "failed"
            summary = "exit code %d" % exit_code if sig is None else "killed by %s" % sig
            if exit_code is not None and exit_code == self._rate_limited_code():
                outcome = "rate_limited"
        return {"outcome": outcome, "exit_code": exit_code, "signal": sig, "summary": summary,
                "finished_at": finished, "started_at": started,
                "stopped_with": stopped[1] if stopped else None}

    def _spawn_failure(self, error, started):
        message = "cannot start the command in %s: %s" % (self.spec["workdir"], error.strerror)
        return {"outcome": "failed", "exit_code": None, "signal": None, "summary": message,
                "finished_at": time.time(), "started_at": started, "stopped_with": None}

    def _rate_limited_code(self):
        pool = self.spec["pool"]
        return pool.get("rate_limited_exit_code") if pool else None

    def _cool_down(self, signals, result):
        """Start the pool's cool-down and take a slot again once the pool may start steps; False on a signal.

        The slot goes back meanwhile, and taking it again waits out the
        cool-down and then the pool's min_interval, as for any other start.
        """
        from seedrun.pools import cool_down

        pause = cool_down(self.spec["pool"], result["started_at"])
        self.console.say("Rate limited: %s exited with %d; pool %s cools down for %s" % (
            self.name, result["exit_code"], self.spec["pool"]["name"], format_duration(pause)))
        self._release_slot()
        return self._retake_slot(signals)

    def _should_retry(self, result, counted, limit):
        if counted >= limit or result["outcome"] not in ("failed", "timed_out", "rate_limited"):
            return False
        codes = self.spec["retry_on_exit_codes"]
        if codes is None:
            return True
        # A list retries no timeout, even when the command ends on the timeout's SIGTERM with a listed code.
        return result["outcome"] != "timed_out" and result["exit_code"] in codes

    def _retry_delay(self, counted):
        return retry_delay(self.spec["retry_delay"], counted, self.spec["max_retry_delay"])

    # Log and environment

    def _open_log(self):
        try:
            # Read and write, so that the footer can check the last byte of the output.
            fd = os.open(self.spec["log"], os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            return fd, None
        except OSError as error:
            message = "%s (%s)" % (error.strerror, self.spec["log_display"])
            self.console.say("Warning: cannot open the log of %s: %s; its output is discarded"
                             % (self.name, message))
            self.save(log_error="cannot open the log: " + message)
            return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC), message

    def _environment(self):
        env = dict(os.environ)
        for name in MAKE_VARIABLES:
            env.pop(name, None)
        env.update(self.spec["env"])
        env["SEEDRUN_RUN_ID"] = self.spec["run_id"]
        env["SEEDRUN_RUN_DIR"] = self.files.run_dir
        env["SEEDRUN_STEP"] = self.name
        return env

    def _log_write(self, fd, text):
        data = text.encode("utf-8", "backslashreplace")
        try:
            # A full disk or a file size limit can take part of the text and fail on the rest.
            while data:
                data = data[os.write(fd, data):]
        except OSError as error:
            if not self.record["log_error"]:
                self.record["log_error"] = "cannot write the log: %s" % error.strerror
                self.console.say("Warning: cannot write %s: %s" % (self.spec["log_display"], error.strerror))

    def _last_attempt(self, counted, limit):
        """Return the number of the last attempt this run may make, with `counted` of its `limit` attempts made.

        Attempts are numbered across resumes and rate-limited retries, as
        run.json counts them, in the log and on the console alike.
        """
        return self.record["attempts"] - counted + limit

    def _log_header(self, fd, counted, limit, started):
        # Each line of a multi-line command gets the prefix too, so that
        # readers of the log (metrics, the report's error scan) can tell
        # the header from the command's output.
        command = self.spec["command"].replace("\n", "\n" + LOG_LINE_PREFIX + " " * len("command: "))
        header = "%sstep %s, attempt %d of %d, started %s\n%scommand: %s\n%sworkdir: %s\n" % (
            LOG_LINE_PREFIX, self.name, self.record["attempts"], self._last_attempt(counted, limit), iso(started),
            LOG_LINE_PREFIX, command, LOG_LINE_PREFIX, self.spec["workdir"])
        self._log_write(fd, header)
        return header.encode("utf-8", "backslashreplace")

    def _restore_header(self, fd, header):
        """Put this attempt's header back at the start of a log that the command truncated.

        A command that opens its own output again, as `echo x > /dev/stderr`
        does, opens the log file with O_TRUNC: the header and every byte
        before that moment are gone, and the rest of the output starts at
        offset 0. The header and a note go back in front of what is left.
        NOTE: a command that writes over the start of the log without
        truncating it (`1<>/dev/stdout`) fails the same check. The log then
        keeps the overwritten bytes after the restored header.
        """
        notice = ("%sthe command truncated or overwrote this log while it ran, by opening it again, as "
                  "`> /dev/stderr` and `> /dev/stdout` do; what the log held before that is lost or garbled. "
                  "Write to >&2 or >&1 instead.\n" % LOG_LINE_PREFIX).encode()
        try:
            insert_at_start(fd, header + notice)
        except OSError as error:
            self._log_write(fd, "%scannot restore the header of a truncated log: %s\n" % (LOG_LINE_PREFIX,
                                                                                          error.strerror))
        self.console.say("Warning: %s truncated or overwrote its own log, as `> /dev/stderr` does; the output before "
                         "that is lost (see %s)" % (self.name, self.spec["log_display"]))

    def _log_footer(self, fd, result, leftovers, killed_with=LEFTOVERS_STOPPED_WITH):
        text = ""
        if not ends_with_newline(fd):
            text = "\n[seedrun] the output did not end with a newline; seedrun added one\n"
        duration = format_duration(result["finished_at"] - result["started_at"])
        if result["stopped_with"]:
            text += "[seedrun] %s; stopped with %s" % (result["summary"], result["stopped_with"])
            if result["signal"]:
                text += "; ended by %s" % result["signal"]
            elif result["exit_code"] is not None:
                text += "; exit code %d" % result["exit_code"]
            text += "\n"
        else:
            text += "[seedrun] %s after %s\n" % (result["summary"], duration)
        if leftovers:
            text += "[seedrun] killed %d leftover process%s that the step started" % (
                leftovers, "" if leftovers == 1 else "es")
            waited = time.time() - result["finished_at"]
            if waited >= LEFTOVER_WAIT_SHOWN_SECONDS:
                # The next steps waited for this too, though the step's duration does not show it.
                text += ", %s after the command ended (%s)" % (format_duration(waited), killed_with)
            text += "\n"
        self._log_write(fd, text)

    # Finishing

    def _finish_started(self, result, first_start, log_fd, log_error):
        outcome = result["outcome"]
        if outcome == "rate_limited":
            outcome = "failed"
        if outcome == "interrupted" and not_started_reason(self.files) is None:
            # The signal reached this step runner alone and the run goes on: the step
            # failed, and its on_failure decides what happens to the rest of the run.
            outcome = "failed"
            result = dict(result, summary="stopped after %s: %s" % (
                format_duration(result["finished_at"] - result["started_at"]), self._signalled_alone()))
        finished = result["finished_at"]
        # on_failure applies to a timeout as to any failure, as skip-dependents and abort do.
        allowed = outcome in ("failed", "timed_out") and self.spec["on_failure"] == "ignore"
        reason = self._reason(result, log_error)
        self.save(status=outcome, exit_code=result["exit_code"], signal=result["signal"],
                  started_at=first_start, finished_at=finished, duration_s=round(finished - first_start, 3),
                  reason=reason, pid=None, allowed_failure=allowed, ended_command=None)
        os.close(log_fd)
        if outcome == "interrupted":
            return self._say_interrupted(finished - first_start)
        self._write_stamps(outcome, allowed)
        self._say_outcome(outcome, result, finished - first_start, allowed)
        return 0

    def _say_interrupted(self, duration):
        # The mark is saved under the console lock, which seedrun takes before a second interrupt's kill,
        # so a record without it means the line is missing, and seedrun prints it (settle_records()).
        self.console.say("Interrupted: %s after %s (see %s)" % (
            self.name, format_duration(duration), self.spec["log_display"]), then=lambda: self.save(announced=True))
        return INTERRUPTED_EXIT

    def _reason(self, result, log_error):
        if result["outcome"] == "succeeded":
            return None
        if result["exit_code"] == 127:
            return "exit code 127: the command was not found (see the log)"
        if result["exit_code"] == 126:
            return "exit code 126: the command could not be executed (see the log)"
        code = result["exit_code"]
        if result["outcome"] == "failed" and isinstance(code, int) and code - 128 in SIGNAL_NAMES:
            # /bin/sh reports a process that a signal ended as 128 plus the signal's number.
            return "exit code %d: a process of the command was probably ended by %s (128 + %d; see the log)" % (
                code, SIGNAL_NAMES[code - 128], code - 128)
        return result["summary"]

    def _write_stamps(self, outcome, allowed):
        """Leave the stamps make and the later steps look for; a full disk only costs a warning.

        Without its stamps a step still counts by its record (see succeeded()).
        """
        paths = []
        if outcome == "succeeded" or allowed:
            paths.append(self.files.stamp(self.name, "ok"))
        elif outcome in ("failed", "timed_out"):
            paths.append(os.path.join(self.files.failed_dir(), self.name))
        paths.append(self.files.stamp(self.name, "done"))
        try:
            for path in paths:
                stamp(path, self.files.record(self.name))
            if outcome in ("failed", "timed_out") and not allowed and self.spec["on_failure"] == "abort":
                write_atomically(self.files.flag("abort"), self.name.encode())
        except OSError as error:
            self._warn_once("Warning: cannot write the stamps of %s: %s" % (self.name, error.strerror))

    def finish_abandoned(self, runner_pid, code, stopped_with, record):
        """Finish the record of a step whose step runner died mid-step; return the recipe's exit code.

        The launcher calls this once the step's command is gone, stopped
        with stopped_with (None when no command was running). It leaves what
        the step runner would have left: the outcome, the log footer and the
        stamps, so that the steps that need this one are skipped instead of
        never reached. code is the step runner's exit code, negative for a
        signal. record is the step runner's last record of this step, or
        None when it saved none.
        """
        if record is not None:
            self.record = record
        finished = time.time()
        started = self.record.get("started_at") or finished
        death = signal_name(-code) if code < 0 else "exit code %d" % code
        reason = "the step runner (PID %d) died with %s; %s" % (
            runner_pid, death, self._abandoned_command(stopped_with))
        header_written = self.record.get("status") == "running"
        interrupted = os.path.exists(self.files.flag("interrupted"))
        if interrupted and not header_written:
            # The interrupt reached the step runner before the step started (the signal killed it).
            return self._finish_interrupted_before_start()
        outcome = "interrupted" if interrupted else "failed"
        allowed = outcome == "failed" and self.spec["on_failure"] == "ignore"
        self.save(status=outcome, finished_at=finished, duration_s=round(finished - started, 3), reason=reason,
                  pid=None, allowed_failure=allowed)
        if header_written and not append_footer(self.spec["log"], self.record):
            self._warn_once("Warning: cannot write the footer of %s" % self.spec["log_display"])
        if interrupted:
            return self._say_interrupted(finished - started)
        self._write_stamps(outcome, allowed)
        if header_written:
            self._say_outcome(outcome, {"summary": reason}, finished - started, allowed)
        else:
            # No log was started, so the console points to none.
            self.console.say("Failed: %s, %s" % (self.name, reason))
        return 0

    def finish_ended_command(self, record, leftovers):
        """Finish a step whose step runner was killed while it stopped the leftovers of its last attempt.

        A second interrupt kills step runners at once. The attempt's command
        had ended by then, and its step runner had saved the result in
        record["ended_command"], so the step keeps that outcome. This writes
        what the step runner would have: the log footer, with `leftovers`
        processes killed, the record, the stamps and the console line.
        Return the recipe's exit code, as _finish_started() does.
        """
        self.record = record
        result = record["ended_command"]
        self.record["leftovers_killed"] += leftovers
        log_fd, log_error = self._open_log()
        self._log_footer(log_fd, result, leftovers, LEFTOVERS_KILLED_AT_ONCE)
        self._add_attempt_history(result)
        return self._finish_started(result, record.get("started_at") or result["started_at"], log_fd, log_error)

    def finish_after_error(self, error):
        """Record the step failed after an exception in this step runner; return the recipe's exit code.

        Without this the step would keep a "running" record, and the run
        would see only a recipe that failed and a make that stopped. The
        traceback goes to stderr, which is make.log in the run directory.
        """
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        if self.record.get("status") not in ("pending", "waiting", "running"):
            # The outcome is recorded already; only its report failed.
            raise error
        if self.command_running and self.attempt is not None and self.attempt.pid:
            try:
                os.killpg(self.attempt.pid, SIGKILL)
            except OSError:
                pass
        finished = time.time()
        started = self.record.get("started_at") or finished
        reason = "seedrun's step runner failed: %s: %s (the traceback is in make.log)" % (type(error).__name__, error)
        header_written = self.record.get("status") == "running"
        allowed = self.spec["on_failure"] == "ignore"
        self.save(status="failed", finished_at=finished, duration_s=round(finished - started, 3), reason=reason,
                  pid=None, allowed_failure=allowed)
        if header_written and not append_footer(self.spec["log"], self.record):
            self._warn_once("Warning: cannot write the footer of %s" % self.spec["log_display"])
        self._write_stamps("failed", allowed)
        see = " (see %s)" % self.spec["log_display"] if header_written else ""
        self.console.say("Failed: %s, %s%s" % (self.name, reason, see))
        return 0

    def _abandoned_command(self, stopped_with):
        if stopped_with:
            return "its command was stopped with %s" % stopped_with
        status = self.record.get("status")
        if status == "running":
            return "its command had already ended"
        if status == "waiting":
            return "it was waiting for a slot of pool %s" % self.spec["pool"]["name"]
        return "its command had not started"

    def _say_outcome(self, outcome, result, duration, allowed):
        log = self.spec["log_display"]
        if outcome == "succeeded":
            self.console.say("Finished: %s in %s (log: %s)" % (self.name, format_duration(duration), log))
            return
        line = "Failed: %s, %s (see %s)" % (self.name, result["summary"], log)
        if allowed:
            line += '; allowed by on_failure = "ignore"'
        elif self.spec["on_failure"] == "abort":
            line += '; on_failure = "abort" stops the run from starting more steps'
        self.console.say(line)


def append_footer(path, record):
    """Append the footer of a step whose step runner died mid-step to its log; return False if that failed."""
    started = record.get("started_at")
    duration = format_duration(record["finished_at"] - started) if started else "an unknown time"
    footer = "[seedrun] %s after %s: %s\n" % (record["status"], duration, record["reason"])
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not ends_with_newline(fd):
            footer = "\n" + footer
        os.write(fd, footer.encode("utf-8", "backslashreplace"))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def retry_delay(base, counted, maximum):
    """Return the pause before the retry after `counted` attempts: base doubled each time, +-10%, at most maximum."""
    import random

    # maximum is a hard limit, and delays at the cap keep a jitter below it, so that steps that
    # failed together do not retry in lockstep. The exponent stops at 64, because 2 ** 1024 no
    # longer converts to a float, and 2 ** 64 times any delay exceeds every maximum.
    delay = base * (2 ** min(counted - 1, 64)) * random.uniform(0.9, 1.1)
    return delay if delay <= maximum else maximum * random.uniform(0.9, 1.0)


def log_size(fd):
    """Return the size of a log file, or None when the log is not a regular file (/dev/null)."""
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    return status.st_size if status.st_mode & 0o170000 == 0o100000 else None


def log_starts_with(fd, offset, header):
    """Return whether the attempt's header is still in the log at the offset where it was written."""
    try:
        return os.pread(fd, len(header), offset) == header
    except OSError:
        return True


def insert_at_start(fd, prefix, chunk=1 << 20):
    """Shift a file's content up by len(prefix) bytes, from its end backwards, and write prefix at offset 0."""
    # The log is open with O_APPEND, where pwrite() appends on Linux, so the
    # shift goes through a second descriptor of the same file without it.
    import errno

    writer = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_CLOEXEC)
    try:
        size = end = os.fstat(fd).st_size
        try:
            # The space for the longer file comes first: a write cut short by a full disk or a
            # file size limit in the middle of the move would leave the log garbled.
            os.posix_fallocate(writer, size, len(prefix))
        except OSError:
            os.ftruncate(writer, size)
            raise
        while end > 0:
            start = max(0, end - chunk)
            data = os.pread(fd, end - start, start)
            if os.pwrite(writer, data, start + len(prefix)) != len(data):
                raise OSError(errno.EIO, "the log's content could not be moved")
            end = start
        os.pwrite(writer, prefix, 0)
    finally:
        os.close(writer)


def ends_with_newline(fd):
    try:
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    except OSError:
        return True


def phase_blocker(files, phase):
    """Return (status, reason, blocked_by) for the first member of a phase that did not succeed, else None."""
    for name in load_spec(files, "phase." + phase):
        if succeeded(files, name):
            continue
        record = load_record(files, name) or {"status": "not_run"}
        root = record.get("blocked_by") or name
        if record.get("status") == "not_run":
            return "not_run", "not started: phase %s did not finish" % phase, root
        return "skipped", "needs phase %s, where %s %s" % (phase, root, ended_as(files, root)), root
    return None


def ended_as(files, name):
    """Return the words for how `name` ended in the reason of a skipped step: failed, timed out or was interrupted."""
    record = load_record(files, name) or {}
    return ENDED_AS.get(record.get("status"), "failed")


def run_phase_barrier(run_dir, phase):
    """Stamp a phase that is too large for the shell barrier of rules.py."""
    files = RunFiles(run_dir)
    if phase_blocker(files, phase) is None:
        touch(files.phase_stamp(phase, "ok"))
    touch(files.phase_stamp(phase, "done"))
    return 0


def ensure_standard_fds():
    """Open /dev/null on any of fds 0-2 that is closed, so log fds never land there.

    The new fds are inheritable, as standard fds are: a Python child started
    with one of them closed would have None for sys.stdin, sys.stdout or
    sys.stderr, and fail on its first use.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.set_inheritable(os.open(os.devnull, os.O_RDWR), True)


def main(argv):
    ensure_standard_fds()
    if len(argv) == 3 and argv[1] == "--phase":
        return run_phase_barrier(os.path.abspath(argv[0]), argv[2])
    if len(argv) != 2:
        sys.stderr.write("usage: step.py RUN_DIR STEP | step.py RUN_DIR --phase PHASE\n")
        return 2
    run_dir = os.path.abspath(argv[0])
    runner = StepRunner(run_dir, argv[1])
    try:
        import fcntl

        active = os.open(runner.files.flag("active.lock"), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(active, fcntl.LOCK_SH)
    except OSError:
        pass
    try:
        outcome = runner.run()
    except Exception as error:  # noqa: BLE001 - any bug here must still leave the step's outcome
        outcome = runner.finish_after_error(error)
    runner.take_back_lent_slot()
    return outcome


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
