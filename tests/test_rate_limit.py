"""rate_limit.RateLimiter with a clock the test moves: the window slides, clients are apart,
idle clients are forgotten, and 0 means no limit."""

import pytest

from rate_limit import WINDOW_SECONDS, RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture()
def clock():
    return Clock()


def test_the_31st_event_in_a_minute_waits_until_the_first_is_a_minute_old(clock):
    limiter = RateLimiter(30, clock)
    for second in range(30):
        clock.now = 1000.0 + second
        assert limiter.wait("a") == 0, f"event {second + 1} of 30 was refused"
    clock.now = 1040.0
    assert limiter.wait("a") == pytest.approx(20.0), "the 31st did not wait for the first"
    assert limiter.wait("b") == 0, "another client waited for the first one's events"
    clock.now = 1000.0 + WINDOW_SECONDS
    assert limiter.wait("a") == 0, "the window did not slide once the first event was old"
    assert limiter.wait("a") == pytest.approx(1.0)


def test_a_refused_event_is_not_counted(clock):
    limiter = RateLimiter(1, clock)
    assert limiter.wait("a") == 0
    for _ in range(100):
        clock.now += 0.5
        limiter.wait("a")
    clock.now = 1000.0 + WINDOW_SECONDS
    assert limiter.wait("a") == 0, "refused events kept the client waiting"


def test_zero_is_no_limit(clock):
    limiter = RateLimiter(0, clock)
    assert all(limiter.wait("a") == 0 for _ in range(1000))


def test_idle_clients_are_forgotten(clock):
    limiter = RateLimiter(5, clock)
    for client in range(1000):
        limiter.wait(client)
    clock.now += 2 * WINDOW_SECONDS
    limiter.wait("new")
    assert list(limiter.recent) == ["new"], f"{len(limiter.recent)} clients still kept"
