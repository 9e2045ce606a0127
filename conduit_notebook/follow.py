"""``conduit-notebook sync --follow``: keep the cache current, pass after pass, through outages.

Each pass is one :func:`conduit_notebook.fetch_runs` over the window: new runs from the list
pages and up to ``per_pass`` more traces (the target grows by that much a pass; traces at hand
count). A pass that fails (the API down, a 429 storm that opened the client's breaker, a
timeout, the disk full, a locked cache) is logged and the next one is tried after a backoff that
doubles from the interval up to :data:`FOLLOW_BACKOFF_CAP`; whatever earlier passes stored stays
in the cache, and a pass killed half-way resumes from it. Only a permanent error ends the loop:
401/403 (the token or the workspace), an agent that is not there, an argument that cannot work.

>>> follow(fetch, interval=60, per_pass=240, passes=None)     # until Ctrl-C or SIGTERM
"""

from __future__ import annotations

import math
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from .errors import AuthenticationError, ConduitError, PermissionDeniedError, UnknownAgentError

__all__ = ["FOLLOW_BACKOFF_CAP", "MAX_INTERVAL", "PERMANENT_ERRORS", "follow", "follow_delay"]

#: The longest wait between passes after failed ones (seconds): an outage is retried at
#: least this often, however long it lasts.
FOLLOW_BACKOFF_CAP = 900.0
#: The longest ``--interval`` accepted (seconds): a day.
MAX_INTERVAL = 86_400.0
#: Errors no later pass can fix: they end ``--follow`` (everything else is retried).
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (AuthenticationError, PermissionDeniedError,
                                                     UnknownAgentError, ValueError)
#: Failures a later pass may get past: the API's (5xx, 429, timeouts, paging) and the disk's.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConduitError, OSError, sqlite3.Error)


def follow_delay(interval: float, failures: int, *, cap: float = FOLLOW_BACKOFF_CAP) -> float:
    """Seconds to wait before the next pass: ``interval`` after a good pass, else the interval
    (1 s for an interval of 0) doubled for each failed pass in a row, at most ``max(cap, interval)``."""
    if not (math.isfinite(interval) and interval >= 0):
        raise ValueError(f"interval must be a finite number of seconds >= 0, got {interval!r}")
    if failures < 0:
        raise ValueError(f"failures must be >= 0, got {failures!r}")
    if failures == 0:
        return interval
    base = interval if interval > 0 else 1.0
    return min(max(cap, interval), base * 2.0 ** min(failures - 1, 30))


def check_interval(value: Any, name: str = "--interval") -> float:
    """A pause between passes in seconds, or a ValueError naming ``name`` and what it accepts."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_INTERVAL:g} (a day); "
                         f"got {value!r}") from None
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_INTERVAL):
        raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_INTERVAL:g} (a day); got {value!r}")
    return seconds


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM stops the loop as Ctrl-C does (between requests; the cache keeps every pass).
    Returns the function that puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def follow(fetch: Callable[[int | bool], Any], *, interval: float, per_pass: int | bool, passes: int | None,
           outcome: Callable[[Any], int], sleep: Callable[[float], None] = time.sleep) -> int:
    """Run ``fetch(target)`` pass after pass (``target``: the traces the window should carry
    after it, or False for none), ``passes`` times or until stopped; returns the last pass's
    exit code (``outcome(frames)``, 1 for a failed pass). Permanent errors are raised."""
    interval = check_interval(interval)
    traced, done, failures, code = 0, 0, 0, 0
    restore = _stop_on_sigterm()
    try:
        while passes is None or done < passes:
            if done:
                sleep(follow_delay(interval, failures))
            target = traced + per_pass if per_pass is not False else False
            try:
                with warnings.catch_warnings():  # the pass line below counts them
                    warnings.filterwarnings("ignore", message=r".* traces failed after retries", category=UserWarning)
                    frames = fetch(target)
            except PERMANENT_ERRORS:
                raise
            except TRANSIENT_ERRORS as exc:
                done += 1
                failures += 1
                code = 1
                wait = follow_delay(interval, failures)
                print(f"pass {done} failed ({type(exc).__name__}): {exc}; "
                      + ("" if passes is not None and done >= passes else f"next pass in {wait:g} s ")
                      + f"({failures} failed in a row; what earlier passes stored is kept)",
                      file=sys.stderr, flush=True)
                continue
            done += 1
            failures = 0
            traced = frames.traced
            failed_traces = getattr(frames, "trace_failures", 0)
            print(f"pass {done}: {len(frames.runs):,} runs, {traced:,} with traces, "
                  f"{frames.stats.requests:,} requests ({frames.stats.detail_requests:,} trace), "
                  f"{len(frames.errors):,} errors"
                  + (f" ({failed_traces:,} traces failed, retried next pass)" if failed_traces else "")
                  + f", {frames.stats.elapsed_s:.1f} s", file=sys.stderr, flush=True)
            code = outcome(frames)
    except KeyboardInterrupt:
        print("conduit-notebook: stopped", file=sys.stderr, flush=True)
    finally:
        restore()
    return code
