"""What goes over the wire to and from the Conduit API, apart from sending it (:mod:`.client`):
the token's header, ids and statuses checked before a request, JSON bodies read, the error a
failed request raises, and pages that must add up."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx

from .errors import APIConnectionError, APITimeoutError, ConduitError, PaginationError, error_for_status
from .schema import RUN_STATUSES

__all__ = ["BearerAuth", "check_token", "decode_json", "describe_body", "final_error", "page_error", "pages",
           "require_id", "validate_status"]


def validate_status(status: str | None) -> str | None:
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, or None; got {status!r}")
    return status


def require_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_token(token: str) -> str:
    """The token without surrounding whitespace; one with whitespace or control characters
    inside is refused (it would break the header), without ever echoing it."""
    token = token.strip()
    for position, char in enumerate(token):
        if char.isspace() or unicodedata.category(char)[0] == "C" or not char.isprintable():
            raise ValueError(
                f"token must be printable characters without spaces; it has a "
                f"{'space' if char.isspace() else 'control character'} at position {position} "
                "(was it pasted with a line break?). Copy the token again from Settings > API Tokens."
            )
    return token


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer ...`` to each request; the token stays inside this object
    (not in a local variable of a traceback, not in its repr)."""

    def __init__(self, token: str) -> None:
        self.__token = token

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self.__token
        yield request


def decode_json(content: bytes) -> Any:
    """JSON body -> Python; ValueError for anything unreadable (too deep, bad UTF-8, not JSON)."""
    try:
        return json.loads(content)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply to read") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from exc


def describe_body(response: httpx.Response) -> str | None:
    """The API's ``error`` field, or a short, readable excerpt of a body that is not JSON."""
    try:
        body = decode_json(response.content)
    except ValueError:
        text = response.text or ""
        title = re.search(r"<title[^>]*>(.*?)</title>", text, flags=re.I | re.S)
        if title:
            return f"non-JSON body (HTML page: {' '.join(title.group(1).split())!r})"
        excerpt = " ".join(text.split())[:200]
        return f"non-JSON body ({excerpt!r})" if excerpt else None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message") or error
        if error:
            return str(error)
    return None


def final_error(endpoint: str, response: httpx.Response | None, failure: Exception | None,
                *, attempts: int, timeout: float, deadline: float, base_url: str) -> ConduitError:
    """The exception for a request that failed for good: by status, or by transport failure."""
    if response is not None:
        return error_for_status(
            response.status_code,
            endpoint=endpoint,
            api_message=describe_body(response),
            attempts=attempts,
        )
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(failure, httpx.TimeoutException):
        return APITimeoutError(
            f"{endpoint} got no complete answer within {timeout:g} s per read and "
            f"{deadline:g} s in all{tried}. The API may be slow or unreachable: try again, "
            "or raise timeout=.",
            endpoint=endpoint,
            attempts=attempts,
        )
    return APIConnectionError(
        f"{endpoint} failed{tried}: could not talk to {base_url} "
        f"({type(failure).__name__}: {failure}). Check the network and base_url.",
        endpoint=endpoint,
        attempts=attempts,
    )


def pages(get: Callable[[str, dict[str, Any]], Any], path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``data`` lists; raises :class:`PaginationError` (after the good pages) when
    the server's paging does not add up, instead of looping or stopping quietly."""
    endpoint = f"GET {path}"
    cursor = None
    cursors: set[str] = set()
    ids: set[Any] = set()
    number = 0
    while True:
        body = get(path, {**params, "cursor": cursor})
        number += 1
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            shape = (f"data is {type(body.get('data')).__name__}" if isinstance(body, dict)
                     else f"the body is a JSON {type(body).__name__}")
            raise page_error(endpoint, number, f"a page without a data list ({shape})")
        data = body["data"]
        cursor = body.get("next_cursor")
        has_more = body.get("has_more") is True
        page_ids = {item.get("id") for item in data
                    if isinstance(item, dict) and isinstance(item.get("id"), str)}
        repeats = bool(page_ids) and page_ids <= ids
        ids |= page_ids
        if repeats:
            raise page_error(endpoint, number, "a page of runs that were all listed before "
                                   "(the cursor does not move on)")
        yield data
        if not has_more:
            return
        if not cursor or not isinstance(cursor, str):
            raise page_error(endpoint, number, "has_more: true without a next_cursor")
        if not data:
            raise page_error(endpoint, number, "an empty page with has_more: true")
        if cursor in cursors:
            raise page_error(endpoint, number, "a next_cursor it had sent before")
        cursors.add(cursor)

def page_error(endpoint: str, number: int, what: str) -> PaginationError:
    return PaginationError(
        f"{endpoint}: page {number} has {what}; listing stopped there, the pages before are "
        "kept. The API's paging is inconsistent: run again later.",
        endpoint=endpoint, api_message=what, attempts=number,
    )
