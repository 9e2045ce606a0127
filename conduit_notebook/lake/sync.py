"""Syncing many workspaces into one lake, from a small TOML file.

.. code-block:: toml

    lake = "/data/conduit-lake"      # where the lake is
    since = "30d"                    # a new workspace's first sync reaches back this far
    overlap = "2d"                   # later syncs start this far before the newest run stored
    traces = "auto"                  # as fetch_runs(details=): "auto", "all", "none" or a number

    [[workspaces]]
    id = "ws_paris"
    token_env = "CONDUIT_TOKEN_PARIS"   # the token is read from this environment variable
    rpm = 120                           # this workspace's own rate limit (default 120)

    [[workspaces]]
    id = "ws_lisbon"
    token_env = "CONDUIT_TOKEN_LISBON"
    base_url = "https://..."            # optional

Each workspace is fetched by its own client at its own pace, all at once (one thread each),
through the local cache, and written to the lake as soon as it is fetched (the lake lets one
writer in at a time). Resumable: a workspace that failed is tried again by the next sync, which
starts ``overlap`` before its newest stored run (runs still running then are fetched again and
upserted), and the cache means no finished trace is fetched twice. Tokens never leave the
environment: the file names variables, not tokens.
"""

from __future__ import annotations

import os
import sys
import tomllib
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..times import parse_time
from .layout import lake_files
from .write import write_lake

__all__ = ["SyncConfig", "WorkspaceSync", "load_sync_config", "newest_run", "sync_workspaces"]

_TOP_KEYS = {"lake", "since", "overlap", "traces", "workspaces"}
_WORKSPACE_KEYS = {"id", "token_env", "rpm", "base_url"}


@dataclass(frozen=True)
class WorkspaceSync:
    """One workspace of a sync: its id, the environment variable holding its token, its pace."""

    id: str
    token_env: str
    rpm: int = 120
    base_url: str | None = None


@dataclass(frozen=True)
class SyncConfig:
    """A sync configuration (see the module docstring for the file)."""

    lake: Path
    workspaces: list[WorkspaceSync] = field(default_factory=list)
    since: str = "30d"
    overlap: str = "2d"
    traces: bool | int | str = "auto"


def _problem(path: Path, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _workspace(entry: Any, path: Path, seen: set[str]) -> WorkspaceSync:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry.get("id"):
        raise _problem(path, f"each [[workspaces]] needs id = \"<workspace id>\"; got {entry!r}")
    unknown = set(entry) - _WORKSPACE_KEYS
    if unknown:
        raise _problem(path, f"workspace {entry['id']}: unknown keys {sorted(unknown)}; accepted: {sorted(_WORKSPACE_KEYS)}")
    if entry["id"] in seen:
        raise _problem(path, f"workspace {entry['id']} is listed twice")
    seen.add(entry["id"])
    token_env = entry.get("token_env")
    if not isinstance(token_env, str) or not token_env.isidentifier():
        raise _problem(path, f"workspace {entry['id']}: token_env must name an environment variable "
                             f"(token_env = \"CONDUIT_TOKEN_X\"), never the token itself")
    rpm = entry.get("rpm", 120)
    if not isinstance(rpm, int) or isinstance(rpm, bool) or rpm < 1:
        raise _problem(path, f"workspace {entry['id']}: rpm must be a whole number >= 1; got {rpm!r}")
    return WorkspaceSync(entry["id"], token_env, rpm, entry.get("base_url"))


def load_sync_config(path: str | os.PathLike[str]) -> SyncConfig:
    """Read and check a sync configuration (a TOML file); errors name the key at fault."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config must be a readable TOML file: {path}: {exc}") from exc
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _problem(path, f"unknown keys {sorted(unknown)}; accepted: {sorted(_TOP_KEYS)}")
    if not isinstance(data.get("lake"), str):
        raise _problem(path, "lake = \"<directory>\" is required")
    entries = data.get("workspaces")
    if not isinstance(entries, list) or not entries:
        raise _problem(path, "list at least one [[workspaces]] (id, token_env, rpm)")
    seen: set[str] = set()
    workspaces = [_workspace(entry, path, seen) for entry in entries]
    for key in ("since", "overlap"):
        if key in data:
            parse_time(data[key], key)  # checked now, not after the first workspace's fetch
    traces = {"all": True, "none": False}.get(data.get("traces", "auto"), data.get("traces", "auto"))
    if traces != "auto" and not isinstance(traces, bool) and not (isinstance(traces, int) and traces >= 0):
        raise _problem(path, f"traces must be \"auto\", \"all\", \"none\" or a number of runs; got {traces!r}")
    lake = Path(data["lake"]).expanduser()
    if not lake.is_absolute():
        lake = path.parent / lake
    return SyncConfig(lake, workspaces, str(data.get("since", "30d")), str(data.get("overlap", "2d")),
                      traces)


def newest_run(lake: Path, workspace: str) -> pd.Timestamp | None:
    """The newest ``created_at`` stored for ``workspace`` (from the files' statistics where
    they have them; None for a workspace not yet in the lake)."""
    files = [f for f in lake_files(lake, "runs", [workspace]) if f.month != "none"]
    if not files:
        return None
    newest = max(f.month for f in files)
    paths = [str(f.path) for f in files if f.month == newest]
    column = ds.dataset(paths, format="parquet").to_table(columns=["created_at"])["created_at"]
    value = pc.max(column).as_py()
    return pd.Timestamp(value) if value is not None else None


def _since(config: SyncConfig, workspace: str) -> Any:
    newest = newest_run(config.lake, workspace)
    if newest is None:
        return config.since
    return parse_time(config.overlap, "overlap", now=newest.to_pydatetime())


def _escalations(client: Any, since: Any) -> tuple[pd.DataFrame | None, str | None]:
    """The workspace's escalations, or None and why (the runs are written all the same)."""
    from ..errors import ConduitError
    from ..escalations import fetch_escalations

    try:
        with warnings.catch_warnings():  # unreadable ones are counted in the problem instead
            warnings.simplefilter("ignore", UserWarning)
            escalations = fetch_escalations(client=client, since=since)
    except ConduitError as exc:
        return None, f"escalations not synced: {exc}"
    unread = escalations.attrs.get("errors")
    return escalations, (f"{len(unread)} escalation(s) unreadable" if unread is not None and len(unread) else None)


def _sync_one(config: SyncConfig, workspace: WorkspaceSync, progress: bool) -> dict[str, Any]:
    from ..client import ConduitClient
    from ..fetch import fetch_runs

    row: dict[str, Any] = {"workspace": workspace.id, "runs": 0, "errors": 0, "requests": 0, "problem": None}
    token = os.environ.get(workspace.token_env)
    if not token:
        row["problem"] = f"environment variable {workspace.token_env} is not set"
        return row
    try:
        since = _since(config, workspace.id)
        with ConduitClient(token, base_url=workspace.base_url, workspace_id=workspace.id,
                           requests_per_minute=workspace.rpm) as client:
            frames = fetch_runs(client=client, since=since, details=config.traces, progress=progress)
            escalations, row["problem"] = _escalations(client, since)
        write_lake(frames, config.lake, workspace=workspace.id, escalations=escalations)
        row.update(runs=len(frames.runs), errors=len(frames.errors), requests=frames.stats.requests,
                   since=pd.Timestamp(frames.since) if frames.since is not None else None)
    except Exception as exc:  # one workspace's failure does not stop the others; the next sync retries it
        row["problem"] = f"{type(exc).__name__}: {exc}"
    return row


def sync_workspaces(config: SyncConfig | str | os.PathLike[str], *, progress: bool | None = None) -> pd.DataFrame:
    """Fetch every workspace of ``config`` at its own pace, all at once, into the lake; one row
    per workspace: runs written, fetch errors, requests, and ``problem`` (None when it went
    through; such a workspace is tried again by the next sync).

    >>> sync_workspaces("sync.toml")
    """
    if not isinstance(config, SyncConfig):
        config = load_sync_config(config)
    show = sys.stderr.isatty() if progress is None else progress
    with ThreadPoolExecutor(max_workers=len(config.workspaces), thread_name_prefix="lake-sync") as pool:
        rows = list(pool.map(lambda w: _sync_one(config, w, show), config.workspaces))
    return pd.DataFrame(rows, columns=["workspace", "runs", "errors", "requests", "since", "problem"])
