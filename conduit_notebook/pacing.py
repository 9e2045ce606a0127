"""Pacing and retries: keep a client under the workspace's rate limit, and decide when to try again.

Conduit allows 120 requests a minute per workspace. A :class:`RateLimiter` spaces requests
evenly at the configured pace (a small burst at most), shared by every thread of a client. When
a 429 arrives anyway, :meth:`RateLimiter.pause` holds *every* thread until ``Retry-After`` has
passed and slows the pace; it creeps back up after a quiet spell.

The retry policy is two small pure functions, :func:`should_retry` and :func:`retry_delay`.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping

DEFAULT_REQUESTS_PER_MINUTE = 120
#: Requests that may go at once before the even spacing applies.
DEFAULT_BURST = 3
#: Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this.
MAX_RETRY_AFTER = 60.0
#: Backoff for 5xx, timeouts and dropped connections: BACKOFF_BASE * 2**attempt, capped.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
#: After a 429 the pace is multiplied by this ...
SLOWDOWN_FACTOR = 0.5
#: ... never below this share of the configured pace ...
MIN_PACE_SHARE = 0.05
#: ... and recovers by RECOVERY_STEP of the configured pace per success, once no 429 has been
#: seen for RECOVERY_QUIET seconds.
RECOVERY_STEP = 0.02
RECOVERY_QUIET = 30.0

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def should_retry(status_code: int) -> bool:
    """Whether a response with this status is worth another attempt.

    429 and server errors are; 400, 401, 403 and 404 (and other client errors) never are.
    """
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    max_retry_after: float = MAX_RETRY_AFTER,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``Retry-After`` wins when the headers carry one (cut to ``max_retry_after``). Otherwise
    exponential backoff with "equal jitter": half of ``min(cap, base * 2**attempt)`` plus a
    random share of the other half, so that clients that failed together do not retry together.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt!r}")
    if headers is not None:
        retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, max_retry_after)
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + rng() * ceiling / 2


class RateLimiter:
    """A thread-safe pacer: at most ``requests_per_minute``, evenly spaced, after a burst of ``burst``.

    It follows the generic cell rate algorithm: each request reserves the next slot, so N
    requests made at once take at least ``(N - burst) / rate`` seconds. The spacing is
    ``60 / (requests_per_minute - burst + 1)`` seconds, so that no 60-second window holds more
    than ``requests_per_minute`` requests, burst included (``burst`` defaults to 3 at 120 a
    minute, less at slower paces). ``pause(seconds)`` stops every caller until then and slows
    the pace (a 429 means the real limit is lower than configured).

    >>> limiter = RateLimiter(requests_per_minute=600)
    >>> limiter.acquire()  # returns at once for the first `burst` calls, then every 0.1 s
    """

    def __init__(
        self,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(requests_per_minute, (int, float)) or not requests_per_minute > 0:
            raise ValueError(
                f"requests_per_minute must be a positive number, got {requests_per_minute!r}"
            )
        if burst is None:
            burst = max(1, min(DEFAULT_BURST, int(requests_per_minute // 40)))
        if not isinstance(burst, int) or not 1 <= burst <= max(1, requests_per_minute):
            raise ValueError(
                f"burst must be a whole number from 1 to requests_per_minute, got {burst!r}"
            )
        self.limit = float(requests_per_minute)
        # Spaced so that no 60-second window, burst included, holds more than the limit.
        self.configured_rate = max(requests_per_minute - burst + 1, 1) / 60.0
        self.rate = self.configured_rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next request
        self._paused_until = 0.0
        self._last_pause = -math.inf
        self.pauses = 0

    @property
    def requests_per_minute(self) -> float:
        """The steady pace now in force, per minute (lower than configured after a 429)."""
        return self.rate * 60.0

    def _reserve(self) -> float:
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            interval = 1.0 / self.rate
            tat = max(self._tat, start)
            send_at = max(start, tat - (self.burst - 1) * interval)
            self._tat = tat + interval
            return send_at - now

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        total = 0.0
        while True:
            wait = self._reserve()
            if wait > 0:
                self._sleep(wait)
                total += wait
            with self._lock:
                # A 429 seen by another thread while this one slept: wait that out too.
                if self._paused_until <= self._clock():
                    return total

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now, and slow the pace."""
        with self._lock:
            now = self._clock()
            until = now + max(0.0, seconds)
            # Requests already on the wire when the first 429 came meet 429s too: they are
            # the same signal, so the pace is cut once per pause, not once per refusal.
            if now >= self._paused_until:
                self.rate = max(self.configured_rate * MIN_PACE_SHARE, self.rate * SLOWDOWN_FACTOR)
            self._paused_until = max(self._paused_until, until)
            # No burst straight after the pause: the server's window is still full.
            self._tat = max(self._tat, self._paused_until + 1.0 / self.rate)
            self._last_pause = now
            self.pauses += 1

    def record_success(self) -> None:
        """Let the pace recover towards the configured one after a quiet spell."""
        if self.rate >= self.configured_rate:
            return
        with self._lock:
            if self._clock() - self._last_pause >= RECOVERY_QUIET:
                self.rate = min(
                    self.configured_rate, self.rate + self.configured_rate * RECOVERY_STEP
                )

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.limit:g}, burst={self.burst}, "
            f"pace_now={self.requests_per_minute:.4g}/min)"
        )
