"""The step launcher: one resident process per run that hands each recipe's step to a step runner.

Starting CPython costs 10 to 20 ms, more than all the rest of a step
runner's work, and a recipe that starts ``python`` pays it once per step.
The launcher pays it once per run: it starts with the step runner imported,
reads requests from a FIFO and passes each to a worker, a process forked
from the launcher that runs the step runner. A worker serves one step at a
time and then waits for the next, so a run forks about as many workers as
it runs steps at once, not one per step. Forking costs little, but the
hundreds of copy-on-write page faults that follow it in the child cost more
than the rest of a short step. So while a step runs and no request waits,
the launcher forks spare workers, up to the number of steps that can become
ready together: when a step that many others need ends, they all start on
workers that already exist.

A step's recipe (see rules.py) uses shell builtins only, so it costs no more
than the shell make starts anyway::

    exec 3<>.seedrun/reply/NAME; echo "$$ NAME NAME" >.seedrun/launcher.fifo; read -r code <&3; exit $code

The recipe opens its reply FIFO first, for reading and writing, which on
Linux never blocks, and only then sends one request line: its PID, its reply
FIFO and the step runner's arguments. A line is much shorter than PIPE_BUF,
so requests that arrive together never mix. The worker joins the recipe's
process group, which is make's, for the time of the step, so a signal to
make's group reaches the step runner as it would reach a recipe, and idle
workers wait in the launcher's group, out of its reach. The worker writes
the exit code to the reply FIFO, and the recipe exits with that code.

seedrun starts the launcher before it reads the pipeline file, so that the
launcher's start overlaps seedrun's own imports and planning. The launcher
then waits on stdin for the run directory and its number of spare workers.
If stdin closes with nothing on it, no run started, and it exits.

Records, stamps and logs are the step runner's. If a worker dies mid-step,
the launcher sends SIGTERM to the step's command, which nothing supervises
any more, and to the processes that escaped its process group, and SIGKILL
after the step's kill_grace. It is their subreaper, so it can wait for them
to end. Then it writes the step's final
record, log footer and stamps as the step runner would have, and replies
for it. If the launcher dies, the orchestrator stops make's
process group, which ends the recipes that wait for a reply. If the
orchestrator dies, make gets SIGTERM (its parent-death signal) and stops its
recipes, and the launcher gets SIGKILL. Either way the workers read
end-of-file on their request pipes: a busy worker finishes its step and
writes its record, as a recipe would, and then exits with the idle ones.

Like the step runner, this module imports builtin modules only.
"""

import _signal
import os
import select
import sys
import time

# Imported here once for every worker, which would otherwise import them
# itself: fcntl for its locks, _ctypes for prctl(2), pools for steps that
# take a pool slot.
import _ctypes  # noqa: F401
import fcntl  # noqa: F401

from seedrun import pools, step  # noqa: F401
from seedrun.process import (SIGKILL, SIGTERM, become_subreaper, prctl_function, reap_children, list_children,
                             signal_process)

QUEUE = "launcher.fifo"
REPLIES = "reply"
STOP_REQUEST = b"stop"
INTERNAL_ERROR_EXIT = 70
PR_SET_PDEATHSIG = 1
# A worker exits after this many steps, so that whatever a step runner
# leaves in the process (imported modules, a grown heap) cannot pile up.
STEPS_PER_WORKER = 500
STEP_SIGNALS = (1, 2, 15)
ABANDONED_POLL_MS = 50
# A spare worker is forked after this long without a request or a report.
SPARE_IDLE_MS = 10
# The default kill_grace of a step (STEP_DEFAULTS in pipeline.py).
DEFAULT_KILL_GRACE_SECONDS = 30.0
IDLE = b"idle"
EXITING = b"exiting"


def reply_path(state_dir, reply):
    return os.path.join(state_dir, REPLIES, reply)


def recipe_exit_code(code):
    """Return a process's exit code, negative for a signal, as a shell reports it (128 + the signal)."""
    return code if code >= 0 else 128 - code


class Worker:
    """The launcher's view of one worker: its pipes and the request it serves, if any."""

    def __init__(self, pid, pidfd, requests, reports):
        self.pid = pid
        self.pidfd = pidfd
        self.requests = requests
        self.reports = reports
        self.reply = None
        self.client = None
        self.requested_at = 0.0

    def fds(self):
        return (self.pidfd, self.requests, self.reports)


class Abandoned:
    """A step whose worker died mid-step, while its command stops.

    group is the command's process group, or None when no command of the
    step was running. record is the step's record as the worker left it,
    or None when it wrote none for this request.
    """

    def __init__(self, name, client, runner_pid, code, group, grace, record):
        self.name = name
        self.client = client
        self.runner_pid = runner_pid
        self.code = code
        self.group = group
        self.record = record
        self.grace = grace
        self.deadline = time.monotonic() + grace
        self.killed = False
        # The escaped processes of the step (see Launcher._escaped_processes) sent SIGTERM so far.
        self.signalled = set()

    def stop_escaped(self, pids, now):
        """Send SIGTERM once to each escaped process of the step, or SIGKILL once kill_grace is over."""
        number = SIGKILL if now >= self.deadline else SIGTERM
        for pid in pids:
            if number == SIGTERM and pid in self.signalled:
                continue
            self.signalled.add(pid)
            signal_process(pid, number)
        if number == SIGKILL:
            self.killed = True

    def still_stopping(self, now):
        """Return whether the command's process group still exists, sending it SIGKILL once kill_grace is over."""
        try:
            if now >= self.deadline:
                os.killpg(self.group, SIGKILL)
                self.killed = True
            else:
                os.killpg(self.group, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True


class Launcher:
    """Serve the requests of one run's recipes until asked to stop and every step has replied."""

    def __init__(self, run_dir, spares=0):
        self.run_dir = os.path.abspath(run_dir)
        # How many workers to fork ahead, while nothing else is to be done:
        # the most steps that can become ready together. A fan-out of steps
        # then starts without waiting for a fork per step.
        self.spares = spares
        self.state = os.path.join(self.run_dir, ".seedrun")
        # Read and write, so the open does not wait for a writer and the
        # FIFO never reports end-of-file between two recipes.
        self.queue = os.open(os.path.join(self.state, QUEUE), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller = select.poll()
        self.poller.register(self.queue, select.POLLIN)
        self.group = os.getpgrp()
        self.workers = set()
        self.by_fd = {}
        self.idle = []
        self.busy = 0
        self.buffer = b""
        self.stopping = False
        # Steps whose worker died mid-step and whose command is still stopping.
        self.abandoned = []

    def serve(self):
        while not (self.stopping and not self.busy):
            spare = self._wants_spare()
            events = self.poller.poll(SPARE_IDLE_MS if spare else self._poll_timeout())
            if not events and spare:
                self._fork_spare()
            for fd, _ in events:
                worker = self.by_fd.get(fd)
                if fd == self.queue:
                    self._read_requests()
                elif worker is None:
                    continue
                elif fd == worker.reports:
                    self._read_reports(worker)
                else:
                    self._reap(worker)
            if self.abandoned:
                self._check_abandoned()
        self._dismiss_workers()
        return 0

    def _fork_spare(self):
        try:
            # Behind the warm workers, which pop() reuses first.
            self.idle.insert(0, self._fork_worker())
        except OSError as error:
            # Near a process or memory limit: steps get their workers when they start.
            self.spares = 0
            sys.stderr.write("seedrun launcher: stopped forking spare workers: %s\n" % error)

    def _wants_spare(self):
        # Only while a step runs: before the first one, and between two
        # steps of a chain, the next request is usually a moment away, and
        # a fork would delay it.
        return self.busy and not self.stopping and len(self.workers) < self.spares

    def _poll_timeout(self):
        # The end of an abandoned step's command has no fd to wait on.
        return ABANDONED_POLL_MS if self.abandoned else None

    def _check_abandoned(self):
        """Finish each abandoned step whose command is gone; SIGKILL those whose kill_grace is over."""
        workers = {worker.pid for worker in self.workers}
        for pid in list_children():
            if pid not in workers:
                # A dead worker's processes are the launcher's children now (it is their subreaper).
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        now = time.monotonic()
        for abandoned in list(self.abandoned):
            stopping = abandoned.group is not None and abandoned.still_stopping(now)
            escaped = self._escaped_processes(abandoned)
            if escaped:
                abandoned.stop_escaped(escaped, now)
                continue
            if stopping:
                continue
            self.abandoned.remove(abandoned)
            send_reply(reply_path(self.state, abandoned.name), self._finish_abandoned(abandoned), abandoned.client)
            self.busy -= 1

    def _read_requests(self):
        try:
            self.buffer += os.read(self.queue, 65536)
        except BlockingIOError:
            return
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line == STOP_REQUEST:
                self.stopping = True
            elif line:
                self._start(line.decode("utf-8", "replace").split())

    def _start(self, words):
        """Hand a request "PID REPLY ARG..." from a recipe to an idle worker, forking one if none is idle."""
        if len(words) < 3 or not words[0].isdigit():
            sys.stderr.write("seedrun launcher: ignored a malformed request: %r\n" % " ".join(words))
            return
        client, reply = int(words[0]), words[1]
        try:
            group = os.getpgid(client)
        except ProcessLookupError:
            # make stopped the recipe before its request was read, so no recipe waits for this step.
            return
        request = ("%d %d %s\n" % (group, client, " ".join(words[1:]))).encode()
        # Taken before the worker can see the request, so every record it saves for it is newer.
        requested_at = time.time()
        while True:
            worker = self.idle.pop() if self.idle else self._fork_worker()
            try:
                os.write(worker.requests, request)
                break
            except OSError:
                # The worker died while idle, and its pidfd event removes it.
                continue
        worker.reply = reply
        worker.client = client
        worker.requested_at = requested_at
        self.busy += 1

    def _fork_worker(self):
        requests_read, requests_write = os.pipe2(os.O_CLOEXEC)
        reports_read, reports_write = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_read, requests_write, reports_read, reports_write):
                os.close(fd)
            raise
        if pid == 0:
            os.close(requests_write)
            os.close(reports_read)
            WorkerLoop(self.run_dir, self.state, self.group, requests_read, reports_write).run()
        os.close(requests_read)
        os.close(reports_write)
        worker = Worker(pid, os.pidfd_open(pid), requests_write, reports_read)
        self.workers.add(worker)
        for fd in (worker.pidfd, worker.reports):
            self.by_fd[fd] = worker
            self.poller.register(fd, select.POLLIN)
        return worker

    def _read_reports(self, worker):
        """Take the lines a worker writes after each step: IDLE when it can serve another, EXITING when not.

        An empty read means the worker exited, which its pidfd reports.
        """
        try:
            data = os.read(worker.reports, 4096)
        except OSError:
            data = b""
        if not data:
            self._unwatch(worker.reports)
            return
        for line in data.split(b"\n"):
            if line in (IDLE, EXITING) and worker.reply is not None:
                worker.reply = None
                self.busy -= 1
                if line == IDLE:
                    self.idle.append(worker)

    def _reap(self, worker):
        """Remove a worker that exited, and reply for the step it was serving, if any."""
        self._read_reports(worker)
        for fd in worker.fds():
            self._unwatch(fd)
            self.by_fd.pop(fd, None)
            os.close(fd)
        self.workers.discard(worker)
        if worker in self.idle:
            self.idle.remove(worker)
            # Something kills idle workers, so forking more ahead would only feed it.
            self.spares = 0
        _, status = os.waitpid(worker.pid, 0)
        if worker.reply is not None:
            code = os.waitstatus_to_exitcode(status)
            record = self._fresh_record(worker)
            if record is not None and record.get("status") not in ("running", "waiting"):
                # The step had ended, and its recipe had its reply, before the worker died.
                send_reply(reply_path(self.state, worker.reply), recipe_exit_code(code), worker.client)
                self.busy -= 1
            else:
                # The recipe gets its reply once the command is gone, as after any stopped step.
                self.abandoned.append(self._stop_orphaned_command(worker, record, code))
            worker.reply = None

    def _fresh_record(self, worker):
        """Return the record that the step runner of a dead worker saved for its request, or None.

        A record older than the request is an earlier run's, whose PID may
        be another process's by now.
        """
        record = step.load_record(step.RunFiles(self.run_dir), worker.reply) or {}
        saved_at = max(record.get(key) or 0 for key in ("queued_at", "started_at", "finished_at")) if record else 0
        return record if saved_at >= worker.requested_at else None

    def _orphaned_command(self, name):
        """Return the PID of the command of step `name` among the launcher's children, or None.

        A worker that dies between starting the command and saving its PID
        leaves the command to the launcher, its subreaper.
        """
        found = self._step_children(name)
        return found[0] if found else None

    def _step_children(self, name):
        """Return the PIDs of the launcher's children, workers aside, whose environment names step `name` and the run.

        A zombie's environment reads empty, so only live processes count.
        """
        workers = {worker.pid for worker in self.workers}
        expected = {("SEEDRUN_STEP=%s" % name).encode(), ("SEEDRUN_RUN_DIR=%s" % self.run_dir).encode()}
        found = []
        for pid in list_children():
            if pid in workers:
                continue
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    variables = set(f.read().split(b"\0"))
            except OSError:
                continue
            if expected <= variables:
                found.append(pid)
        return found

    def _escaped_processes(self, abandoned):
        """Return the processes of an abandoned step that left its command's process group and came to the launcher.

        Their parent died (the command's shell, say), so the launcher, a
        subreaper, adopted them. The command's group gets its signals from
        Abandoned.still_stopping().
        """
        escaped = []
        for pid in self._step_children(abandoned.name):
            try:
                if os.getpgid(pid) != abandoned.group:
                    escaped.append(pid)
            except OSError:
                continue
        return escaped

    def _stop_orphaned_command(self, worker, record, code):
        """Send SIGTERM to the command of a step whose worker died, which nothing supervises any more.

        Return the Abandoned step. Its command's process group gets SIGKILL
        if it is still there after the step's kill_grace.
        """
        try:
            grace = step.load_spec(step.RunFiles(self.run_dir), worker.reply)["kill_grace"]
        except (OSError, EOFError, ValueError, KeyError):
            # The step runner read this spec a moment ago, so this is not expected.
            grace = DEFAULT_KILL_GRACE_SECONDS
        group = None
        if record is not None and record.get("status") == "running":
            group = record.get("pid") or self._orphaned_command(worker.reply)
        abandoned = Abandoned(worker.reply, worker.client, worker.pid, code, group, grace, record)
        if group is None:
            return abandoned
        try:
            os.killpg(abandoned.group, SIGTERM)
        except OSError:
            return abandoned
        sys.stderr.write("seedrun launcher: the step runner of %s ended with %s; sent SIGTERM to its command "
                         "(process group %d)\n" % (worker.reply, step.signal_name(-code) if code < 0
                                                    else "exit code %d" % code, abandoned.group))
        return abandoned

    def _finish_abandoned(self, abandoned):
        """Write the final record, log footer and stamps of an abandoned step; return the recipe's exit code."""
        if abandoned.group is None:
            stopped = None
        else:
            stopped = "SIGTERM, then SIGKILL after %gs" % abandoned.grace if abandoned.killed else "SIGTERM"
        try:
            return step.StepRunner(self.run_dir, abandoned.name).finish_abandoned(
                abandoned.runner_pid, abandoned.code, stopped, abandoned.record)
        except Exception:  # noqa: BLE001 - the recipe must get its reply whatever happens here
            import traceback

            traceback.print_exc()
            return recipe_exit_code(abandoned.code)

    def _unwatch(self, fd):
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass

    def _dismiss_workers(self):
        """Close every worker's request pipe, which makes it exit, and reap it."""
        for worker in self.workers:
            os.close(worker.requests)
        for worker in self.workers:
            os.waitpid(worker.pid, 0)


class WorkerLoop:
    """The forked side of a worker: run one step per request, reply to its recipe, report to the launcher."""

    def __init__(self, run_dir, state, idle_group, requests, reports):
        self.run_dir = run_dir
        self.state = state
        self.idle_group = idle_group
        self.requests = requests
        self.reports = reports
        # A handler installed outside Python reads as None, which signal() does not take.
        self.handlers = {number: _signal.getsignal(number) or _signal.SIG_DFL for number in STEP_SIGNALS}

    def run(self):
        """Serve requests until end-of-file or STEPS_PER_WORKER, then exit the process."""
        code = 0
        try:
            self._close_other_fds()
            buffer = b""
            for served in range(1, STEPS_PER_WORKER + 1):
                while b"\n" not in buffer:
                    data = os.read(self.requests, 4096)
                    if not data:
                        return
                    buffer += data
                line, buffer = buffer.split(b"\n", 1)
                words = line.decode("utf-8", "replace").split()
                clean = self._serve(int(words[0]), int(words[1]), words[2], words[3:]) and self._reset()
                going_on = clean and served < STEPS_PER_WORKER
                # The launcher must not hand a request to a worker that is
                # about to exit: the request would be lost with it.
                try:
                    os.write(self.reports, (IDLE if going_on else EXITING) + b"\n")
                except OSError:
                    # The launcher is gone, so no request will follow.
                    return
                if not going_on:
                    return
        except BaseException:
            import traceback

            traceback.print_exc()
            code = INTERNAL_ERROR_EXIT
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _serve(self, group, client, reply, arguments):
        """Run the step runner in make's process group and reply to the recipe.

        Return False if the step runner raised, which may leave the process
        in a state no later step should inherit.
        """
        code = INTERNAL_ERROR_EXIT
        clean = False
        # Opened now, while the recipe has its FIFO open and the FIFO has its name: the reply
        # must reach the recipe even if the run directory is renamed or deleted during the step.
        reply_fd = open_reply(reply_path(self.state, reply), client)
        try:
            os.setpgid(0, group)
            code = step.main([self.run_dir] + arguments)
            clean = True
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
            clean = True
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            if reply_fd is None:
                send_reply(reply_path(self.state, reply), code, client)
            else:
                write_reply(reply_fd, code)
        return clean

    def _reset(self):
        """Put the process back as it was before the step; return False if it cannot serve another."""
        try:
            # Leave make's group first, so that no signal meant for the
            # recipes arrives once the step's handlers are gone.
            os.setpgid(0, self.idle_group)
            _signal.set_wakeup_fd(-1)
            for number, handler in self.handlers.items():
                _signal.signal(number, handler)
            os.chdir(self.run_dir)
        except OSError:
            # The launcher's group is gone with the launcher, or the run directory with the run.
            return False
        self._close_other_fds()
        reap_children()
        # A step runner kills and reaps everything its step started. A
        # process still here means it stopped early, and only a new worker
        # is sure to start clean.
        return not list_children()

    def _close_other_fds(self):
        """Close the fds a step runner left open (its log, locks and pipes) and those inherited from the launcher."""
        keep = {0, 1, 2, self.requests, self.reports}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass


def send_reply(path, code, client):
    """Write an exit code to the reply FIFO of the recipe with PID client, unless the recipe is gone."""
    fd = open_reply(path, client)
    if fd is not None:
        write_reply(fd, code)


def open_reply(path, client):
    """Open the reply FIFO of the recipe with PID client for writing; None if the recipe is gone.

    If the FIFO's name is gone with a deleted, renamed or moved run
    directory, the recipe still has the FIFO open as its fd 3, and /proc
    reaches it there. Without a reply the recipe, and with it the run,
    would wait for ever.
    """
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return _open_deleted_reply(path, client)
    except OSError:
        return None


def write_reply(fd, code):
    try:
        os.write(fd, b"%d\n" % code)
    except OSError:
        # The recipe is gone (EPIPE), so no process waits for the reply.
        pass
    finally:
        os.close(fd)


def _open_deleted_reply(path, client):
    fd_link = "/proc/%d/fd/3" % client
    try:
        # The PID may be another process's by now: only a recipe's own reply FIFO of this
        # step and run will do, found under whatever name the run's workspace has now.
        target = os.readlink(fd_link).removesuffix(" (deleted)")
        run_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
        suffix = os.sep + os.path.join(os.path.basename(run_dir), ".seedrun", REPLIES, os.path.basename(path))
        if not target.endswith(suffix):
            return None
        with open("/proc/%d/cmdline" % client, "rb") as f:
            if b"3<>.seedrun/%s/%s;" % (REPLIES.encode(), os.fsencode(os.path.basename(path))) not in f.read():
                return None
        return os.open(fd_link, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def main(argv):
    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write("usage: launcher.py SEEDRUN_PID, then RUN_DIR NUL SPARE_WORKERS on stdin\n")
        return 2
    # Die with seedrun. Checking the parent after prctl() covers a seedrun
    # that died before the call.
    prctl = prctl_function()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, SIGKILL)
    if os.getppid() != int(argv[0]):
        return 1
    step.ORCHESTRATOR_PID = int(argv[0])
    step.ensure_standard_fds()
    try:
        handover = _read_handover()
    except KeyboardInterrupt:
        # Only a SIGINT sent to this PID gets here, since the launcher has a
        # process group of its own. seedrun starts another launcher for its run.
        return 130
    if handover is None:
        # seedrun did not start a run: the pipeline was invalid, or another run holds the lock.
        return 0
    run_dir, spares = handover
    os.chdir(run_dir)
    log = os.open("make.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(null, 0)
    os.close(null)
    # A launcher spawned while seedrun prepares the run (api.signals_deferred)
    # starts with SIGINT, SIGTERM and SIGHUP blocked, because a blocked mask
    # survives exec and fork. Without this, no step runner would see make's SIGTERM.
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    # The processes of a worker that dies mid-step come here, to be waited for and reaped.
    become_subreaper()
    return Launcher(run_dir, spares).serve()


def _read_handover():
    """Read "RUN_DIR NUL SPARE_WORKERS" from stdin until seedrun closes it; return None if it sent nothing."""
    data = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    run_dir, _, spares = data.partition(b"\0")
    if not run_dir or not spares.isdigit():
        return None
    return os.fsdecode(run_dir), int(spares)


# seedrun's side: the launcher starts before seedrun has planned the run, so
# that its interpreter's start and its imports (about 20 ms) overlap
# seedrun's own. It waits for the run on stdin.

# When main() returns, every worker is reaped and only stderr may hold
# unwritten text, so os._exit() skips the interpreter's teardown. That
# teardown took about 4 ms at the end of a run with 14 workers.
CODE = ("import os, sys; sys.path.insert(0, sys.argv[1]); "
        "from seedrun.launcher import main; code = main(sys.argv[2:]); sys.stderr.flush(); os._exit(code)")


def spawn():
    """Start a launcher that waits for its run (see hand_over()), or return None where it cannot work."""
    try:
        # The launcher and the orchestrator wait on pidfds (Linux 5.3 and later).
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return None
    import subprocess

    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # No preexec_fn, so that subprocess can use vfork: the launcher sets its
    # own parent-death signal. A process group of its own keeps the
    # terminal's Ctrl-C away from it and its idle workers.
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", CODE, source, str(os.getpid())],
                            env=environment(), stdin=subprocess.PIPE, process_group=0)


def hand_over(process, run_dir, spares):
    """Send a spawned launcher its run directory, whose request FIFO must exist, and its spare worker count."""
    try:
        process.stdin.write(os.fsencode(run_dir) + b"\0" + str(spares).encode())
    finally:
        process.stdin.close()


def environment():
    """Return seedrun's environment for make, the launcher and the steps, without an outer make's variables.

    When seedrun runs from a virtualenv, that virtualenv's bin directory goes
    first on PATH, as activating it would, so ``python`` in a step command is
    the interpreter seedrun is installed in.
    """
    env = dict(os.environ)
    for name in step.MAKE_VARIABLES:
        env.pop(name, None)
    # The Makefile sets these for this seedrun process only. A step that runs
    # seedrun itself must get seedrun's own exit code 75 when locked out, and
    # hints that name --replan, not REPLAN=1.
    env.pop("SEEDRUN_LOCKED_EXIT_CODE", None)
    env.pop("SEEDRUN_REPLAN_ARGUMENT", None)
    if sys.prefix != sys.base_prefix:
        bin_dir = os.path.dirname(sys.executable)
        paths = env.get("PATH", "").split(os.pathsep)
        if not paths or paths[0] != bin_dir:
            env["PATH"] = os.pathsep.join([bin_dir] + [p for p in paths if p])
    return env
