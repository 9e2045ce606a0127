"""The state of one fetch (:class:`FetchJob`) and the runs it considers (:class:`Candidate`),
shared by the listing (:mod:`conduit_notebook.listing`), the traces
(:mod:`conduit_notebook.traces`) and :func:`conduit_notebook.fetch_runs`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cache import CachedRun, RunCache
from .client import ConduitClient
from .errors import ConduitError
from .progress import progress_bar
from .records import dedupe, record_problem
from .runframes import FetchStats

__all__ = ["Candidate", "FetchJob", "progress_bar"]


@dataclass
class Candidate:
    """A run in the window: its list summary (None if known only from the cache), its cached
    state, and whether its full record must be fetched."""

    id: str
    agent_id: str
    created_ms: int | None
    summary: dict[str, Any] | None
    cached: CachedRun | None
    fetch: bool = False
    has_trace: bool = False  # its trace is at hand (the cache) and still holds
    drawn: bool = True  # in the random trace sample (False: a trace at hand stays out of estimates)


class FetchJob:
    """What one fetch is doing: its settings, its stats, the error rows so far and the full
    records fetched. :mod:`listing` and :mod:`traces` do the work, on a job."""

    def __init__(self, client: ConduitClient, store: RunCache | None, *, since_ms: int | None,
                 until_ms: int | None, statuses: tuple[str, ...], details: bool | int | str,
                 max_runs: int | None, progress: bool, agent_names: dict[str, str | None], seed: int = 0,
                 refresh: bool = False) -> None:
        self.client = client
        self.refresh = refresh  # list the whole window and fetch every run's details again
        self.store = store
        self.source = f"{client.base_url}#{client.workspace_id or ''}"
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.statuses = statuses
        self.details = details
        self.seed = seed
        self.max_runs = max_runs
        self.progress = progress
        self.agent_names = agent_names
        self.stats = FetchStats()
        self.errors: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # full records fetched in this call

    def failed(self, agent_id: str, run_id: str | None, exc: ConduitError) -> None:
        """A page or a run that could not be fetched after retries: a row of errors."""
        self.errors.append({"agent_id": agent_id, "agent_run_id": run_id,
                            "status_code": getattr(exc, "status_code", None),
                            "error": str(exc), "attempts": getattr(exc, "attempts", None)})

    def turn_away(self, agent_id: str | None, record: Any, problem: str, where: str) -> None:
        """A record that cannot be framed or cached: a row of errors, with the reason."""
        run_id = record.get("id") if isinstance(record, Mapping) else None
        self.errors.append({
            "agent_id": agent_id, "agent_run_id": run_id if isinstance(run_id, str) else None,
            "status_code": None, "attempts": None,
            "error": f"A run {where} could not be read: {problem}. It was left out (and not cached).",
        })

    def good(self, agent_id: str, page: list[Any], where: str) -> list[dict[str, Any]]:
        """The page's readable records, each once (a run listed twice: the later copy)."""
        ok: list[dict[str, Any]] = []
        for record in page:
            problem = record_problem(record)
            if problem is None:
                ok.append(record)
            else:
                self.turn_away(agent_id, record, problem, where)
        return dedupe(ok)
