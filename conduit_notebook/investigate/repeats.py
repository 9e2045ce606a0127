"""Repeated calls: the same tool called again with the same input in a run
(:func:`repeated_calls`), and the share of each agent's runs that do it (:func:`repeat_rates`)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..analysis import require_columns
from ..lookup import run_positions
from ..stats import share_interval, wilson_interval
from .sample import Sample, trace_sample
from .values import category_codes, float_values

_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_SORTED = orjson.OPT_SORT_KEYS


def _encode(value: Any) -> str:
    try:  # orjson first (fast); what it refuses (NaN, huge ints, odd keys) goes to json
        return orjson.dumps(value, option=_SORTED).decode()
    except (TypeError, ValueError):
        pass
    try:
        return _ENCODE(value)
    except (TypeError, ValueError):
        return _ENCODE(str(value))


def canonical_json(value: Any) -> str:
    """One text per JSON value, whatever its key order (sorted keys, compact separators, as
    ``orjson`` writes it): a string is parsed first (tool-call input may be stored as JSON
    text); text that is not JSON counts as a JSON string."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except ValueError:
            try:
                value = json.loads(value)  # NaN, Infinity and huge integers orjson refuses
            except ValueError:
                pass
    elif value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        value = None
    return _encode(value)


def _canonical_ids(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """An integer per value, equal for equal canonical JSON, and the canonical texts. JSON text
    (the frames' Arrow strings) is dictionary-encoded first, so each distinct text is parsed
    once; other values (dicts, lists) are canonicalised once per repr."""
    by_text: dict[str, int] = {}
    texts: list[str] = []

    def intern(text: str) -> int:
        found = by_text.get(text)
        if found is None:
            found = by_text[text] = len(texts)
            texts.append(text)
        return found

    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        text = pa.array(values.array)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        encoded = pc.dictionary_encode(text.cast(pa.large_string()) if text.type != pa.string() else text)
        mapping = np.array([intern(canonical_json(t)) for t in encoded.dictionary.to_pylist()] + [intern("null")],
                           dtype=np.int64)
        index = pc.fill_null(encoded.indices, len(mapping) - 1).to_numpy(zero_copy_only=False)
        return mapping[index.astype(np.int64)], texts
    by_repr: dict[tuple[bool, str], int] = {}
    ids = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values.tolist()):
        key = (True, value) if isinstance(value, str) else (False, repr(value))
        found = by_repr.get(key)
        if found is None:
            found = by_repr[key] = intern(canonical_json(value))
        ids[k] = found
    return ids, texts


def repeated_calls(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run, tool and input that the run called more than once with the same input
    (compared as canonical JSON, whatever the key order; another input is not a repeat):
    ``agent_run_id``, ``agent_id``, ``name``, ``times``, ``input`` (canonical JSON) and, given
    ``runs``, the run's ``agent_name`` and ``total_cost``. Most repeated first.

    With a trace budget (``runs`` with ``trace_weight``, some other than 1) the rows can only
    be those of traced runs: each row then carries its run's ``trace_weight``, the runs of the
    window it stands for (0 for a run traced by hand, outside the random sample), so that
    ``(repeats.trace_weight * repeats.times).sum()`` is the Horvitz-Thompson estimate of the
    window's repeated calls; ``.attrs["note"]`` says ``"estimated from N traced runs"``. For
    the share of runs with a repeat, with its interval, see :func:`repeat_rates`.
    """
    require_columns(tool_calls, ["agent_run_id", "name", "input"], "repeated_calls")
    rcode, run_ids = category_codes(tool_calls["agent_run_id"])
    ncode, names = category_codes(tool_calls["name"])
    # Only a tool called twice in a run can repeat: canonicalise just those inputs.
    # A stable sort of the (run, tool) keys finds them; calls come grouped by run, so the sort
    # is nearly free (faster than hashing 4 million keys).
    pair = rcode * (len(names) + 1) + ncode
    order = np.argsort(pair, kind="stable")
    same = pair[order][1:] == pair[order][:-1]
    twice = np.zeros(len(pair), dtype=bool)
    twice[order[1:][same]] = True
    twice[order[:-1][same]] = True
    candidates = np.flatnonzero(twice & (rcode >= 0) & (ncode >= 0))
    ids, texts = _canonical_ids(tool_calls["input"].take(candidates))
    key = (rcode[candidates] * (len(names) + 1) + ncode[candidates]) * max(len(texts), 1) + ids
    group, _ = pd.factorize(key)
    times = np.bincount(group)
    first = np.full(len(times), len(tool_calls), dtype=np.int64)
    np.minimum.at(first, group, candidates)
    keep = np.flatnonzero(times > 1)
    first = first[keep]
    order = np.argsort(first, kind="stable")  # in the calls' order before the final sort
    keep, first = keep[order], first[order]
    at = np.searchsorted(candidates, first)
    grouped = pd.DataFrame({"r": rcode[first], "t": ncode[first], "size": times[keep], "min": first,
                            "input": [texts[i] for i in ids[at]]})
    agent = (tool_calls["agent_id"].take(grouped["min"].to_numpy()).astype(object).to_numpy()
             if "agent_id" in tool_calls else np.full(len(grouped), None, dtype=object))
    out = pd.DataFrame({
        "agent_run_id": run_ids.take(grouped["r"].to_numpy()).astype(str).to_numpy(dtype=object),
        "agent_id": agent,
        "name": names.take(grouped["t"].to_numpy()).astype(str).to_numpy(dtype=object),
        "times": grouped["size"].to_numpy(dtype=np.int64), "input": grouped["input"].to_numpy(dtype=object)})
    if runs is not None:
        require_columns(runs, ["id", "total_cost"], "repeated_calls")
        codes, unique = pd.factorize(out["agent_run_id"])  # a run may repeat several tools
        row = run_positions(pd.Index(unique, dtype=object), runs)[codes] if len(out) else np.zeros(0, dtype=np.int64)
        found = row >= 0
        if "agent_name" in runs:
            name = np.full(len(out), None, dtype=object)
            name[found] = runs["agent_name"].take(row[found]).astype(object).to_numpy()
            out["agent_name"] = name
        cost = np.full(len(out), np.nan)
        cost[found] = float_values(runs["total_cost"].take(row[found]))
        out["total_cost"] = cost
        sample = trace_sample(runs)
        if sample is not None:
            weight = np.full(len(out), np.nan)
            weight[found] = sample.weight[row[found]]
            out["trace_weight"] = weight
            out.attrs.update(note=sample.note, estimated_from=sample.traced)
    return out.sort_values(["times", "agent_run_id", "name"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


def repeat_rates(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None, *,
                 repeats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per agent: ``runs``, ``runs_with_repeat`` (a tool called again with the same input),
    ``share`` with a 95% Wilson interval (``ci_low``, ``ci_high``). Out of all of the agent's
    ``runs`` when given (by ``agent_name``), else out of the runs seen in the calls (by
    ``agent_id``). Pass ``repeats`` (from :func:`repeated_calls`) to skip recomputing them.

    With a trace budget (``runs`` with ``trace_weight``, some other than 1), the share is
    estimated for all of the agent's runs from its runs in the random trace sample
    (``trace_weight`` > 0; untraced runs and runs traced by hand do not count): a ratio
    estimate ``sum w * repeated / sum w``, ``runs_with_repeat`` is that share of ``runs`` (a
    float), ``traced_runs`` the agent's sampled runs, and the interval is Wilson's at Kish's
    effective sample size from the linearised stratified variance over the strata recovered
    from the weights (:func:`conduit_notebook.sampling.domain_ratios_from_sums`).
    ``.attrs["note"]`` says ``"estimated from N traced runs"``. With every trace present
    nothing changes.
    """
    repeats = repeated_calls(tool_calls) if repeats is None else repeats
    repeating = pa.array(pd.unique(repeats["agent_run_id"].astype(str)), type=pa.string())
    if runs is not None:
        require_columns(runs, ["id", "agent_id"], "repeat_rates")
        key = "agent_name" if "agent_name" in runs and runs["agent_name"].notna().any() else "agent_id"
        agent, agents = category_codes(runs[key])
        ids = runs["id"]
    else:
        key = "agent_id"
        require_columns(tool_calls, ["agent_id"], "repeat_rates")
        rcode, run_ids = category_codes(tool_calls["agent_run_id"])
        code, agents = category_codes(tool_calls["agent_id"])
        first = np.full(len(run_ids), -1, dtype=np.int64)
        first[rcode[::-1]] = np.arange(len(rcode))[::-1]  # each run's first call
        seen = np.flatnonzero(first >= 0)
        agent, ids = code[first[seen]], pd.Series(run_ids.take(seen))
    has = pc.is_in(pa.array(ids.astype(str).array), value_set=repeating).to_numpy(zero_copy_only=False)
    labels = [*agents.astype(object), None]
    agent = np.where(agent < 0, len(labels) - 1, agent)
    sample = trace_sample(runs)
    if sample is not None:
        return _repeat_rates_estimated(sample, agent, labels, has, key)
    total = np.bincount(agent, minlength=len(labels))
    with_repeat = np.bincount(agent[has], minlength=len(labels))
    keep = total > 0
    table = pd.DataFrame({"runs": total[keep], "runs_with_repeat": with_repeat[keep]},
                         index=pd.Index([label for label, k in zip(labels, keep, strict=False) if k], name=key))
    table["share"] = table["runs_with_repeat"] / table["runs"]
    bounds = [wilson_interval(int(k), int(n)) for k, n in zip(table["runs_with_repeat"], table["runs"], strict=False)]
    table["ci_low"], table["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return table.sort_values("share", ascending=False, kind="stable")


def _repeat_rates_estimated(sample: Sample, agent: np.ndarray, labels: list[Any], has: np.ndarray,
                            key: str) -> pd.DataFrame:
    """:func:`repeat_rates` for all runs from the random trace sample: each agent is a domain
    (its runs' design groups), its share a ratio estimate with a design-based interval."""
    every = np.arange(len(agent))
    sy = sample.sums(every, agent, has.astype(float), len(labels))
    sx = sample.sums(every, agent, np.ones(len(agent)), len(labels))
    total = np.bincount(agent, minlength=len(labels))
    traced = np.bincount(agent[sample.sampled], minlength=len(labels))
    share, low, high = np.full(len(labels), np.nan), np.full(len(labels), np.nan), np.full(len(labels), np.nan)
    for a in np.flatnonzero(traced):
        groups = np.flatnonzero(sx[:, a] > 0)  # the agent's groups only: others' zeros are not its spread
        column = [a]
        p, se = sample.ratios(sy[:, column], sy[:, column], sx[:, column], sx[:, column], sy[:, column], groups)
        share[a] = p[0]
        low[a], high[a] = share_interval(float(p[0]), float(se[0]), int(traced[a]))
    keep = total > 0
    table = pd.DataFrame({"runs": total[keep], "traced_runs": traced[keep], "runs_with_repeat": (share * total)[keep],
                          "share": share[keep], "ci_low": low[keep], "ci_high": high[keep]},
                         index=pd.Index([label for label, k in zip(labels, keep, strict=False) if k], name=key))
    table = table.sort_values("share", ascending=False, kind="stable")
    table.attrs.update(note=sample.note, estimated_from=sample.traced)
    return table
