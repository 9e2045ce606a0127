"""Records served as they are (:class:`RecordSet`, for tests that bring their own JSON) and the
server's JSON encoding."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np

from ..schema import DETAIL_FIELDS


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class RecordSet:
    """Fixed agents and full run records, served as they are (for examples and schema-drift tests).

    Runs are listed newest first per agent by ``created_at``; the list endpoint leaves out the
    detail fields (``conduit_notebook.schema.DETAIL_FIELDS``), the get endpoint returns the record unchanged.
    """

    def __init__(self, agents: list[dict[str, Any]], runs: list[dict[str, Any]],
                 escalations: list[dict[str, Any]] | None = None,
                 messages: list[dict[str, Any]] | None = None) -> None:
        self.escalation_records = [dict(e) for e in escalations or []]
        self.message_records = [dict(m) if isinstance(m, dict) else m for m in messages or []]
        self.agents = [dict(a) for a in agents]
        self.workspace_id = self.agents[0].get("workspace_id", "") if self.agents else ""
        self.runs = [dict(r) for r in runs]
        self.n = len(self.runs)

        def newest_first(i: int) -> float:
            stamp = self.runs[i].get("created_at")
            try:
                return -datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
            except ValueError:
                return 0.0

        self.by_agent = {
            a["id"]: np.array(
                sorted((i for i, r in enumerate(self.runs) if r.get("agent_id") == a["id"]),
                       key=newest_first),
                dtype=np.int64,
            )
            for a in self.agents
        }
        self._position = {str(r["id"]): i for i, r in enumerate(self.runs)}

    def position(self, run_id: str) -> int | None:
        return self._position.get(run_id)

    def agent_of(self, i: int) -> str | None:
        return self.runs[i].get("agent_id")

    def agent_rows(self, agent_id: str, status: str | None = None) -> np.ndarray:
        rows = self.by_agent[agent_id]
        if status is None:
            return rows
        return np.array([i for i in rows if self.runs[i].get("status") == status], dtype=np.int64)

    def summary(self, i: int) -> dict[str, Any]:
        return {k: v for k, v in self.runs[i].items() if k not in DETAIL_FIELDS}

    def record(self, i: int) -> dict[str, Any]:
        return dict(self.runs[i])

    def escalation_rows(self, status: str | None = None) -> np.ndarray:
        return np.array([k for k, e in enumerate(self.escalation_records)
                         if status is None or e.get("status") == status], dtype=np.int64)

    def escalation(self, k: int) -> dict[str, Any]:
        return dict(self.escalation_records[k])

    def messages(self, conversation_id: str) -> list[dict[str, Any]] | None:
        """The given messages of that conversation, as given (a record that is not an object is
        served too: tests send bad records); None when neither a run nor a message has it."""
        found = [m for m in self.message_records
                 if not isinstance(m, dict) or m.get("conversation_id") == conversation_id]
        if any(isinstance(m, dict) for m in found) or any(r.get("conversation_id") == conversation_id
                                                         for r in self.runs):
            return found
        return None
