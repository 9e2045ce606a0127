"""Text summaries for the command line."""

from __future__ import annotations

import sys
from typing import TextIO

import pandas as pd



def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per agent (and a total): runs, statuses, disposition shares, duration, tokens, cost."""
    def one(group: pd.DataFrame) -> pd.Series:
        finished = group["status"].isin(["completed", "failed"])
        completed = group["status"].eq("completed")
        seconds = group["duration_ms"].astype("Float64") / 1000
        tokens = group["total_tokens"]
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


def print_summary(runs: pd.DataFrame, *, out: TextIO = sys.stdout, requests: int | None = None) -> pd.DataFrame:
    """Print the time span and :func:`summary_table` of a runs frame; return the table."""
    if len(runs):
        created = runs["created_at"]
        cost = f", {requests} requests" if requests is not None else ""
        print(f"{len(runs):,} runs from {created.min():%Y-%m-%d %H:%M} to "
              f"{created.max():%Y-%m-%d %H:%M} UTC{cost}", file=out)
    else:
        print("No runs.", file=out)
        return pd.DataFrame()
    table = summary_table(runs)
    formatters = {
        "runs": "{:,.0f}".format, "failed": "{:,.0f}".format, "in progress": "{:,.0f}".format,
        "resolved %": "{:.1f}".format, "escalated %": "{:.1f}".format,
        "p50 s": "{:.1f}".format, "p90 s": "{:.1f}".format,
        "tokens": "{:,.0f}".format, "cost USD": "${:,.2f}".format,
    }
    print(table.to_string(formatters=formatters), file=out)
    return table
