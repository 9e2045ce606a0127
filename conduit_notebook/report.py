"""Text summaries for the command line."""

from __future__ import annotations

import sys
from typing import TextIO

import pandas as pd

from .client import ConduitClient


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per agent (and a total): runs, statuses, disposition shares, duration, tokens, cost."""
    def one(group: pd.DataFrame) -> pd.Series:
        finished = group["status"].isin(["completed", "failed"])
        completed = group["status"].eq("completed")
        seconds = group["duration_ms"].astype("Float64") / 1000
        tokens = group["input_tokens"].astype("Int64") + group["output_tokens"].astype("Int64")
        return pd.Series({
            "runs": len(group),
            "failed": int(group["status"].eq("failed").sum()),
            "in progress": int((~finished).sum()),
            "resolved %": 100 * group.loc[completed, "disposition"].eq("resolved").mean()
            if completed.any() else float("nan"),
            "escalated %": 100 * group.loc[completed, "disposition"].eq("escalated").mean()
            if completed.any() else float("nan"),
            "p50 s": seconds.median(),
            "p90 s": seconds.quantile(0.9) if seconds.notna().any() else float("nan"),
            "tokens": int(tokens.sum()),
            "cost USD": float(group["total_cost"].sum()),
        })

    rows = {name: one(group) for name, group in runs.groupby("agent_name", sort=True, observed=True)}
    rows["(all agents)"] = one(runs)
    return pd.DataFrame(rows).T


def print_summary(client: ConduitClient, *, out: TextIO = sys.stdout) -> pd.DataFrame:
    """List every agent's run summaries (100 a request) and print a table per agent."""
    records = []
    for agent in client.iter_agents():
        for run in client.iter_runs(agent["id"]):
            usage = run.get("token_usage") or {}
            records.append({
                "agent_name": agent.get("name") or agent["id"],
                "status": run.get("status"),
                "disposition": run.get("disposition"),
                "duration_ms": run.get("duration_ms"),
                "input_tokens": usage.get("input"),
                "output_tokens": usage.get("output"),
                "total_cost": run.get("total_cost"),
                "created_at": run.get("created_at"),
            })
    runs = pd.DataFrame.from_records(
        records,
        columns=["agent_name", "status", "disposition", "duration_ms", "input_tokens",
                 "output_tokens", "total_cost", "created_at"],
    )
    table = summary_table(runs)
    created = pd.to_datetime(runs["created_at"], utc=True, format="ISO8601")
    if len(runs):
        print(f"{len(runs):,} runs from {created.min():%Y-%m-%d %H:%M} to "
              f"{created.max():%Y-%m-%d %H:%M} UTC, {client.stats.requests} requests", file=out)
    else:
        print("No runs.", file=out)
    formatters = {
        "runs": "{:,.0f}".format, "failed": "{:,.0f}".format, "in progress": "{:,.0f}".format,
        "resolved %": "{:.1f}".format, "escalated %": "{:.1f}".format,
        "p50 s": "{:.1f}".format, "p90 s": "{:.1f}".format,
        "tokens": "{:,.0f}".format, "cost USD": "${:,.2f}".format,
    }
    print(table.to_string(formatters=formatters), file=out)
    return table
