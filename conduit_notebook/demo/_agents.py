"""The demo workspace's agents: one record per agent, as ``GET /v1/agents`` lists them, each
from its profile, with its triggers and guardrails."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ._profiles import PROFILES, AgentProfile
from ._random import iso, random_ids


def agent_records(rng: np.random.Generator, count: int, *, workspace_id: str, end: datetime,
                  days: int) -> tuple[list[AgentProfile], list[dict[str, Any]]]:
    """``count`` agents (the profiles in turn, numbered after the first round) and their
    profiles; ids drawn from ``rng`` in the order the data has always drawn them."""
    profiles: list[AgentProfile] = []
    agents: list[dict[str, Any]] = []
    agent_ids = random_ids(rng, count, "ag")
    created = end - timedelta(days=days + 30)
    for i in range(count):
        base = PROFILES[i % len(PROFILES)]
        name = base.name if i < len(PROFILES) else f"{base.name} {i // len(PROFILES) + 1}"
        profiles.append(base)
        trigger_ids = random_ids(rng, 2, "tr")
        stamp = iso(int((created + timedelta(hours=7 * i)).timestamp() * 1000))
        updated = iso(int((end - timedelta(days=3 + i)).timestamp() * 1000))
        triggers = _triggers(i, name, [str(x) for x in trigger_ids], workspace_id, stamp, updated)
        agents.append(_agent(i, name, base, str(agent_ids[i]), workspace_id, triggers,
                             [str(x) for x in random_ids(rng, 1, "ks")], stamp, updated))
    return profiles, agents


def _triggers(i: int, name: str, ids: list[str], workspace_id: str, stamp: str, updated: str) -> list[dict[str, Any]]:
    triggers = [
        {
            "id": ids[0],
            "workspace_id": workspace_id,
            "name": f"{name} Inbox",
            "description": f"Runs for {name.lower()} inbox messages.",
            "type": "message",
            "config": {"inboxTypeId": "guest", "channels": ["unthreaded_email", "whatsapp"]},
            "enabled": True,
            "created_at": stamp,
            "updated_at": updated,
        }
    ]
    if i % 2 == 0:
        triggers.append(
            {
                "id": ids[1],
                "workspace_id": workspace_id,
                "name": f"{name} Follow-up",
                "description": "Runs on a schedule for open conversations.",
                "type": "schedule",
                "config": {"cron": "0 9 * * *"},
                "enabled": i != 2,
                "created_at": stamp,
                "updated_at": updated,
            }
        )
    return triggers


def _agent(i: int, name: str, base: AgentProfile, agent_id: str, workspace_id: str, triggers: list[dict[str, Any]],
           skill_ids: list[str], stamp: str, updated: str) -> dict[str, Any]:
    return {
        "id": agent_id,
        "workspace_id": workspace_id,
        "name": name,
        "description": base.description,
        "version": "v2",
        "instructions": f"{base.description} Use policies before escalating, keep replies concise.",
        "guardrails": [
            {
                "id": f"guardrail_{i + 1}",
                "title": "Do not promise refunds",
                "knowledge": "Only cite refund terms from approved policy docs or escalate.",
            }
        ],
        "operation_mode": base.mode,
        "autopilot_schedule": None,
        "custom_response_delay_ms": 10000,
        "auto_mark_as_done": False,
        "response_language": "English",
        "responseflow": True,
        "output_schema": [
            {"name": "resolution", "description": "Short summary of the final outcome.",
             "type": "string", "is_required": True}
        ],
        "skill_ids": skill_ids,
        "enabled": i != 4,
        "triggers": triggers,
        "created_at": stamp,
        "updated_at": updated,
    }
