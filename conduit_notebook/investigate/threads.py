"""Guest threads: one row per conversation (:func:`conversations`) or per contact
(:func:`contacts`) with its runs, agents, cost, tokens and how it ended."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import require_columns
from .values import category_codes, float_values


def _nanoseconds(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _threads(runs: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    require_columns(runs, [key, "agent_id", "created_at", "disposition", "total_cost", "total_tokens"], what)
    keys = runs[key].astype("category")
    code = keys.cat.codes.to_numpy().astype(np.int64)
    ns = _nanoseconds(runs["created_at"])
    rows = np.flatnonzero(code >= 0)
    rows = rows[np.lexsort((ns[rows], code[rows]))]
    c = code[rows]
    starts = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1]])) if len(c) else np.zeros(0, dtype=np.int64)
    ends = np.concatenate([starts[1:], [len(c)]]).astype(np.int64) - 1 if len(c) else starts
    group = np.cumsum(np.concatenate([[False], c[1:] != c[:-1]])) if len(c) else c
    n = len(starts)
    cost = float_values(runs["total_cost"])[rows]
    tokens = float_values(runs["total_tokens"])[rows]
    agent = runs["agent_id"].astype("category").cat.codes.to_numpy().astype(np.int64)[rows]
    disposition = runs["disposition"].astype(object).to_numpy()[rows]
    has = pd.notna(disposition)
    pairs = pd.unique(group * (int(agent.max(initial=0)) + 2) + agent + 1) if n else np.zeros(0, dtype=np.int64)
    last = pd.Series(np.flatnonzero(has)).groupby(group[has]).last().reindex(np.arange(n))
    final = np.where(last.notna().to_numpy(), disposition[last.fillna(0).astype(np.int64).to_numpy()],
                     np.array(None, dtype=object))
    with_cost = np.bincount(group[~np.isnan(cost)], minlength=n)
    with_tokens = np.bincount(group[~np.isnan(tokens)], minlength=n)
    first_ns, last_ns = ns[rows][starts], ns[rows][ends]
    table = pd.DataFrame({
        "runs": np.diff(np.concatenate([starts, [len(c)]])).astype(np.int64),
        "agents": np.bincount(pairs // (int(agent.max(initial=0)) + 2), minlength=n).astype(np.int64),
        "first_at": pd.to_datetime(first_ns, utc=True), "last_at": pd.to_datetime(last_ns, utc=True),
        "total_cost": np.where(with_cost > 0, np.bincount(group, weights=np.nan_to_num(cost), minlength=n), np.nan),
        "total_tokens": pd.array(np.where(with_tokens > 0, np.bincount(group, weights=np.nan_to_num(tokens),
                                                                        minlength=n), np.nan), dtype="Int64"),
        "escalated": np.bincount(group[disposition == "escalated"], minlength=n) > 0,
        "final_disposition": pd.Categorical(final),
        "_first": rows[starts],  # the row of each thread's first run, for the callers' extra columns
    }, index=pd.Index(np.asarray(keys.cat.categories.astype(str), dtype=object)[c[starts]] if n else [], name=key))
    return table.sort_values(["total_cost", "runs"], ascending=False, kind="stable", na_position="last")


def conversations(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per ``conversation_id``: ``runs``, ``agents`` (distinct), ``first_at``,
    ``last_at``, ``total_cost`` (USD; missing if no run has a cost), ``total_tokens``,
    ``escalated`` (any run escalated) and ``final_disposition`` (of the latest run that has
    one), with ``contact_id``. Most expensive first.

    >>> threads = conversations(runs)
    >>> threads["final_disposition"].eq("escalated").mean()    # threads ending with a person
    """
    table = _threads(runs, "conversation_id", "conversations")
    first = table.pop("_first").to_numpy()
    if "contact_id" in runs:
        table.insert(0, "contact_id", runs["contact_id"].astype(object).to_numpy()[first])
    return table


def contacts(runs: pd.DataFrame) -> pd.DataFrame:
    """The same as :func:`conversations` per ``contact_id``, with the number of
    ``conversations`` each contact had. Most expensive first."""
    table = _threads(runs, "contact_id", "contacts")
    first = table.pop("_first").to_numpy()
    if "conversation_id" in runs:
        contact, _ = category_codes(runs["contact_id"])
        thread, threads = category_codes(runs["conversation_id"])
        ok = (contact >= 0) & (thread >= 0)
        pairs = pd.unique(contact[ok] * (len(threads) + 1) + thread[ok])
        per_contact = np.bincount(pairs // (len(threads) + 1), minlength=int(contact.max(initial=-1)) + 1)
        table.insert(0, "conversations", per_contact[contact[first]].astype(np.int64) if len(first) else
                     np.zeros(0, dtype=np.int64))
    return table
