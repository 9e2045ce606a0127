"""Small hand-made runs for checking the analysis by hand."""

from __future__ import annotations

from conduit_notebook import runs_frame, tool_calls_frame


def run(i, agent, status="completed", disposition="resolved", created="2026-11-10T10:00:00Z",
        duration_ms=1000, tokens=(100, 10), cost=0.01, tools=()):
    return {
        "id": f"ar{i}", "agent_id": f"ag_{agent}", "status": status, "disposition": disposition,
        "created_at": created, "duration_ms": duration_ms,
        "token_usage": None if tokens is None else {"input": tokens[0], "output": tokens[1]},
        "total_cost": cost,
        "tool_trace": [{"name": t, "input": {}, "output": {}} for t in tools],
    }


RECORDS = [
    run(1, "a", duration_ms=1000, tokens=(100, 10), cost=0.010, tools=("lookup", "reply")),
    run(2, "a", duration_ms=2000, tokens=(200, 20), cost=0.020, tools=("lookup",)),
    run(3, "a", disposition="escalated", duration_ms=4000, tokens=(400, 40), cost=0.040,
        created="2026-11-11T09:00:00Z", tools=("lookup", "escalate")),
    run(4, "a", status="failed", disposition=None, duration_ms=30000, tokens=None, cost=None,
        created="2026-11-11T12:00:00Z"),
    run(5, "b", duration_ms=3000, tokens=(300, 30), cost=0.090, tools=("reply",)),
    run(6, "b", status="running", disposition=None, duration_ms=None, tokens=None, cost=None,
        created="2026-11-12T08:00:00Z"),
]
NAMES = {"ag_a": "Alpha", "ag_b": "Beta"}


def frames():
    return runs_frame(RECORDS, agent_names=NAMES), tool_calls_frame(RECORDS)
