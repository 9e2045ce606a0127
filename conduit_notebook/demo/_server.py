"""A local Conduit-compatible HTTP server over :class:`DemoData`, on 127.0.0.1.

It speaks the contract in CONDUIT_API.md: bearer auth, ``workspace_id``, cursor pagination
(``limit`` 1..100), the ``status`` filter, JSON ``error`` bodies and, when asked, a rate limit
that answers 429 with ``Retry-After``. Tests can also inject faults (5xx, HTML error pages,
dropped connections, slow answers, redirects, a body trickled byte by byte) and read the log of
the requests it answered. Hostile pagination (:meth:`DemoServer.paginate`) and poisoned records
(:meth:`DemoServer.poison`) test what the client does with a server that misbehaves.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from ._data import DemoData
from ._handler import RequestHandler
from ._limits import RATE_MODES, FixedWindow, SlidingWindow
from ._records import RecordSet


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server answered (the token is never kept)."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None for a dropped connection
    at: float  # time.monotonic()


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests whose path matches ``match``."""

    status: int | None = 503
    times: int = 1
    match: str | None = None
    retry_after: float | None = None
    body: str | bytes | None = None
    drop: bool = False
    delay: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    skip: int = 0
    trickle: float = 0.0
    used: int = field(default=0)
    seen: int = field(default=0)

    def matches(self, path: str) -> bool:
        return self.match is None or re.search(self.match, path) is not None




class DemoServer:
    """The running server: ``base_url``, ``token``, ``workspace_id``, ``data`` and ``requests``."""

    def __init__(
        self,
        data: DemoData | RecordSet,
        *,
        token: str | None = None,
        requests_per_minute: int | None = None,
        rate_window: float = 60.0,
        rate_mode: str = "sliding",
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        if rate_mode not in RATE_MODES:
            raise ValueError(f"rate_mode must be one of {', '.join(RATE_MODES)}; got {rate_mode!r}")
        self.data = data
        self.token = token or "demo-" + secrets.token_urlsafe(18)
        self.workspace_id = data.workspace_id
        # A limit of requests_per_minute * rate_window / 60 per rate_window seconds; tests shrink
        # the window to see the client adapt in seconds instead of minutes.
        window_type = SlidingWindow if rate_mode == "sliding" else FixedWindow
        #: The rate limit (None: no limit); the handler asks it to admit each request.
        self.limiter = (
            window_type(max(1, round(requests_per_minute * rate_window / 60)), rate_window)
            if requests_per_minute else None
        )
        self.rate_window = rate_window
        self.requests_per_minute = requests_per_minute
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._cursor_key = secrets.token_bytes(4)
        self.pagination: str | None = None
        self._poison: dict[str, bytes] = {}
        handler = type("Handler", (RequestHandler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        bound_host, bound_port = self._httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"DemoServer(base_url={self.base_url!r}, runs={self.data.n}, "
                f"agents={len(self.data.agents)})")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> DemoServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="conduit-demo-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    # -- test hooks ---------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = 503,
        *,
        times: int = 1,
        match: str | None = None,
        retry_after: float | None = None,
        body: str | bytes | None = None,
        drop: bool = False,
        delay: float = 0.0,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        skip: int = 0,
        trickle: float = 0.0,
    ) -> Fault:
        """Fail the next ``times`` requests whose path matches the regex ``match``.

        ``status`` with an optional ``body`` (JSON ``error`` by default), ``retry_after`` and
        other ``headers`` (a ``Location`` for a 3xx); ``drop=True`` closes the connection without
        an answer; ``delay`` waits before answering (longer than the client's timeout, it is a
        timeout); ``trickle`` sends the body one byte every ``trickle`` seconds. ``skip`` lets
        that many matching requests through first. ``times=-1`` means every request.
        """
        fault = Fault(status=status, times=times, match=match, retry_after=retry_after, body=body,
                      drop=drop, delay=delay, content_type=content_type, headers=headers, skip=skip,
                      trickle=trickle)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove injected faults, hostile pagination and poisoned records."""
        with self._lock:
            self._faults.clear()
            self.pagination = None
            self._poison.clear()

    #: What :meth:`paginate` can make run listings do.
    PAGINATION_MODES = ("duplicate", "loop", "no_cursor", "empty_more", "stale")

    def paginate(self, mode: str | None) -> None:
        """Make run listings misbehave (None: behave again).

        ``"duplicate"``: every page after the first starts with the previous page's last run
        (as when new runs arrive while a client pages); ``"loop"``: ``next_cursor`` never moves
        on; ``"no_cursor"``: the first page says ``has_more`` without a ``next_cursor``;
        ``"empty_more"``: the second page is empty but says ``has_more``; ``"stale"``: fresh
        cursors that serve the first page again and again.
        """
        if mode is not None and mode not in self.PAGINATION_MODES:
            raise ValueError(f"mode must be one of {', '.join(self.PAGINATION_MODES)} or None, got {mode!r}")
        self.pagination = mode

    def poison(self, run_id: str, raw: str | bytes, *, where: str = "both") -> None:
        """Serve ``raw`` (JSON text, taken as is) in place of this run's summary in list pages
        (``where="list"``), of its full record (``"get"``: the body becomes ``{"data": raw}``),
        or both. For lone surrogates, huge integers, deep nesting, null ids..."""
        if where not in ("list", "get", "both"):
            raise ValueError(f"where must be 'list', 'get' or 'both', got {where!r}")
        raw = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        with self._lock:
            if where in ("list", "both"):
                self._poison[f"list:{run_id}"] = raw
            if where in ("get", "both"):
                self._poison[f"get:{run_id}"] = raw

    def poisoned(self, key: str) -> bytes | None:
        with self._lock:
            return self._poison.get(key)

    @property
    def requests(self) -> list[LoggedRequest]:
        """The requests answered so far, oldest first."""
        with self._lock:
            return list(self._log)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered (a slow fault may outlive its client)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._inflight_lock:
                if self._inflight == 0:
                    return True
            time.sleep(0.01)
        return False

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def count(self, path: str | None = None, *, status: int | None = None) -> int:
        """Requests answered whose path matches the regex ``path`` (and with that status)."""
        return sum(
            1 for r in self.requests
            if (path is None or re.search(path, r.path)) and (status is None or r.status == status)
        )

    # -- internals ----------------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        """The fault to play on a request for ``path`` (None: answer it), counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path) and (fault.times < 0 or fault.used < fault.times):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        return None
                    fault.used += 1
                    return fault
        return None

    def record(self, method: str, path: str, query: dict[str, str], status: int | None) -> None:
        """Add an answered request to the log (:attr:`requests`)."""
        with self._lock:
            self._log.append(LoggedRequest(method, path, query, status, time.monotonic()))

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Count a request as in flight while it is answered (:meth:`wait_idle` waits for none)."""
        with self._inflight_lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    def encode_cursor(self, scope: str, offset: int) -> str:
        raw = f"{scope}|{offset}".encode() + self._cursor_key
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode_cursor(self, cursor: str, scope: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            return None
        if not raw.endswith(self._cursor_key):
            return None
        text = raw[: -len(self._cursor_key)].decode(errors="replace")
        cursor_scope, _, offset = text.rpartition("|")
        if cursor_scope != scope or not offset.isdigit():
            return None
        return int(offset)
