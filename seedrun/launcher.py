"""The step launcher: one resident process per run that forks a step runner for each recipe.

Starting CPython costs 10 to 20 ms, more than all the rest of a step
runner's work, and a recipe that starts ``python`` pays it once per step.
The launcher pays it once per run: it starts with the step runner imported,
reads requests from a FIFO and forks a step runner for each. The child
starts from the launcher's untouched state, so it behaves exactly like a
freshly started ``python -c 'from seedrun.step import main'``.

A step's recipe (see rules.py) uses shell builtins only, so it costs no more
than the shell make starts anyway::

    exec 3<>.seedrun/reply/NAME; echo "$$ NAME NAME" >.seedrun/launcher.fifo; read -r code <&3; exit $code

The recipe opens its reply FIFO first, for reading and writing, which on
Linux never blocks, and only then sends one request line: its PID, its reply
FIFO and the step runner's arguments. A line is much shorter than PIPE_BUF,
so requests that arrive together never mix. The launcher forks the step
runner into the recipe's process group, which is make's, so a signal to
make's group reaches the step runner as it would reach a recipe. The step
runner writes its exit code to the reply FIFO, and the recipe exits with
that code.

The launcher keeps no state of its own: records, stamps and logs stay the
step runner's. If the launcher dies, the orchestrator stops make's process
group, which ends the recipes that wait for a reply. If the orchestrator
dies, make gets SIGTERM (its parent-death signal) and stops its recipes,
and the launcher gets SIGKILL. Step runners already forked finish their
steps and write their records, as they did when each was a recipe.

Like the step runner, this module imports builtin modules only.
"""

import _signal
import os
import select
import sys

# Imported here once for every forked step runner, which would otherwise
# import them itself: fcntl for its locks, _ctypes for prctl(2), pools for
# steps that take a pool slot.
import _ctypes  # noqa: F401
import fcntl  # noqa: F401

from seedrun import pools, step  # noqa: F401
from seedrun.process import SIGKILL, prctl_function

QUEUE = "launcher.fifo"
REPLIES = "reply"
STOP_REQUEST = b"stop"
INTERNAL_ERROR_EXIT = 70
PR_SET_PDEATHSIG = 1


def reply_path(state_dir, reply):
    return os.path.join(state_dir, REPLIES, reply)


class Launcher:
    """Serve the requests of one run's recipes until asked to stop and every step runner has exited."""

    def __init__(self, run_dir):
        self.run_dir = os.path.abspath(run_dir)
        self.state = os.path.join(self.run_dir, ".seedrun")
        # Read and write, so the open does not wait for a writer and the
        # FIFO never reports end-of-file between two recipes.
        self.queue = os.open(os.path.join(self.state, QUEUE), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller = select.poll()
        self.poller.register(self.queue, select.POLLIN)
        self.children = {}
        self.buffer = b""
        self.stopping = False

    def serve(self):
        while not (self.stopping and not self.children):
            for fd, _ in self.poller.poll():
                if fd == self.queue:
                    self._read_requests()
                else:
                    self._reap(fd)
        return 0

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
        """Fork a step runner for a request "PID REPLY ARG..." from a recipe."""
        if len(words) < 3 or not words[0].isdigit():
            sys.stderr.write("seedrun launcher: ignored a malformed request: %r\n" % " ".join(words))
            return
        client, reply, arguments = int(words[0]), words[1], words[2:]
        try:
            group = os.getpgid(client)
        except ProcessLookupError:
            # make stopped the recipe before its request was read, so no recipe waits for this step.
            return
        pid = os.fork()
        if pid == 0:
            self._run_child(group, arguments, reply)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, reply)
        self.poller.register(pidfd, select.POLLIN)

    def _run_child(self, group, arguments, reply):
        """Run the step runner in the forked child, reply to the recipe and exit; never returns.

        The child replies itself, which spares the recipe waiting for the
        launcher to wake up and reap it. The launcher replies again after
        reaping, for a child that was killed before it could; the recipe
        reads only the first line.
        """
        code = INTERNAL_ERROR_EXIT
        try:
            os.close(self.queue)
            for fd in self.children:
                os.close(fd)
            os.setpgid(0, group)
            code = step.main([self.run_dir] + arguments)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stderr.flush()
                send_reply(reply_path(self.state, reply), code)
            finally:
                os._exit(code)

    def _reap(self, pidfd):
        pid, reply = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        send_reply(reply_path(self.state, reply), code if code >= 0 else 128 - code)


def send_reply(path, code):
    """Write an exit code to a recipe's reply FIFO; a recipe that is gone (no reader) gets nothing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"%d\n" % code)
    except OSError:
        pass
    finally:
        os.close(fd)


def main(argv):
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: launcher.py RUN_DIR SEEDRUN_PID\n")
        return 2
    # Die with seedrun. Checking the parent after prctl() covers a seedrun
    # that died before the call.
    prctl = prctl_function()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, SIGKILL)
    if os.getppid() != int(argv[1]):
        return 1
    # seedrun starts the launcher while it holds SIGINT, SIGTERM and SIGHUP
    # back, and a blocked signal stays blocked across exec and fork: without
    # this, no step runner would see make's SIGTERM.
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    step.ensure_standard_fds()
    return Launcher(argv[0]).serve()
