"""The package's summaries computed by a SQL engine over a lake, out of core: :class:`Lake`.

>>> lake = Lake("lake/", since="2026-01-01")          # DuckDB by default
>>> lake.summarize(by="agent_name")                   # the same frame as summarize(runs, ...)
>>> lake.cost_breakdown(by="workspace_id")
>>> lake.tool_stats()                                 # exact, or weighted when traces are a sample
>>> lake.sql("SELECT count(*) FROM runs")             # the views: runs, tool_calls

Every metric is one SQL definition (:mod:`.metrics_sql`), the glossary's; tests check that each
frame equals the pandas function's on the same runs to 1e-9. DuckDB reads only the columns and
files a query needs and spills to disk past ``memory_limit``, so a lake larger than memory is
summarised in bounded memory (benchmarks/README.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..frames import agent_labels
from ..schema import RUN_STATUSES
from ..stats import wilson_interval
from ..times import parse_time
from .layout import lake_files, read_schema
from .metrics_sql import (
    COST_BREAKDOWN,
    ESCALATION_QUALITY,
    ESCALATION_STATUS,
    EXACT_MEDIANS,
    MIX,
    OUTCOMES,
    QUALITY,
    RATES,
    SERIES,
    SUMMARY,
    TOOL_STATS,
    WEIGHTED_MEDIANS,
    render,
    sql_list,
)
from .read import check_workspaces, lake_months

__all__ = ["FREQS", "Lake"]

#: ``freq`` values the engines bucket by (buckets labelled by their start, in UTC).
FREQS = {"h": "hour", "D": "day", "MS": "month"}


def _by_list(by: str | Sequence[str] | None) -> list[str]:
    values = [] if by is None else [by] if isinstance(by, str) else list(by)
    if not all(isinstance(v, str) and v.isidentifier() for v in values):
        raise ValueError(f"by must be a column name or a list of them; got {by!r}")
    return values


class Lake:
    """A slice of a lake (``workspaces``, ``since``/``until`` on ``created_at``, as
    :func:`read_lake`) queried by a SQL engine: ``engine="duckdb"`` (default) or ``"spark"``
    (``spark=`` a SparkSession, default the active or a local one)."""

    def __init__(self, path: str | os.PathLike[str], *, workspaces: str | Sequence[str] | None = None,
                 since: Any = None, until: Any = None, engine: str = "duckdb", memory_limit: str | None = None,
                 spark: Any = None) -> None:
        self.path = Path(path).expanduser()
        if not (self.path / "runs").is_dir():
            raise FileNotFoundError(f"path must be a lake written by write_lake or `sync --lake` (holding runs/); "
                                    f"not found: {self.path / 'runs'}")
        if engine not in ("duckdb", "spark"):
            raise ValueError(f"engine must be 'duckdb' or 'spark'; got {engine!r}")
        read_schema(self.path)
        self.engine = engine
        self.workspaces = check_workspaces(workspaces)
        self.since = parse_time(since, "since")
        self.until = parse_time(until, "until", end_of_day=True)
        self._files = {name: lake_months(lake_files(self.path, name, self.workspaces), self.since, self.until)
                       for name in ("runs", "tool_calls")}
        self._files["escalations"] = lake_files(self.path, "escalations", self.workspaces)
        if engine == "duckdb":
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET enable_progress_bar = false")  # a library prints nothing
            # Spilled data goes to the system's temporary folder, not a .tmp/ in the working directory.
            spill = Path(tempfile.gettempdir()) / "conduit-notebook-duckdb"
            self._con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
            if memory_limit:
                self._con.execute(f"SET memory_limit = '{memory_limit}'")
        else:
            from .views import spark_session

            self._spark = spark if spark is not None else spark_session()
        self._create_views()

    def __repr__(self) -> str:
        window = f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}" if self.since is not None and \
            self.until is not None else f"since {self.since:%Y-%m-%d}" if self.since is not None else \
            f"until {self.until:%Y-%m-%d}" if self.until is not None else "all runs"
        return (f"Lake({str(self.path)!r}, engine={self.engine!r}, workspaces={self.workspaces or 'all'}, {window}, "
                f"{len(self._files['runs'])} run files)")

    def close(self) -> None:
        """Close the DuckDB connection (a SparkSession is left to its owner)."""
        if self.engine == "duckdb":
            self._con.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- views ---------------------------------------------------------------------------------

    def _window(self) -> str:
        terms = ["TRUE"]
        if self.since is not None:
            terms.append(f"created_at >= TIMESTAMP '{self.since:%Y-%m-%d %H:%M:%S.%f}'")
        if self.until is not None:
            terms.append(f"created_at <= TIMESTAMP '{self.until:%Y-%m-%d %H:%M:%S.%f}'")
        return " AND ".join(terms)

    def _create_views(self) -> None:
        from .views import duckdb_escalations, duckdb_views, spark_escalations, spark_views

        merged = self._merged()
        if self.engine == "duckdb":
            duckdb_views(self._con, self._files, self._window(), merged)
            if self._files["escalations"]:
                duckdb_escalations(self._con, self._files["escalations"])
        else:
            spark_views(self._spark, self._files, self._window(), merged)
            if self._files["escalations"]:
                spark_escalations(self._spark, self._files["escalations"])

    def _merged(self) -> bool:
        """Whether every month is one file (else a crash left two: the views pick each run's
        winning record, as read_lake does)."""
        months = [(f.workspace, f.month) for f in self._files["runs"]]
        return len(months) == len(set(months))

    def sql(self, query: str) -> pd.DataFrame:
        """Run ``query`` over the views ``runs`` and ``tool_calls`` and return a DataFrame."""
        if self.engine == "duckdb":
            return self._con.execute(query).df()
        table = self._spark.sql(query).toPandas()
        for name in table.columns:  # Spark's decimals (sums of literals) as floats
            if table[name].dtype == object and table[name].map(lambda v: isinstance(v, Decimal)).any():
                table[name] = table[name].astype(float)
        return table

    # -- summaries -----------------------------------------------------------------------------

    def _grouped(self, columns: dict[str, str], by: list[str], freq: str | None, where: str = "TRUE",
                 source: str = "runs", **values: str) -> pd.DataFrame:
        if freq is not None and freq not in FREQS:
            raise ValueError(f"freq must be one of {', '.join(FREQS)} on a lake (buckets in UTC); got {freq!r}")
        keys = [f"CAST({c} AS STRING)" if self.engine == "spark" else f"CAST({c} AS VARCHAR)" for c in by]
        names = list(by)
        if "agent_name" in by:  # groups are agents, not names (two agents may share one)
            keys.append("CAST(agent_id AS VARCHAR)" if self.engine == "duckdb" else "CAST(agent_id AS STRING)")
            names.append("_agent_id")
        if freq is not None:
            keys.append(f"date_trunc('{FREQS[freq]}', created_at)")
            names.append("created_at")
        selected = [f"{k} AS {n}" for k, n in zip(keys, names, strict=False)]
        selected += [f"{render(sql, self.engine, **values)} AS {name}" for name, sql in columns.items()]
        not_null = " AND ".join([f"{k} IS NOT NULL" for k in keys] or ["TRUE"])
        group = f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
        query = (f"SELECT {', '.join(selected)} FROM {source} WHERE {not_null} AND {where} {group} "
                 f"ORDER BY {', '.join(str(i + 1) for i in range(len(keys))) or '1'}")
        table = self.sql(query)
        counts = [c for c in ("runs", "resolved_runs", "input_tokens", "output_tokens", "total_tokens",
                              *QUALITY, *(f"{r}_{k}" for r in RATES for k in ("events", "runs")))
                  if c in columns and c in table and not columns[c].startswith("avg")]
        return self._indexed(table.astype({c: "int64" for c in counts}), by, freq)

    def _indexed(self, table: pd.DataFrame, by: list[str], freq: str | None) -> pd.DataFrame:
        if "_agent_id" in table:
            pairs = table[["_agent_id", "agent_name"]].drop_duplicates()
            if pairs["agent_name"].duplicated().any():
                labels = agent_labels(dict(zip(pairs["_agent_id"], pairs["agent_name"], strict=False)))
                table["agent_name"] = table["_agent_id"].map(labels)
            table = table.drop(columns="_agent_id")
        if freq is not None:
            table["created_at"] = pd.to_datetime(table["created_at"], utc=True)
        keys = [*by, *(["created_at"] if freq else [])]
        if not keys:
            return table.set_axis(pd.Index(["all"]), axis=0)
        # In the frames' category order: sorted, statuses in lifecycle order.
        lifecycle = {v: f"{i:02d}" for i, v in enumerate(RUN_STATUSES)}
        return table.sort_values(keys, kind="stable",
                                 key=lambda s: s.map(lambda v: lifecycle.get(v, f"99{v}")) if s.name == "status"
                                 else s).set_index(keys)

    def summarize(self, by: str | Sequence[str] | None = None, *, freq: str | None = None) -> pd.DataFrame:
        """:func:`conduit_notebook.summarize` over the lake's runs (same columns and numbers)."""
        return self._grouped(SUMMARY, _by_list(by), freq)

    def cost_breakdown(self, by: str | Sequence[str] | None = "agent_name", *, freq: str | None = None,
                       resolved: str | Sequence[str] = "resolved") -> pd.DataFrame:
        """:func:`conduit_notebook.cost_breakdown` over the lake's runs (same columns and numbers;
        sorted by cost, largest first, unless ``freq`` is given)."""
        by_list = _by_list(by)
        values = [resolved] if isinstance(resolved, str) else list(resolved)
        table = self._grouped(COST_BREAKDOWN, by_list, freq, resolved=sql_list(values))
        if freq is None and by_list:
            table = table.sort_values("total_cost", ascending=False, kind="stable")
        return table

    def _text(self) -> str:
        return "VARCHAR" if self.engine == "duckdb" else "STRING"

    def _quote(self, name: str) -> str:
        return f'"{name}"' if self.engine == "duckdb" else f"`{name}`"

    def sampled(self) -> bool:
        """Whether the traces are a sample (as :func:`conduit_notebook.tool_stats` decides: some
        ``trace_weight`` above 0 and not every one 1): tool numbers are then weighted estimates."""
        columns = set(self.sql("SELECT * FROM runs LIMIT 0").columns)
        if "trace_weight" not in columns:
            return False
        above, ones, total = self.sql("SELECT count(*) FILTER (WHERE trace_weight > 0) AS a, count(*) FILTER "
                                      "(WHERE trace_weight = 1) AS o, count(*) AS n FROM runs").iloc[0]
        return bool(above > 0 and ones != total)

    def tool_stats(self) -> pd.DataFrame:
        """:func:`conduit_notebook.tool_stats` with ``runs`` over the lake: per tool the calls, runs
        using it, share of runs, calls per run, median duration and cost per run with and
        without it, and the disposition mix of the runs using it. When the traces are a sample
        (:meth:`sampled`), the same weighted point estimates as
        :func:`conduit_notebook.tool_stats_estimated` (Horvitz-Thompson sums over the random
        sample, ratio estimates, weighted medians) without its intervals: for those, read the
        slice with :func:`read_lake` and call ``tool_stats``."""
        sampled = self.sampled()
        dispositions = self.sql(f"SELECT DISTINCT CAST(disposition AS {self._text()}) AS d FROM runs "
                                "WHERE disposition IS NOT NULL ORDER BY 1")["d"].tolist()
        mix = "".join(", " + MIX.format(value=sql_list([d]), name=self._quote(f"disposition:{d}"))
                      for d in dispositions)
        medians = WEIGHTED_MEDIANS if sampled else EXACT_MEDIANS
        query = TOOL_STATS.format(text=self._text(), weight="trace_weight" if sampled else "CAST(1 AS DOUBLE)",
                                  in_sample="trace_weight > 0" if sampled else "TRUE", mix=mix, **medians)
        table = self.sql(render(query, self.engine)).set_index("tool")
        if not sampled:
            table = table.astype({"calls": "int64", "runs_using": "int64"})
        return table.rename_axis("tool")

    def series(self, metric: str, *, freq: str = "D", by: str | None = None, log: bool = False) -> pd.DataFrame:
        """Per time bucket (and ``by`` group): the mean of ``metric`` per run (``value``), the
        runs behind it (``runs``) and the per-run variance within the bucket (``within``, ddof
        0): the series :func:`conduit_notebook.change_points` segments, for the rates and means
        (``failure_rate``, ``escalation_rate``, ``resolution_rate``, ``cost_per_run``,
        ``tokens_per_run``; resolved is the 'resolved' disposition). ``log=True``: of the logs of
        the runs' values, which change_points segments for a cost or token metric whose values
        are all positive (the typical run's changes, not the heavy tail's)."""
        if metric not in SERIES:
            raise ValueError(f"metric must be one of {', '.join(SERIES)} on a lake; got {metric!r}")
        x, counted = SERIES[metric]
        if log:
            x = f"ln({x})"
        columns = {"value": f"avg({x})", "runs": f"count({x})", "within": f"var_pop({x})"}
        table = self._grouped(columns, _by_list(by), freq, where=counted)
        return table[table["runs"] > 0]

    def rates(self, by: str | Sequence[str] | None = None, *, freq: str | None = None,
              resolved: str | Sequence[str] = "resolved") -> pd.DataFrame:
        """The rates :func:`conduit_notebook.compare` tests, with the counts behind them: per
        group ``<rate>``, ``<rate>_events`` and ``<rate>_runs`` for ``failure_rate``,
        ``escalation_rate`` and ``resolution_rate`` (glossary). Two slices' counts give
        compare's Newcombe-Wilson rows: ``Lake(p, until=cut).rates()`` against
        ``Lake(p, since=cut).rates()``."""
        values = [resolved] if isinstance(resolved, str) else list(resolved)
        columns = {}
        for name, (event, counted) in RATES.items():
            columns[f"{name}_events"] = f"count(*) FILTER (WHERE ({counted}) AND {event})"
            columns[f"{name}_runs"] = f"count(*) FILTER (WHERE {counted})"
            columns[name] = f"{columns[f'{name}_events']} / nullif({columns[f'{name}_runs']}, 0)"
        table = self._grouped(columns, _by_list(by), freq, resolved=sql_list(values))
        return table[[f"{r}{k}" for r in RATES for k in ("", "_events", "_runs")]]

    def escalation_quality(self, by: str | None = "agent_name", *, within: Any = "24h",
                           as_of: Any = None) -> pd.DataFrame:
        """:func:`conduit_notebook.escalation_quality` over the lake: per group and ``(all)``,
        ``runs``, ``resolved_runs``,
        ``resolved_judged``, ``came_back_rate`` and ``came_back_escalated_rate`` with their Wilson
        95% intervals (Wilson 1927) and counts, and ``escalated_runs``. A guest came back when a
        later run of the conversation started within ``within``; runs younger than ``within``
        at ``as_of`` (default: the newest run's start) are not judged. When the lake holds escalations
        (``sync`` stores them), also ``escalations_decided``, ``dismissed_rate`` with its interval
        and ``hours_to_review`` (the median); without, only the runs' side."""
        span = pd.Timedelta(within)
        if pd.isna(span) or span <= pd.Timedelta(0):
            raise ValueError(f"within must be a positive time span such as '24h'; got {within!r}")
        end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(
            self.sql("SELECT max(created_at) AS t FROM runs")["t"].iloc[0])
        end = end.tz_localize("UTC") if end.tzinfo is None else end
        source = "(" + render(OUTCOMES, self.engine, within_ms=str(int(span / pd.Timedelta(milliseconds=1))),
                              as_of_ms=str(end.value // 1_000_000)) + ")"
        columns = dict(QUALITY)
        if self._files["escalations"]:  # the operators' side, from the escalation records
            source = (f"(SELECT o.*, e.escalation_status, e.hours FROM {source} o LEFT JOIN "
                      f"({render(ESCALATION_STATUS, self.engine, text=self._text())}) e ON e.run = o.id)")
            columns.update(ESCALATION_QUALITY)
        source += " AS outcomes"
        groups = self._grouped(columns, _by_list(by), None, source=source) if by is not None else None
        overall = self._grouped(columns, [], None, source=source).set_axis(["(all)"])
        table = pd.concat([groups, overall]) if groups is not None else overall
        table.index.name = by or "group"
        return quality_rates(table)


def quality_rates(table: pd.DataFrame) -> pd.DataFrame:
    """escalation_quality's rates and Wilson intervals from the counts."""
    out = table[["runs", "resolved_runs", "resolved_judged"]].copy()
    for name, count in (("came_back_rate", "came_back"), ("came_back_escalated_rate", "came_back_escalated")):
        rows = [(k / n, *wilson_interval(k, n)) if n > 0 else (np.nan, np.nan, np.nan)
                for k, n in zip(table[count], table["resolved_judged"], strict=False)]
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = zip(*rows, strict=False) if rows else ([], [], [])
    out["escalated_runs"] = table["escalated_runs"]
    if "escalations_decided" in table:
        out["escalations_decided"] = table["escalations_decided"]
        rows = [(k / n, *wilson_interval(k, n)) if n > 0 else (np.nan, np.nan, np.nan)
                for k, n in zip(table["dismissed"], table["escalations_decided"], strict=False)]
        out["dismissed_rate"], out["dismissed_rate_ci_low"], out["dismissed_rate_ci_high"] = \
            zip(*rows, strict=False) if rows else ([], [], [])
        out["hours_to_review"] = table["hours_to_review"].astype(float)
    return out
