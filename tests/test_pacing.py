"""Retry arithmetic and the pacer, driven directly with a fake clock."""

from __future__ import annotations

import email.utils
import threading

import httpx
import pytest

from conduit_notebook import ConduitClient, RateLimiter, RateLimitError
from conduit_notebook.pacing import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    GENTLE_SLOWDOWN,
    MAX_RETRY_AFTER,
    RECOVERY_QUIET,
    SLOWDOWN_FACTOR,
    parse_retry_after,
    retry_delay,
    should_retry,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_should_retry_transient_statuses(status):
    assert should_retry(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_never_retry_client_errors(status):
    assert not should_retry(status)


def test_retry_delay_is_exponential_with_jitter_and_capped():
    for attempt in range(8):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        assert retry_delay(attempt, rng=lambda: 0.0) == pytest.approx(ceiling / 2)
        assert retry_delay(attempt, rng=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert retry_delay(30, rng=lambda: 1.0) == BACKOFF_CAP


def test_retry_after_wins_and_is_capped():
    assert retry_delay(0, {"retry-after": "7"}) == 7.0
    assert retry_delay(5, {"Retry-After": "1.5"}) == 1.5
    assert retry_delay(0, {"retry-after": "3600"}) == MAX_RETRY_AFTER
    assert retry_delay(0, {"retry-after": "soon"}, rng=lambda: 0.0) == BACKOFF_BASE / 2
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        retry_delay(-1)


def test_parse_retry_after_http_date():
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(999_000, usegmt=True), now=1_000_000) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


def test_limiter_spaces_requests_after_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    assert limiter.burst == 3
    start = clock.now
    sent = []
    for _ in range(13):
        limiter.acquire()
        sent.append(clock.now - start)
    interval = 60 / 118
    assert sent[:3] == [0.0, 0.0, 0.0]
    assert sent[3] == pytest.approx(interval)
    assert sent[12] == pytest.approx(10 * interval)
    # No 60-second window holds more than 120 requests, burst included: counted over 5 minutes
    # of sends, not computed from the constants.
    for _ in range(600):
        limiter.acquire()
        sent.append(clock.now - start)
    busiest = max(sum(1 for t in sent if s <= t < s + 60) for s in sent)
    assert 118 <= busiest <= 120


def test_limiter_burst_shrinks_for_slow_paces():
    assert RateLimiter(20).burst == 1
    assert RateLimiter(1200).burst == 3
    with pytest.raises(ValueError, match="burst must be a whole number"):
        RateLimiter(60, burst=0)


def test_pause_holds_everyone_and_slows_then_recovers():
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.pause(5.0)
    # The first refusal with a burst allowed is put down to the burst: it goes, the pace stays.
    assert limiter.requests_per_minute == pytest.approx(118) and limiter.burst == 1
    waited = limiter.acquire()
    assert waited >= 5.0
    clock.now += RECOVERY_QUIET
    limiter.pause(1.0)  # a refusal after a quiet spell: gently
    assert limiter.requests_per_minute == pytest.approx(118 * GENTLE_SLOWDOWN)
    limiter.record_success()
    assert limiter.requests_per_minute == pytest.approx(118 * GENTLE_SLOWDOWN)  # no recovery right after
    clock.now += 3 * RECOVERY_QUIET + 1
    for _ in range(1000):
        limiter.record_success()
    assert limiter.requests_per_minute == pytest.approx(118)


def test_pause_floor():
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.pause(0)
        clock.now += 5.0  # refusals keep coming, each after the last cut could be judged
    assert limiter.requests_per_minute == pytest.approx(118 * 0.05)


def test_a_cut_is_judged_before_the_next():
    clock = FakeClock()
    limiter = RateLimiter(600, burst=1, clock=clock, sleep=clock.sleep)
    limiter.pause(0.01)  # cut once: 540 a minute
    for _ in range(5):  # a full window refuses a few in a row: one episode
        clock.now += 0.05
        limiter.pause(0.01)
    assert limiter.requests_per_minute == pytest.approx(600 * GENTLE_SLOWDOWN)
    clock.now += 10 / (600 * GENTLE_SLOWDOWN / 60)  # ten requests at the new pace, then refused
    limiter.pause(0.01)
    assert limiter.requests_per_minute == pytest.approx(600 * GENTLE_SLOWDOWN * SLOWDOWN_FACTOR)


def test_refusals_during_a_pause_slow_the_pace_once():
    clock = FakeClock()
    limiter = RateLimiter(120, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(4):  # four requests in flight all come back 429
        limiter.pause(2.0)
    assert limiter.requests_per_minute == pytest.approx(120 * GENTLE_SLOWDOWN)
    assert limiter.pauses == 4
    clock.now += 6.0  # ten requests at the new pace later, and soon after the pause:
    limiter.pause(2.0)  # the limit really is lower
    assert limiter.requests_per_minute == pytest.approx(120 * GENTLE_SLOWDOWN * SLOWDOWN_FACTOR)
    sent = limiter.now() - 0.1
    clock.now += 2.0 + RECOVERY_QUIET
    limiter.pause(1.0, sent_at=sent)  # sent before the last pause began: the same signal
    assert limiter.requests_per_minute == pytest.approx(120 * GENTLE_SLOWDOWN * SLOWDOWN_FACTOR)
    # Recovery stops below the pace that was refused (the ceiling), until a long quiet spell.
    clock.now += 1.0 + RECOVERY_QUIET
    for _ in range(200):
        limiter.record_success()
    assert limiter.requests_per_minute == pytest.approx(120 * GENTLE_SLOWDOWN ** 2)


def test_limiter_is_shared_by_threads():
    limiter = RateLimiter(6000)  # 100 a second
    import time

    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= (40 - limiter.burst) / limiter.configured_rate * 0.99


def test_client_retry_loop_with_a_mock_transport():
    """Retry arithmetic only; the integration tests cover the real HTTP path."""
    statuses = iter([503, 429, 200])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = next(statuses)
        headers = {"Retry-After": "0"} if status == 429 else {}
        body = {"data": [], "has_more": False, "next_cursor": None} if status == 200 else {"error": "x"}
        return httpx.Response(status, json=body, headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = ConduitClient("secret", base_url="http://conduit.test", http_client=http,
                           requests_per_minute=60_000)
    assert list(client.iter_agents()) == []
    assert len(seen) == 3
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert client.stats.retries == 2 and client.stats.rate_limited == 1
    client.close()
    assert not http.is_closed  # the caller owns an injected client


def test_429_exhausted_raises_rate_limit_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "0"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = ConduitClient("secret", base_url="http://conduit.test", http_client=http,
                           max_retries=2, requests_per_minute=60_000)
    with pytest.raises(RateLimitError) as info:
        list(client.iter_agents())
    assert info.value.attempts == 3
    assert "requests_per_minute" in str(info.value) and "slow down" in str(info.value)
    assert client.stats.rate_limited == 3
