"""Pool slots shared by every run that uses the same logs directory.

A pool has ``size`` slots, each a file under ``<logs_dir>/.seedrun/pools/<name>/``
held with an exclusive ``flock`` for as long as a step runs. The kernel drops
a lock when its holder dies, so a crashed step never leaks a slot. A queue
lock serializes the bookkeeping of ``min_interval`` (time between two starts),
of the cool-down that a rate-limited exit starts, and of the line of waiters.

A step that cannot start at once joins the line: it creates a ticket file
under ``waiting/``, numbered one above the highest ticket there, and keeps an
``flock`` on it while it waits. Only the waiter with the lowest live ticket
takes the next slot, so slots go out first come, first served. A ticket
whose lock is free belongs to a waiter that died, and the next waiter that
finds it deletes it.

The step runner imports this module only for steps that use a pool, and it
uses builtin modules only, like the step runner itself.
"""

import fcntl
import os
import time

POLL_SECONDS = 0.05
MAX_COOLDOWN_SECONDS = 3600.0
# A step that waits this long for its pool gets a console line with the reason.
WAIT_SHOWN_SECONDS = 2.0
TICKET_SUFFIX = ".ticket"


def _read_numbers(path):
    try:
        with open(path) as f:
            return [float(word) for word in f.read().split()]
    except (OSError, ValueError):
        return []


def _write_numbers(path, numbers):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(" ".join(repr(n) for n in numbers))
    os.replace(tmp, path)


def make_pool_dir(path):
    """Create a pool's folder, logs/.seedrun/pools/NAME, inside a logs directory that still exists.

    A workspace renamed or deleted during the run is not created again under
    its old name: the error then fails the step that needed the pool.
    """
    state = os.path.dirname(os.path.dirname(path))
    if not os.path.isdir(state):
        import errno

        raise FileNotFoundError(errno.ENOENT, "the run's logs directory is gone", state)
    os.makedirs(path, exist_ok=True)


def _try_lock(path, flags=os.O_CREAT):
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class PoolSlot:
    """One slot of a pool, taken by a step for the time it runs."""

    def __init__(self, pool):
        self.pool = pool
        self.dir = pool["dir"]
        self.waiting_dir = os.path.join(self.dir, "waiting")
        self.fd = None
        # (number, path, fd) of this step's ticket while it waits in line.
        self.ticket = None

    def acquire(self, signals, on_wait=None, stopped=None, job_slot=None):
        """Wait for a free slot, the pool's cool-down and its min_interval, behind the steps that waited longer.

        job_slot() is called under the queue lock when a slot is free for this
        step. It returns None when the step has a make job slot and may
        start, or else an fd that becomes readable once a job slot may be
        free. A step without a job slot leaves the pool's slot to the steps
        behind it and goes to the back of the line, so that a pool is never
        kept idle by a step that cannot start.

        Return False if a signal arrived while waiting, or once stopped()
        returns a true value (the run stopped or ended). After
        WAIT_SHOWN_SECONDS of waiting, on_wait(reason) is called once.
        """
        make_pool_dir(self.dir)
        try:
            return self._wait_in_line(signals, on_wait, stopped, job_slot)
        finally:
            self._leave_line()

    def _wait_in_line(self, signals, on_wait, stopped, job_slot):
        queue_path = os.path.join(self.dir, "queue.lock")
        started = time.monotonic()
        while not signals.received:
            if stopped is not None and stopped():
                return False
            queue = _try_lock(queue_path)
            job_slot_fd = None
            if queue is not None:
                try:
                    wait = self._time_to_wait()
                    if wait <= 0 and self._first_in_line():
                        self.fd = self._free_slot()
                        if self.fd is not None:
                            job_slot_fd = job_slot() if job_slot is not None else None
                            if job_slot_fd is None:
                                self._leave_line()
                                _write_numbers(os.path.join(self.dir, "last_start"), [time.time()])
                                return True
                            os.close(self.fd)
                            self.fd = None
                            self._leave_line()
                    if self.ticket is None:
                        self._join_line()
                    # Read only for the one console line, not on every poll.
                    due = on_wait is not None and time.monotonic() - started >= WAIT_SHOWN_SECONDS
                    reason = self._wait_reason(wait) if due else None
                finally:
                    os.close(queue)
            else:
                # Another waiter holds the queue lock for its bookkeeping, for well under a millisecond;
                # the reason is read on a later round, under the lock.
                wait = POLL_SECONDS
                reason = None
            if on_wait is not None and reason is not None and time.monotonic() - started >= WAIT_SHOWN_SECONDS:
                on_wait(reason)
                on_wait = None
            if job_slot_fd is not None:
                # Woken as soon as a job slot may be free, as make is.
                signals.sleep(0.5, wake_fd=job_slot_fd)
            else:
                signals.sleep(min(max(wait, POLL_SECONDS), 0.5))
        return False

    # The line of waiters. Every method here except _leave_line() runs under the queue lock.

    def _tickets(self):
        """Return the (number, path) of every ticket in line, live or not, lowest number first."""
        try:
            names = os.listdir(self.waiting_dir)
        except FileNotFoundError:
            return []
        tickets = []
        for name in names:
            number = name[:-len(TICKET_SUFFIX)]
            if name.endswith(TICKET_SUFFIX) and number.isdigit():
                tickets.append((int(number), os.path.join(self.waiting_dir, name)))
        return sorted(tickets)

    def _first_in_line(self):
        """Tell whether no live waiter is ahead of this one, and delete the tickets of dead waiters on the way."""
        mine = self.ticket[0] if self.ticket else None
        for number, path in self._tickets():
            if mine is not None and number >= mine:
                return True
            try:
                fd = _try_lock(path, flags=0)
            except FileNotFoundError:
                continue
            if fd is None:
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.close(fd)
        return True

    def _join_line(self):
        """Take a ticket one above the highest in line and hold its lock while this step waits."""
        tickets = self._tickets()
        number = tickets[-1][0] + 1 if tickets else 1
        try:
            os.mkdir(self.waiting_dir)
        except FileExistsError:
            pass
        path = os.path.join(self.waiting_dir, "%d%s" % (number, TICKET_SUFFIX))
        # No other waiter has this number, so the lock is free.
        self.ticket = (number, path, _try_lock(path))

    def _leave_line(self):
        if self.ticket is None:
            return
        _, path, fd = self.ticket
        self.ticket = None
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        if fd is not None:
            os.close(fd)

    def _wait_reason(self, wait):
        from seedrun.step import format_duration

        if wait <= 0:
            size = self.pool["size"]
            return "its %d slot%s taken" % (size, " is" if size == 1 else "s are")
        cooldown = _read_numbers(os.path.join(self.dir, "cooldown"))
        if cooldown and cooldown[0] - time.time() >= wait - POLL_SECONDS:
            return "it cools down for another %s" % format_duration(wait)
        return "its min_interval of %s" % format_duration(self.pool["min_interval"])

    def _time_to_wait(self):
        now = time.time()
        last = _read_numbers(os.path.join(self.dir, "last_start"))
        cooldown = _read_numbers(os.path.join(self.dir, "cooldown"))
        wait = 0.0
        if last:
            wait = last[0] + self.pool["min_interval"] - now
        if cooldown:
            wait = max(wait, cooldown[0] - now)
        return wait

    def _free_slot(self):
        for index in range(self.pool["size"]):
            fd = _try_lock(os.path.join(self.dir, "slot-%d.lock" % index))
            if fd is not None:
                return fd
        return None

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def cool_down(pool, attempt_started=None):
    """Start or extend the pool's cool-down after a rate-limited exit; return its length.

    The pause doubles when the previous cool-down ended less than one base
    cool-down ago, so repeated rate limits back off further each time. An
    attempt that started before the current cool-down began (given as
    attempt_started, in epoch seconds) was rate limited in the same burst
    as the exit that began it. It keeps the pause as it is, so that a burst
    of rate-limited steps counts as one limit, not one doubling each.
    """
    base = pool["cooldown"]
    path = os.path.join(pool["dir"], "cooldown")
    now = time.time()
    previous = _read_numbers(path)
    pause = base
    if len(previous) == 2:
        ends, length = previous
        if attempt_started is not None and attempt_started < ends - length:
            if ends > now:
                return length
            pause = length
        elif ends + base > now:
            # A cooldown longer than the cap stays as it is: doubling never shortens the pause.
            pause = min(length * 2, max(MAX_COOLDOWN_SECONDS, base))
    make_pool_dir(pool["dir"])
    _write_numbers(path, [now + pause, pause])
    return pause
