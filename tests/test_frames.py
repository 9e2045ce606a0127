"""runs_frame and tool_calls_frame: values and dtypes from the reference's examples, schema drift."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import agents_frame, decode_json, errors_frame, runs_frame, tool_calls_frame
from conduit_notebook.demo import DemoData
from conduit_notebook.frames import AGENT_COLUMNS, ERROR_COLUMNS, JSON_TEXT, RUN_COLUMNS, TOOL_CALL_COLUMNS

from .conftest import DEMO_END, load_example

UTC = "UTC"


def dtype_names(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def test_runs_frame_from_the_reference_example():
    run = load_example("get-run.json")["data"]
    frame = runs_frame([run], agent_names={run["agent_id"]: "Reservations"})
    assert list(frame.columns) == list(RUN_COLUMNS)
    row = frame.iloc[0]
    assert row["id"] == "ar77c0dy0mgdpzmqz6tesry8w184002s" and row["run_id"] == "run_9f3a1c7e"
    assert row["agent_name"] == "Reservations"
    assert row["created_at"] == pd.Timestamp("2026-04-03T03:14:15Z")
    assert row["completed_at"] == pd.Timestamp("2026-04-03T03:14:19.213Z")
    assert (row["duration_ms"], row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (4213, 1820, 342, 2162)
    assert row["total_cost"] == pytest.approx(0.0121)
    assert row["tool_call_count"] == 1
    assert (row["status"], row["disposition"], row["disposition_reason"]) == ("completed", "resolved", "answered_from_knowledge")
    assert row["response"].startswith("You're all set") and row["session_id"] == "sess_4b21e9"
    assert pd.isna(row["error"])
    types = dtype_names(frame)
    assert types["created_at"] == types["completed_at"] == "datetime64[ns, UTC]"
    for column in ("status", "disposition", "disposition_reason", "agent_name", "agent_id"):
        assert types[column] == "category", column
    for column in ("duration_ms", "input_tokens", "output_tokens", "total_tokens", "tool_call_count"):
        assert types[column] == "Int64", column
    assert types["total_cost"] == "float64"
    assert types["id"] == types["response"] == "string"


def test_list_summary_leaves_detail_columns_empty():
    summary = load_example("list-runs.json")["data"][0]
    frame = runs_frame(load_example("list-runs.json"))  # the envelope is accepted too
    assert len(frame) == 1 and frame.loc[0, "id"] == summary["id"]
    for column in ("disposition_reason", "session_id", "response", "reflection", "tool_call_count",
                   "trigger_event_id"):
        assert pd.isna(frame.loc[0, column]), column
    assert frame.loc[0, "input_tokens"] == 1820


def test_tool_calls_frame_from_the_reference_example():
    run = load_example("get-run.json")["data"]
    calls = tool_calls_frame([run])
    assert list(calls.columns) == list(TOOL_CALL_COLUMNS)
    assert len(calls) == 1
    call = calls.iloc[0]
    assert call["agent_run_id"] == run["id"] and call["agent_id"] == run["agent_id"]
    assert call["step"] == 0 and call["name"] == "get_reservation"
    # input and output are JSON text (Arrow), decoded on access
    assert calls["input"].dtype == JSON_TEXT and calls["output"].dtype == JSON_TEXT
    assert json.loads(call["input"]) == {"reservation_id": "res_123"}
    assert calls.conduit.input_json()[0] == {"reservation_id": "res_123"}
    assert decode_json(calls["output"])[0] == {"status": "confirmed", "check_in": "2026-04-05"}
    flat = calls.conduit.json_normalize("output", ["status", "nope"])
    assert list(flat.columns) == ["status", "nope"] and flat.loc[0, "status"] == "confirmed"
    assert pd.isna(flat.loc[0, "nope"])
    assert call["created_at"] == pd.Timestamp("2026-04-03T03:14:15Z")
    assert (call["status"], call["disposition"]) == ("completed", "resolved")
    merged = calls.merge(runs_frame([run]), left_on="agent_run_id", right_on="id")
    assert len(merged) == 1 and merged.loc[0, "duration_ms"] == 4213


def test_schema_drift():
    base = load_example("get-run.json")["data"]
    no_usage = {**base, "id": "ar_no_usage", "token_usage": None, "total_cost": None}
    missing_usage = {k: v for k, v in base.items() if k not in ("token_usage", "total_cost")}
    missing_usage["id"] = "ar_missing_usage"
    null_trace = {**base, "id": "ar_null_trace", "tool_trace": None, "status": "running",
                  "completed_at": None, "disposition": None}
    offset = {**base, "id": "ar_offset", "created_at": "2026-04-03T05:14:15+02:00",
              "completed_at": "2026-04-03T03:14:19Z"}
    string_input = {**base, "id": "ar_string_input",
                    "tool_trace": [{"name": "search_knowledge_base", "input": "pet policy",
                                    "output": ["a", "b"], "duration_ms": 120},
                                   {"name": "get_reservation", "input": {"id": 1}, "output": None,
                                    "error": "timeout"}]}
    unknown = {**base, "id": "ar_unknown", "channel": "whatsapp", "priority": 2,
               "metadata": {"locale": "pt-PT"}, "disposition": "refund_requested"}
    runs = runs_frame([no_usage, missing_usage, null_trace, offset, string_input, unknown])
    by_id = runs.set_index("id")
    for run_id in ("ar_no_usage", "ar_missing_usage"):
        assert pd.isna(by_id.loc[run_id, "input_tokens"]) and pd.isna(by_id.loc[run_id, "total_tokens"])
        assert math.isnan(by_id.loc[run_id, "total_cost"])
    assert pd.isna(by_id.loc["ar_null_trace", "tool_call_count"])
    assert pd.isna(by_id.loc["ar_null_trace", "completed_at"])
    assert by_id.loc["ar_offset", "created_at"] == pd.Timestamp("2026-04-03T03:14:15Z")
    assert by_id.loc["ar_string_input", "tool_call_count"] == 2
    # Unknown fields survive, typed where they can be.
    assert by_id.loc["ar_unknown", "channel"] == "whatsapp" and str(runs["channel"].dtype) == "string"
    assert by_id.loc["ar_unknown", "priority"] == 2 and str(runs["priority"].dtype) == "Int64"
    assert runs["metadata"].dtype == JSON_TEXT
    assert runs.conduit.json("metadata")[list(runs["id"]).index("ar_unknown")] == {"locale": "pt-PT"}
    assert pd.isna(by_id.loc["ar_offset", "priority"])
    # An open set of dispositions.
    assert "refund_requested" in set(runs["disposition"].dropna())
    calls = tool_calls_frame([null_trace, string_input])
    assert list(calls["step"]) == [0, 1]
    inputs, outputs = calls.conduit.input_json(), calls.conduit.output_json()
    assert inputs[0] == "pet policy" and outputs[0] == ["a", "b"] and inputs[1] == {"id": 1}
    assert calls.loc[0, "duration_ms"] == 120 and pd.isna(calls.loc[1, "duration_ms"])
    assert calls.loc[1, "error"] == "timeout" and outputs[1] is None and pd.isna(calls.loc[1, "output"])
    assert list(calls.columns[-3:]) == ["created_at", "status", "disposition"]


def test_odd_values_take_the_careful_path_and_lose_nothing():
    base = load_example("get-run.json")["data"]
    odd = {**base, "id": "ar_odd", "error": {"code": "E42", "message": "tool crashed"},
           "duration_ms": "4213", "token_usage": {"input": 10.0, "output": 5}}
    fractional = {**base, "id": "ar_fraction", "duration_ms": 4213.5}
    runs = runs_frame([base, odd]).set_index("id")
    assert runs.loc["ar_odd", "error"] == '{"code": "E42", "message": "tool crashed"}'
    assert runs.loc["ar_odd", "duration_ms"] == 4213
    assert runs.loc["ar_odd", "total_tokens"] == 15
    mixed = runs_frame([base, fractional]).set_index("id")
    assert mixed.loc["ar_fraction", "duration_ms"] == 4213.5  # kept, never truncated


def test_fast_and_careful_paths_agree():
    records = DemoData(runs=300, agents=3, seed=5, end=DEMO_END).records()
    fast = runs_frame(records)
    drifted = copy.deepcopy(records)
    drifted[0]["error"] = {"code": 1}  # one odd value sends every column down the careful path
    careful = runs_frame(drifted)
    pd.testing.assert_frame_equal(fast.iloc[1:].reset_index(drop=True),
                                  careful.iloc[1:].reset_index(drop=True))


def test_empty_inputs_give_typed_empty_frames():
    records = DemoData(runs=50, agents=3, seed=2, end=DEMO_END).records()
    full_runs, full_calls = runs_frame(records), tool_calls_frame(records)
    empty_runs, empty_calls = runs_frame([]), tool_calls_frame([])
    assert len(empty_runs) == 0 and len(empty_calls) == 0
    assert dtype_names(empty_runs) == {c: t for c, t in dtype_names(full_runs).items() if c in RUN_COLUMNS}
    assert dtype_names(empty_calls) == {c: t for c, t in dtype_names(full_calls).items() if c in TOOL_CALL_COLUMNS}
    assert list(agents_frame([]).columns) == list(AGENT_COLUMNS)
    assert list(errors_frame([]).columns) == list(ERROR_COLUMNS)
    no_calls = tool_calls_frame([{**records[0], "tool_trace": None}])
    assert dtype_names(no_calls) == dtype_names(empty_calls)


def test_demo_frames_match_the_records():
    records = DemoData(runs=400, agents=3, seed=9, end=DEMO_END).records()
    runs, calls = runs_frame(records), tool_calls_frame(records)
    assert len(runs) == 400
    assert len(calls) == sum(len(r["tool_trace"] or []) for r in records)
    expected_cost = sum(r["total_cost"] or 0 for r in records)
    assert runs["total_cost"].sum() == pytest.approx(expected_cost)
    expected_tokens = sum(r["token_usage"]["input"] for r in records if r["token_usage"])
    assert int(runs["input_tokens"].sum()) == expected_tokens
    assert runs["input_tokens"].isna().sum() == sum(r["token_usage"] is None for r in records)
    # Steps restart at 0 for each run and follow the trace.
    first = next(r for r in records if r["tool_trace"] and len(r["tool_trace"]) > 2)
    mine = calls[calls["agent_run_id"] == first["id"]]
    assert list(mine["step"]) == list(range(len(first["tool_trace"])))
    assert list(mine["name"]) == [t["name"] for t in first["tool_trace"]]
    assert np.all(calls.groupby("agent_run_id", observed=True)["step"].min() == 0)


def test_agents_frame():
    agents = load_example("list-agents.json")["data"]
    frame = agents_frame(agents)
    assert frame.loc[0, "name"] == "Reservations" and frame.loc[0, "trigger_count"] == 1
    assert frame.loc[0, "enabled"] is np.True_ or frame.loc[0, "enabled"] == True  # noqa: E712
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert frame.loc[0, "operation_mode"] == "autopilot"


def test_bad_input_says_what_is_accepted():
    with pytest.raises(TypeError, match="not a DataFrame"):
        runs_frame(pd.DataFrame({"id": ["a"]}))
    with pytest.raises(TypeError, match="item 1 is a str"):
        tool_calls_frame([{"id": "a"}, "b"])


@pytest.mark.parametrize("extra", [None, 2**70])  # 2**70: orjson refuses it, json takes over
def test_json_text_round_trips_awkward_values(extra):
    from conduit_notebook.frames import json_text

    values = [{"a": [1, {"b": ",\n,"}]}, None, "line\nbreak", [], {}, 0, "null", 1.5, extra]
    texts = json_text(values)
    assert texts.dtype == JSON_TEXT and len(texts) == len(values)
    assert pd.isna(texts[1]) and texts[6] == '"null"'
    assert list(decode_json(pd.Series(texts))) == values
