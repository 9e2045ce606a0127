"""Pacing and retries: keep a client under the workspace's rate limit, and decide when to try again.

Conduit allows 120 requests a minute per workspace. A :class:`RateLimiter` spaces requests
evenly at the configured pace (a small burst at most), shared by every thread of a client; with
a :class:`SharedPace` (a GCRA slot in a small SQLite file beside the cache) by every process of
the same workspace on this machine too, so two notebooks and a ``sync`` together keep one pace.
When a 429 arrives anyway, :meth:`RateLimiter.pause` holds *every* thread (and process) until
``Retry-After`` has passed and slows the pace a little; only refusals that keep coming soon
after a pause slow it hard. It creeps back up after a quiet spell.

The retry policy is two small pure functions, :func:`should_retry` and :func:`retry_delay`. The
shared pace's file (:class:`SharedPace`) is :mod:`.pace_file`'s; its names are importable from here.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
import warnings
from collections.abc import Callable, Mapping

from .pace_file import LOCK_WAIT_S, PACE_APPLICATION_ID, PACE_FILE, PaceUnavailable, SharedPace

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "DEFAULT_BURST", "DEFAULT_REQUESTS_PER_MINUTE", "LOCK_WAIT_S",
           "MAX_RETRY_AFTER", "PACE_APPLICATION_ID", "PACE_FILE", "RETRYABLE_STATUSES", "PaceUnavailable", "RateLimiter",
           "SharedPace", "parse_retry_after", "retry_delay", "should_retry"]

DEFAULT_REQUESTS_PER_MINUTE = 120
#: Requests that may go at once before the even spacing applies.
DEFAULT_BURST = 3
#: Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this.
MAX_RETRY_AFTER = 60.0
#: Backoff for 5xx, timeouts and dropped connections: BACKOFF_BASE * 2**attempt, capped.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
#: After a 429 that follows a quiet spell the pace is multiplied by this (one refusal is often
#: a window boundary or a burst, not a lower limit) ...
GENTLE_SLOWDOWN = 0.9
#: ... after a 429 within RECOVERY_QUIET seconds of the last pause, by this ...
SLOWDOWN_FACTOR = 0.5
#: ... never below this share of the configured pace ...
MIN_PACE_SHARE = 0.05
#: ... and recovers by RECOVERY_STEP of the configured pace per success, once no 429 has been
#: seen for RECOVERY_QUIET seconds.
RECOVERY_STEP = 0.02
RECOVERY_QUIET = 10.0
#: Requests at the new pace before a further refusal may cut it again.
JUDGE_REQUESTS = 10
#: After 3 * RECOVERY_QUIET quiet seconds the ceiling left by refusals rises by this share of the
#: configured pace per success.
CEILING_STEP = 0.002

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
    the pace: a little after a first 429, by half when refusals keep coming.
    :meth:`share` puts the slot in a :class:`SharedPace`, so that other processes of the same
    workspace take turns from it.

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
        self._shared: SharedPace | None = None
        self._key = ""
        self._ceiling = self.configured_rate  # no higher than this after refusals
        self._cut_at = -math.inf  # when the pace was last cut

    def share(self, shared: SharedPace, key: str) -> None:
        """Take turns from ``shared``'s slot for ``key`` (a workspace), with every process on this
        machine that uses the same file and key."""
        with self._lock:
            self._shared, self._key = shared, key

    @property
    def requests_per_minute(self) -> float:
        """The steady pace now in force, per minute (lower than configured after a 429)."""
        return self.rate * 60.0

    def _alone(self, exc: PaceUnavailable) -> None:
        """Stop sharing the pace file that failed: this process paces itself, and says so."""
        if self._shared is not None:
            warnings.warn(f"{exc}: this process now paces its requests on its own (other processes of the "
                          "same workspace no longer share its turns)", UserWarning, stacklevel=4)
        self._shared = None

    def _reserve(self) -> float:
        with self._lock:
            if self._shared is not None:
                now = time.time()
                try:
                    return self._shared.reserve(self._key, now, 1.0 / self.rate, self.burst) - now
                except PaceUnavailable as exc:
                    self._alone(exc)
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
                # A 429 seen by another thread (or process) while this one slept: wait that out too.
                if self._shared is not None:
                    try:
                        if self._shared.paused_until(self._key) <= time.time():
                            return total
                        continue
                    except PaceUnavailable as exc:
                        self._alone(exc)
                if self._paused_until <= self._clock():
                    return total

    def now(self) -> float:
        """The limiter's clock: pass it to :meth:`pause` as ``sent_at`` of a refused request."""
        return self._clock()

    def pause(self, seconds: float, *, sent_at: float | None = None) -> None:
        """Hold every caller for ``seconds`` from now, and adjust the pace.

        The first refusal while a burst is allowed is put down to the burst: the burst goes,
        the pace stays. After that a refusal following a quiet spell slows the pace by
        GENTLE_SLOWDOWN, and one within RECOVERY_QUIET seconds of the last pause (the limit
        really is lower than configured) by SLOWDOWN_FACTOR; the pace then never climbs back
        above GENTLE_SLOWDOWN times the pace that was refused (a ceiling that itself creeps up
        after long quiet spells). A refused request sent before the last pause began
        (``sent_at``, from :meth:`now`) carries the same signal as that pause: it is waited
        out and changes nothing else."""
        with self._lock:
            now = self._clock()
            until = now + max(0.0, seconds)
            # Requests already on the wire when the first 429 came meet 429s too: they are
            # the same signal, so the pace is cut once per pause, not once per refusal.
            stale = sent_at is not None and sent_at < self._last_pause
            # A cut is judged on what follows it: no second cut before JUDGE_REQUESTS requests
            # could have gone at the new pace (a full window refuses a few in a row).
            judged = now - self._cut_at >= JUDGE_REQUESTS / self.rate
            if now >= self._paused_until and not stale and self.burst == 1 and judged:
                recent = (self.pauses > 0 and now - self._paused_until < RECOVERY_QUIET
                          and (sent_at is None or sent_at >= self._paused_until))
                factor = SLOWDOWN_FACTOR if recent else GENTLE_SLOWDOWN
                self._ceiling = min(self._ceiling, self.rate * GENTLE_SLOWDOWN)
                self.rate = max(self.configured_rate * MIN_PACE_SHARE, self.rate * factor)
                self._cut_at = now
            self.burst = 1
            self._paused_until = max(self._paused_until, until)
            # No burst straight after the pause: the server's window is still full.
            self._tat = max(self._tat, self._paused_until + 1.0 / self.rate)
            if self._shared is not None:
                try:
                    self._shared.pause(self._key, time.time() + max(0.0, seconds), 1.0 / self.rate)
                except PaceUnavailable as exc:
                    self._alone(exc)
            if not stale:
                self._last_pause = now
            self.pauses += 1

    def record_success(self) -> None:
        """Let the pace recover after a quiet spell: up to the ceiling the last refusals left,
        and the ceiling itself towards the configured pace after long quiet spells."""
        if self.rate >= self.configured_rate:
            return
        with self._lock:
            quiet = self._clock() - self._last_pause
            if quiet >= 3 * RECOVERY_QUIET:
                self._ceiling = min(self.configured_rate, self._ceiling + self.configured_rate * CEILING_STEP)
            if quiet >= RECOVERY_QUIET:
                self.rate = min(self._ceiling, max(self.rate, min(
                    self._ceiling, self.rate + self.configured_rate * RECOVERY_STEP)))

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.limit:g}, burst={self.burst}, "
            f"pace_now={self.requests_per_minute:.4g}/min"
            + (f", shared={str(self._shared.path)!r}" if self._shared is not None else "") + ")"
        )
