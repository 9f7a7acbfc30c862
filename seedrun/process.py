"""Process control of a step's command: spawn, wait, stop, and kill what it left behind.

Part of the step runner's hot path, so it imports builtin modules only.
"""

import os
import select
import sys
import time

SIGKILL, SIGTERM = 9, 15
PR_SET_CHILD_SUBREAPER = 36
SIGNAL_NAMES = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT",
    7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV",
    12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
    24: "SIGXCPU", 25: "SIGXFSZ",
}
# Signals a step's command gets back at their defaults: Python ignores
# SIGPIPE and SIGXFSZ, and a run started from a script may ignore SIGINT.
RESET_SIGNALS = (1, 2, 3, 13, 15, 25)
# The maximum length of one wait for a step's command to end; a longer timeout waits again.
MAX_WAIT_MS = 3_600_000

def signal_name(number):
    return SIGNAL_NAMES.get(number, "signal %d" % number)


def prctl_function():
    """Resolve Linux prctl(2) now and return a function calling prctl(option, value), or None off Linux.

    The raw ``_ctypes`` call avoids importing ``ctypes``, which costs several
    milliseconds per step. Resolving it before a fork keeps the child's call
    cheap, too.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import _ctypes

        address = _ctypes.dlsym(_ctypes.dlopen(None), "prctl")
        return lambda option, value: _ctypes.call_function(address, (option, value, 0, 0, 0)) == 0
    except (ImportError, AttributeError, OSError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return lambda option, value: libc.prctl(option, value, 0, 0, 0) == 0


def become_subreaper():
    """Make orphaned descendants of the step re-parent to this process.

    A command can leave its process group or session (``setsid``). As a child
    subreaper the runner still finds such processes among its own children
    after the command's shell exited, and kills them.
    """
    prctl = prctl_function()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1)


def list_children():
    """PIDs of this process's children, zombies included."""
    pid = os.getpid()
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(word) for word in f.read().split()]
    except OSError:
        pass
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry))
    return children


def signal_leftovers(pgid, number):
    """Send a signal to the step's process group and to every orphan we adopted."""
    group_alive = True
    try:
        os.killpg(pgid, number)
    except ProcessLookupError:
        group_alive = False
    except PermissionError:
        pass
    children = list_children()
    for pid in children:
        try:
            # The group itself got its signal above, and one is enough (see signal_process()).
            if os.getpgid(pid) == pgid:
                continue
        except (ProcessLookupError, PermissionError):
            continue
        signal_process(pid, number)
    return group_alive, children


def signal_process(pid, number):
    """Send a signal to a process, or to its whole group when it leads one. A process already gone is skipped.

    One signal per process: a shell that traps SIGTERM runs its trap again
    for a second one that comes while the first runs.
    """
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, number)
        else:
            os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def reap_children():
    for pid in list_children():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def kill_leftovers(pgid, grace, stopped=None, on_found=None):
    """Stop everything the step left running: SIGTERM, then SIGKILL after grace; return how many processes that was.

    After a normal exit, every process still running counts. For a step
    that stop() ended, `stopped` is the set of leftovers it found. Of the
    processes found here, only those outside the command's process group
    count then, because the group's members got the stop signal with the
    command and may only be slow to die. When anything is left to stop,
    on_found(count) is called once before the first signal, with the
    number of leftovers found so far.
    """
    def counts(pid):
        return not is_zombie(pid) and (stopped is None or process_group(pid) not in (None, pgid))

    seen = set(stopped or ())
    seen.update(with_descendants(pid for pid in list_children() if counts(pid)))
    if not seen and not group_exists(pgid):
        return 0
    if on_found is not None:
        on_found(len(seen))
    deadline = time.monotonic() + grace
    number = SIGTERM if grace > 0 else SIGKILL
    while True:
        group_alive, children = signal_leftovers(pgid, number)
        reap_children()
        live = [pid for pid in children if not is_zombie(pid)]
        seen.update(with_descendants(pid for pid in live if counts(pid)))
        if not group_alive and not live:
            return len(seen)
        if number == SIGTERM and time.monotonic() >= deadline:
            number = SIGKILL
            continue
        time.sleep(0.02 if number == SIGKILL else 0.05)
        if number == SIGKILL and time.monotonic() > deadline + 5:
            return len(seen)


def pid_alive(pid):
    """Tell whether a process with this PID exists (it may belong to another user).

    A PID below 1 names no single process, and os.kill() cannot take one too
    large for a C int, so neither counts as alive.
    """
    if pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        pass
    return True


def process_group(pid):
    """Return the process group of pid, or None when the process is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def descendants(pid):
    """Return the PIDs of pid's children, their children, and so on."""
    found = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        try:
            with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
                children = [int(word) for word in f.read().split()]
        except OSError:
            continue
        found.extend(children)
        parents.extend(children)
    return found


def with_descendants(pids):
    """Return the set of pids and of their descendants that are not zombies.

    A leftover's children die with its process group on the same signal,
    before they could be adopted and found among this process's children,
    so they are counted from the leftover's tree while it still runs.
    """
    found = set()
    for pid in pids:
        found.add(pid)
        found.update(child for child in descendants(pid) if not is_zombie(child))
    return found


def group_exists(pgid):
    """Tell whether any process still belongs to the process group pgid."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Attempt:
    """One run of the command: spawn, wait with timeout, stop on signal or timeout."""

    def __init__(self, spec, log_fd, signals, env):
        self.spec = spec
        self.log_fd = log_fd
        self.signals = signals
        self.env = env
        self.pid = None
        self.stopped_with = None
        self.deadline = None
        # Set by stop(): the step's processes that had lost their parent or
        # left the command's process group, and their descendants, which count as its leftovers.
        self.stopped_leftovers = None

    def spawn(self):
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, self.log_fd, 1),
            (os.POSIX_SPAWN_DUP2, self.log_fd, 2),
        ]
        self.pid = os.posix_spawn(
            "/bin/sh", ["/bin/sh", "-c", self.spec["command"]], self.env,
            file_actions=actions, setsid=True, setsigdef=RESET_SIGNALS, setsigmask=(),
        )
        return self.pid

    def wait(self, timeout):
        """Wait for the command. Return ("exited", status), ("timeout", None) or ("signal", number)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poller, pidfd = self._poller()
        try:
            while True:
                if self.signals.received and not self._exited_with_zero():
                    return "signal", self.signals.received[0]
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    return "exited", status
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return "timeout", None
                # poll() takes at most INT_MAX ms (24.8 days), and a timeout may be longer.
                wait_ms = 200 if pidfd is None else MAX_WAIT_MS
                if left is not None:
                    wait_ms = min(wait_ms, int(left * 1000) + 1)
                poller.poll(wait_ms)
                self.signals.drain()
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _exited_with_zero(self):
        """Tell, without reaping it, whether the command has already exited with code 0.

        An interrupt noticed after such an exit came too late to stop the
        command, which succeeded. A command that ended otherwise may have
        died of the same signal (a shutdown sends SIGTERM to every process),
        so it still counts as interrupted.
        """
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return info is not None and info.si_code == os.CLD_EXITED and info.si_status == 0

    def _poller(self):
        poller = select.poll()
        poller.register(self.signals.read_fd, select.POLLIN)
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            return poller, None
        poller.register(pidfd, select.POLLIN)
        return poller, pidfd

    def stop(self, grace):
        """SIGTERM to the command's group and adopted orphans, SIGKILL after grace; return its wait status.

        The orphans get SIGTERM at the same moment as the group, so one grace
        period covers everything the step started.
        """
        self.stopped_with = "SIGTERM"
        self.deadline = time.monotonic() + grace
        # Listed before the signal, which may end them at once.
        orphans = [pid for pid in list_children() if pid != self.pid]
        escaped = [pid for pid in descendants(self.pid) if process_group(pid) not in (None, self.pid)]
        self.stopped_leftovers = with_descendants(pid for pid in orphans + escaped if not is_zombie(pid))
        signal_leftovers(self.pid, SIGTERM)
        while time.monotonic() < self.deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.02)
        self.stopped_with = "SIGTERM, then SIGKILL after %gs" % grace
        signal_leftovers(self.pid, SIGKILL)
        return os.waitpid(self.pid, 0)[1]

    def remaining_grace(self, grace):
        """Return the grace left for leftovers: all of it after a normal exit, what stop() left otherwise."""
        if self.deadline is None:
            return grace
        return max(0.0, self.deadline - time.monotonic())
