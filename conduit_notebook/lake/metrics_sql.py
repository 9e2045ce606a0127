"""The glossary's metrics as SQL, one definition each, for every SQL engine of the lake.

Each entry is the SQL aggregate that computes the metric named in
:data:`conduit_notebook.metrics.GLOSSARY` over a group of the ``runs`` view, written once in the
SQL that DuckDB and Spark share. The few functions their dialects spell differently are
placeholders (``{median(x)}`` style): :func:`render` fills them per engine.

>>> render(SUMMARY["failure_rate"], "duckdb")
"count(*) FILTER (WHERE status = 'failed') / nullif(...)"
"""

from __future__ import annotations

__all__ = ["COST_BREAKDOWN", "DIALECTS", "ESCALATION_QUALITY", "ESCALATION_STATUS", "OUTCOMES", "QUALITY", "RATES", "SERIES", "SUMMARY", "TOOL_STATS", "render", "sql_list"]

#: Functions spelled differently: quantile with linear interpolation (as numpy and pandas).
DIALECTS = {
    "duckdb": {"quantile": "quantile_cont({x}, {q})", "epoch_ms": "epoch_ms({x})"},
    "spark": {"quantile": "percentile({x}, {q})", "epoch_ms": "unix_millis({x})"},
}

_FINISHED = "status IN ('completed', 'failed')"
_SECONDS = "CAST(duration_ms AS DOUBLE) / 1000"

#: summarize(): column -> SQL over a group of runs (``share`` over all groups: a window).
SUMMARY: dict[str, str] = {
    "runs": "count(*)",
    "share": "count(*) / sum(count(*)) OVER ()",
    "failure_rate": f"count(*) FILTER (WHERE status = 'failed') / nullif(count(*) FILTER (WHERE {_FINISHED}), 0)",
    "p50_duration_s": "{quantile:" + _SECONDS + ":0.5}",
    "p90_duration_s": "{quantile:" + _SECONDS + ":0.9}",
    "p99_duration_s": "{quantile:" + _SECONDS + ":0.99}",
    "input_tokens": "coalesce(sum(input_tokens), 0)",
    "output_tokens": "coalesce(sum(output_tokens), 0)",
    "total_tokens": "coalesce(sum(total_tokens), 0)",
    "tokens_per_run": "sum(total_tokens) / nullif(count(total_tokens), 0)",
    "total_cost": "coalesce(sum(total_cost), 0)",
    "cost_per_run": "sum(total_cost) / nullif(count(total_cost), 0)",
}

#: cost_breakdown(): ``{resolved}`` is the list of dispositions that count as resolved.
COST_BREAKDOWN: dict[str, str] = {
    "runs": SUMMARY["runs"],
    "resolved_runs": "count(*) FILTER (WHERE disposition IN ({resolved}))",
    "input_tokens": SUMMARY["input_tokens"],
    "output_tokens": SUMMARY["output_tokens"],
    "total_tokens": SUMMARY["total_tokens"],
    "output_token_share": "sum(output_tokens) / nullif(sum(total_tokens), 0)",
    "total_cost": SUMMARY["total_cost"],
    "cost_share": "coalesce(sum(total_cost), 0) / nullif(sum(coalesce(sum(total_cost), 0)) OVER (), 0)",
    "cost_per_run": SUMMARY["cost_per_run"],
    "cost_per_resolved_run": ("coalesce(sum(total_cost), 0) / "
                              "nullif(count(*) FILTER (WHERE disposition IN ({resolved})), 0)"),
}


#: tool_stats(): per tool over the runs ``r`` in the estimate (all runs, or the random trace
#: sample) with their weight ``w`` (1 for every run when every trace is there, else
#: ``trace_weight``): calls and runs using it are ``sum w * y`` (Horvitz-Thompson), shares and
#: means are ratios of such sums. The median with/without the tool is the linear-interpolated
#: one for exact counts and the weighted median (the first value whose cumulative weight reaches
#: half) for a sample, as :func:`conduit_notebook.tool_stats` and ``tool_stats_estimated``.
TOOL_STATS = """
WITH r AS (
    SELECT CAST(id AS {text}) AS run, CAST(duration_ms AS DOUBLE) / 1000 AS s, total_cost AS c,
           CAST(disposition AS {text}) AS d, {weight} AS w
    FROM runs WHERE {in_sample}),
u AS (
    SELECT CAST(name AS {text}) AS tool, CAST(agent_run_id AS {text}) AS run, count(*) AS n
    FROM tool_calls WHERE CAST(agent_run_id AS {text}) IN (SELECT run FROM r) AND name IS NOT NULL
    GROUP BY 1, 2),
tools AS (SELECT DISTINCT tool FROM u),
marked AS (
    SELECT t.tool, r.s, r.c, r.d, r.w, u.n, u.run IS NOT NULL AS inside
    FROM tools t CROSS JOIN r LEFT JOIN u ON u.tool = t.tool AND u.run = r.run),
ranked AS (
    SELECT tool, s, inside,
           sum(w) OVER (PARTITION BY tool, inside ORDER BY s ROWS UNBOUNDED PRECEDING) AS cum,
           sum(w) OVER (PARTITION BY tool, inside) AS total
    FROM marked WHERE s IS NOT NULL),
medians AS (
    SELECT tool,
           {median_with} AS p50_duration_s_with,
           {median_without} AS p50_duration_s_without
    FROM {median_source} GROUP BY tool),
all_runs AS (SELECT sum(w) AS population FROM r)
SELECT m.tool,
       sum(m.w * m.n) FILTER (WHERE m.inside) AS calls,
       sum(m.w) FILTER (WHERE m.inside) AS runs_using,
       sum(m.w) FILTER (WHERE m.inside) / max(a.population) AS share_of_runs,
       sum(m.w * m.n) FILTER (WHERE m.inside) / sum(m.w) FILTER (WHERE m.inside) AS calls_per_run,
       max(med.p50_duration_s_with) AS p50_duration_s_with,
       max(med.p50_duration_s_without) AS p50_duration_s_without,
       sum(m.w * m.c) FILTER (WHERE m.inside) / nullif(sum(m.w) FILTER (WHERE m.inside AND m.c IS NOT NULL), 0)
           AS cost_per_run_with,
       sum(m.w * m.c) FILTER (WHERE NOT m.inside) / nullif(sum(m.w) FILTER (WHERE NOT m.inside AND m.c IS NOT NULL), 0)
           AS cost_per_run_without
       {mix}
FROM marked m CROSS JOIN all_runs a LEFT JOIN medians med ON med.tool = m.tool
GROUP BY m.tool ORDER BY calls DESC, m.tool
"""
#: The medians of exact counts (linear interpolation) and of a sample (weighted).
EXACT_MEDIANS = {"median_with": "{quantile:s:0.5} FILTER (WHERE inside)",
                 "median_without": "{quantile:s:0.5} FILTER (WHERE NOT inside)", "median_source": "marked"}
WEIGHTED_MEDIANS = {"median_with": "min(s) FILTER (WHERE inside AND cum >= total / 2)",
                    "median_without": "min(s) FILTER (WHERE NOT inside AND cum >= total / 2)",
                    "median_source": "ranked"}
#: One column per disposition: its share (weighted) of the runs using the tool that have one.
MIX = ("coalesce(sum(m.w) FILTER (WHERE m.inside AND m.d = {value}), 0) / "
       "nullif(sum(m.w) FILTER (WHERE m.inside AND m.d IS NOT NULL), 0) AS {name}")


#: The per-run value behind each metric change_points follows, and which runs count for it:
#: a rate's event (1 or 0) among the runs of its denominator, or a run's cost or tokens.
_EVENT = "CAST(CASE WHEN {} THEN 1 ELSE 0 END AS DOUBLE)"
_JUDGED = "status = 'completed' AND disposition IS NOT NULL"
SERIES: dict[str, tuple[str, str]] = {
    "failure_rate": (_EVENT.format("status = 'failed'"), _FINISHED),
    "escalation_rate": (_EVENT.format("disposition = 'escalated'"), _JUDGED),
    "resolution_rate": (_EVENT.format("disposition = 'resolved'"), _JUDGED),
    "cost_per_run": ("total_cost", "total_cost IS NOT NULL"),
    "tokens_per_run": ("CAST(total_tokens AS DOUBLE)", "total_tokens IS NOT NULL"),
}


#: The rates compare() tests, as the counts behind them (events among the runs that count).
RATES: dict[str, tuple[str, str]] = {
    "failure_rate": ("status = 'failed'", _FINISHED),
    "escalation_rate": ("disposition = 'escalated'", _JUDGED),
    "resolution_rate": ("disposition IN ({resolved})", _JUDGED),
}

#: Each run's outcome (conversation_outcomes.outcomes): the next run of its conversation, and
#: whether a later one started within {within_ms} ms was escalated; ``{as_of}`` is when runs
#: were last observed. Ties in created_at are ordered by id (as the runs frame's rows).
OUTCOMES = """
WITH o AS (
    SELECT *, {epoch_ms:created_at} AS ms,
           CASE WHEN conversation_id IS NOT NULL THEN lead({epoch_ms:created_at}) OVER (
               PARTITION BY conversation_id, created_at IS NULL ORDER BY created_at, id) END AS next_ms,
           CASE WHEN conversation_id IS NOT NULL THEN sum(CASE WHEN disposition = 'escalated' THEN 1 ELSE 0 END) OVER (
               PARTITION BY conversation_id, created_at IS NULL ORDER BY {epoch_ms:created_at}
               RANGE BETWEEN CURRENT ROW AND {within_ms} FOLLOWING)
             - CASE WHEN disposition = 'escalated' THEN 1 ELSE 0 END END AS later_escalated
    FROM runs),
j AS (
    SELECT *, CASE WHEN next_ms - ms <= {within_ms} THEN 1
                   WHEN conversation_id IS NOT NULL AND {as_of_ms} - ms >= {within_ms} THEN 0 END AS came_back
    FROM o)
SELECT *, CASE WHEN came_back IS NOT NULL THEN CASE WHEN later_escalated > 0 THEN 1 ELSE 0 END END
          AS came_back_escalated
FROM j
"""
#: escalation_quality()'s run-side counts per group, over the runs with their outcomes.
QUALITY: dict[str, str] = {
    "runs": "count(*)",
    "resolved_runs": "count(*) FILTER (WHERE disposition = 'resolved')",
    "resolved_judged": "count(*) FILTER (WHERE disposition = 'resolved' AND came_back IS NOT NULL)",
    "came_back": "coalesce(sum(came_back) FILTER (WHERE disposition = 'resolved'), 0)",
    "came_back_escalated": "coalesce(sum(came_back_escalated) FILTER (WHERE disposition = 'resolved'), 0)",
    "escalated_runs": "count(*) FILTER (WHERE disposition = 'escalated')",
}


#: Each run's escalation: its status and the hours from escalation to the operator's decision.
ESCALATION_STATUS = """
SELECT CAST(agent_run_id AS {text}) AS run, min(CAST(status AS {text})) AS escalation_status,
       min(({epoch_ms:reviewed_at} - {epoch_ms:created_at}) / 3600000.0) AS hours
FROM escalations WHERE agent_run_id IS NOT NULL GROUP BY 1
"""
#: escalation_quality()'s operators' side (decided: reviewed, resolved or dismissed).
ESCALATION_QUALITY: dict[str, str] = {
    "escalations_decided": ("count(*) FILTER (WHERE disposition = 'escalated' AND "
                            "escalation_status IN ('reviewed', 'resolved', 'dismissed'))"),
    "dismissed": "count(*) FILTER (WHERE disposition = 'escalated' AND escalation_status = 'dismissed')",
    "hours_to_review": "{quantile:hours:0.5} FILTER (WHERE disposition = 'escalated')",
}


def sql_list(values: list[str]) -> str:
    """Strings as a SQL list of literals (quotes doubled)."""
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def render(expression: str, engine: str, **values: str) -> str:
    """``expression`` in ``engine``'s dialect, with ``values`` ({resolved}...) filled in."""
    if engine not in DIALECTS:
        raise ValueError(f"engine must be one of {', '.join(DIALECTS)}; got {engine!r}")
    for function, spelling in DIALECTS[engine].items():
        while "{" + function + ":" in expression:
            start = expression.index("{" + function + ":")
            end = expression.index("}", start)
            x, _, q = expression[start + len(function) + 2:end].partition(":")
            expression = expression[:start] + spelling.format(x=x, q=q) + expression[end + 1:]
    for name, value in values.items():
        expression = expression.replace("{" + name + "}", value)
    return expression
