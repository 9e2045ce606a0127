"""The demo server's HTTP side: each request routed to its answer (the runs, a trace, the
escalations, a conversation's messages), with the faults, hostile pagination and rate limit a
:class:`DemoServer` was set up with."""

from __future__ import annotations

import math
import secrets
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..schema import ESCALATION_STATUSES, RUN_STATUSES
from ._records import dumps

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class RequestHandler(BaseHTTPRequestHandler):
    server_state: Any  # the DemoServer it answers for (set on a subclass per server)
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
        with self.server_state.answering():
            self._answer()

    def _answer(self) -> None:
        state = self.server_state
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}

        fault = state.take_fault(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                state.record("GET", path, query, None)
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
                state.record("GET", path, query, fault.status)
                self._send(fault.status, body, content_type=fault.content_type, headers=headers,
                           trickle=fault.trickle)
                return

        try:
            payload = self._route(path, query)
        except ApiError as exc:
            state.record("GET", path, query, exc.status)
            self._send(exc.status, dumps({"error": exc.message}), headers=exc.headers)
            return
        state.record("GET", path, query, 200)
        self._send(200, payload if isinstance(payload, bytes) else dumps(payload),
                   trickle=fault.trickle if fault is not None else 0.0)

    def _route(self, path: str, query: dict[str, str]) -> dict[str, Any] | bytes:
        state = self.server_state
        data = state.data
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not secrets.compare_digest(
            auth[len("Bearer "):].strip().encode(), state.token.encode()
        ):
            raise ApiError(401, "Missing or invalid API token. Send 'Authorization: Bearer <token>'.")
        workspace = query.get("workspace_id")
        if workspace is not None and workspace != state.workspace_id:
            raise ApiError(403, f"This token has no access to workspace '{workspace}'.")
        if state.limiter is not None:
            wait = state.limiter.admit(state.workspace_id)
            if wait is not None:
                # Whole seconds, as HTTP has it; a window scaled down for tests scales this too.
                retry_after = (str(max(1, math.ceil(wait))) if state.rate_window >= 60
                               else f"{math.ceil(wait * 100) / 100:.2f}")
                raise ApiError(
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
                raise ApiError(404, f"Agent '{agent_id}' not found.")
            if len(segments) == 4:
                status = query.get("status")
                if status is not None and status not in RUN_STATUSES:
                    raise ApiError(400, f"Invalid status '{status}': expected one of {', '.join(RUN_STATUSES)}.")
                rows = data.agent_rows(agent_id, status)
                return self._page(rows, len(rows), f"runs:{agent_id}:{status}", query,
                                  lambda i: data.summary(int(rows[i])))
            if len(segments) == 5:
                position = data.position(segments[4])
                if position is None or data.agent_of(position) != agent_id:
                    raise ApiError(404, f"Run '{segments[4]}' not found for agent '{agent_id}'.")
                raw = state.poisoned(f"get:{segments[4]}")
                if raw is not None:
                    return b'{"data":' + raw + b"}"
                return {"data": data.record(position)}
        if len(segments) == 4 and segments[:2] == ["v1", "conversations"] and segments[3] == "messages":
            return self._messages(segments[2], query)
        raise ApiError(404, f"No route for GET {path}.")

    def _messages(self, conversation_id: str, query: dict[str, str]) -> dict[str, Any] | bytes:
        order = query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"Invalid order '{order}': expected asc or desc.")
        thread = self.server_state.data.messages(conversation_id) if hasattr(self.server_state.data, "messages") else None
        if thread is None:
            raise ApiError(404, f"Conversation '{conversation_id}' not found.")
        items = thread if order == "asc" else thread[::-1]
        return self._page(items, len(items), f"messages:{conversation_id}:{order}", query, lambda i: items[i])

    def _escalations(self, query: dict[str, str]) -> dict[str, Any] | bytes:
        data = self.server_state.data
        if not query.get("workspace_id"):
            raise ApiError(400, "workspace_id is required for GET /v1/escalations.")
        status = query.get("status")
        if status is not None and status not in ESCALATION_STATUSES:
            raise ApiError(400, f"Invalid status '{status}': expected one of {', '.join(ESCALATION_STATUSES)}.")
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
            raise ApiError(400, f"Invalid limit '{raw_limit}': expected an integer from 1 to {MAX_LIMIT}.")
        offset = 0
        stale = state.pagination == "stale" and scope.startswith("runs:")
        if query.get("cursor") and not stale:
            decoded = state.decode_cursor(query["cursor"], scope)
            if decoded is None:
                raise ApiError(400, "Invalid cursor: pass next_cursor from the previous page unchanged.")
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
