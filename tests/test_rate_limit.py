"""rate_limit.RateLimiter with a clock the test moves: the window slides, clients are apart,
a full table is free again a minute later, 0 means no limit, and processes forked from the one that
made the limiter (gunicorn's workers) share one count."""

import multiprocessing

import pytest

from corrections.rate_limit import WINDOW_SECONDS, RateLimiter


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


def test_a_minute_after_a_full_table_every_client_is_welcome(clock):
    limiter = RateLimiter(5, clock)
    for client in range(20 * limiter.slots):  # 20 a slot on average: every slot full
        limiter.wait(client)
    assert all(limiter.wait(client) > 0 for client in range(200)), \
        "a full slot let a sixth event through"
    clock.now += WINDOW_SECONDS
    waits = [limiter.wait(f"new {client}") for client in range(200)]
    assert waits == [0] * 200, "a new client found its slot counting an idle one's events"


def _send_events(limiter, client, count, answers):
    answers.put([limiter.wait(client) for _ in range(count)])


def test_forked_workers_share_one_limit():
    limiter = RateLimiter(30)  # made before the fork, as gunicorn's master makes the app
    answers = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(
        target=_send_events, args=(limiter, "198.51.100.7", 20, answers)) for _ in range(4)]
    for worker in workers:
        worker.start()
    waits = [wait for _ in workers for wait in answers.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(wait == 0 for wait in waits) == 30, \
        f"4 workers let {sum(wait == 0 for wait in waits)} of 80 events through, not 30"
    assert all(0 < wait <= 60 for wait in waits if wait), "a refusal gave no time to wait"
