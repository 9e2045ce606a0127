"""Synthetic Conduit data that looks like a hospitality guest-messaging operation.

Everything is drawn from one seed, column-wise with numpy, so 100,000 runs take well under a
second; the detail of a run (response, reflection, tool trace) is built on demand from a
generator seeded by the run's position, so it is the same every time it is asked for.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from .. import times
from ._agents import agent_records
from ._detail import RunDetail
from ._escalations import GUEST_ASKS, build_escalations, escalation_record
from ._messages import Threads
from ._profiles import PROFILES
from ._random import iso, random_hex, random_ids, seed_int
from ._runs import ERRORS, draw_dispositions, draw_statuses, draw_times, draw_usage

#: Share of runs that are a guest writing again in an earlier conversation.
RETURN_SHARE = 0.10
#: Share of the planted agent's resolved runs whose guest comes back within hours.
DO_NOT_HOLD_SHARE = 0.35

_CHANNELS = np.array(["email", "whatsapp", "sms", "airbnb", "booking_com"])
_CHANNEL_P = np.array([0.3, 0.25, 0.15, 0.2, 0.1])


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
        self.profiles, self.agents = agent_records(rng, count, workspace_id=self.workspace_id, end=self.end,
                                                   days=self.days)

    # -- runs ---------------------------------------------------------------------------------

    def _build_runs(self, rng: np.random.Generator, n: int) -> None:
        shares = np.array([p.share for p in self.profiles])
        agent = rng.choice(len(self.profiles), size=n, p=shares / shares.sum())
        end_ms = int(self.end.timestamp() * 1000)
        created = draw_times(rng, n, end=self.end, days=self.days, seed=self.seed)
        order = np.lexsort((-np.arange(n), -created))  # newest first, stable
        agent, created = agent[order], created[order]
        status = draw_statuses(rng, agent, self.profiles)
        use = draw_usage(rng, agent, self.profiles, status)
        disposition, reason = draw_dispositions(rng, agent, status, use.z, self.profiles)
        error = np.full(n, None, dtype=object)
        err_msgs = np.array([e for e, _ in ERRORS], dtype=object)
        err_p = np.array([p for _, p in ERRORS])
        error[use.failed] = err_msgs[rng.choice(len(err_msgs), size=int(use.failed.sum()), p=err_p)]

        contacts = max(1, n // 3)
        contact_ix = rng.integers(0, contacts, size=n)
        contact_ids = random_ids(rng, contacts, "co")
        conversation_ids = random_ids(rng, contacts, "cv")
        trigger_ids = np.array([a["triggers"][0]["id"] for a in self.agents])

        self.agent_ix = agent
        self.created_ms = created
        self.status = status
        self.disposition = disposition
        self.disposition_reason = reason
        self.error = error
        self.calls = use.calls
        self.duration_ms = np.where(use.finished, use.duration, -1)
        self.input_tokens = use.input_tokens
        self.output_tokens = use.output_tokens
        self.has_usage = use.has_usage
        self.cost = use.cost
        self.completed_ms = np.where(use.has_completed_at, created + np.maximum(use.duration, 0), -1)
        # Run ids depend on `end` too: a workspace generated at another time is another set of
        # runs, and a cache must not mistake one for the other.
        id_rng = np.random.default_rng([seed_int(self.seed), int(end_ms // 60_000)])
        self.ids = random_ids(id_rng, n, "ar")
        self.run_ids = random_hex(rng, n, "run_", 8)
        self.trace_ids = random_hex(rng, n, "", 16)
        self.session_ids = random_hex(rng, n, "sess_", 6)
        self.trigger_event_ids = random_ids(rng, n, "te")
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
        conversation_ids = random_ids(rng, len(roots), "cv")
        contact_ids = random_ids(rng, len(roots), "co")
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
            contact, conversation = str(random_ids(rng, 1, "co")[0]), str(random_ids(rng, 1, "cv")[0])
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
            "created_at": iso(int(self.created_ms[i])),
            "completed_at": iso(int(self.completed_ms[i])) if self.completed_ms[i] >= 0 else None,
            # Not in the reference: the API may add fields at any time, and they must survive.
            "channel": str(self.channel[i]),
        }

    def record(self, i: int) -> dict[str, Any]:
        """The run at position ``i`` with its full trace, as the get endpoint shows it."""
        run = self.summary(i)
        detail = RunDetail(self, i)
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
        table = self.escalation_table()
        return table["rows"] if status is None else table["rows"][table["status"] == status]

    def escalation(self, k: int) -> dict[str, Any]:
        """Escalation ``k``: one per escalated run, with what the operators did with it."""
        return escalation_record(self, k)

    def escalations(self) -> list[dict[str, Any]]:
        return [self.escalation(int(k)) for k in self.escalation_rows()]

    def escalation_table(self) -> dict[str, np.ndarray]:
        table = getattr(self, "_escalations", None)
        if table is None:
            table = self._escalations = build_escalations(self)
        return table

    # -- messages (GET /v1/conversations/{id}/messages) ---------------------------------------

    def messages(self, conversation_id: str) -> list[dict[str, Any]] | None:
        """The conversation's messages, oldest first; None for a conversation it does not have."""
        threads = getattr(self, "_threads", None)
        if threads is None:
            threads = self._threads = Threads(self, detail=RunDetail, escalations=self.escalation_table(),
                                              guest_asks=GUEST_ASKS, iso=iso)
        return threads.messages(conversation_id) if conversation_id in threads else None


