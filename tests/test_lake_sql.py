"""The lake's SQL engines give the pandas functions' numbers (conduit_notebook.lake.Lake)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import ConduitClient, cost_breakdown, fetch_runs, summarize, tool_stats
from conduit_notebook.investigate.changes import bucket_values
from conduit_notebook.lake import Lake, read_lake, write_lake
from conduit_notebook.lake import write as lake_write


@pytest.fixture(scope="module")
def lakes(_shared_server, tmp_path_factory):
    """Two lakes of the demo workspace: every trace, and a stratified sample of 120 traces."""
    made = {}
    with ConduitClient(_shared_server.token, base_url=_shared_server.base_url,
                       requests_per_minute=60_000) as client:
        for name, details in (("exact", True), ("sample", 120)):
            path = tmp_path_factory.mktemp(name)
            fetch_runs(client=client, details=details, cache=False, progress=False).to_lake(path)
            made[name] = path
    return made


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same index (as text), columns and values to 1e-9 (missing where the other is missing)."""
    def keyed(frame):
        index = frame.index.map(lambda k: tuple(map(str, k)) if isinstance(k, tuple) else str(k))
        return frame.set_axis(index, axis=0)
    got, expected = keyed(got), keyed(expected)
    assert list(got.index) == list(expected.index)
    assert sorted(got.columns) == sorted(expected.columns)
    for column in expected.columns:
        a, b = got[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=column)


@pytest.mark.parametrize("by, freq", [(None, None), ("agent_name", None), (["agent_name", "disposition"], None),
                                      (None, "D"), ("status", "h"), ("workspace_id", "MS")])
def test_summarize_on_duckdb_equals_pandas(lakes, by, freq):
    runs = read_lake(lakes["exact"]).runs
    got = Lake(lakes["exact"]).summarize(by, freq=freq)
    assert_same(got, summarize(runs, by=by, freq=freq))
    assert got["runs"].dtype == "int64" and got["total_tokens"].dtype == "int64"


@pytest.mark.parametrize("by, resolved", [("agent_name", "resolved"), ("disposition", ["resolved", "handed_off"]),
                                          (None, "resolved")])
def test_cost_breakdown_on_duckdb_equals_pandas(lakes, by, resolved):
    runs = read_lake(lakes["exact"]).runs
    got = Lake(lakes["exact"]).cost_breakdown(by, resolved=resolved)
    expected = cost_breakdown(runs, by=by, resolved=resolved)
    assert_same(got, expected)
    assert list(got.columns) == list(expected.columns)


def test_a_slice_on_duckdb_equals_pandas_on_the_same_slice(lakes):
    window = dict(since="2026-11-10", until="2026-11-16")
    runs = read_lake(lakes["exact"], **window).runs
    assert 0 < len(runs) < 450
    assert_same(Lake(lakes["exact"], **window).summarize("agent_name", freq="D"),
                summarize(runs, by="agent_name", freq="D"))


@pytest.mark.parametrize("kind", ["exact", "sample"])
def test_tool_stats_on_duckdb_equals_pandas_exact_and_weighted(lakes, kind):
    frames = read_lake(lakes[kind])
    lake = Lake(lakes[kind])
    assert lake.sampled() == (kind == "sample")
    expected = tool_stats(frames.tool_calls, frames.runs)
    if kind == "sample":
        assert 100 <= frames.traced < 450 and "calls_low" in expected  # really an estimate
        # The lake gives the point estimates: no intervals, flags or rows for unseen tools.
        expected = expected.loc[expected["traced_runs"] > 0, [c for c in expected.columns if not c.endswith(
            ("_low", "_high")) and c not in ("traced_runs", "top5_share", "flag")]]
    got = lake.tool_stats()
    assert_same(got.loc[expected.index], expected)


@pytest.mark.parametrize("metric", ["failure_rate", "escalation_rate", "resolution_rate", "cost_per_run",
                                    "tokens_per_run"])
def test_change_point_series_on_duckdb_equals_pandas(lakes, metric):
    runs = read_lake(lakes["exact"]).runs
    expected = bucket_values(runs, metric, "D", "agent_name").rename(columns={"g": "agent_name", "t": "created_at"})
    got = Lake(lakes["exact"]).series(metric, by="agent_name")
    assert_same(got, expected.set_index(["agent_name", "created_at"]))
    if metric in ("cost_per_run", "tokens_per_run"):  # change_points segments their logs
        logs = bucket_values(runs, metric, "D", None, log=True).rename(columns={"t": "created_at"})
        assert_same(Lake(lakes["exact"]).series(metric, log=True), logs.set_index("created_at"))


def test_a_lake_a_crash_left_with_two_files_a_month_reads_the_same(lakes, tmp_path, monkeypatch):
    shutil.copytree(lakes["exact"], tmp_path / "lake")
    frames = read_lake(tmp_path / "lake")
    changed = frames.runs.copy()
    changed["completed_at"] += pd.Timedelta(seconds=1)
    monkeypatch.setattr(lake_write, "_remove", lambda files, result: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_lake(type(frames)(runs=changed, tool_calls=frames.tool_calls, agents=frames.agents,
                                errors=frames.errors), tmp_path / "lake")
    lake = Lake(tmp_path / "lake")
    assert not lake._merged()
    assert_same(lake.summarize("agent_name"), summarize(frames.runs, by="agent_name"))
    assert_same(lake.tool_stats(), tool_stats(frames.tool_calls, frames.runs))


def test_a_lake_says_what_it_reads_and_closes(lakes):
    with Lake(lakes["exact"], since="2026-11-01") as lake:
        assert repr(lake).startswith("Lake(") and "since 2026-11-01" in repr(lake) and "engine='duckdb'" in repr(lake)
        assert lake.sql("SELECT count(*) AS n FROM runs")["n"].iloc[0] == len(read_lake(lakes["exact"], since="2026-11-01").runs)
    with pytest.raises(Exception, match="closed"):
        lake.sql("SELECT 1")


def test_bad_arguments_say_what_is_accepted(lakes):
    with pytest.raises(ValueError, match="engine must be"):
        Lake(lakes["exact"], engine="sqlite")
    with pytest.raises(ValueError, match="freq must be one of"):
        Lake(lakes["exact"]).summarize(freq="W")
    with pytest.raises(ValueError, match="by must be"):
        Lake(lakes["exact"]).summarize(by="agent_name; DROP TABLE runs")
    with pytest.raises(ValueError, match="workspaces must be"):
        Lake(lakes["exact"], workspaces=[3])
    with pytest.raises(ValueError, match="no runs in this slice"):
        Lake(lakes["exact"], workspaces="ws_nowhere")
    with pytest.raises(ValueError, match="metric must be"):
        Lake(lakes["exact"]).series("p50_duration_s")


def _java() -> bool:
    import shutil as sh

    return sh.which("java") is not None or bool(__import__("os").environ.get("JAVA_HOME"))


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # pyspark warns about pandas 3
@pytest.mark.skipif(not _java(), reason="Spark needs Java (Debian: default-jre-headless)")
def test_spark_gives_the_same_numbers(lakes, client, tmp_path):
    pytest.importorskip("pyspark")
    from conduit_notebook import fetch_escalations

    shutil.copytree(lakes["sample"], tmp_path / "lake")
    frames = read_lake(tmp_path / "lake")
    write_lake(type(frames)(runs=frames.runs.iloc[:0], tool_calls=frames.tool_calls.iloc[:0], agents=frames.agents,
                            errors=frames.errors), tmp_path / "lake", escalations=fetch_escalations(client=client),
               workspace=str(frames.runs["workspace_id"].iloc[0]))
    spark = Lake(tmp_path / "lake", engine="spark")
    duck = Lake(tmp_path / "lake")
    try:
        _same_on_spark(spark, duck, frames)
    finally:
        spark._spark.stop()  # the JVM's memory back before the next test


def _same_on_spark(spark, duck, frames):
    for name in ("summarize", "cost_breakdown"):
        assert_same(getattr(spark, name)("agent_name"), getattr(duck, name)("agent_name"))
    assert_same(spark.summarize("status", freq="D"), summarize(frames.runs, by="status", freq="D"))
    assert_same(spark.tool_stats(), duck.tool_stats())
    assert_same(spark.series("escalation_rate"), duck.series("escalation_rate"))
    assert_same(spark.rates("agent_name"), duck.rates("agent_name"))
    quality = spark.escalation_quality("agent_name")
    assert "dismissed_rate" in quality
    assert_same(quality, duck.escalation_quality("agent_name"))


def test_compare_rates_on_duckdb_equal_pandas(lakes):
    from conduit_notebook import compare

    cut = "2026-11-10"
    before = read_lake(lakes["exact"], until="2026-11-09").runs
    after = read_lake(lakes["exact"], since=cut).runs
    expected = compare(before, after, resolved=["resolved", "handed_off"], n_boot=100)
    a = Lake(lakes["exact"], until="2026-11-09").rates(resolved=["resolved", "handed_off"])
    b = Lake(lakes["exact"], since=cut).rates(resolved=["resolved", "handed_off"])
    for rate in ("failure_rate", "escalation_rate", "resolution_rate"):
        assert [a[rate].iloc[0], b[rate].iloc[0]] == pytest.approx(
            expected.loc[rate, ["a", "b"]].astype(float).tolist(), rel=1e-9)
    assert a["failure_rate_runs"].iloc[0] == before["status"].isin(["completed", "failed"]).sum()
    by_agent = Lake(lakes["exact"]).rates("agent_name")
    assert by_agent["escalation_rate_events"].sum() == (read_lake(lakes["exact"]).runs["disposition"] == "escalated").sum()


@pytest.mark.parametrize("by, within", [("agent_name", "24h"), (None, "2h"), ("disposition", "72h")])
def test_escalation_quality_counts_on_duckdb_equal_pandas(lakes, by, within):
    from conduit_notebook import escalation_quality

    runs = read_lake(lakes["exact"]).runs
    expected = escalation_quality(runs, by=by, within=within)
    got = Lake(lakes["exact"]).escalation_quality(by, within=within)
    assert expected["resolved_judged"].iloc[-1] > 0 and expected["came_back_rate"].iloc[-1] > 0
    assert_same(got, expected[got.columns])


def test_escalation_quality_with_the_operators_side_on_duckdb_equals_pandas(lakes, client, tmp_path):
    from conduit_notebook import escalation_quality, fetch_escalations

    shutil.copytree(lakes["exact"], tmp_path / "lake")
    frames = read_lake(tmp_path / "lake")
    escalations = fetch_escalations(client=client)
    assert escalations["status"].isin(["dismissed"]).any() and escalations["reviewed_at"].notna().any()
    write_lake(type(frames)(runs=frames.runs.iloc[:0], tool_calls=frames.tool_calls.iloc[:0], agents=frames.agents,
                            errors=frames.errors), tmp_path / "lake", escalations=escalations,
               workspace=str(frames.runs["workspace_id"].iloc[0]))
    expected = escalation_quality(frames.runs, escalations, by="agent_name")
    got = Lake(tmp_path / "lake").escalation_quality("agent_name")
    assert list(got.columns) == list(expected.columns)
    assert_same(got, expected)
