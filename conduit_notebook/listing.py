"""Listing a window's runs: the agents asked for, then each agent's list pages, newest first,
stopping where the cache already holds what follows (and past the oldest run that was still
unfinished when last seen). One request a page of 100 summaries."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from .cache import MIN_MS
from .errors import ConduitError, UnknownAgentError
from .fetch_job import Candidate, FetchJob, progress_bar
from .records import clean_name, record_problem
from .schema import UNFINISHED_STATUSES

__all__ = ["epoch_ms", "list_agent", "list_window", "readable_agents", "resolve_agents"]


def epoch_ms(stamp: Any) -> int | None:
    """An API timestamp as milliseconds since the epoch (None when unset or unreadable)."""
    if not isinstance(stamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = pd.Timestamp(stamp).to_pydatetime()
        except (ValueError, TypeError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1678 <= parsed.year < 2262:
        return None  # Go's zero time means "not set"; no run is that old (or that new)
    return int(parsed.timestamp() * 1000)


def readable_agents(agents: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Agents with a string id, each once; the others as error rows. A name that cannot be a
    label (a number, an object, a broken character, 100 KB) is repaired, with a warning: the
    agent's runs are fetched all the same."""
    good: dict[str, dict[str, Any]] = {}
    errors = []
    for agent in agents:
        if isinstance(agent, dict) and isinstance(agent.get("id"), str) and agent["id"]:
            name, problem = clean_name(agent.get("name"))
            if problem is not None:
                warnings.warn(f"agent {agent['id']}'s name {problem}", UserWarning, stacklevel=3)
                agent = {**agent, "name": name}
            good[agent["id"]] = agent
        else:
            errors.append({"agent_id": None, "agent_run_id": None, "status_code": None, "attempts": None,
                           "error": f"An agent listed by GET /v1/agents has no string id "
                                    f"({str(agent)[:80]!r}); it was left out."})
    return list(good.values()), errors


def resolve_agents(wanted: Any, agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agents ``wanted`` names (ids or names, case-insensitive); raises naming those not found."""
    if wanted is None:
        return agents
    names = [wanted] if isinstance(wanted, str) else wanted
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"agents must be None (every agent), an agent id or name, or a list of them; got {wanted!r}"
        )
    chosen: dict[str, dict[str, Any]] = {}
    missing = []
    for name in names:
        by_id = [a for a in agents if a.get("id") == name]
        by_name = [a for a in agents if str(a.get("name", "")).casefold() == name.casefold()]
        found = by_id or by_name
        if not found:
            missing.append(name)
        for agent in found:
            chosen[agent["id"]] = agent
    if missing:
        known = ", ".join(f"{a.get('name')!r} ({a.get('id')})" for a in agents) or "none"
        raise UnknownAgentError(
            f"No agent with the id or name {', '.join(map(repr, missing))} in this workspace. "
            f"Agents: {known}.",
            endpoint="GET /v1/agents",
        )
    return list(chosen.values())


def list_window(job: FetchJob, selected: list[dict[str, Any]]) -> list[Candidate]:
    """Every run of the window over the selected agents, newest first (at most ``max_runs``)."""
    bar = progress_bar(job.progress, desc="pages", unit="page")
    candidates: list[Candidate] = []
    try:
        for agent in selected:
            candidates += list_agent(job, agent["id"], bar)
    finally:
        if bar is not None:
            bar.close()
    # A run listed under two agents (or twice) is fetched and framed once: the later copy.
    candidates = list({c.id: c for c in candidates}.values())
    candidates.sort(key=lambda c: -(c.created_ms if c.created_ms is not None else MIN_MS))
    return candidates[:job.max_runs] if job.max_runs else candidates


def _covered_to_since(job: FetchJob, intervals: list[tuple[int, int]], ms: int) -> int | None:
    """The low end of a listed-before interval holding ``ms`` that reaches back to ``since``."""
    for lo, hi in intervals:
        if lo <= ms <= hi and (lo == MIN_MS or (job.since_ms is not None and lo <= job.since_ms)):
            return lo
    return None


def _still_unfinished(job: FetchJob, agent_id: str) -> dict[str, dict[str, Any]]:
    """The agent's runs now accepted or running, from the status-filtered list pages."""
    found: dict[str, dict[str, Any]] = {}
    for status in UNFINISHED_STATUSES:  # in lifecycle order: a run moving on is still seen
        for page in job.client.iter_run_pages(agent_id, status=status):
            job.stats.list_requests += 1
            # Unreadable records are left to the main listing, which reports them.
            found.update((r["id"], r) for r in page if record_problem(r) is None and r.get("status") == status)
    return found


def _stop_floor(job: FetchJob, agent_id: str, ms: int, listed: Mapping[str, Any],
                unfinished: dict[str, int | None], refreshed: dict[str, dict[str, Any]]) -> int | None:
    """Where listing may stop, at the first already-listed run (created at ``ms``): at once
    unless a run that was unfinished and is older has finished since; then just past the
    oldest such run (its new summary is on the way down). None means at once."""
    older = {i: m for i, m in unfinished.items() if i not in listed and m is not None and m < ms}
    if not older:
        return None
    still = _still_unfinished(job, agent_id)
    if job.store and still:
        job.store.put(job.source, list(still.values()), detailed=False, agent_names=job.agent_names)
    refreshed.update((i, still[i]) for i in older if i in still)
    finished = [m for i, m in older.items() if i not in still]
    return min(finished) if finished else None


def list_agent(job: FetchJob, agent_id: str, bar: Any) -> list[Candidate]:
    """The agent's runs of the window: from its list pages down to where the cache holds the
    rest, then the rest from the cache. A page that fails after retries is a row of errors."""
    status_key = job.statuses[0] if len(job.statuses) == 1 else ""
    keys = [""] if not status_key else [status_key, ""]
    # With refresh, nothing counts as listed before: the whole window is listed again.
    intervals = job.store.coverage(job.source, agent_id, keys) if job.store and not job.refresh else []
    # Runs of the window that were unfinished when last seen: listing goes on past the stop
    # point only as far as the oldest of them that has finished since.
    unfinished = ({c.id: c.created_ms for c in job.store.select(job.source, agent_id, since_ms=job.since_ms,
                                                                until_ms=job.until_ms) if not c.finished}
                  if job.store else {})
    state = _Listing(job, agent_id, intervals, unfinished)
    listed_all = True
    try:
        for page in job.client.iter_run_pages(agent_id, status=status_key or None):
            job.stats.list_requests += 1
            if bar is not None:
                bar.update(1)
            if state.take(page):
                listed_all = False
                break
    except ConduitError as exc:
        job.failed(agent_id, None, exc)
        return state.fresh
    if listed_all:
        state.low_ms = MIN_MS
    if job.store and state.newest_ms is not None and state.low_ms is not None and state.complete:
        job.store.add_coverage(job.source, agent_id, status_key, state.low_ms, state.newest_ms)
    if state.stopped_on_cache is None or not job.store:
        return state.fresh
    # Below the stop point everything was listed before: take it from the cache (with the
    # new summaries of runs still unfinished).
    until = state.stopped_on_cache if job.until_ms is None else min(state.stopped_on_cache, job.until_ms)
    have = {c.id for c in state.fresh}
    below = [
        Candidate(c.id, agent_id, c.created_ms, state.refreshed.get(c.id), c)
        for c in job.store.select(job.source, agent_id, since_ms=job.since_ms, until_ms=until)
        if c.id not in have
        and (not job.statuses or c.status in job.statuses or not c.finished)
    ]
    return state.fresh + below


@dataclass
class _Listing:
    """One agent's listing pass: the pages read so far, and where to stop."""

    job: FetchJob
    agent_id: str
    intervals: list[Any]
    unfinished: dict[str, Any]
    refreshed: dict[str, dict[str, Any]] = field(default_factory=dict)
    floor: int | None = None
    floor_known: bool = False
    fresh: list[Candidate] = field(default_factory=list)
    listed: dict[str, Candidate] = field(default_factory=dict)
    complete: bool = True  # every run of every page was readable
    newest_ms: int | None = None
    low_ms: int | None = None
    stopped_on_cache: int | None = None

    def take(self, page: list[dict[str, Any]]) -> bool:
        """Take one list page; True when the listing stops here."""
        job = self.job
        readable = job.good(self.agent_id, page, f"listed for agent {self.agent_id}")
        # A run turned away must be listed again next time: no coverage for this pass.
        self.complete = self.complete and len(readable) == len(page)
        known = job.store.lookup(job.source, [r["id"] for r in readable]) if job.store else {}
        seen: list[dict[str, Any]] = []
        stop = False
        for summary in readable:
            stop = self._summary(summary, known, seen)
            if stop:
                break
        if job.store and seen:
            job.store.put(job.source, seen, detailed=False, agent_names=job.agent_names)
        return stop

    def _summary(self, summary: dict[str, Any], known: dict[str, Any], seen: list[dict[str, Any]]) -> bool:
        """Take one run of a page; True when the listing stops at it."""
        job = self.job
        ms = epoch_ms(summary.get("created_at"))
        if ms is not None:
            self.newest_ms = ms if self.newest_ms is None else max(self.newest_ms, ms)
        if job.until_ms is not None and ms is not None and ms > job.until_ms:
            seen.append(summary)
            return False
        if job.since_ms is not None and ms is not None and ms < job.since_ms:
            self.low_ms = ms
            return True
        cached = known.get(summary["id"])
        if cached is not None and ms is not None and cached.finished and cached.status == summary.get("status"):
            lo = _covered_to_since(job, self.intervals, ms)
            if lo is not None:
                if not self.floor_known:
                    self.floor = _stop_floor(job, self.agent_id, ms, self.listed, self.unfinished, self.refreshed)
                    self.floor_known = True
                if self.floor is None or ms < self.floor:
                    self.low_ms, self.stopped_on_cache = lo, ms
                    return True
        seen.append(summary)
        if job.statuses and summary.get("status") not in job.statuses:
            return False
        if summary["id"] in self.listed:  # listed again (pages shift as runs arrive)
            self.listed[summary["id"]].summary = summary
            return False
        self.listed[summary["id"]] = candidate = Candidate(summary["id"], self.agent_id, ms, summary, cached)
        self.fresh.append(candidate)
        if job.max_runs and len(self.fresh) >= job.max_runs:
            self.low_ms = ms
            return True
        return False
