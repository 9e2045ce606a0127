"""Exceptions raised by conduit-notebook.

Every error the toolkit raises about the Conduit API derives from one root::

    ConduitError
    ├── APIError                      the API answered, with an error
    │   ├── APIStatusError            an error status (5xx after retries, 3xx, ...); the base of
    │   │   ├── BadRequestError       400: invalid parameters (not retried)
    │   │   ├── AuthenticationError   401: missing or invalid token (not retried)
    │   │   ├── PermissionDeniedError 403: no access to the workspace (not retried)
    │   │   ├── NotFoundError         404: no such agent, run or conversation (not retried)
    │   │   │   └── UnknownAgentError fetch_runs: no agent with that id or name
    │   │   └── RateLimitError        429 after every retry was spent, or too many in a row
    │   └── PaginationError           the pages do not add up (a cursor that repeats, ...)
    ├── APIConnectionError            no answer: refused, dropped, DNS (after retries)
    │   └── APITimeoutError           no answer in time (after retries)
    └── CacheError                    the local cache file cannot be read or written

Messages say what failed (the endpoint, the agent or run) and what to do next. They never
contain the API token.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "ConduitError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnknownAgentError",
]


class ConduitError(Exception):
    """Root of every error about the Conduit API."""


class APIError(ConduitError):
    """The API answered with an error status.

    Attributes: ``status_code``, ``endpoint`` (``"GET /v1/agents/ag1/runs"``), ``api_message``
    (the body's ``error`` field, or a short excerpt of a body that was not JSON), ``attempts``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
        api_message: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.endpoint = endpoint
        self.api_message = api_message
        self.attempts = attempts


class APIStatusError(APIError):
    """An error status: the base of the classes for the statuses a user acts on differently
    (as in httpx and openai-python), and itself any other status, typically a 5xx that
    persisted through the retries. ``except APIStatusError`` catches a 404 too."""


class BadRequestError(APIStatusError):
    """400: the request's parameters were refused."""


class AuthenticationError(APIStatusError):
    """401: the token is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the token has no access to the requested workspace."""


class NotFoundError(APIStatusError):
    """404: no such agent or run (or, from ``fetch_runs``, no agent of that name)."""


class UnknownAgentError(NotFoundError):
    """``fetch_runs(agents=...)`` named an agent the workspace does not have (a bad argument:
    the command line exits 2). The message lists the agents there are."""


class RateLimitError(APIStatusError):
    """429 on every attempt: the workspace's rate limit is lower than the client's pace."""


class PaginationError(APIError):
    """The API's pages do not add up: a ``next_cursor`` seen before, ``has_more`` without a
    cursor, an empty page that says there is more, or pages that only repeat runs. The listing
    stops there; what was listed before is kept."""


class CacheError(ConduitError):
    """The local cache file is damaged, from a newer version, not this toolkit's, locked by
    another process, or cannot be written. The message names the file and what to do.
    ``reason``: ``damaged``, ``newer``, ``foreign`` (not a conduit-notebook cache: never
    changed or deleted), ``locked``, ``disk_full`` or ``unwritable``."""

    def __init__(self, message: str, *, path: Path | None = None, reason: str = "damaged") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


class APIConnectionError(ConduitError):
    """The API could not be reached, or dropped the connection, on every attempt."""

    def __init__(self, message: str, *, endpoint: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.attempts = attempts
        self.status_code = None


class APITimeoutError(APIConnectionError):
    """The API did not answer within the client's ``timeout`` on every attempt."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

_NEXT_STEPS: dict[int, str] = {
    400: "Check the parameters (limit is 1..100; status is accepted, running, completed or failed).",
    401: (
        "Set CONDUIT_API_TOKEN (or pass token=...) to a valid read token from the workspace's "
        "Settings > API Tokens."
    ),
    403: (
        "The token has no access to this workspace: check workspace_id (or CONDUIT_WORKSPACE_ID), "
        "or use a token created in that workspace."
    ),
    404: "Check the agent id (client.iter_agents() lists them) and the run id (the run's 'id', not 'run_id').",
    429: (
        "The workspace's rate limit is lower than requests_per_minute; lower requests_per_minute "
        "or try again in a minute."
    ),
}


def error_for_status(
    status_code: int,
    *,
    endpoint: str,
    api_message: str | None,
    attempts: int,
) -> APIError:
    """Build the exception for an error status, with a message that says what to do next."""
    cls = _STATUS_ERRORS.get(status_code, APIStatusError)
    detail = f": {api_message}" if api_message else ""
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if status_code == 404 and "/conversations/" in endpoint:
        next_step = ("Check the conversation id (a run's conversation_id); a conversation of another "
                     "workspace is not found either.")
    elif status_code in _NEXT_STEPS:
        next_step = _NEXT_STEPS[status_code]
    elif status_code >= 500:
        next_step = "The Conduit API is having trouble; try again later (the client already retried)."
    else:
        next_step = "See the API's message above."
    message = f"{endpoint} returned {status_code}{tried}{detail}. {next_step}"
    return cls(
        message,
        status_code=status_code,
        endpoint=endpoint,
        api_message=api_message,
        attempts=attempts,
    )
