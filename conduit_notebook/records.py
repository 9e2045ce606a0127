"""Checks on API records where they enter: what cannot be framed or cached is turned away with a
reason (it becomes a row of ``errors``), and a run listed twice is kept once, the newest copy.

>>> record_problem({"id": None})
'its id is null, not a string'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["dedupe", "record_problem"]

_INT64 = 2**63
# Numbers that become nullable-integer or float columns.
_NUMBERS = ("duration_ms", "total_cost")
_USAGE = ("input", "output")


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "list", str: "string",
                                         bool: "boolean"}.get(type(value), type(value).__name__)


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64


def record_problem(record: Any) -> str | None:
    """Why a run record cannot be framed or cached, or None if it can.

    Turned away: a record that is not a JSON object; an id or agent_id that is missing, null or
    not a string; a count or cost beyond a 64-bit integer, or not finite (``Infinity``); text with a broken character (a lone
    surrogate, as when an answer was cut inside an emoji); JSON nested too deeply to write back.
    """
    if not isinstance(record, Mapping):
        return f"the record is a JSON {_kind(record)}, not an object"
    for key in ("id", "agent_id"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            state = "missing" if key not in record else ("empty" if value == "" else _kind(value))
            return f"its {key} is {state}, not a string" if state != "empty" else f"its {key} is empty"
    usage = record.get("token_usage")
    numbers = [(k, record.get(k)) for k in _NUMBERS]
    if isinstance(usage, Mapping):
        numbers += [(f"token_usage.{k}", usage.get(k)) for k in _USAGE]
    for key, value in numbers:
        if _too_big(value):
            return f"its {key} is {value}, beyond a 64-bit integer"
        if isinstance(value, float) and not math.isfinite(value):
            return f"its {key} is {value}, not a finite number (Infinity and NaN are not JSON)"
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        return "it is JSON nested too deeply to store"
    except UnicodeEncodeError:
        return "its text has a broken character (a lone surrogate: an answer cut inside an emoji?)"
    except (TypeError, ValueError) as exc:  # pragma: no cover - JSON from the wire always dumps
        return f"it cannot be written back as JSON ({exc})"
    return None


R = TypeVar("R", bound=Mapping[str, Any])


def dedupe(records: Iterable[R]) -> list[R]:
    """Records by id, each once: the last copy (the newest seen) in the place of the first."""
    by_id: dict[Any, R] = {}
    for record in records:
        by_id[record.get("id")] = record
    return list(by_id.values())
