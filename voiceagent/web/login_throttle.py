"""A bound on sign-in guesses: per client address, a few failed attempts per window.

`POST /dashboard/login` asks `allowed(remote)` before checking a token and reports a failure
with `failed(remote)`; past `max_failures` failures within `window_s` the address gets 429
until the window has passed. The table is bounded (`max_addresses`, oldest forgotten first),
so a flood of addresses costs memory of that size at most. One per app; the clock is
injectable for tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_S = 60.0
MAX_ADDRESSES = 4096


class LoginThrottle:
    """Failed sign-ins per address within a sliding window."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def retry_after(self, remote: str) -> float:
        """Seconds until `remote` may try again (0: it may now)."""
        recent = self._recent(remote)
        if len(recent) < self.max_failures:
            return 0.0
        return max(0.0, recent[0] + self.window_s - self._clock())

    def failed(self, remote: str) -> None:
        """Count one failed sign-in of `remote`."""
        recent = self._recent(remote)
        recent.append(self._clock())
        self._failures[remote] = recent[-self.max_failures :]
        self._failures.move_to_end(remote)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, remote: str) -> list[float]:
        since = self._clock() - self.window_s
        return [t for t in self._failures.get(remote, ()) if t > since]
