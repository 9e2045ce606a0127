"""The demo's escalations: an operator's outcome for every escalated run, from a generator of
their own (the runs' data does not change)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._detail import RunDetail
from ._random import iso, random_ids, seed_int

_OPERATORS = ("maria@property-team.example", "joao@property-team.example", "lucia@front-desk.example",
              "tom@finance.example")


GUEST_ASKS = ("Can I check in before 3 PM tomorrow?", "The door code you sent does not work.",
               "I was charged twice for my stay, can you refund one?", "Can we bring our dog?",
               "We are a group of 12, can you hold 8 rooms?", "The room was not ready when we arrived.")


def build_escalations(data: Any) -> dict[str, np.ndarray]:
    """Operator outcomes for every escalated run, from a generator of their own (the runs' data
    does not change): most are resolved some minutes to hours later, some dismissed (more often
    for each agent's first escalation reason: escalations that were not needed), a few reviewed,
    and the newest (and a few forgotten ones) still pending at ``end``."""
    runs = np.flatnonzero(data.disposition == "escalated")
    rng = np.random.default_rng([seed_int(data.seed), 0xE5C])
    m = len(runs)
    end_ms = int(data.end.timestamp() * 1000)
    opened = np.where(data.completed_ms[runs] >= 0, data.completed_ms[runs], data.created_ms[runs])
    delay = np.exp(rng.normal(np.log(45 * 60_000), 1.1, size=m)).astype(np.int64)
    reviewed = opened + delay
    first_reason = np.array([
        data.disposition_reason[i] == data.profiles[data.agent_ix[i]].escalation_reasons[0] for i in runs
    ], dtype=bool)
    draw = rng.random(m)
    dismiss_p = np.where(first_reason, 0.45, 0.12)
    status = np.where(draw < dismiss_p, "dismissed", np.where(draw < dismiss_p + 0.12, "reviewed", "resolved"))
    pending = (reviewed > end_ms) | (rng.random(m) < 0.03)
    status = np.where(pending, "pending", status).astype("<U9")
    return {"rows": np.arange(m), "run": runs, "status": status, "opened": opened,
            "reviewed": np.where(pending, -1, reviewed), "operator": rng.integers(0, len(_OPERATORS), size=m),
            "ask": rng.integers(0, len(GUEST_ASKS), size=m),
            "ids": random_ids(np.random.default_rng([seed_int(data.seed), 0xE5D]), m, "k5")}


def escalation_record(data: Any, k: int) -> dict[str, Any]:
    table = data.escalation_table()
    i = int(table["run"][k])
    done = table["reviewed"][k] >= 0
    reason = data.disposition_reason[i]
    return {
        "id": str(table["ids"][k]),
        "workspace_id": data.workspace_id,
        "type": "chat",
        "conversation_id": str(data.conversation[i]),
        "contact_id": str(data.contact[i]),
        "agent_run_id": str(data.ids[i]),
        "agent_id": data.agents[data.agent_ix[i]]["id"],
        "disposition": "escalated",
        "disposition_reason": reason,
        "status": str(table["status"][k]),
        "created_at": iso(int(table["opened"][k])),
        "reviewed_at": iso(int(table["reviewed"][k])) if done else None,
        "reviewed_by": _OPERATORS[int(table["operator"][k])] if done else None,
        "guest_message": GUEST_ASKS[int(table["ask"][k])],
        "proposed_response": RunDetail(data, i).response(),
        "request_for_additional_info": f"Please confirm: {reason}",
        "questions_for_operator": reason,
    }
