"""The client's breaker: after many 429s, or 5xx answers, in a row over every thread, the client
stops asking for a while and raises at once, so that a workspace out of budget or an API that is
down costs a few dozen requests, not every retry of every run (:class:`ConduitClient`'s
``rate_limit_patience`` and ``server_error_patience``). When one request waits and retries is
:mod:`conduit_notebook.pacing`'s (``should_retry``, ``retry_delay``)."""

from __future__ import annotations

import threading
import time

from .errors import APIStatusError, ConduitError, RateLimitError

__all__ = ["DEFAULT_RATE_LIMIT_PATIENCE", "DEFAULT_SERVER_ERROR_PATIENCE", "RATE_LIMIT_COOLDOWN",
           "SERVER_ERROR_COOLDOWN", "Breaker"]

#: 429 answers in a row (over every thread of a client) after which it stops asking ...
DEFAULT_RATE_LIMIT_PATIENCE = 20
#: ... and refuses requests for at least this long (or the server's Retry-After, if longer).
RATE_LIMIT_COOLDOWN = 60.0
#: 5xx answers in a row (over every thread, retries included) after which the API counts as
#: down: the client refuses requests for SERVER_ERROR_COOLDOWN seconds instead of retrying each.
DEFAULT_SERVER_ERROR_PATIENCE = 30
SERVER_ERROR_COOLDOWN = 30.0


class Breaker:
    """429s and 5xx answers in a row, shared by a client's threads, and whether (and why) the
    client refuses requests now."""

    def __init__(self, rate_limit_patience: int, server_error_patience: int) -> None:
        self.rate_limit_patience = rate_limit_patience
        self.server_error_patience = server_error_patience
        self._lock = threading.Lock()
        self._limited_in_a_row = 0
        self._failing_in_a_row = 0  # 5xx answers in a row
        self._open_for = "rate limit"  # why the breaker is open: "rate limit" or "server errors"
        self._open_until = 0.0  # monotonic time before which the breaker refuses requests
        self._retry_at = 0.0  # wall-clock time the message names

    def check(self, endpoint: str) -> None:
        """Raise the breaker's error when it is open."""
        with self._lock:
            if time.monotonic() < self._open_until:
                raise self.error(endpoint)

    def error(self, endpoint: str) -> ConduitError:
        return self._exhausted(endpoint) if self._open_for == "rate limit" else self._server_down(endpoint)

    def _server_down(self, endpoint: str) -> APIStatusError:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self._retry_at))
        return APIStatusError(
            f"{endpoint} was not sent: the API answered {self._failing_in_a_row} requests in a row with a "
            f"server error (5xx; server_error_patience={self.server_error_patience}), so the client stopped "
            f"asking until {when}; what was fetched is kept. The Conduit API is having trouble: run again later.",
            status_code=503, endpoint=endpoint, attempts=0,
        )

    def _exhausted(self, endpoint: str) -> RateLimitError:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self._retry_at))
        return RateLimitError(
            f"{endpoint} was not sent: rate limit exhausted; retry after {when}. "
            f"{self._limited_in_a_row} answers in a row were 429 (rate_limit_patience="
            f"{self.rate_limit_patience}), so the client stopped asking; what was fetched is kept. "
            "Run again later, or lower requests_per_minute.",
            status_code=429, endpoint=endpoint, attempts=0,
        )

    def note_answer(self, status: int | None, delay: float) -> bool:
        """Count 429s and 5xx answers in a row; True when the breaker has just opened."""
        with self._lock:
            if status is not None and status >= 500:
                self._limited_in_a_row = 0
                self._failing_in_a_row += 1
                if self._failing_in_a_row < self.server_error_patience:
                    return False
                self._open_for = "server errors"
                self._open_until = time.monotonic() + max(delay, SERVER_ERROR_COOLDOWN)
                self._retry_at = time.time() + max(delay, SERVER_ERROR_COOLDOWN)
                return True
            if status is not None:
                self._failing_in_a_row = 0
            if status != 429:
                if status is not None:
                    self._limited_in_a_row = 0
                return False
            self._limited_in_a_row += 1
            if self._limited_in_a_row < self.rate_limit_patience:
                return False
            cooldown = max(delay, RATE_LIMIT_COOLDOWN)
            self._open_for = "rate limit"
            self._open_until = time.monotonic() + cooldown
            self._retry_at = time.time() + cooldown
            return True
