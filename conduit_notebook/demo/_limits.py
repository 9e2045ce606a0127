"""The demo server's rate limits: a sliding or a fixed window per workspace."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindow:
    """At most ``limit`` requests in any ``window`` seconds, per workspace."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def admit(self, key: str) -> float | None:
        """None if the request may go, else the seconds until it could."""
        now = time.monotonic()
        with self.lock:
            window = self.seen.setdefault(key, deque())
            while window and window[0] <= now - self.window:
                window.popleft()
            if len(window) >= self.limit:
                return window[0] + self.window - now
            window.append(now)
            return None


class FixedWindow:
    """At most ``limit`` requests per workspace in each fixed window of ``window`` seconds
    (windows start when the server does), as many API gateways count."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.start = time.monotonic()
        self.counts: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()

    def admit(self, key: str) -> float | None:
        now = time.monotonic()
        index = int((now - self.start) // self.window)
        with self.lock:
            current, count = self.counts.get(key, (index, 0))
            if current != index:
                count = 0
            if count >= self.limit:
                return self.start + (index + 1) * self.window - now
            self.counts[key] = (index, count + 1)
            return None


RATE_MODES = ("sliding", "fixed")
