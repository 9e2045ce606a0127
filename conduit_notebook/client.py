"""The Conduit API client: authenticated, paced, retrying, thread-safe.

>>> from conduit_notebook import ConduitClient
>>> with ConduitClient() as client:                 # token from CONDUIT_API_TOKEN
...     agents = list(client.iter_agents())
...     runs = list(client.iter_runs(agents[0]["id"], status="failed"))
...     run = client.get_run(agents[0]["id"], runs[0]["id"])

The breaker (many 429s or 5xx answers in a row) is :mod:`.retry`'s; reading answers, the errors
of failed requests and pages that must add up are :mod:`.wire`'s.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .errors import (
    APIStatusError,
    AuthenticationError,
)
from .pacing import DEFAULT_REQUESTS_PER_MINUTE, PACE_FILE, PaceUnavailable, RateLimiter, SharedPace, retry_delay, should_retry
from .paths import default_cache_path
from .retry import DEFAULT_RATE_LIMIT_PATIENCE, DEFAULT_SERVER_ERROR_PATIENCE, RATE_LIMIT_COOLDOWN, SERVER_ERROR_COOLDOWN, Breaker
from .schema import ESCALATION_STATUSES, RUN_STATUSES
from .wire import BearerAuth, check_token, decode_json, describe_body, final_error, pages, require_id, validate_status

__all__ = ["ConduitClient", "ClientStats", "RUN_STATUSES", "RATE_LIMIT_COOLDOWN", "SERVER_ERROR_COOLDOWN"]

logger = logging.getLogger("conduit_notebook")

DEFAULT_BASE_URL = "https://api.conduit.ai"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
#: A request's whole answer (headers and body) must arrive within this many times ``timeout``;
#: ``timeout`` alone bounds each read, so a server trickling a byte a second never times out.
DEADLINE_FACTOR = 2.0
#: The largest page the API serves; 100 summaries cost one request.
PAGE_SIZE = 100
TOKEN_ENV = "CONDUIT_API_TOKEN"
BASE_URL_ENV = "CONDUIT_BASE_URL"
WORKSPACE_ENV = "CONDUIT_WORKSPACE_ID"


@dataclass
class ClientStats:
    """What a client has done so far: HTTP requests sent (retries included), retries, 429s seen,
    and seconds spent waiting for the pace or for a retry."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class ConduitClient:
    """A client for the Conduit API's agent and run endpoints.

    Parameters
    ----------
    token:
        An API read token. Defaults to the ``CONDUIT_API_TOKEN`` environment variable. A client
        can be built without one; its first request then raises :class:`AuthenticationError`.
    base_url:
        Defaults to ``CONDUIT_BASE_URL``, then ``https://api.conduit.ai``.
    workspace_id:
        Sent as ``workspace_id`` on every request when set. Defaults to ``CONDUIT_WORKSPACE_ID``.
    requests_per_minute:
        The pace, shared by every thread using this client. Conduit's default limit is 120;
        set your workspace's own if it has a higher one.
    shared_pace:
        True (default): share the pace with every process of the same workspace on this machine,
        through ``pace.sqlite`` beside the run cache (:func:`fetch_runs` uses the file beside
        the cache it opens); a path for another file; False to pace this client alone.
    timeout:
        Seconds to wait for each response.
    max_retries:
        Retries after a 429, a 5xx, a timeout or a dropped connection (400, 401, 403 and 404 are
        never retried).
    rate_limit_patience, server_error_patience:
        After this many 429s (20), or 5xx answers (30), in a row over every thread, the client
        stops asking for a while (60 s, 30 s) and raises at once, so that a workspace out of
        budget or an API that is down costs a few dozen requests, not every retry of every run.
    http_client:
        An ``httpx.Client`` to send requests with (for proxies, custom transports or tests). The
        caller keeps ownership: :meth:`close` does not close it.
    """

    #: The local demo server this client talks to (set by :func:`conduit_notebook.demo.client`),
    #: else None.
    demo_server: Any = None
    #: Where ``fetch_runs`` and ``fetch_messages`` keep this client's runs when given no
    #: ``cache=``: None for the default cache; a demo client's own temporary file, so that demo
    #: workspaces (gone when Python exits) never fill the user's cache.
    cache_path: Any = None

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        workspace_id: str | None = None,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        rate_limit_patience: int = DEFAULT_RATE_LIMIT_PATIENCE,
        server_error_patience: int = DEFAULT_SERVER_ERROR_PATIENCE,
        deadline: float | None = None,
        http_client: httpx.Client | None = None,
        shared_pace: bool | str | os.PathLike[str] = True,
    ) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a string, got {type(token).__name__}")
        token = check_token(token) if token else None
        self._auth = BearerAuth(token) if token else None
        base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.workspace_id = workspace_id or os.environ.get(WORKSPACE_ENV) or None
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        if not isinstance(rate_limit_patience, int) or rate_limit_patience < 1:
            raise ValueError(f"rate_limit_patience must be a whole number >= 1, got {rate_limit_patience!r}")
        if isinstance(server_error_patience, bool) or not isinstance(server_error_patience, int) \
                or server_error_patience < 1:
            raise ValueError(f"server_error_patience must be a whole number >= 1, got {server_error_patience!r}")
        if deadline is not None and (not isinstance(deadline, (int, float)) or deadline <= 0):
            raise ValueError(f"deadline must be a positive number of seconds or None, got {deadline!r}")
        self.timeout = float(timeout)
        self.deadline = float(deadline) if deadline is not None else DEADLINE_FACTOR * self.timeout
        self.max_retries = max_retries
        self.breaker = Breaker(rate_limit_patience, server_error_patience)
        self.limiter = RateLimiter(requests_per_minute)
        if not isinstance(shared_pace, (bool, str, os.PathLike)):
            raise ValueError(f"shared_pace must be True, False or a file path; got {shared_pace!r}")
        self._pace_setting = shared_pace
        self._pace_ready = shared_pace is False
        self._pace_lock = threading.Lock()
        self.stats = ClientStats()
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            headers={"Accept": "application/json", "User-Agent": "conduit-notebook/0.1"},
        )

    @property
    def rate_limit_patience(self) -> int:
        return self.breaker.rate_limit_patience

    @rate_limit_patience.setter
    def rate_limit_patience(self, value: int) -> None:
        self.breaker.rate_limit_patience = value

    @property
    def server_error_patience(self) -> int:
        return self.breaker.server_error_patience

    @server_error_patience.setter
    def server_error_patience(self, value: int) -> None:
        self.breaker.server_error_patience = value

    # -- plumbing ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"ConduitClient(base_url={self.base_url!r}, workspace_id={self.workspace_id!r}, "
            f"requests_per_minute={self.limiter.limit:g}, "
            f"token={'set' if self._auth else 'missing'})"
        )

    __str__ = __repr__

    def close(self) -> None:
        """Close the connections this client opened."""
        if self._owns_http:
            self._http.close()

    def share_pace_beside(self, path: str | os.PathLike[str]) -> None:
        """Share the pace through ``pace.sqlite`` in the folder of ``path`` (a cache file), unless
        this client was given its own ``shared_pace`` or has sent a request already."""
        with self._pace_lock:
            if self._pace_setting is True and not self._pace_ready:
                self._pace_setting = Path(path).expanduser().parent / PACE_FILE

    def _ensure_pace(self) -> None:
        if self._pace_ready:
            return
        with self._pace_lock:
            if self._pace_ready:
                return
            setting = self._pace_setting
            if setting is False:  # not shared (set ready in __init__; here for the type checker)
                return
            if setting is True:

                path: str | os.PathLike[str] = default_cache_path().parent / PACE_FILE
            else:
                path = setting
            try:
                self.limiter.share(SharedPace(path), f"{self.base_url}#{self.workspace_id or ''}")
            except (OSError, sqlite3.Error, PaceUnavailable) as exc:
                # Pacing alone is still correct for this process; say why it is not shared.
                logger.warning("pace not shared with other processes (%s: %s)", path, exc)
            self._pace_ready = True  # only now: other threads wait on the lock until it is set up

    def __enter__(self) -> ConduitClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, url: str, query: dict[str, Any]) -> tuple[httpx.Response, bytes]:
        """One GET whose whole answer must arrive before the deadline."""
        deadline = time.monotonic() + self.deadline
        with self._http.stream("GET", url, params=query, auth=self._auth, timeout=self.timeout) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"answer not complete after {self.deadline:g} s",
                                            request=response.request)
        content = b"".join(chunks)
        # A plain response over the decoded bytes, for the error factory and _describe_body.
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=content,
                              request=response.request), content

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` with pacing and retries; return the decoded JSON body.

        Each attempt is sent within the pace (:meth:`_send_paced`); a 2xx answer is read
        (:meth:`_read`); a retryable failure waits (:meth:`_wait_to_retry`) and goes again, up to
        ``max_retries``; what is left is raised as the exception a user acts on
        (:meth:`_final_error`)."""
        endpoint = f"GET {path}"
        url, query = self._prepare(endpoint, path, params)
        attempt = 0
        while True:
            sent_at, response, content, failure = self._send_paced(endpoint, url, query)
            if response is not None and response.status_code < 400:
                return self._read(endpoint, response, content, attempts=attempt + 1)
            delay = retry_delay(attempt, response.headers if response is not None else None)
            if response is not None and self.breaker.note_answer(response.status_code, delay):
                if response.status_code == 429:
                    self.stats.add(rate_limited=1)
                raise self.breaker.error(endpoint)
            retryable = response is None or should_retry(response.status_code)
            if not retryable or attempt >= self.max_retries:
                if response is not None and response.status_code == 429:
                    self.stats.add(rate_limited=1)
                raise final_error(endpoint, response, failure, attempts=attempt + 1, timeout=self.timeout,
                                  deadline=self.deadline, base_url=self.base_url) from failure
            self._wait_to_retry(endpoint, response, failure, attempt, delay, sent_at)
            attempt += 1

    def _prepare(self, endpoint: str, path: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The URL and query of a request (with the workspace); raises when there is no token."""
        if self._auth is None:
            raise AuthenticationError(
                f"{endpoint} was not sent: no API token. Set the CONDUIT_API_TOKEN environment "
                "variable or pass token=... to ConduitClient.",
                status_code=None,
                endpoint=endpoint,
                attempts=0,
            )
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if self.workspace_id:
            query["workspace_id"] = self.workspace_id
        self._ensure_pace()
        return self.base_url + path, query

    def _send_paced(self, endpoint: str, url: str, query: dict[str, Any]
                    ) -> tuple[float, httpx.Response | None, bytes, httpx.TransportError | None]:
        """One attempt, in its turn: (when it was sent, the response and its body, or the
        transport failure, timeouts included)."""
        self.breaker.check(endpoint)
        self.stats.add(waited_s=self.limiter.acquire())
        self.breaker.check(endpoint)
        self.stats.add(requests=1)
        sent_at = self.limiter.now()
        try:
            response, content = self._send(url, query)
        except httpx.TransportError as exc:
            return sent_at, None, b"", exc
        return sent_at, response, content, None

    def _read(self, endpoint: str, response: httpx.Response, content: bytes, *, attempts: int) -> Any:
        """The decoded JSON of a 2xx answer; a redirect or a body that is not JSON raises."""
        if response.status_code >= 300:
            location = response.headers.get("Location") or "no Location header"
            raise APIStatusError(
                f"{endpoint} answered {response.status_code}, a redirect to {location}. The "
                f"client does not follow redirects (the token would go along): check base_url "
                f"({self.base_url}).",
                status_code=response.status_code, endpoint=endpoint,
                api_message=f"Location: {location}", attempts=attempts,
            )
        self.limiter.record_success()
        self.breaker.note_answer(response.status_code, 0.0)
        try:
            return decode_json(content)
        except ValueError as exc:
            raise APIStatusError(
                f"{endpoint} returned {response.status_code} with a body that cannot be read "
                f"as JSON ({exc}; {describe_body(response)}). Check base_url "
                f"({self.base_url}): it should point at the Conduit API.",
                status_code=response.status_code,
                endpoint=endpoint,
                attempts=attempts,
            ) from None

    def _wait_to_retry(self, endpoint: str, response: httpx.Response | None, failure: Exception | None,
                       attempt: int, delay: float, sent_at: float) -> None:
        """Wait ``delay`` before the next attempt: after a 429 every thread of the client
        waits, after anything else only this one."""
        if response is not None and response.status_code == 429:
            # Every thread waits, not just this one: the workspace's window is full.
            self.stats.add(rate_limited=1)
            self.limiter.pause(delay, sent_at=sent_at)
        else:
            time.sleep(delay)
            self.stats.add(waited_s=delay)
        what = f"{response.status_code}" if response is not None else type(failure).__name__
        logger.info("%s: %s, retry %d in %.2f s", endpoint, what, attempt + 1, delay)
        self.stats.add(retries=1)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``data`` lists (:func:`conduit_notebook.wire.pages`)."""
        return pages(self._get, path, params)

    # -- endpoints --------------------------------------------------------------------------

    def iter_agents(self, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every agent of the workspace, as the API's JSON objects, page after page."""
        for page in self._pages("/v1/agents", {"limit": page_size}):
            yield from page

    def iter_run_pages(
        self, agent_id: str, *, status: str | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """The run summaries of one agent, newest first, one list per page (one request each).

        Stop iterating to stop paging: no further request is made.
        """
        agent_id = require_id(agent_id, "agent_id")
        validate_status(status)
        path = f"/v1/agents/{quote(agent_id, safe='')}/runs"
        yield from self._pages(path, {"limit": page_size, "status": status})

    def iter_runs(
        self, agent_id: str, *, status: str | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """The run summaries of one agent, newest first, across pages of ``page_size`` (1..100)."""
        for page in self.iter_run_pages(agent_id, status=status, page_size=page_size):
            yield from page

    def iter_escalations(self, *, status: str | None = None, workspace_id: str | None = None,
                         page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """The workspace's chat escalations (``GET /v1/escalations``), page after page.

        ``status``: ``pending``, ``reviewed``, ``resolved`` or ``dismissed``. The endpoint needs a
        workspace: ``workspace_id`` or the client's own.
        """
        if status is not None and status not in ESCALATION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ESCALATION_STATUSES)}, got {status!r}")
        workspace = workspace_id or self.workspace_id
        if not workspace:
            raise ValueError("GET /v1/escalations needs a workspace_id: pass workspace_id=..., "
                             "ConduitClient(workspace_id=...) or set CONDUIT_WORKSPACE_ID")
        for page in self._pages("/v1/escalations", {"limit": page_size, "status": status, "workspace_id": workspace}):
            yield from page

    def iter_message_pages(self, conversation_id: str, *, order: str = "asc",
                           page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """The messages of one guest conversation (``GET /v1/conversations/{id}/messages``),
        one list per page of up to ``page_size`` (1..100): a thread of up to 100 messages is one
        request. ``order``: ``asc`` (oldest first, the default) or ``desc``."""
        conversation_id = require_id(conversation_id, "conversation_id")
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        path = f"/v1/conversations/{quote(conversation_id, safe='')}/messages"
        yield from self._pages(path, {"limit": page_size, "order": order})

    def get_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every message of one guest conversation, oldest first (one request per 100)."""
        return [m for page in self.iter_message_pages(conversation_id) for m in page]

    def get_run(self, agent_id: str, run_id: str) -> dict[str, Any]:
        """One run with its full trace (response, reflection, tool_trace).

        ``run_id`` is the run's ``id`` field (``ar77...``), not its ``run_id`` field. Safe to
        call from several threads at once; the pace is shared.
        """
        agent_id = require_id(agent_id, "agent_id")
        run_id = require_id(run_id, "run_id")
        path = f"/v1/agents/{quote(agent_id, safe='')}/runs/{quote(run_id, safe='')}"
        body = self._get(path)
        record = body.get("data", body) if isinstance(body, dict) else body
        if not isinstance(record, dict):
            shape = "null" if record is None else f"a JSON {type(record).__name__}"
            raise APIStatusError(
                f"GET {path} answered 200 with {shape} instead of a run object; the run is "
                "listed in errors. Run again later.",
                status_code=200, endpoint=f"GET {path}", api_message=f"data is {shape}",
            )
        return record
