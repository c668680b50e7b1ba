"""A limit on how often one client may do something: at most N times in any minute.

The counts live in shared memory made when the limiter is: gunicorn loads the app in its master
and forks the workers (preload_app), so every worker of a server counts in the same table and a
client gets N, not N per worker. Several servers (dynos) each count their own.

The table has a fixed number of slots, a client's slot chosen by a hash of its address; each
slot holds the times of its last N events, so a slot idle for a minute is free again. Two
clients active in the same minute on the same slot share one limit: that errs on the side of
refusing, and with SLOTS slots takes many clients saving corrections at once.
"""

import hashlib
import mmap
import multiprocessing
import time

import numpy as np

WINDOW_SECONDS = 60.0
SLOTS = 4096
MAX_TABLE_BYTES = 8 * 1024 * 1024  # fewer slots for a high limit, so the table stays small


class RateLimiter:
    """At most `per_minute` events in any WINDOW_SECONDS for each client; 0 means no limit.

    `clock` gives seconds (time.monotonic by default, the same in every process; tests pass
    their own).
    """

    def __init__(self, per_minute, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        if per_minute <= 0:
            return
        self.slots = max(1, min(SLOTS, MAX_TABLE_BYTES // (8 * per_minute)))
        # An anonymous mmap is shared with the processes forked after it is made.
        self.memory = mmap.mmap(-1, 8 * self.slots * per_minute)
        self.times = np.frombuffer(self.memory, np.float64).reshape(self.slots, per_minute)
        self.times[:] = -np.inf  # each slot: the times of its last per_minute events
        self.lock = multiprocessing.Lock()

    def wait(self, client):
        """Record an event for `client` and return 0, or, when it has had its `per_minute`,
        record nothing and return the seconds until it may have the next one."""
        if self.per_minute <= 0:
            return 0.0
        slot = int.from_bytes(hashlib.blake2b(str(client).encode(), digest_size=8).digest(),
                              "little") % self.slots
        with self.lock:
            now = self.clock()
            times = self.times[slot]
            oldest = int(times.argmin())
            if now - times[oldest] < WINDOW_SECONDS:  # all per_minute events are recent
                return WINDOW_SECONDS - (now - times[oldest])
            times[oldest] = now
            return 0.0
