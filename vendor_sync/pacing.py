"""Request pacing for the recorded API feeds, as a real client paces its calls."""

from __future__ import annotations

import time
from collections.abc import Callable

# Requests per second that this client sends to each API, one request per page.
# The values are chosen for the reference workload, not taken from the vendors'
# documentation. At feed scale 1.0 the full Turn 14 sync reads 76 pages at 5 per
# second, so it waits at least 15 s and is the longest job of the default pipeline.
RATE_LIMITS: dict[str, float] = {
    "magento": 20.0,
    "meyer": 10.0,
    "wheelpros": 10.0,
    "tirediscounter": 10.0,
    "turn14": 5.0,
    "premier": 5.0,
    "keystone": 5.0,
}


class Pacer:
    """Spacing of requests at least 1 / rate seconds apart, counting the work in between."""

    def __init__(
        self,
        requests_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second}")
        self.interval = 1.0 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_allowed: float | None = None

    def wait(self) -> None:
        """Sleep until the next request is allowed. The first call returns at once."""
        now = self._clock()
        if self._next_allowed is not None and now < self._next_allowed:
            self._sleep(self._next_allowed - now)
            now = self._next_allowed
        self._next_allowed = now + self.interval
