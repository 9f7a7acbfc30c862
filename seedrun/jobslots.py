"""make's job slots, lent by a step that waits.

make runs at most ``jobs`` recipes at once, and a step's recipe keeps its
slot for as long as the step runner runs, waits included. So a step that
waits long for its pool, its retry delay or a pool's cool-down lends its
slot to make. It puts one token into make's job server, and make can start
another recipe meanwhile. Before its command runs, the step takes a token
out again, so the number of commands running at once stays within ``jobs``.

make's job server is a pipe of tokens, one byte per free slot beyond the
one make always has. seedrun creates it as a FIFO in the run's state
directory (see ``runner.py``) and hands make both ends through MAKEFLAGS,
so a step runner reaches it by name, with or without the launcher.

Like the step runner, this module imports builtin modules only.
"""

import os
import select
import stat
import time

# The FIFO's name in the run's state directory (.seedrun).
FIFO_NAME = "jobserver"
# GNU make writes this byte for a free slot; any byte counts as one.
TOKEN = b"+"
# How often a step waiting to take a slot back checks whether its run has stopped or ended.
CHECK_SECONDS = 0.5


def create(path, tokens):
    """Create the job server FIFO at path holding `tokens` free slots; return (read_fd, write_fd) for make.

    Both ends are opened read-write, which on Linux never waits for the
    other side. A FIFO left by an earlier make of the same run is replaced,
    so that no token of that make carries over.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
    read_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    write_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    if tokens:
        os.write(write_fd, TOKEN * tokens)
    return read_fd, write_fd


def makeflags(read_fd, write_fd):
    """Return MAKEFLAGS that make a top-level make use this job server instead of its own."""
    return " -j --jobserver-auth=%d,%d" % (read_fd, write_fd)


class LentSlot:
    """One job slot lent to make, to be taken back before the step's command runs."""

    def __init__(self, fd):
        self.fd = fd

    def take_back(self, signals, give_up, on_wait=None, wait_shown=2.0):
        """Wait for a free slot and take it; return False if a signal arrived or give_up() returned True first.

        on_wait() is called once after wait_shown seconds without a free slot.

        A slot not taken back stays lent, and the caller may wait again. A
        step runner that exits with its slot lent leaves it with make, which
        is safe only once the run is being interrupted, has stopped (an
        abort, max_failures) or has ended, as make then starts no more
        commands.
        """
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(signals.read_fd, select.POLLIN)
        shown_at = time.monotonic() + wait_shown
        while not signals.received:
            if self.try_take_back():
                return True
            if give_up():
                return False
            if on_wait is not None and time.monotonic() >= shown_at:
                on_wait()
                on_wait = None
            poller.poll(CHECK_SECONDS * 1000)
            signals.drain()
        return False

    def try_take_back(self):
        """Take a free slot if there is one now; return whether this step has its slot back."""
        try:
            if os.read(self.fd, 1):
                self.close()
                return True
        except BlockingIOError:
            pass
        return False

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lend(path):
    """Give make one more free slot through the job server FIFO at path; return the LentSlot, or None.

    None means there is no job server FIFO to lend to, as under a make
    started by hand on the run's rules.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise OSError("not a FIFO")
        os.write(fd, TOKEN)
    except OSError:
        os.close(fd)
        return None
    return LentSlot(fd)
