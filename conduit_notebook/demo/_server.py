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
import math
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..schema import ESCALATION_STATUSES, RUN_STATUSES
from ._data import DemoData, RecordSet, dumps

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


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


class _SlidingWindow:
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


class _FixedWindow:
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
        window_type = _SlidingWindow if rate_mode == "sliding" else _FixedWindow
        self._limiter = (
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
        handler = type("Handler", (_Handler,), {"server_state": self})
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

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path) and (fault.times < 0 or fault.used < fault.times):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        return None
                    fault.used += 1
                    return fault
        return None

    def _record(self, method: str, path: str, query: dict[str, str], status: int | None) -> None:
        with self._lock:
            self._log.append(LoggedRequest(method, path, query, status, time.monotonic()))

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


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    server_state: DemoServer
    protocol_version = "HTTP/1.1"
    server_version = "ConduitDemo/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    def _send(self, status: int, body: bytes, *, content_type: str = "application/json",
              headers: dict[str, str] | None = None, trickle: float = 0.0) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if trickle:
                self.wfile.flush()
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout): nothing to answer.
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with self.server_state._inflight_lock:
            self.server_state._inflight += 1
        try:
            self._answer()
        finally:
            with self.server_state._inflight_lock:
                self.server_state._inflight -= 1

    def _answer(self) -> None:
        state = self.server_state
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}

        fault = state._take_fault(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                state._record("GET", path, query, None)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.status is not None:
                body = fault.body if fault.body is not None else dumps(
                    {"error": f"Injected failure ({fault.status})"})
                body = body.encode() if isinstance(body, str) else body
                headers = dict(fault.headers or {})
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                state._record("GET", path, query, fault.status)
                self._send(fault.status, body, content_type=fault.content_type, headers=headers,
                           trickle=fault.trickle)
                return

        try:
            payload = self._route(path, query)
        except _ApiError as exc:
            state._record("GET", path, query, exc.status)
            self._send(exc.status, dumps({"error": exc.message}), headers=exc.headers)
            return
        state._record("GET", path, query, 200)
        self._send(200, payload if isinstance(payload, bytes) else dumps(payload),
                   trickle=fault.trickle if fault is not None else 0.0)

    def _route(self, path: str, query: dict[str, str]) -> dict[str, Any] | bytes:
        state = self.server_state
        data = state.data
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not secrets.compare_digest(
            auth[len("Bearer "):].strip().encode(), state.token.encode()
        ):
            raise _ApiError(401, "Missing or invalid API token. Send 'Authorization: Bearer <token>'.")
        workspace = query.get("workspace_id")
        if workspace is not None and workspace != state.workspace_id:
            raise _ApiError(403, f"This token has no access to workspace '{workspace}'.")
        if state._limiter is not None:
            wait = state._limiter.admit(state.workspace_id)
            if wait is not None:
                # Whole seconds, as HTTP has it; a window scaled down for tests scales this too.
                retry_after = (str(max(1, math.ceil(wait))) if state.rate_window >= 60
                               else f"{math.ceil(wait * 100) / 100:.2f}")
                raise _ApiError(
                    429, f"Rate limit of {state.requests_per_minute} requests per minute exceeded.",
                    {"Retry-After": retry_after},
                )

        segments = [s for s in path.split("/") if s]
        if segments == ["v1", "escalations"]:
            return self._escalations(query)
        if segments == ["v1", "agents"]:
            return self._page(data.agents, len(data.agents), "agents", query, lambda i: data.agents[i])
        if len(segments) >= 4 and segments[:2] == ["v1", "agents"] and segments[3] == "runs":
            agent_id = segments[2]
            if agent_id not in data.by_agent:
                raise _ApiError(404, f"Agent '{agent_id}' not found.")
            if len(segments) == 4:
                status = query.get("status")
                if status is not None and status not in RUN_STATUSES:
                    raise _ApiError(400, f"Invalid status '{status}': expected one of {', '.join(RUN_STATUSES)}.")
                rows = data.agent_rows(agent_id, status)
                return self._page(rows, len(rows), f"runs:{agent_id}:{status}", query,
                                  lambda i: data.summary(int(rows[i])))
            if len(segments) == 5:
                position = data.position(segments[4])
                if position is None or data.agent_of(position) != agent_id:
                    raise _ApiError(404, f"Run '{segments[4]}' not found for agent '{agent_id}'.")
                raw = state.poisoned(f"get:{segments[4]}")
                if raw is not None:
                    return b'{"data":' + raw + b"}"
                return {"data": data.record(position)}
        if len(segments) == 4 and segments[:2] == ["v1", "conversations"] and segments[3] == "messages":
            return self._messages(segments[2], query)
        raise _ApiError(404, f"No route for GET {path}.")

    def _messages(self, conversation_id: str, query: dict[str, str]) -> dict[str, Any] | bytes:
        order = query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise _ApiError(400, f"Invalid order '{order}': expected asc or desc.")
        thread = self.server_state.data.messages(conversation_id) if hasattr(self.server_state.data, "messages") else None
        if thread is None:
            raise _ApiError(404, f"Conversation '{conversation_id}' not found.")
        items = thread if order == "asc" else thread[::-1]
        return self._page(items, len(items), f"messages:{conversation_id}:{order}", query, lambda i: items[i])

    def _escalations(self, query: dict[str, str]) -> dict[str, Any] | bytes:
        data = self.server_state.data
        if not query.get("workspace_id"):
            raise _ApiError(400, "workspace_id is required for GET /v1/escalations.")
        status = query.get("status")
        if status is not None and status not in ESCALATION_STATUSES:
            raise _ApiError(400, f"Invalid status '{status}': expected one of {', '.join(ESCALATION_STATUSES)}.")
        rows: Any = data.escalation_rows(status) if hasattr(data, "escalation_rows") else []
        return self._page(rows, len(rows), f"escalations:{status}", query,
                          lambda i: data.escalation(int(rows[i])))

    def _page(self, items: Any, total: int, scope: str, query: dict[str, str], item: Any) -> dict[str, Any] | bytes:
        state = self.server_state
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            raise _ApiError(400, f"Invalid limit '{raw_limit}': expected an integer from 1 to {MAX_LIMIT}.")
        offset = 0
        stale = state.pagination == "stale" and scope.startswith("runs:")
        if query.get("cursor") and not stale:
            decoded = state.decode_cursor(query["cursor"], scope)
            if decoded is None:
                raise _ApiError(400, "Invalid cursor: pass next_cursor from the previous page unchanged.")
            offset = decoded
        end = min(total, offset + limit)
        has_more = end < total
        mode = state.pagination if scope.startswith("runs:") else None
        start = offset
        if mode == "duplicate" and offset > 0:
            start = offset - 1
        elif mode == "stale":
            start, end, has_more = 0, min(total, limit), True
        page = [item(i) for i in range(start, end)]
        cursor = state.encode_cursor(scope, end) if has_more else None
        if mode == "loop" and has_more:
            cursor = query.get("cursor") or cursor  # the second page, again and again
        elif mode == "stale":
            cursor = state.encode_cursor(scope, 0) + secrets.token_hex(2)
        elif mode == "no_cursor":
            cursor = None
        elif mode == "empty_more" and offset > 0:
            page, has_more = [], True
        poisoned = [state.poisoned(f"list:{r.get('id')}") if isinstance(r, dict) else None for r in page]
        if not any(p is not None for p in poisoned):
            return {"data": page, "next_cursor": cursor, "has_more": has_more}
        texts = [p if p is not None else dumps(r) for p, r in zip(poisoned, page, strict=False)]
        return (b'{"data":[' + b",".join(texts) + b'],"next_cursor":' + dumps(cursor)
                + b',"has_more":' + dumps(has_more) + b"}")
