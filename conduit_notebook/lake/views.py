"""The ``runs`` and ``tool_calls`` views a SQL engine queries a lake through, for DuckDB and
Spark. When a crash left a month with two files (see :mod:`.write`), the views keep each run's
winning record and that record's tool calls, by the rule :func:`read_lake` follows."""

from __future__ import annotations

from typing import Any

from .layout import LakeFile

__all__ = ["duckdb_escalations", "duckdb_views", "spark_escalations", "spark_session", "spark_views"]

_SEQ = r"regexp_extract(filename, '\.([0-9]{20}-[0-9a-f]{8})\.parquet$', 1)"
_WINNER = ("row_number() OVER (PARTITION BY id ORDER BY completed_at DESC NULLS LAST, "
           "(trace_weight IS NOT NULL) DESC, _seq DESC) = 1")


def _paths(files: list[LakeFile]) -> str:
    return "[" + ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in files) + "]"


def duckdb_views(con: Any, files: dict[str, list[LakeFile]], window: str, merged: bool) -> None:
    """Create the views on a DuckDB connection (columns by name across files: a field the API
    added later is null in older files)."""
    if not files["runs"]:
        raise ValueError("the lake holds no runs in this slice (workspaces, since, until)")
    options = "union_by_name = true, hive_partitioning = false"
    if merged:
        con.execute(f"CREATE VIEW runs AS SELECT * EXCLUDE (month) FROM read_parquet({_paths(files['runs'])}, "
                    f"{options}) WHERE {window}")
        calls = (f"SELECT * EXCLUDE (month) FROM read_parquet({_paths(files['tool_calls'])}, {options}) "
                 f"WHERE {window}") if files["tool_calls"] else _NO_CALLS
        con.execute(f"CREATE VIEW tool_calls AS {calls}")
        return
    con.execute(f"CREATE VIEW _runs_all AS SELECT * EXCLUDE (month, filename), {_SEQ} AS _seq FROM "
                f"read_parquet({_paths(files['runs'])}, {options}, filename = true) WHERE {window} "
                f"QUALIFY {_WINNER}")
    con.execute("CREATE VIEW runs AS SELECT * EXCLUDE (_seq) FROM _runs_all")
    calls = (f"SELECT c.* EXCLUDE (month, filename) FROM read_parquet({_paths(files['tool_calls'])}, {options}, "
             f"filename = true) c SEMI JOIN _runs_all r ON r.id = CAST(c.agent_run_id AS VARCHAR) AND "
             f"r._seq = {_SEQ.replace('filename', 'c.filename')}") if files["tool_calls"] else _NO_CALLS
    con.execute(f"CREATE VIEW tool_calls AS {calls}")


def duckdb_escalations(con: Any, files: list[LakeFile]) -> None:
    """The ``escalations`` view: each escalation once, from the latest write (all months: an
    escalation may come later than its run)."""
    con.execute(f"CREATE VIEW escalations AS SELECT * EXCLUDE (month, filename) FROM read_parquet("
                f"{_paths(files)}, union_by_name = true, hive_partitioning = false, filename = true) "
                f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY {_SEQ} DESC) = 1")


def spark_escalations(spark: Any, files: list[LakeFile]) -> None:
    """The ``escalations`` view on Spark (every month is one file: nothing to resolve)."""
    spark.read.option("mergeSchema", "true").parquet(*[str(f.path) for f in files]).drop("month") \
        .createOrReplaceTempView("escalations")


_NO_CALLS = ("SELECT CAST(NULL AS VARCHAR) AS agent_run_id, CAST(NULL AS VARCHAR) AS name, "
             "CAST(NULL AS TIMESTAMPTZ) AS created_at WHERE FALSE")


def spark_session() -> Any:
    """The active SparkSession, or a local one in UTC (``pyspark`` and Java needed)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (SparkSession.builder.master("local[2]").appName("conduit-notebook-lake")
            .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4").getOrCreate())


def spark_views(spark: Any, files: dict[str, list[LakeFile]], window: str, merged: bool) -> None:
    """Create the views as Spark temporary views (schemas merged across files)."""
    if not files["runs"]:
        raise ValueError("the lake holds no runs in this slice (workspaces, since, until)")
    if not merged:
        raise ValueError("a crash left a month of this lake with two files: write to the lake once (any sync "
                         "merges it) before reading it with Spark")
    reader = spark.read.option("mergeSchema", "true")
    reader.parquet(*[str(f.path) for f in files["runs"]]).drop("month").createOrReplaceTempView("_runs_all")
    spark.sql(f"CREATE OR REPLACE TEMP VIEW runs AS SELECT * FROM _runs_all WHERE {window}")
    if files["tool_calls"]:
        reader.parquet(*[str(f.path) for f in files["tool_calls"]]).drop("month").createOrReplaceTempView(
            "_calls_all")
        spark.sql(f"CREATE OR REPLACE TEMP VIEW tool_calls AS SELECT * FROM _calls_all WHERE {window}")
    else:
        spark.sql(f"CREATE OR REPLACE TEMP VIEW tool_calls AS {_NO_CALLS.replace('VARCHAR', 'STRING')}"
                  .replace("TIMESTAMPTZ", "TIMESTAMP"))
