"""A limit on how often one client may do something: at most N times in any minute.

The counts live in shared memory made when the limiter is: gunicorn loads the app in its master
and forks the workers (preload_app), so every worker of a server counts in the same table and a
client gets N, not N per worker. Several servers (dynos) each count their own.

The table has a fixed number of slots, a client's slot chosen by a hash of its address; a slot
whose client has been idle for a minute is taken by the next. Two clients active at once in the
same slot share one limit: with SLOTS slots that takes SLOTS-odd clients saving corrections in
the same minute, and errs on the side of refusing.
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
    their own). Each slot keeps its client's key and the times of its last `per_minute` events.
    """

    def __init__(self, per_minute, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        if per_minute <= 0:
            return
        self.slots = max(1, min(SLOTS, MAX_TABLE_BYTES // (8 * (per_minute + 1))))
        # An anonymous mmap is shared with the processes forked after it is made.
        self.memory = mmap.mmap(-1, 8 * self.slots * (per_minute + 1))
        table = np.frombuffer(self.memory, np.float64).reshape(self.slots, per_minute + 1)
        self.keys = table[:, 0].view(np.int64)
        self.times = table[:, 1:]
        self.times[:] = -np.inf
        self.lock = multiprocessing.Lock()

    def wait(self, client):
        """Record an event for `client` and return 0, or, when it has had its `per_minute`,
        record nothing and return the seconds until it may have the next one."""
        if self.per_minute <= 0:
            return 0.0
        key = int.from_bytes(hashlib.blake2b(str(client).encode(), digest_size=8).digest(),
                             "little", signed=True)
        slot = key % self.slots
        with self.lock:
            now = self.clock()
            times = self.times[slot]
            if self.keys[slot] != key and now - times.max() >= WINDOW_SECONDS:
                self.keys[slot] = key  # its last client has been idle: the slot is this one's
                times[:] = -np.inf
            oldest = int(times.argmin())
            if now - times[oldest] < WINDOW_SECONDS:  # all per_minute events are recent
                return WINDOW_SECONDS - (now - times[oldest])
            times[oldest] = now
            return 0.0
