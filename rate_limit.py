"""A limit on how often one client may do something: at most N times in any minute.

Kept in this process's memory: each gunicorn worker counts on its own, so a client whose
requests land on different workers (or dynos) may get up to N times as many through.
"""

import collections
import threading
import time

WINDOW_SECONDS = 60.0


class RateLimiter:
    """At most `per_minute` events in any WINDOW_SECONDS for each client; 0 means no limit.

    `clock` gives seconds (time.monotonic by default; tests pass their own).
    """

    def __init__(self, per_minute, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.recent = {}  # client -> deque of the times of its events within the window
        self.swept = clock()
        self.lock = threading.Lock()

    def wait(self, client):
        """Record an event for `client` and return 0, or, when it has had its `per_minute`,
        record nothing and return the seconds until it may have the next one."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        with self.lock:
            self._forget_idle_clients(now)
            times = self.recent.setdefault(client, collections.deque())
            while times and now - times[0] >= WINDOW_SECONDS:
                times.popleft()
            if len(times) >= self.per_minute:
                return WINDOW_SECONDS - (now - times[0])
            times.append(now)
            return 0.0

    def _forget_idle_clients(self, now):
        # Once a window, drop the clients with no event in the last one: memory stays bounded
        # by the clients of the last two minutes.
        if now - self.swept < WINDOW_SECONDS:
            return
        self.recent = {client: times for client, times in self.recent.items()
                       if times and now - times[-1] < WINDOW_SECONDS}
        self.swept = now
