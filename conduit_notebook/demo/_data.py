"""Synthetic Conduit data that looks like a hospitality guest-messaging operation.

Everything is drawn from one seed, column-wise with numpy, so 100,000 runs take well under a
second; the detail of a run (response, reflection, tool trace) is built on demand from a
generator seeded by the run's position, so it is the same every time it is asked for.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from .. import times
from ..schema import DETAIL_FIELDS, UNFINISHED_STATUSES
from ._messages import Threads

_ALPHABET = np.array(list("0123456789abcdefghjkmnpqrstvwxyz"))
_HEX = np.array(list("0123456789abcdef"))

# Guests write more in the day and evening than at night (share of runs by UTC hour).
_HOURLY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.4, 3.6, 4.2, 4.4, 4.3, 4.0, 4.1, 4.3, 4.5, 4.6, 4.4,
     4.2, 4.0, 3.6, 3.0, 2.2, 1.5]
)
_HOURLY = _HOURLY / _HOURLY.sum()
# Weekends are busier for leisure stays (Monday first).
_WEEKDAY = np.array([0.95, 0.9, 0.9, 0.95, 1.1, 1.2, 1.0])

#: Share of runs that are a guest writing again in an earlier conversation.
RETURN_SHARE = 0.10
#: Share of the planted agent's resolved runs whose guest comes back within hours.
DO_NOT_HOLD_SHARE = 0.35

_CHANNELS = np.array(["email", "whatsapp", "sms", "airbnb", "booking_com"])
_CHANNEL_P = np.array([0.3, 0.25, 0.15, 0.2, 0.1])

_REASONS: dict[str, list[str]] = {
    "awaiting_guest": ["missing_reservation_number", "identity_not_verified", "dates_unclear"],
    "handed_off": ["guest_requested_human", "language_not_supported", "vip_guest"],
    "no_action_needed": ["thank_you_message", "automated_notification", "duplicate_message"],
    "spam": ["marketing_message", "unrelated_inquiry"],
}

_ERRORS = [
    ("Tool get_reservation timed out after 30s", 0.25),
    ("Model provider returned 529: overloaded", 0.25),
    ("Context length exceeded: 131072 tokens", 0.1),
    ("PMS integration returned 502 Bad Gateway", 0.2),
    ("Invalid tool arguments: missing 'reservation_id'", 0.1),
    ("Run cancelled: conversation closed by operator", 0.1),
]


@dataclass(frozen=True)
class AgentProfile:
    name: str
    description: str
    share: float
    tools: tuple[str, ...]
    tool_weights: tuple[float, ...]
    mean_calls: float
    dispositions: dict[str, float]
    resolved_reasons: tuple[str, ...]
    escalation_reasons: tuple[str, ...]
    failure_rate: float
    input_median: float
    output_median: float
    price_in: float  # USD per token
    price_out: float
    mode: str = "autopilot"


PROFILES: tuple[AgentProfile, ...] = (
    AgentProfile(
        name="Reservations",
        description="Handles booking, modification and cancellation requests.",
        share=0.40,
        tools=("get_reservation", "search_reservations", "check_availability",
               "modify_reservation", "cancel_reservation", "search_knowledge_base"),
        tool_weights=(0.3, 0.1, 0.2, 0.15, 0.08, 0.17),
        mean_calls=3.2,
        dispositions={"resolved": 0.66, "escalated": 0.16, "awaiting_guest": 0.1,
                      "handed_off": 0.04, "no_action_needed": 0.03, "spam": 0.01},
        resolved_reasons=("reservation_confirmed", "booking_modified", "booking_cancelled",
                          "answered_from_knowledge", "availability_shared"),
        escalation_reasons=(
            "Group booking over 8 rooms needs the sales team.",
            "Guest is requesting a refund outside the cancellation policy.",
            "Requested dates are blocked for maintenance; property team must confirm.",
            "Rate dispute: guest saw a lower price on another channel.",
        ),
        failure_rate=0.035,
        input_median=2300,
        output_median=310,
        price_in=3e-6,
        price_out=15e-6,
    ),
    AgentProfile(
        name="Check-in",
        description="Sends check-in instructions, door codes and early check-in answers.",
        share=0.30,
        tools=("get_reservation", "get_check_in_instructions", "verify_identity",
               "generate_door_code", "get_property_info", "search_knowledge_base"),
        tool_weights=(0.25, 0.2, 0.15, 0.12, 0.13, 0.15),
        mean_calls=3.6,
        dispositions={"resolved": 0.58, "escalated": 0.22, "awaiting_guest": 0.12,
                      "handed_off": 0.04, "no_action_needed": 0.04},
        resolved_reasons=("check_in_instructions_sent", "door_code_issued",
                          "answered_from_knowledge", "parking_info_shared"),
        escalation_reasons=(
            "Early check-in availability requires property team confirmation.",
            "Door code did not work; on-site staff needed.",
            "Identity could not be verified automatically.",
            "Guest reports the room was not ready on arrival.",
        ),
        failure_rate=0.05,
        input_median=2000,
        output_median=260,
        price_in=3e-6,
        price_out=15e-6,
    ),
    AgentProfile(
        name="Billing",
        description="Answers questions about folios, invoices, deposits and refunds.",
        share=0.18,
        tools=("get_reservation", "get_folio", "process_refund", "send_invoice",
               "search_knowledge_base"),
        tool_weights=(0.25, 0.3, 0.12, 0.15, 0.18),
        mean_calls=4.4,
        dispositions={"resolved": 0.52, "escalated": 0.3, "awaiting_guest": 0.1,
                      "handed_off": 0.06, "no_action_needed": 0.02},
        resolved_reasons=("invoice_sent", "refund_processed", "folio_explained",
                          "answered_from_knowledge"),
        escalation_reasons=(
            "Payment failed twice; card needs to be verified by staff.",
            "Chargeback notice received; finance team must respond.",
            "Guest disputes a damage fee.",
            "Refund above the automatic approval limit.",
        ),
        failure_rate=0.06,
        input_median=3100,
        output_median=380,
        price_in=5e-6,
        price_out=25e-6,
    ),
    AgentProfile(
        name="Concierge",
        description="Recommends restaurants, arranges transfers and answers local questions.",
        share=0.08,
        tools=("get_guest_profile", "get_property_info", "search_knowledge_base", "send_message"),
        tool_weights=(0.2, 0.3, 0.35, 0.15),
        mean_calls=2.6,
        dispositions={"resolved": 0.72, "escalated": 0.08, "no_action_needed": 0.12,
                      "handed_off": 0.03, "spam": 0.05},
        resolved_reasons=("recommendation_sent", "transfer_booked", "answered_from_knowledge"),
        escalation_reasons=("Guest asked for a special occasion setup that needs staff.",),
        failure_rate=0.02,
        input_median=1600,
        output_median=420,
        price_in=0.8e-6,
        price_out=4e-6,
        mode="copilot",
    ),
    AgentProfile(
        name="Housekeeping",
        description="Takes requests for towels, cleaning, amenities and maintenance.",
        share=0.04,
        tools=("get_reservation", "create_housekeeping_task", "send_message"),
        tool_weights=(0.35, 0.45, 0.2),
        mean_calls=2.4,
        dispositions={"resolved": 0.7, "escalated": 0.2, "awaiting_guest": 0.06,
                      "no_action_needed": 0.04},
        resolved_reasons=("task_created", "request_logged"),
        escalation_reasons=("Maintenance issue (leak or outage) needs a technician.",
                            "Complaint about room cleanliness needs a manager."),
        failure_rate=0.03,
        input_median=1400,
        output_median=200,
        price_in=0.8e-6,
        price_out=4e-6,
    ),
    AgentProfile(
        name="Reviews",
        description="Drafts replies to guest reviews and feedback.",
        share=0.03,
        tools=("get_guest_profile", "get_reservation", "search_knowledge_base"),
        tool_weights=(0.3, 0.3, 0.4),
        mean_calls=2.0,
        dispositions={"resolved": 0.8, "escalated": 0.12, "no_action_needed": 0.08},
        resolved_reasons=("review_reply_drafted",),
        escalation_reasons=("Negative review mentions a safety issue.",),
        failure_rate=0.02,
        input_median=2600,
        output_median=520,
        price_in=3e-6,
        price_out=15e-6,
        mode="copilot",
    ),
)

_FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farah", "Giulia", "Hiro", "Isabel",
                "Jonas", "Kwame", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa",
                "Sven", "Tomás", "Uma", "Valentina", "Wei", "Yara", "Zoe"]
_PROPERTIES = ["prop_lisbon_alfama", "prop_porto_ribeira", "prop_madrid_centro",
               "prop_barcelona_born", "prop_seville_triana"]
_ROOM_TYPES = ["Studio", "Double", "Twin", "Suite", "Family Apartment"]


def _ids(rng: np.random.Generator, n: int, prefix: str, length: int = 30) -> np.ndarray:
    chars = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel())


def _hex(rng: np.random.Generator, n: int, prefix: str, length: int) -> np.ndarray:
    chars = _HEX[rng.integers(0, 16, size=(n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel())


def seed_int(seed: int) -> int:
    return seed % (2**63)


def _past_times(rng: np.random.Generator, n: int, day_p: np.ndarray, day0: datetime, end_ms: int) -> np.ndarray:
    """``n`` run times (epoch ms) from the days' and hours' weights, none after ``end_ms``: today's
    hours weigh only for the part of them that has passed."""
    day0_ms = int(day0.timestamp() * 1000)
    starts = day0_ms - np.arange(len(day_p))[:, None] * 86_400_000 + np.arange(24)[None, :] * 3_600_000
    passed = np.clip((end_ms - starts) / 3_600_000, 0.0, 1.0)  # the share of each hour before end
    weight = (day_p[:, None] * _HOURLY[None, :] * passed).ravel()
    if not weight.sum() > 0:  # a window of no time at all: the runs land just before end
        return end_ms - rng.integers(1_000, 60_000, size=n)
    cell = rng.choice(weight.size, size=n, p=weight / weight.sum())
    length = (passed.ravel()[cell] * 3_600_000).astype(np.int64)
    return starts.ravel()[cell] + (rng.random(n) * length).astype(np.int64)


def _iso(epoch_ms: int) -> str:
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


class DemoData:
    """A deterministic synthetic workspace: agents and their runs, newest first per agent.

    ``DemoData(runs=2000, agents=3, seed=0, end=None, days=28)``: ``end`` (default: now, to the
    minute) is the newest possible run time; runs spread over the ``days`` before it.

    Something to find (``plant=True``, described in ``.planted``; ``plant=False`` is the control):

    - ``escalation_step``: from midnight UTC ``days // 2`` days before ``end``'s day, the second
      agent (Check-in) escalates 35% of the completed runs it would otherwise have settled, so its
      escalation rate steps from about a quarter to about a half on that day.
    - ``repeated_call``: 6% of the first agent's (Reservations) runs with a trace call
      ``check_availability`` three times in a row with the same input.
    - ``long_conversation``: 15 runs spread over the window form one contact's conversation
      (when there are at least 300 runs); other conversations hold about three runs each. Its
      guest writes several short messages before each run, so its thread (``messages``) is over
      100 messages: two pages.

    - ``resolutions_do_not_hold``: the last agent (Billing with three agents) resolves runs
      that do not hold: for 35% of its resolved runs the guest writes again in the same
      conversation 20 minutes to 6 hours later, to a run that is escalated when one falls in
      that time (``run_ids``, ``came_back_run_ids``). Every other agent's guests come back at
      the workspace's base rate (about one run in ten is a return to an earlier conversation).

    ``messages(conversation_id)``: the conversation's thread as ``GET
    /v1/conversations/{id}/messages`` serves it, built from the runs and escalations (see
    ``demo/_messages.py``): the guest's message before each run, the agent's reply, an operator's
    reply after a reviewed or resolved escalation.

    ``runs_per_day`` (instead of ``runs``) makes a workspace of that volume: a busy hotel group's
    is ``DemoData(runs_per_day=5000, days=14, agents=6)``.
    """

    def __init__(
        self,
        runs: int = 2000,
        agents: int = 3,
        seed: int = 0,
        *,
        end: datetime | None = None,
        days: int = 28,
        plant: bool = True,
        runs_per_day: int | None = None,
    ) -> None:
        if runs_per_day is not None:
            if isinstance(runs_per_day, bool) or not isinstance(runs_per_day, int) or runs_per_day < 1:
                raise ValueError(f"runs_per_day must be a whole number >= 1, or None; got {runs_per_day!r}")
            if isinstance(days, int) and not isinstance(days, bool):
                runs = runs_per_day * days
        if not isinstance(runs, int) or runs < 0:
            raise ValueError(f"runs must be a whole number >= 0, got {runs!r}")
        if not isinstance(agents, int) or not 1 <= agents <= 3 * len(PROFILES):
            raise ValueError(f"agents must be a whole number from 1 to {3 * len(PROFILES)}, got {agents!r}")
        if not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be a whole number >= 1, got {days!r}")
        if end is None:
            end = times.utc_now().replace(second=0, microsecond=0)
        elif end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        self.seed = seed
        self.end = end
        self.days = days
        self.n = runs
        digest = hashlib.blake2b(f"{seed}".encode(), digest_size=8).hexdigest()
        self.workspace_id = f"j57demo{digest}"
        rng = np.random.default_rng(seed)
        self._build_agents(rng, agents)
        self._build_runs(rng, runs)
        self._build_conversations(np.random.default_rng([seed_int(seed), 12]))
        # A generator of its own: the planted patterns leave every other draw as it was.
        self.planted: dict[str, Any] = (self._plant(np.random.default_rng([seed_int(seed), 11]))
                                        if plant else {})

    # -- agents -------------------------------------------------------------------------------

    def _build_agents(self, rng: np.random.Generator, count: int) -> None:
        self.profiles: list[AgentProfile] = []
        self.agents: list[dict[str, Any]] = []
        agent_ids = _ids(rng, count, "ag")
        created = self.end - timedelta(days=self.days + 30)
        for i in range(count):
            base = PROFILES[i % len(PROFILES)]
            name = base.name if i < len(PROFILES) else f"{base.name} {i // len(PROFILES) + 1}"
            self.profiles.append(base)
            trigger_ids = _ids(rng, 2, "tr")
            stamp = _iso(int((created + timedelta(hours=7 * i)).timestamp() * 1000))
            updated = _iso(int((self.end - timedelta(days=3 + i)).timestamp() * 1000))
            triggers = [
                {
                    "id": str(trigger_ids[0]),
                    "workspace_id": self.workspace_id,
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
                        "id": str(trigger_ids[1]),
                        "workspace_id": self.workspace_id,
                        "name": f"{name} Follow-up",
                        "description": "Runs on a schedule for open conversations.",
                        "type": "schedule",
                        "config": {"cron": "0 9 * * *"},
                        "enabled": i != 2,
                        "created_at": stamp,
                        "updated_at": updated,
                    }
                )
            self.agents.append(
                {
                    "id": str(agent_ids[i]),
                    "workspace_id": self.workspace_id,
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
                    "skill_ids": [str(x) for x in _ids(rng, 1, "ks")],
                    "enabled": i != 4,
                    "triggers": triggers,
                    "created_at": stamp,
                    "updated_at": updated,
                }
            )

    # -- runs ---------------------------------------------------------------------------------

    def _build_runs(self, rng: np.random.Generator, n: int) -> None:
        shares = np.array([p.share for p in self.profiles])
        agent = rng.choice(len(self.profiles), size=n, p=shares / shares.sum())

        # Timestamps: a day (weekends busier), an hour of the day (daytime busier), a second.
        end_ms = int(self.end.timestamp() * 1000)
        day0 = self.end.replace(hour=0, minute=0, second=0, microsecond=0)
        day_offsets = np.arange(self.days)
        weekdays = np.array([(day0 - timedelta(days=int(d))).weekday() for d in day_offsets])
        day_p = _WEEKDAY[weekdays] / _WEEKDAY[weekdays].sum()
        day = rng.choice(self.days, size=n, p=day_p)
        hour = rng.choice(24, size=n, p=_HOURLY)
        ms = rng.integers(0, 3_600_000, size=n)
        created = int(day0.timestamp() * 1000) - day * 86_400_000 + hour * 3_600_000 + ms
        # Today's hours still to come are drawn again from the hours that have been (moving them a
        # day back doubled yesterday just after midnight); a generator of their own, so that the
        # other draws stay as they were.
        future = np.flatnonzero(created > end_ms)
        if len(future):
            created[future] = _past_times(np.random.default_rng([seed_int(self.seed), 14]), len(future),
                                          day_p, day0, end_ms)
        # A few runs land in the last minutes.
        recent = rng.random(n) < 0.002
        created = np.where(recent, end_ms - rng.integers(1_000, 600_000, size=n), created)

        order = np.lexsort((-np.arange(n), -created))  # newest first, stable
        agent, created = agent[order], created[order]

        fail_p = np.array([p.failure_rate for p in self.profiles])[agent]
        status = np.where(rng.random(n) < fail_p, "failed", "completed").astype("<U9")
        # The newest run of each agent was just accepted, the next two are still running, and
        # a handful of stuck runs hang about.
        for a in range(len(self.profiles)):
            rows = np.flatnonzero(agent == a)[:3]
            status[rows[:1]] = "accepted"
            status[rows[1:3]] = "running"
        status[(rng.random(n) < 0.0008) & (status != "accepted")] = "running"

        mean_calls = np.array([p.mean_calls for p in self.profiles])[agent]
        calls = np.clip(rng.poisson(mean_calls) + (rng.random(n) < 0.5), 0, 14)

        # One latent "difficulty" drives tokens, duration and cost together.
        z = rng.standard_normal(n)
        in_median = np.array([p.input_median for p in self.profiles])[agent]
        out_median = np.array([p.output_median for p in self.profiles])[agent]
        input_tokens = np.round(
            in_median * (0.6 + 0.15 * calls) * np.exp(0.35 * z + 0.25 * rng.standard_normal(n))
        ).astype(np.int64)
        output_tokens = np.round(
            out_median * np.exp(0.3 * z + 0.45 * rng.standard_normal(n))
        ).astype(np.int64)
        duration = np.round(
            (1200 + 700 * calls) * np.exp(0.4 * z + 0.5 * rng.standard_normal(n))
            + output_tokens * 6
        ).astype(np.int64)
        price_in = np.array([p.price_in for p in self.profiles])[agent]
        price_out = np.array([p.price_out for p in self.profiles])[agent]
        cost = np.round(input_tokens * price_in + output_tokens * price_out, 6)

        failed = status == "failed"
        # Failed runs stop early: shorter, fewer tokens, and often no usage at all.
        cut = rng.uniform(0.1, 0.7, size=n)
        input_tokens = np.where(failed, np.round(input_tokens * cut), input_tokens).astype(np.int64)
        output_tokens = np.where(failed, np.round(output_tokens * cut * 0.3), output_tokens).astype(np.int64)
        cost = np.where(failed, np.round(input_tokens * price_in + output_tokens * price_out, 6), cost)
        calls = np.where(failed, np.minimum(calls, rng.integers(0, 3, size=n)), calls)
        duration = np.where(failed, np.round(duration * cut + 30_000 * (rng.random(n) < 0.25)), duration)
        has_usage = ~failed | (rng.random(n) < 0.5)
        has_completed_at = ~failed | (rng.random(n) < 0.7)
        finished = (status == "completed") | failed
        has_usage &= finished
        has_completed_at &= finished

        # Dispositions: a per-agent mix for completed runs; none for the others.
        disposition = np.full(n, None, dtype=object)
        reason = np.full(n, None, dtype=object)
        for a, profile in enumerate(self.profiles):
            rows = np.flatnonzero((agent == a) & (status == "completed"))
            names = list(profile.dispositions)
            p = np.array(list(profile.dispositions.values()))
            picked = rng.choice(len(names), size=len(rows), p=p / p.sum())
            # Escalations and failures cluster on hard (long, token-heavy) runs.
            hard = z[rows] > 1.2
            esc = names.index("escalated") if "escalated" in names else None
            if esc is not None:
                picked = np.where(hard & (rng.random(len(rows)) < 0.35), esc, picked)
            for k, name in enumerate(names):
                chosen = rows[picked == k]
                disposition[chosen] = name
                pool = (profile.resolved_reasons if name == "resolved"
                        else profile.escalation_reasons if name == "escalated"
                        else _REASONS.get(name, ("unspecified",)))
                reason[chosen] = np.array(pool, dtype=object)[rng.integers(0, len(pool), size=len(chosen))]
        error = np.full(n, None, dtype=object)
        err_msgs = np.array([e for e, _ in _ERRORS], dtype=object)
        err_p = np.array([p for _, p in _ERRORS])
        error[failed] = err_msgs[rng.choice(len(err_msgs), size=int(failed.sum()), p=err_p)]

        contacts = max(1, n // 3)
        contact_ix = rng.integers(0, contacts, size=n)
        contact_ids = _ids(rng, contacts, "co")
        conversation_ids = _ids(rng, contacts, "cv")
        trigger_ids = np.array([a["triggers"][0]["id"] for a in self.agents])

        self.agent_ix = agent
        self.created_ms = created
        self.status = status
        self.disposition = disposition
        self.disposition_reason = reason
        self.error = error
        self.calls = calls
        self.duration_ms = np.where(finished, duration, -1)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.has_usage = has_usage
        self.cost = cost
        self.completed_ms = np.where(has_completed_at, created + np.maximum(duration, 0), -1)
        # Run ids depend on `end` too: a workspace generated at another time is another set of
        # runs, and a cache must not mistake one for the other.
        id_rng = np.random.default_rng([seed_int(self.seed), int(end_ms // 60_000)])
        self.ids = _ids(id_rng, n, "ar")
        self.run_ids = _hex(rng, n, "run_", 8)
        self.trace_ids = _hex(rng, n, "", 16)
        self.session_ids = _hex(rng, n, "sess_", 6)
        self.trigger_event_ids = _ids(rng, n, "te")
        self.contact = contact_ids[contact_ix]
        self.conversation = conversation_ids[contact_ix]
        self.trigger = trigger_ids[agent]
        self.channel = _CHANNELS[rng.choice(len(_CHANNELS), size=n, p=_CHANNEL_P)]
        self._position = {str(run_id): i for i, run_id in enumerate(self.ids)}
        self.by_agent = {a["id"]: np.flatnonzero(agent == i) for i, a in enumerate(self.agents)}

    # -- conversations ------------------------------------------------------------------------

    def _build_conversations(self, rng: np.random.Generator) -> None:
        """Which runs share a guest conversation: most conversations have one run; a guest who
        comes back (about one run in ten) writes again in the same conversation, usually within
        hours (a lognormal gap, median 3 h), sometimes days later. From a generator of its own:
        every other draw stays as it was."""
        n = self.n
        order = np.argsort(self.created_ms, kind="stable")  # oldest first
        times_sorted = self.created_ms[order]
        returning = rng.random(n) < RETURN_SHARE
        gap_ms = np.exp(rng.normal(np.log(3 * 3_600_000), 1.3, size=n)).astype(np.int64)
        parent = np.arange(n)  # in oldest-first positions: the run whose conversation it joins
        earlier = np.searchsorted(times_sorted, times_sorted - gap_ms, side="right") - 1
        joins = returning & (earlier >= 0) & (earlier < np.arange(n))
        parent[joins] = earlier[joins]
        root = parent.copy()
        while True:  # pointer jumping: each run's first run of its conversation
            up = root[root]
            if np.array_equal(up, root):
                break
            root = up
        roots, thread = np.unique(root, return_inverse=True)
        conversation_ids = _ids(rng, len(roots), "cv")
        contact_ids = _ids(rng, len(roots), "co")
        self.conversation = np.empty(n, dtype=conversation_ids.dtype)
        self.contact = np.empty(n, dtype=contact_ids.dtype)
        self.conversation[order] = conversation_ids[thread]
        self.contact[order] = contact_ids[thread]

    # -- planted patterns ---------------------------------------------------------------------

    def _plant(self, rng: np.random.Generator) -> dict[str, Any]:
        planted: dict[str, Any] = {}
        n = self.n
        step_agent = 1 if len(self.profiles) > 1 else 0
        day0 = self.end.replace(hour=0, minute=0, second=0, microsecond=0)
        step_at = day0 - timedelta(days=self.days // 2)
        after = ((self.agent_ix == step_agent) & (self.status == "completed")
                 & (self.created_ms >= int(step_at.timestamp() * 1000)) & (self.disposition != "escalated"))
        switched = np.flatnonzero(after & (rng.random(n) < 0.35))
        pool = np.array(self.profiles[step_agent].escalation_reasons, dtype=object)
        self.disposition[switched] = "escalated"
        self.disposition_reason[switched] = pool[rng.integers(0, len(pool), size=len(switched))]
        planted["escalation_step"] = {"agent": self.agents[step_agent]["name"], "at": step_at,
                                      "share_switched": 0.35, "runs_switched": len(switched)}
        # Runs with a trace: not just accepted.
        looping = (self.agent_ix == 0) & (self.status != "accepted") & (rng.random(n) < 0.06)
        self.repeat_tool = np.full(n, None, dtype=object)
        self.repeat_tool[looping] = "check_availability"
        planted["repeated_call"] = {"agent": self.agents[0]["name"], "tool": "check_availability", "times": 3,
                                    "run_ids": [str(x) for x in self.ids[looping]]}
        self._plant_resolutions_that_do_not_hold(np.random.default_rng([seed_int(self.seed), 13]), planted)
        if n >= 300:
            rows = np.sort(rng.choice(n, size=15, replace=False))
            self.contact = self.contact.copy()
            self.conversation = self.conversation.copy()
            contact, conversation = str(_ids(rng, 1, "co")[0]), str(_ids(rng, 1, "cv")[0])
            self.contact[rows], self.conversation[rows] = contact, conversation
            planted["long_conversation"] = {"conversation_id": conversation, "contact_id": contact, "runs": 15,
                                            "run_ids": [str(x) for x in self.ids[rows]]}
        return planted

    def _plant_resolutions_that_do_not_hold(self, rng: np.random.Generator, planted: dict[str, Any]) -> None:
        """The last agent's resolutions often do not hold: for 35% of its resolved runs, the
        guest writes again in the same conversation 20 minutes to 6 hours later, and that run
        is escalated when an escalated run falls in that time (the run that came back takes the
        resolved run's conversation; no run changes its time or disposition)."""
        if len(self.profiles) < 2:
            return
        agent = len(self.profiles) - 1
        resolved = np.flatnonzero((self.agent_ix == agent) & (self.disposition == "resolved"))
        chosen = resolved[rng.random(len(resolved)) < DO_NOT_HOLD_SHARE]
        order = np.argsort(self.created_ms, kind="stable")
        times_sorted = self.created_ms[order]
        taken = set(int(i) for i in chosen)
        moved = []
        for i in chosen:
            lo = np.searchsorted(times_sorted, self.created_ms[i] + 20 * 60_000)
            hi = np.searchsorted(times_sorted, self.created_ms[i] + 6 * 3_600_000)
            window = [int(order[k]) for k in range(lo, hi) if int(order[k]) not in taken]
            if not window:
                continue
            best = [j for j in window if self.disposition[j] == "escalated"]
            follow = best[int(rng.integers(len(best)))] if best else window[int(rng.integers(len(window)))]
            taken.add(follow)
            self.conversation[follow], self.contact[follow] = self.conversation[i], self.contact[i]
            moved.append((str(self.ids[i]), str(self.ids[follow])))
        planted["resolutions_do_not_hold"] = {
            "agent": self.agents[agent]["name"], "share": DO_NOT_HOLD_SHARE, "within": "6h",
            "run_ids": [a for a, _ in moved], "came_back_run_ids": [b for _, b in moved]}

    # -- records ------------------------------------------------------------------------------

    def position(self, run_id: str) -> int | None:
        return self._position.get(run_id)

    def agent_of(self, i: int) -> str:
        return self.agents[self.agent_ix[i]]["id"]

    def agent_rows(self, agent_id: str, status: str | None = None) -> np.ndarray:
        rows = self.by_agent[agent_id]
        return rows if status is None else rows[self.status[rows] == status]

    def summary(self, i: int) -> dict[str, Any]:
        """The run at position ``i`` as the list endpoint shows it."""
        finished_usage = bool(self.has_usage[i])
        return {
            "id": str(self.ids[i]),
            "run_id": str(self.run_ids[i]),
            "agent_id": self.agents[self.agent_ix[i]]["id"],
            "workspace_id": self.workspace_id,
            "status": str(self.status[i]),
            "disposition": self.disposition[i],
            "contact_id": str(self.contact[i]),
            "conversation_id": str(self.conversation[i]),
            "trigger_id": str(self.trigger[i]),
            "error": self.error[i],
            "duration_ms": int(self.duration_ms[i]) if self.duration_ms[i] >= 0 else None,
            "token_usage": (
                {"input": int(self.input_tokens[i]), "output": int(self.output_tokens[i])}
                if finished_usage else None
            ),
            "total_cost": float(self.cost[i]) if finished_usage else None,
            "trace_id": str(self.trace_ids[i]),
            "created_at": _iso(int(self.created_ms[i])),
            "completed_at": _iso(int(self.completed_ms[i])) if self.completed_ms[i] >= 0 else None,
            # Not in the reference: the API may add fields at any time, and they must survive.
            "channel": str(self.channel[i]),
        }

    def record(self, i: int) -> dict[str, Any]:
        """The run at position ``i`` with its full trace, as the get endpoint shows it."""
        run = self.summary(i)
        detail = _Detail(self, i)
        run.update(
            session_id=str(self.session_ids[i]),
            disposition_reason=self.disposition_reason[i],
            trigger_event_id=str(self.trigger_event_ids[i]),
            response=detail.response(),
            reflection=detail.reflection(),
            tool_trace=detail.tool_trace(),
        )
        return run

    def summaries(self) -> list[dict[str, Any]]:
        return [self.summary(i) for i in range(self.n)]

    def records(self) -> list[dict[str, Any]]:
        return [self.record(i) for i in range(self.n)]

    # -- escalations (GET /v1/escalations) ----------------------------------------------------

    def escalation_rows(self, status: str | None = None) -> np.ndarray:
        """Positions (into the escalation list) of the escalations with this status."""
        table = self._escalation_table()
        return table["rows"] if status is None else table["rows"][table["status"] == status]

    def escalation(self, k: int) -> dict[str, Any]:
        """Escalation ``k``: one per escalated run, with what the operators did with it."""
        return escalation_record(self, k)

    def escalations(self) -> list[dict[str, Any]]:
        return [self.escalation(int(k)) for k in self.escalation_rows()]

    def _escalation_table(self) -> dict[str, np.ndarray]:
        table = getattr(self, "_escalations", None)
        if table is None:
            table = self._escalations = build_escalations(self)
        return table

    # -- messages (GET /v1/conversations/{id}/messages) ---------------------------------------

    def messages(self, conversation_id: str) -> list[dict[str, Any]] | None:
        """The conversation's messages, oldest first; None for a conversation it does not have."""
        threads = getattr(self, "_threads", None)
        if threads is None:
            threads = self._threads = Threads(self, detail=_Detail, escalations=self._escalation_table(),
                                              guest_asks=_GUEST_ASKS, iso=_iso)
        return threads.messages(conversation_id) if conversation_id in threads else None


class _Detail:
    """The response, reflection and tool trace of one run, from a generator of its own."""

    def __init__(self, data: DemoData, i: int) -> None:
        self.data = data
        self.i = i
        self.rng = random.Random(data.seed * 1_000_003 + i)
        self.profile = data.profiles[data.agent_ix[i]]
        self.status = str(data.status[i])
        self.disposition = data.disposition[i]
        self.rng.randrange(len(_FIRST_NAMES))  # the draw stays, so the rest of the run is as before
        # One guest per conversation: every run (and message) of a thread greets the same name.
        self.guest = _FIRST_NAMES[zlib.crc32(str(data.conversation[i]).encode()) % len(_FIRST_NAMES)]
        self.reservation = f"res_{int(self.rng.randrange(100000, 999999))}"
        self.property = _PROPERTIES[int(self.rng.randrange(len(_PROPERTIES)))]
        created = datetime.fromtimestamp(data.created_ms[i] / 1000, tz=UTC)
        self.check_in = (created + timedelta(days=int(self.rng.randrange(1, 40)))).date()
        self.nights = int(self.rng.randrange(1, 8))

    def _tool_call(self, name: str) -> dict[str, Any]:
        r, res, prop = self.rng, self.reservation, self.property
        check_out = self.check_in + timedelta(days=self.nights)
        amount = round(float(r.uniform(40, 900)), 2)
        inp: Any  # arbitrary JSON, as tool inputs and outputs are
        out: Any
        if name == "get_reservation":
            inp = {"reservation_id": res}
            out = {"status": "confirmed", "check_in": str(self.check_in), "check_out": str(check_out),
                   "guests": int(r.randrange(1, 5)), "room_type": _ROOM_TYPES[int(r.randrange(5))],
                   "property_id": prop}
        elif name == "search_reservations":
            inp = {"guest_name": self.guest, "property_id": prop}
            out = {"matches": [{"reservation_id": res, "check_in": str(self.check_in)}]}
        elif name == "check_availability":
            inp = {"property_id": prop, "check_in": str(self.check_in), "check_out": str(check_out),
                   "guests": int(r.randrange(1, 5))}
            out = {"available": bool(r.random() < 0.75),
                   "rooms": [{"room_type": t, "nightly_rate": round(float(r.uniform(70, 320)), 2),
                              "currency": "EUR"} for t in _ROOM_TYPES[: int(r.randrange(1, 4))]]}
        elif name == "modify_reservation":
            inp = {"reservation_id": res, "changes": {"check_out": str(check_out + timedelta(days=1))}}
            out = {"status": "modified", "price_difference": round(float(r.uniform(-80, 250)), 2),
                   "currency": "EUR"}
        elif name == "cancel_reservation":
            inp = {"reservation_id": res, "reason": "guest_request"}
            out = {"status": "cancelled", "refund_amount": amount, "currency": "EUR"}
        elif name == "search_knowledge_base":
            query = r.choice(["pet policy", "late checkout", "parking", "breakfast hours",
                              "cancellation policy", "city tax", "luggage storage"])
            # Some agents send the query as a bare string: tool inputs are arbitrary JSON.
            inp = str(query) if r.random() < 0.3 else {"query": str(query), "top_k": 3}
            out = {"results": [{"title": f"{str(query).title()} policy", "score": round(float(r.uniform(0.5, 0.99)), 3),
                                "snippet": f"Our {query} policy: see the house rules for details."}]}
        elif name == "get_property_info":
            topic = str(r.choice(["wifi", "parking", "check_in_time", "amenities", "directions"]))
            inp = {"property_id": prop, "topic": topic}
            out = {"answer": f"Information about {topic.replace('_', ' ')} at {prop}."}
        elif name == "get_guest_profile":
            inp = {"contact_id": str(self.data.contact[self.i])}
            out = {"name": self.guest, "language": str(r.choice(["en", "es", "pt", "de", "fr"])),
                   "loyalty_tier": str(r.choice(["none", "silver", "gold"])), "stays": int(r.randrange(0, 12))}
        elif name == "get_check_in_instructions":
            inp = {"reservation_id": res}
            out = {"check_in_time": "15:00", "self_check_in": True, "parking": bool(r.random() < 0.5)}
        elif name == "verify_identity":
            inp = {"reservation_id": res, "method": "document_upload"}
            out = {"verified": bool(r.random() < 0.85)}
        elif name == "generate_door_code":
            inp = {"reservation_id": res, "valid_from": f"{self.check_in}T15:00:00Z",
                   "valid_to": f"{check_out}T11:00:00Z"}
            out = {"code_issued": True, "expires_at": f"{check_out}T11:00:00Z"}
        elif name == "get_folio":
            inp = {"reservation_id": res}
            out = {"balance": amount, "currency": "EUR",
                   "items": [{"description": "Room", "amount": round(amount * 0.9, 2)},
                             {"description": "City tax", "amount": round(amount * 0.1, 2)}]}
        elif name == "process_refund":
            inp = {"reservation_id": res, "amount": round(amount * 0.3, 2), "currency": "EUR"}
            out = {"refund_id": f"rf_{int(r.randrange(10**6, 10**7))}", "status": "pending"}
        elif name == "send_invoice":
            inp = {"reservation_id": res, "email": f"{self.guest.lower()}@example.com"}
            out = {"sent": True}
        elif name == "create_housekeeping_task":
            inp = {"property_id": prop, "task": str(r.choice(["extra_towels", "cleaning", "fix_ac", "crib"]))}
            out = {"task_id": f"hk_{int(r.randrange(10**5, 10**6))}", "eta_minutes": int(r.randrange(10, 90))}
        elif name == "send_message":
            inp = {"channel": str(self.data.channel[self.i]), "text": "Message sent to the guest."}
            out = {"message_id": f"msg_{int(r.randrange(10**6, 10**7))}", "delivered": True}
        elif name == "create_escalation":
            inp = {"reason": self.data.disposition_reason[self.i] or "needs review", "priority": "normal"}
            out = {"escalation_id": f"esc_{int(r.randrange(10**5, 10**6))}", "status": "pending"}
        else:  # pragma: no cover - every profile tool is handled above
            inp, out = {}, None
        return {"name": name, "input": inp, "output": out}

    def _pick_tools(self, count: int) -> list[str]:
        """Weighted picks, without repeats while the agent has tools left, in the agent's natural
        order (look-ups before changes)."""
        tools, weights = list(self.profile.tools), list(self.profile.tool_weights)
        picked: list[int] = []
        while len(picked) < count:
            pool = [k for k in range(len(tools)) if k not in picked] or list(range(len(tools)))
            picked.append(self.rng.choices(pool, weights=[weights[k] for k in pool])[0])
        return [tools[k] for k in sorted(picked)]

    def tool_trace(self) -> list[dict[str, Any]] | None:
        if self.status == "accepted":
            return None
        count = int(self.data.calls[self.i])
        if self.disposition == "escalated":
            count = max(0, count - 1)
        names = self._pick_tools(count)
        trace = [self._tool_call(n) for n in names]
        loop = getattr(self.data, "repeat_tool", None)
        if loop is not None and loop[self.i] is not None:
            # Planted: the agent checks the same availability again and again.
            at = next((k for k, item in enumerate(trace) if item["name"] == loop[self.i]), None)
            if at is None:
                trace.append(self._tool_call(loop[self.i]))
                at = len(trace) - 1
            trace[at + 1:at + 1] = [json.loads(json.dumps(trace[at])) for _ in range(2)]
        if self.disposition == "escalated":
            trace.append(self._tool_call("create_escalation"))
        for item in trace:
            if self.profile.name == "Concierge":
                # This integration reports timings: trace items may carry extra keys.
                item["duration_ms"] = int(self.rng.randrange(40, 2500))
        if self.status == "failed" and trace and "timed out" in (self.data.error[self.i] or ""):
            trace[-1]["output"] = None
            trace[-1]["error"] = "timeout after 30000 ms"
        return trace

    def response(self) -> str | None:
        if self.status != "completed":
            return None
        g = self.guest
        by_disposition = {
            "resolved": [
                f"Hi {g}, you're all set: your reservation {self.reservation} is confirmed for {self.check_in:%B %d}. Let me know if you need anything else!",
                f"Hi {g}, done! I've taken care of that for you. Anything else I can help with?",
                f"Hi {g}, here is what you asked for. Check-in is from 3 PM and your details are on the way.",
            ],
            "escalated": [
                f"Thanks {g}, I've passed this to our team, who will get back to you shortly.",
                f"Hi {g}, I need to check this with the property team. We'll reply within the hour.",
            ],
            "awaiting_guest": [f"Hi {g}, could you share your reservation number so I can look this up?"],
            "handed_off": [f"Hi {g}, I'm connecting you with a member of our team now."],
            "no_action_needed": [f"Thank you {g}, have a wonderful stay!"],
            "spam": [""],
        }
        options = by_disposition.get(self.disposition, [f"Hi {g}, thanks for your message."])
        return options[int(self.rng.randrange(len(options)))]

    def reflection(self) -> str | None:
        if self.status in UNFINISHED_STATUSES:
            return None
        if self.status == "failed":
            return "The run stopped before a reply could be written." if self.rng.random() < 0.5 else None
        reason = self.data.disposition_reason[self.i]
        return {
            "resolved": f"The guest's request could be handled with the available tools ({reason}), so I answered directly instead of escalating.",
            "escalated": f"Escalating: {reason} Policy does not allow me to decide this alone.",
            "awaiting_guest": f"I could not identify the booking ({reason}); asked the guest for details.",
            "handed_off": f"Handed off to a human ({reason}).",
            "no_action_needed": f"No reply needed beyond a courtesy message ({reason}).",
            "spam": f"Message classified as spam ({reason}); no action taken.",
        }.get(self.disposition, f"Disposition {self.disposition}: {reason}.")


_OPERATORS = ("maria@property-team.example", "joao@property-team.example", "lucia@front-desk.example",
              "tom@finance.example")
_GUEST_ASKS = ("Can I check in before 3 PM tomorrow?", "The door code you sent does not work.",
               "I was charged twice for my stay, can you refund one?", "Can we bring our dog?",
               "We are a group of 12, can you hold 8 rooms?", "The room was not ready when we arrived.")


def build_escalations(data: DemoData) -> dict[str, np.ndarray]:
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
            "ask": rng.integers(0, len(_GUEST_ASKS), size=m),
            "ids": _ids(np.random.default_rng([seed_int(data.seed), 0xE5D]), m, "k5")}


def escalation_record(data: DemoData, k: int) -> dict[str, Any]:
    table = data._escalation_table()
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
        "created_at": _iso(int(table["opened"][k])),
        "reviewed_at": _iso(int(table["reviewed"][k])) if done else None,
        "reviewed_by": _OPERATORS[int(table["operator"][k])] if done else None,
        "guest_message": _GUEST_ASKS[int(table["ask"][k])],
        "proposed_response": _Detail(data, i).response(),
        "request_for_additional_info": f"Please confirm: {reason}",
        "questions_for_operator": reason,
    }


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
