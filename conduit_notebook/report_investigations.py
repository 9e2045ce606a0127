"""The report's investigation sections: Changes (change points, each metric in its format and
drawn), Compare (the last week against the one before, Holm across rows), Tool paths, Repeated
calls and Conversations. Re-exported by :mod:`conduit_notebook.report`."""

from __future__ import annotations

import html

import pandas as pd

from .formatting import (
    COUNT,
    MISSING,
    PERCENT,
    SECONDS,
    USD_PER_RUN,
    WHOLE,
    format_metric,
    format_table,
)
from .report_page import png_html

__all__ = ["compare_html", "investigation_sections"]


# -- investigations -------------------------------------------------------------------------

def _signed(metric: str, value: float) -> str:
    text = format_metric(metric, abs(value)) if pd.notna(value) else MISSING
    # A change that rounds to zero has no sign: not "−$0.0000" or "−0.0%".
    return text if text in (MISSING, format_metric(metric, 0.0)) else ("+" if value > 0 else "−") + text


def compare_html(table: pd.DataFrame) -> str:
    """A :func:`compare` table as HTML: values in each metric's own format, the interval in
    brackets, Holm's p-value, significant rows marked."""
    rows = []
    for metric, row in table.iterrows():
        key = "share" if str(metric).startswith("disposition:") else str(metric)
        if metric == "disposition_mix":
            a = b = MISSING
            difference = f"{row['difference']:.3f} (TV distance)" if pd.notna(row["difference"]) else MISSING
        else:
            a, b = format_metric(key, row["a"]), format_metric(key, row["b"])
            difference = _signed(key, row["difference"])
        interval = (f"[{_signed(key, row['ci_low'])}, {_signed(key, row['ci_high'])}]"
                    if pd.notna(row["ci_low"]) else MISSING)
        rows.append({"metric": metric, "a": a, "b": b, "difference": difference, "95% interval": interval,
                     "p (Holm)": MISSING if pd.isna(row["p_holm"]) else f"{row['p_holm']:.3g}",
                     "significant": "yes" if row["significant"] else _not_significant(row)})
    return format_table(pd.DataFrame(rows), index=False)


def _changes_html(changes: pd.DataFrame, by: str) -> str:
    """The change points as a table, each metric's levels in its own format (a rate in %, a
    cost in $, a duration in s), the change signed."""
    if not len(changes):
        return "<p class='note'>No level shifts or trends found.</p>"
    rows = [{"metric": row["metric"], by: row[by], "at": f"{row['at']:%Y-%m-%d}",
             "before": format_metric(row["metric"], row["before"]),
             "after": format_metric(row["metric"], row["after"]),
             "change": _signed(row["metric"], row["change"]), "kind": row["kind"]} for _, row in changes.iterrows()]
    return format_table(pd.DataFrame(rows), index=False)


def _not_significant(row: pd.Series) -> str:
    """Why a row is not significant when its own interval leaves 0 out: Holm's adjustment across
    the rows (the interval is the row's own, unadjusted)."""
    if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]) and (row["ci_low"] > 0 or row["ci_high"] < 0):
        return "no, after Holm's adjustment"
    return "no" if pd.notna(row["p_holm"]) else ""


def _halves(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The last 7 days against the 7 before when the window holds both, else its two halves."""
    created = runs["created_at"]
    end = created.max()
    if end - created.min() >= pd.Timedelta(days=14):
        cut = end - pd.Timedelta(days=7)
        a = runs[(created >= cut - pd.Timedelta(days=7)) & (created < cut)]
        return a, runs[created >= cut], "the 7 days before the last 7 days (a) against the last 7 days (b)"
    cut = created.min() + (end - created.min()) / 2
    return runs[created < cut], runs[created >= cut], "the first half of the window (a) against the second (b)"


def investigation_sections(runs: pd.DataFrame, calls: pd.DataFrame, by: str) -> list[str]:
    """The report's Changes, Compare, Tool paths, Repeated calls and Conversations sections."""
    return (_changes_sections(runs, by) + _paths_section(runs, calls) + _repeats_section(runs, calls)
            + _conversations_section(runs))


def _changes_sections(runs: pd.DataFrame, by: str) -> list[str]:
    """Changes (the change points of four metrics, and their charts) and Compare (two halves)."""
    from . import investigate, plots

    parts = ["<h2 id='changes'>Changes</h2>",
             "<p class='note'>Days where a metric's level shifted, per agent (penalised segmentation "
             "by PELT; see <code>change_points</code>). A <i>trend</i> moved from <i>before</i> to <i>after</i> "
             "over its days in a way a steady drift explains as well as a step.</p>"]
    found = []
    if len(runs) and runs["created_at"].notna().any():
        for metric in ("escalation_rate", "failure_rate", "cost_per_run", "p90_duration_s"):
            table = investigate.change_points(runs, metric=metric, by=by)
            found.append(table.assign(metric=metric))
        changes = pd.concat(found, ignore_index=True)
        parts += [_changes_html(changes, by)]
        # The chart of each metric that changed (the escalation rate when none did): the table's rows, drawn.
        for metric in list(dict.fromkeys(changes["metric"])) or ["escalation_rate"]:
            parts.append(png_html(lambda ax, m=metric: plots.plot_change_points(runs, metric=m, by=by, ax=ax),
                                  figsize=(10, 4.2)))
        a, b, what = _halves(runs)
        table = investigate.compare(a, b)
        parts += ["<h2 id='compare'>Compare</h2>",
                  f"<p class='note'>{html.escape(what)}: {len(a):,} against {len(b):,} runs; 95% intervals, "
                  "p-values adjusted across rows by Holm's method. An interval is the row's own: one that leaves 0 "
                  "out can still be not significant once the rows are adjusted together.</p>",
                  compare_html(table), png_html(lambda ax: plots.plot_compare(table, ax=ax), figsize=(10, 5.5))]
    return parts


def _paths_section(runs: pd.DataFrame, calls: pd.DataFrame) -> list[str]:
    """The commonest tool paths and the paths whose runs escalate most."""
    from . import investigate, plots

    parts: list[str] = []
    paths = investigate.tool_paths(calls, runs) if len(calls) else pd.DataFrame()
    path_formats = {"runs": WHOLE, "traced_runs": COUNT, "share": PERCENT, "share_low": PERCENT, "share_high": PERCENT,
                    "disposition:escalated": PERCENT, "p50_duration_s": SECONDS, "cost_per_run": USD_PER_RUN}
    parts += ["<h2 id='tool-paths'>Tool paths</h2>",
              "<p class='note'>The commonest ordered sequences of tool calls in a run, and how their runs ended"
              + (f" ({html.escape(paths.attrs['note'])}, each weighted by its <code>trace_weight</code>)"
                 if paths.attrs.get("note") else "") + ".</p>",
              format_table(paths.head(10)[[c for c in ["path", *path_formats] if c in paths]] if len(paths) else paths,
                           path_formats, index=False)]
    if len(calls):
        parts.append(png_html(lambda ax: plots.plot_tool_paths(calls, runs=runs, ax=ax), figsize=(11, 5)))
    if "disposition:escalated" in paths:
        # Issue 21 item 4: the threshold is on traced runs (a weighted 10 can rest on 1-3 traces).
        ending = paths[paths.get("traced_runs", paths["runs"]) >= 10].sort_values("disposition:escalated",
                                                                              ascending=False, kind="stable")
        parts += ["<h3>Paths whose runs escalate most often (10 traced runs or more)</h3>",
                  format_table(ending.head(8)[[c for c in ["path", *path_formats] if c in paths]], path_formats,
                               index=False)]
    return parts


def _repeats_section(runs: pd.DataFrame, calls: pd.DataFrame) -> list[str]:
    """Runs that called a tool again with the same input, per agent, and the most repeated calls."""
    from . import investigate

    parts: list[str] = []
    parts += ["<h2 id='repeated-calls'>Repeated calls</h2>"]
    if len(calls):
        repeats = investigate.repeated_calls(calls, runs)
        rates = investigate.repeat_rates(calls, runs, repeats=repeats)
        note = rates.attrs.get("note")
        parts.append("<p class='note'>Runs that called a tool again with the same input (share of each agent's runs, "
                     + (f"{html.escape(note)}: a ratio estimate weighted by <code>trace_weight</code>, 95% Wilson "
                        "interval at the design's effective sample size), and the most repeated calls of the traced "
                        "runs.</p>" if note else "95% Wilson interval), and the most repeated calls.</p>"))
        shown = repeats.head(10)[[c for c in ("agent_run_id", "agent_name", "name", "times", "input", "total_cost")
                                  if c in repeats]]
        parts += [format_table(rates, {"runs": COUNT, "traced_runs": COUNT, "runs_with_repeat": WHOLE if note else COUNT,
                                       "share": PERCENT, "ci_low": PERCENT, "ci_high": PERCENT}),
                  format_table(shown, {"total_cost": USD_PER_RUN}, index=False)]
    else:
        parts.append("<p class='note'>No tool calls.</p>")
    return parts


def _conversations_section(runs: pd.DataFrame) -> list[str]:
    """The conversations: cards and the most expensive ones."""
    from . import investigate

    parts: list[str] = []
    threads = investigate.conversations(runs) if len(runs) else pd.DataFrame()
    parts += ["<h2 id='conversations'>Conversations</h2>"]
    if len(threads):
        ended = threads["final_disposition"].astype(object)
        cards = [("conversations", f"{len(threads):,}"), ("runs per conversation", f"{threads['runs'].mean():.1f}"),
                 ("with an escalation", f"{threads['escalated'].mean():.1%}"),
                 ("ending with a person", f"{ended.isin(['escalated', 'handed_off']).mean():.1%}"),
                 ("cost per conversation", format_metric("cost_per_run", threads["total_cost"].mean()))]
        top = threads.head(8).drop(columns="contact_id", errors="ignore").assign(
            first_at=lambda t: t["first_at"].dt.strftime("%Y-%m-%d"), last_at=lambda t: t["last_at"].dt.strftime("%Y-%m-%d"))
        parts += ["<div class='cards'>" + "".join(f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>"
                                                  for k, v in cards) + "</div>",
                  "<h3>Most expensive conversations</h3>",
                  format_table(top, {"total_cost": USD_PER_RUN, "total_tokens": COUNT})]
    else:
        parts.append("<p class='note'>No conversations.</p>")
    return parts
