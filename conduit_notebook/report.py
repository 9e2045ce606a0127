"""Reports: a text summary for the terminal and a self-contained HTML report.

>>> from conduit_notebook.report import html_report
>>> Path("report.html").write_text(html_report(fetch_runs(since="7d")))
"""

from __future__ import annotations

import html
import sys
import warnings
from typing import Any, TextIO, cast

import numpy as np
import pandas as pd

from . import times
from .analysis import cost_breakdown, summarize, tool_stats
from .formatting import (
    COUNT,
    PERCENT,
    SECONDS,
    SUMMARY_FORMATS,
    USD,
    USD_PER_RUN,
    WHOLE,
    format_metric,
    format_table,
    text_table,
)
from .report_investigations import compare_html, investigation_sections
from .report_page import glossary_html, page_html, png_html

__all__ = ["compare_html", "html_report", "investigation_sections", "print_summary", "summary_table"]

REPORT_SECTIONS = ("Overview", "By agent", "Cost", "Dispositions", "Duration", "Tokens", "Tools",
                   "Outliers", "Changes", "Compare", "Tool paths", "Repeated calls", "Conversations",
                   "What happened after the runs", "Errors")
#: Sections shown when their data is given (escalations=, reviews=).
OPTIONAL_SECTIONS = ("Escalations", "Disposition review")
ESCALATION_FORMATS = {"escalations": COUNT, "pending": COUNT, "reviewed": COUNT, "resolved": COUNT,
                      "dismissed": COUNT, "dismissed %": "{:.0%}", "p50 h to review": "{:.1f}",
                      "p90 h to review": "{:.1f}", "oldest pending h": WHOLE}
ACCURACY_FORMATS = {"reviewed": COUNT, "correct": COUNT, "unsure": COUNT, "accuracy": PERCENT,
                    "ci_low": PERCENT, "ci_high": PERCENT, "population": COUNT, "unreviewed_share": "{:.0%}"}
#: :func:`summary_table` in a terminal.
TERMINAL_FORMATS = {"runs": WHOLE, "failed": WHOLE, "in progress": WHOLE, "resolved %": "{:.1f}",
                    "escalated %": "{:.1f}", "p50 s": SECONDS, "p90 s": SECONDS, "tokens": WHOLE, "cost USD": USD}
#: The cost table: :func:`cost_breakdown`'s metric columns.
COST_FORMATS = SUMMARY_FORMATS


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per agent (and a total): runs, failed, in progress, resolved and escalated shares
    of completed runs, p50/p90 duration, tokens and cost, from :func:`summarize`."""
    by = "agent_name" if runs["agent_name"].notna().any() else "agent_id"
    total = "(all agents)"
    stats = pd.concat([summarize(runs, by=by), summarize(runs).set_axis([total])])
    key = pd.concat([runs[by].astype(object), pd.Series(total, index=runs.index)], ignore_index=True)
    twice = pd.concat([runs, runs], ignore_index=True)
    status = pd.crosstab(key, twice["status"].astype(object)).reindex(index=stats.index, fill_value=0)
    completed = (twice["status"] == "completed").to_numpy()
    mix = pd.crosstab(key[completed], twice.loc[completed, "disposition"].astype(object), normalize="index")
    mix = mix.reindex(index=stats.index)

    def column(frame: pd.DataFrame, name: str) -> pd.Series:
        return frame[name] if name in frame else pd.Series(0, index=frame.index)

    return pd.DataFrame({
        "runs": stats["runs"],
        "failed": column(status, "failed"),
        "in progress": column(status, "accepted") + column(status, "running"),
        "resolved %": 100 * column(mix, "resolved"),
        "escalated %": 100 * column(mix, "escalated"),
        "p50 s": stats["p50_duration_s"],
        "p90 s": stats["p90_duration_s"],
        "tokens": stats["total_tokens"],
        "cost USD": stats["total_cost"],
    })


def print_summary(runs: pd.DataFrame, *, out: TextIO | None = None, requests: int | None = None) -> pd.DataFrame:
    """Print the time span and :func:`summary_table` of a runs frame (to ``out``, default the
    current ``sys.stdout``); return the table."""
    out = sys.stdout if out is None else out  # looked up now: a notebook or test may swap it
    if len(runs):
        created = runs["created_at"]
        cost = f", {requests} requests" if requests is not None else ""
        print(f"{len(runs):,} runs from {created.min():%Y-%m-%d %H:%M} to "
              f"{created.max():%Y-%m-%d %H:%M} UTC{cost}", file=out)
    else:
        print("No runs.", file=out)
        return pd.DataFrame()
    table = summary_table(runs)
    print(text_table(table, TERMINAL_FORMATS), file=out)
    return table


# -- HTML -----------------------------------------------------------------------------------

def _with_intervals(tools: pd.DataFrame) -> pd.DataFrame:
    """Estimated tool numbers as text with their 95% intervals: "1,234 (1,100–1,350)"."""
    shown = tools.copy()
    for column, spec in (("calls", WHOLE), ("runs_using", WHOLE), ("share_of_runs", PERCENT)):
        # Plain spaces (a copied number pastes as one): the style sheet keeps the cell on one line.
        shown[column] = [f"≈{spec.format(v)} ({spec.format(lo)}–{spec.format(hi)})"
                         for v, lo, hi in zip(tools[column], tools[f"{column}_low"], tools[f"{column}_high"], strict=False)]
    return shown


def _without_infinities(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """``runs`` with infinite numbers (a cost of Infinity from a frame made by hand) taken as
    missing, and how many each column had: a sum or an axis cannot hold one."""
    found: dict[str, int] = {}
    for column in runs.columns:
        if pd.api.types.is_float_dtype(runs[column].dtype):
            bad = np.isinf(runs[column].to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                found[column] = int(bad.sum())
    if not found:
        return runs, found
    runs = runs.copy()
    for column in found:
        runs[column] = runs[column].where(~np.isinf(runs[column].to_numpy(dtype=float, na_value=np.nan)))
    return runs, found


def html_report(frames: Any, *, title: str = "Conduit agent runs", escalations: pd.DataFrame | None = None,
                reviews: pd.DataFrame | None = None, judge: pd.Series | None = None) -> str:
    """A self-contained HTML report of a :class:`RunFrames`: overview, tables by agent and
    disposition, cost per resolved run, embedded plots, top tools, outliers and errors.

    ``escalations`` (from :func:`fetch_escalations`) adds what operators did with them;
    ``reviews`` (verdicts: ``ReviewStore(path).load()``) adds the disposition review's accuracy,
    weighted back to these runs, with intervals and the reviewers' agreement."""
    runs, calls, errors = frames.runs, frames.tool_calls, frames.errors
    runs, infinite = _without_infinities(runs)
    traced = (int(runs["trace_weight"].notna().sum()) if "trace_weight" in runs
              else len(runs) if len(calls) else 0)
    by = "agent_name" if runs["agent_name"].notna().any() else "agent_id"
    parts = _overview(frames, runs, title, traced, infinite)
    parts += _usage_sections(runs, by)
    parts += _tools_section(runs, calls, traced)
    parts += _outliers_section(runs, by)
    parts += investigation_sections(runs, calls, by)
    if escalations is not None:
        parts += _escalation_section(escalations, runs)
    parts += _after_section(runs, escalations, by)
    if reviews is not None:
        parts += _review_section(reviews, runs, escalations, judge)
    parts += ["<h2 id='errors'>Errors</h2>",
              format_table(errors, index=False) if len(errors) else
              "<p class='note'>None: every listed run was fetched.</p>"]
    return page_html(title, parts)


def _overview(frames: Any, runs: pd.DataFrame, title: str, traced: int, infinite: dict[str, int]) -> list[str]:
    """The title, the window and the cards (the "all runs" rows of the tables below: the same
    names, the same numbers)."""
    calls, errors = frames.tool_calls, frames.errors
    created = runs["created_at"].dropna()
    window = _window(frames)
    span = (f"{created.min():%Y-%m-%d %H:%M} to {created.max():%Y-%m-%d %H:%M} UTC"
            if len(created) else f"no runs in the window {window}" if window else "no runs")
    if window and len(created):
        span = f"window {window}; runs from {span}"
    total = {**cost_breakdown(runs, by=None).iloc[0].to_dict(), **summarize(runs).iloc[0].to_dict()}
    cards = [
        ("runs", f"{len(runs):,}"),
        ("runs with traces", f"{traced:,}" if traced == len(runs) else f"{traced:,} ({traced / max(len(runs), 1):.0%})"),
        ("agents with runs", f"{runs['agent_id'].nunique():,}"),
        ("tool calls" if traced == len(runs) else "tool calls fetched", f"{len(calls):,}"),
        ("total cost", format_metric("total_cost", total["total_cost"])),
        ("cost per run", format_metric("cost_per_run", total["cost_per_run"])),
        ("cost per resolved run", format_metric("cost_per_resolved_run", total["cost_per_resolved_run"])),
        ("failure rate", format_metric("failure_rate", total["failure_rate"])),
        ("errors", f"{len(errors):,}"),
    ]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>{html.escape(span)} · generated {times.utc_now():%Y-%m-%d %H:%M} UTC · "
        f"source {html.escape(str(getattr(frames, 'source', '')))}</p>",
        "<h2 id='overview'>Overview</h2><div class='cards'>"
        + "".join(f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in cards) + "</div>",
    ]
    if infinite:
        parts.append("<p class='note'>Counted as missing (not a number a sum or a plot can hold): "
                     + ", ".join(f"{n:,} infinite {html.escape(c)}" for c, n in infinite.items()) + ".</p>")
    if len(runs) and not len(created):
        parts.append("<p class='note'>No run has a readable created_at: the plots over time are empty.</p>")
    return parts


def _usage_sections(runs: pd.DataFrame, by: str) -> list[str]:
    """By agent, cost, dispositions, duration and tokens: tables and plots."""
    from . import plots

    by_agent = summarize(runs, by=by)
    parts = ["<h2 id='by-agent'>By agent</h2>", format_table(by_agent, SUMMARY_FORMATS),
             glossary_html(list(by_agent.columns))]
    parts += ["<h2 id='cost'>Cost</h2>",
              "<p class='note'>Cost per resolved run: the cost of all of a group's runs divided by its "
              "resolved runs.</p>",
              format_table(cost_breakdown(runs, by=by), COST_FORMATS),
              glossary_html(["resolved_runs", "output_token_share", "cost_share", "cost_per_run",
                         "cost_per_resolved_run"]),
              "<div class='grid'>", png_html(lambda ax: plots.plot_cost(runs, by=by, ax=ax)),
              png_html(lambda ax: plots.plot_cost(runs, by=by, freq="D", ax=ax)), "</div>"]
    # Failed runs have no disposition, so a failure rate per disposition would be 0 by construction.
    parts += ["<h2 id='dispositions'>Dispositions</h2>",
              "<p class='note'>Completed runs by disposition (failed and unfinished runs have none).</p>",
              format_table(summarize(runs, by="disposition").drop(columns="failure_rate"), SUMMARY_FORMATS),
              png_html(lambda ax: plots.plot_dispositions(runs, freq="D", ax=ax), figsize=(10, 4))]
    parts += ["<h2 id='duration'>Duration</h2><div class='grid'>",
              png_html(lambda ax: plots.plot_duration(runs, by=by, ax=ax)),
              png_html(lambda ax: plots.plot_duration_vs_tokens(runs, ax=ax)), "</div>"]
    parts += ["<h2 id='tokens'>Tokens</h2><div class='grid'>",
              png_html(lambda ax: plots.plot_tokens(runs, by=by, ax=ax)),
              png_html(lambda ax: plots.plot_tokens(runs, freq="D", ax=ax)), "</div>"]
    return parts


def _tools_section(runs: pd.DataFrame, calls: pd.DataFrame, traced: int) -> list[str]:
    """The top tools: counts, or estimates with intervals from a trace sample."""
    from . import plots

    with warnings.catch_warnings():  # the failed traces' warning is the note below
        warnings.filterwarnings("ignore", message="tool_stats: .* traces failed", category=UserWarning)
        tools = tool_stats(calls, runs) if len(calls) else pd.DataFrame()
    tool_formats = {"calls": COUNT, "runs_using": COUNT, "share_of_runs": PERCENT, "calls_per_run": "{:.2f}",
                    "p50_duration_s_with": SECONDS, "p50_duration_s_without": SECONDS,
                    "cost_per_run_with": USD_PER_RUN, "cost_per_run_without": USD_PER_RUN, "flag": "{}"}
    parts = ["<h2 id='tools'>Tools</h2>"]
    if "calls_low" in tools:
        parts.append(f"<p class='note'>Estimated for all {len(runs):,} runs from {traced:,} traced runs (a "
                     "stratified sample by agent, disposition and status; each traced run weighted by its "
                     "stratum's runs / traced runs), with 95% intervals. <code>frames.fetch_traces()</code> or "
                     "<code>conduit-notebook sync</code> fetches the other traces."
                     + (f" {html.escape(tools.attrs['note'][0].upper() + tools.attrs['note'][1:])}."
                        if tools.attrs.get("note") else "")
                     + (f" {html.escape(tools.attrs['flags'])}" if tools.attrs.get("flags") else "") + "</p>")
        tools = _with_intervals(tools[tools["traced_runs"] > 0] if "traced_runs" in tools else tools)
        tool_formats.update(calls="{}", runs_using="{}", share_of_runs="{}")
    return parts + [format_table(tools.head(12)[[c for c in tool_formats if c in tools]] if len(tools) else tools,
                                 tool_formats),
                    png_html(lambda ax: plots.plot_tool_usage(calls, by="disposition", runs=runs, ax=ax),
                             figsize=(10, 5))]


def _outliers_section(runs: pd.DataFrame, by: str) -> list[str]:
    """The slowest and the most expensive runs."""
    columns = ["id", by, "status", "disposition", "created_at", "duration_ms", "total_tokens", "total_cost"]
    parts = ["<h2 id='outliers'>Outliers</h2>",
             "<p class='note'>The slowest and the most expensive runs (largest values first).</p>"]
    for column, label in (("duration_ms", "Slowest"), ("total_cost", "Most expensive")):
        found = runs.nlargest(8, column)[[c for c in columns if c in runs]]
        parts += [f"<h3>{label}</h3>", format_table(found, {"duration_ms": COUNT, "total_tokens": COUNT,
                                                          "total_cost": USD_PER_RUN}, index=False)]
    return parts


def _window(frames: Any) -> str:
    """The window the runs were fetched for ("2026-11-13 00:00 to 2026-11-20 15:00 UTC"), or ""
    for frames that do not say."""
    since, until = getattr(frames, "since", None), getattr(frames, "until", None)
    if since is None and until is None:
        return ""
    def utc(value: Any) -> pd.Timestamp:
        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC") if stamp.tzinfo is not None else stamp

    return (f"{'the start' if since is None else f'{utc(since):%Y-%m-%d %H:%M}'} to "
            f"{'now' if until is None else f'{utc(until):%Y-%m-%d %H:%M}'} UTC")


def _escalation_section(escalations: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    from .escalations import escalation_summary

    if not len(escalations):
        return ["<h2 id='escalations'>Escalations</h2><p class='note'>No escalations in this workspace.</p>"]
    by = "agent_name" if runs["agent_name"].notna().any() else "agent_id"
    names = {"dismissed_share": "dismissed %", "p50_hours_to_review": "p50 h to review",
             "p90_hours_to_review": "p90 h to review", "oldest_pending_hours": "oldest pending h"}
    by_agent = escalation_summary(escalations, runs, by=by).rename(columns=names)
    by_reason = escalation_summary(escalations, runs, by="disposition_reason").rename(columns=names)
    top = by_reason.drop("(all)").head(10)
    total = by_agent.loc["(all)"]
    return [
        "<h2 id='escalations'>Escalations</h2>",
        f"<p class='note'>What Conduit's operators did with the {int(cast(Any, total['escalations'])):,} escalations "
        "(GET /v1/escalations), joined to the runs by agent_run_id. <b>Dismissed</b>: closed without "
        "acting, a sign the escalation was not needed; the share is of those handled. Hours to review: "
        "from the escalation to the operator's decision. Pending: the backlog, and the age of its "
        "oldest escalation.</p>",
        format_table(by_agent, ESCALATION_FORMATS),
        "<h3>By reason (the 10 most frequent)</h3>",
        "<div class='wide-first'>" + format_table(top, ESCALATION_FORMATS) + "</div>",
    ]


def _after_section(runs: pd.DataFrame, escalations: pd.DataFrame | None, by: str) -> list[str]:
    """What happened after the runs: resolutions that did not hold, escalations dismissed."""
    from .conversation_outcomes import escalation_quality
    from .plots import plot_escalation_quality

    head = ["<h2 id='after-the-runs'>What happened after the runs</h2>"]
    if "conversation_id" not in runs or not runs["conversation_id"].notna().any():
        return head + ["<p class='note'>No run has a conversation_id: nothing to follow.</p>"]
    quality = escalation_quality(runs, escalations, by=by)
    shown = quality[["resolved_runs", "resolved_judged", "came_back_rate", "came_back_escalated_rate",
                     "came_back_escalated_rate_ci_low", "came_back_escalated_rate_ci_high", "escalated_runs",
                     "escalations_decided", "dismissed_rate", "dismissed_rate_ci_low", "dismissed_rate_ci_high",
                     "hours_to_review"]]
    percent = {c: PERCENT for c in shown.columns if "rate" in c}
    note = ("<p class='note'>A guest <b>came back</b> when a later run of the same conversation (any agent) "
            "started within 24 h of a resolved run: the resolution may not have held; <b>came back "
            "escalated</b> when that later run was escalated. Rates are over the resolved runs old enough "
            "to judge (<code>resolved_judged</code>: a run younger than 24 h at the newest run is not "
            "counted either way). <b>Dismissed</b>: escalations an operator closed without acting, of "
            "those decided (pending left out)" + ("" if escalations is not None else
                                                   "; not shown here: the report was made without escalations")
            + ". Intervals: Wilson 95%.</p>")
    return head + [note, png_html(lambda ax: plot_escalation_quality(runs, escalations, by=by, ax=ax), (8, 4.2)),
                   format_table(shown, {**percent, "hours_to_review": "{:.1f}"}),
                   glossary_html(["came_back_rate", "came_back_escalated_rate", "dismissed_rate"])]


def _review_section(reviews: pd.DataFrame, runs: pd.DataFrame, escalations: pd.DataFrame | None,
                    judge: pd.Series | None = None) -> list[str]:
    from .review import review_report

    parts = ["<h2 id='disposition-review'>Disposition review</h2>"]
    if not len(reviews):
        return parts + ["<p class='note'>No verdicts in the review store yet.</p>"]
    in_window = reviews["agent_run_id"].isin(set(runs["id"].astype(object)))
    report = review_report(reviews[in_window], runs, escalations=escalations, predictions=judge)
    accuracy = report["accuracy"]
    overall = accuracy.loc["(all)"]
    if pd.isna(overall["accuracy"]):
        headline = "No run judged correct or wrong yet."
    else:
        headline = (f"Dispositions right: <b>{overall['accuracy']:.1%}</b> of runs (95% interval "
                    f"{overall['ci_low']:.1%}–{overall['ci_high']:.1%}), from {int(overall['reviewed']):,} "
                    f"judged runs weighted back to the {int(overall['population']):,} runs with a disposition.")
    left_out = int((~in_window).sum())
    parts += [f"<p>{headline}</p>",
              f"<p class='note'>Method: {html.escape(report['method'])}. Per disposition: the share judged right "
              "with a Wilson interval. One vote per run: several reviewers' majority (a tie is unsure)."
              + (f" {left_out} verdict(s) on runs outside this report's runs are left out." if left_out else "")
              + (f" {html.escape(report['note'])}" if report.get("note") else "")
              + "</p>",
              format_table(accuracy, ACCURACY_FORMATS)]
    if judge is not None:
        parts += _judge_lines(report)
    if len(report["by_agent"]):
        parts += ["<h3>By agent</h3>", format_table(report["by_agent"], ACCURACY_FORMATS)]
    if report["kappa_runs"]:
        low, high = report["kappa_ci"]
        parts += [f"<h3>Agreement</h3><p>Cohen's kappa between {html.escape(' and '.join(report['kappa_pair']))}: "
                  f"<b>{report['kappa']:.2f}</b> (95% bootstrap interval {low:.2f} to {high:.2f}) on "
                  f"{report['kappa_runs']} runs both judged; {report['disagreements']['agent_run_id'].nunique()} "
                  "runs where reviewers disagree:</p>",
                  format_table(report["disagreements"], index=False)]
    if len(report["confusion"]):
        parts += ["<h3>Recorded against reviewed disposition</h3>", format_table(report["confusion"])]
    if isinstance(report.get("escalations"), pd.DataFrame) and len(report["escalations"]):
        parts += ["<h3>Escalated runs: reviewers' verdict against the operator's outcome</h3>",
                  format_table(report["escalations"])]
    return parts


def _judge_lines(report: dict[str, Any]) -> list[str]:
    """The judge-assisted figure beside the human-only one, and how far the judge agrees."""
    human, assisted, agree = report["human_only"], report["judge_assisted"], report["judge"]
    used = assisted.get("used")
    line = (f"<p><b>With the judge</b>: {assisted['estimate']:.1%} (95% interval {assisted['ci_low']:.1%}–"
            f"{assisted['ci_high']:.1%}); <b>people only</b>: {human['accuracy']:.1%} ({human['ci_low']:.1%}–"
            f"{human['ci_high']:.1%}). " + ("The (all) row above is the judge-assisted one." if used else
                                            "The judge did not narrow the interval, so the (all) row is people only.")
            + "</p>")
    stats = (f"<p class='note'>The judge on the {agree['n']:,} reviewed runs: agreement "
             f"{agree['agreement']['value']:.1%}, sensitivity to wrong dispositions {agree['sensitivity']['value']:.1%} "
             f"(of {agree['sensitivity']['of']}), specificity {agree['specificity']['value']:.1%}, kappa "
             f"{agree['kappa']:.2f}; runs with a prediction: {agree['runs_with_prediction']:.0%} of the runs.</p>")
    disagreements = agree["disagreements"]
    table = (["<h3>Where the judge and people disagree most</h3>", format_table(disagreements, index=False)]
             if len(disagreements) else [])
    return ["<h3>Judge-assisted accuracy</h3>", line, stats, *table]
