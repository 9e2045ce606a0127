"""Tool sequences: each run's path of tool names (:func:`run_paths`), the commonest paths and
how they end (:func:`tool_paths`), and which tool follows which (:func:`tool_transitions`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import require_columns, summarize
from ..lookup import run_positions
from ..stats import Z95, share_interval
from ..stats.design import TraceSample, concentration, row_flags, trace_sample
from ..stats.unseen import flags_note, unseen_rows

NO_TOOLS = "(no tool calls)"


def _sequences(tool_calls: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The calls of each run in trace order: (run ids, run code per segment, segment starts,
    tool code per call, tool names), one segment per run."""
    require_columns(tool_calls, ["agent_run_id", "name"], "tool paths")
    run = tool_calls["agent_run_id"]
    run = run if isinstance(run.dtype, pd.CategoricalDtype) else run.astype("category")
    name = tool_calls["name"]
    name = name if isinstance(name.dtype, pd.CategoricalDtype) else name.astype("category")
    names = [str(n) for n in name.cat.categories] + ["(unnamed)"]
    rcode = run.cat.codes.to_numpy().astype(np.int64)
    ncode = name.cat.codes.to_numpy().astype(np.int64)
    ncode = np.where(ncode < 0, len(names) - 1, ncode)
    step = (tool_calls["step"].to_numpy(dtype=np.int64, na_value=0) if "step" in tool_calls
            else np.arange(len(tool_calls)))
    keep = rcode >= 0
    rcode, ncode, step = rcode[keep], ncode[keep], step[keep]
    change = np.flatnonzero(rcode[1:] != rcode[:-1]) + 1
    # Each run's calls together (as frames hold them) iff there is one stretch per run seen.
    ordered = (len(change) + 1 == np.count_nonzero(np.bincount(rcode)) if len(rcode) else True)
    if ordered and len(rcode):
        inside = np.ones(len(rcode) - 1, dtype=bool)
        inside[change - 1] = False
        ordered = bool(np.all(step[1:][inside] > step[:-1][inside]))
    if not ordered:  # group each run's calls together, in step order
        order = np.lexsort((step, rcode))
        rcode, ncode = rcode[order], ncode[order]
        change = np.flatnonzero(rcode[1:] != rcode[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64) if len(rcode) else np.zeros(0, dtype=np.int64)
    return run.cat.categories, rcode[starts], starts, ncode, names


def _path_codes(starts: np.ndarray, ncode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A code per segment (equal codes: equal tool sequences) and the first segment of each
    code: a polynomial hash of the sequence, wrapping in uint64, mixed with its length."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.concatenate([starts, [len(ncode)]]))
    position = np.arange(len(ncode)) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.concatenate([[1], np.full(int(lengths.max()), 1_000_003)]).astype(np.uint64))
        contribution = (ncode.astype(np.uint64) + np.uint64(1)) * powers[position]
        key = np.add.reduceat(contribution, starts) + lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, codes = np.unique(key, return_index=True, return_inverse=True)
    return codes.ravel(), first


def run_paths(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.Series:
    """Each run's ordered tool names joined by ``" > "`` (a categorical Series indexed like
    ``runs``, runs without calls: ``"(no tool calls)"``; without ``runs``: indexed by run id)."""
    run_ids, seg_run, starts, ncode, names = _sequences(tool_calls)
    codes, first = _path_codes(starts, ncode)
    ends = np.concatenate([starts[1:], [len(ncode)]]) if len(starts) else starts
    labels = [" > ".join(names[c] for c in ncode[starts[s]:ends[s]]) for s in first]
    if runs is None:
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(labels)),
                         index=run_ids.take(seg_run).rename("agent_run_id"), name="path")
    require_columns(runs, ["id"], "run_paths")
    row = run_positions(run_ids.take(seg_run), runs)  # the ids used: a filtered frame keeps every category
    per_run = np.full(len(runs), len(labels), dtype=np.int64)
    per_run[row[row >= 0]] = codes[row >= 0]
    return pd.Series(pd.Categorical.from_codes(per_run, categories=pd.Index([*labels, NO_TOOLS])), index=runs.index,
                     name="path")


def _shares(codes: np.ndarray, n: int, disposition: pd.Series,
            weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    d = disposition.astype("category")
    dcode = d.cat.codes.to_numpy().astype(np.int64)
    ok = dcode >= 0
    k = len(d.cat.categories)
    mix = np.bincount(codes[ok] * k + dcode[ok], weights=None if weights is None else weights[ok],
                      minlength=n * k).reshape(n, k).astype(float)
    totals = mix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, mix / totals, np.nan)
    return {f"disposition:{name}": shares[:, j] for j, name in enumerate(d.cat.categories)}


def tool_paths(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per distinct ordered sequence of tool names in a run, most common first:
    ``path`` (names joined by ``" > "``), ``calls`` (its length), ``runs`` and ``share`` of runs.

    With ``runs``, every run counts (those without calls as ``"(no tool calls)"``) and each
    path also gets the ``disposition:<name>`` mix of its runs (among those with a disposition),
    ``p50_duration_s`` and ``cost_per_run`` (as :func:`summarize` defines them).

    With a trace budget (``runs`` carry ``trace_weight``, NaN for runs whose trace was not
    fetched), only traced runs count, each weighted by its ``trace_weight`` (Horvitz-Thompson):
    ``runs`` is then the estimated number of runs of the window taking the path (a float),
    ``share`` and the disposition mix are weighted estimates, the duration and cost columns
    are unweighted over the path's traced runs, and ``.attrs["note"]`` says
    ``"estimated from N traced runs"`` and ``traced_runs`` how many of them take the path (the
    number a threshold such as "10 runs or more" applies to). When the weights are a random sample's (some > 0 and
    not all 1), ``share_low``/``share_high`` are its 95% interval: Wilson at Kish's effective
    sample size from the stratified variance over the strata recovered from the weights, the
    share linearised as a ratio (:func:`conduit_notebook.sampling.domain_ratios_from_sums`);
    ``runs_low``/``runs_high`` are that interval times the runs it is a share of. Under such a
    sample each row also has a ``flag`` (:func:`conduit_notebook.stats.design.row_flags`: "few
    traced runs" under 10, or a slice under 30; a run takes one path, so no "concentrated"), and
    a path known to exist but taken by no sampled run (the path of a run in ``tool_calls``
    outside the random sample: hand-picked, another slice, a previous fetch; "(no tool calls)"
    for a run whose trace is at hand) is a row of 0 whose ``share_high`` is the **rule of three**
    at Kish's effective n (``1 - 0.05 ** (1 / n)``, about 3 / n; ``runs_high`` that share of the
    runs), flagged "not seen in the sample". ``attrs["flags"]`` says how rare a path can be and
    still be missed, and what to fetch (:func:`conduit_notebook.stats.unseen.flags_note`).
    Simulated in benchmarks/sim_corners.py (docs/statistics.md). With every trace present
    nothing changes.

    >>> tool_paths(calls, runs).sort_values("disposition:escalated", ascending=False).head()
    """
    paths = run_paths(tool_calls, runs)
    codes = paths.cat.codes.to_numpy().astype(np.int64)
    labels = list(paths.cat.categories)
    n = len(labels)
    weights, note, sample, traced = None, None, None, 0
    if runs is not None and "trace_weight" in runs and runs["trace_weight"].isna().any():
        design = TraceSample.from_runs(runs)
        # The traced runs an estimate uses, as every table counts them (hand-picked: weight 0).
        weights, note, traced = design.weight, design.note, design.traced
        sample = design if design.is_sample else None
    count = np.bincount(codes, weights=weights, minlength=n)
    total = len(codes) if weights is None else weights.sum()
    table = pd.DataFrame({"path": labels,
                          "calls": [0 if p == NO_TOOLS else p.count(" > ") + 1 for p in labels],
                          "runs": count, "share": count / (total if total else 1)})
    if weights is not None:  # the traced runs each estimated row rests on (thresholds apply to them)
        table.insert(3, "traced_runs", np.bincount(codes, weights=(weights > 0).astype(float), minlength=n)
                     .astype(np.int64))
    if sample is not None:
        _path_intervals(table, sample, codes, n)
    if runs is not None:
        for column, values in _shares(codes, n, runs["disposition"], weights).items():
            table[column] = values
        path_code = codes if weights is None else np.where(weights > 0, codes, -1)
        stats = summarize(runs[["status", "duration_ms", "input_tokens", "output_tokens", "total_tokens",
                                "total_cost"]].assign(_path=path_code), by="_path")
        stats = stats.reindex(np.arange(n))
        table["p50_duration_s"] = stats["p50_duration_s"].to_numpy()
        table["cost_per_run"] = stats["cost_per_run"].to_numpy()
    keep = table["runs"].to_numpy() > 0
    if sample is not None:  # known paths the random sample missed: rows of 0 with an upper bound
        assert runs is not None
        keep |= _unseen_paths(table, sample, codes, runs, n)
        table["flag"] = row_flags(table["traced_runs"].to_numpy(), np.full(n, np.nan), sample.traced)
    table = table[keep]
    table = table.sort_values(["runs", "path"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if note:
        table.attrs.update(note=note, estimated_from=traced)
    if sample is not None:
        table.attrs.update(kish_n=sample.kish_n, flags=flags_note(table["traced_runs"].to_numpy(),
                                                                  table["flag"].to_numpy(), sample, "path"))
    return table


def _unseen_paths(table: pd.DataFrame, sample: TraceSample, codes: np.ndarray, runs: pd.DataFrame,
                  n: int) -> np.ndarray:
    """Which paths are known but not seen in the random sample (each a path of some run in the
    calls given: a hand-picked trace, a run outside the slice; or no calls, for a run whose trace
    is at hand), given 0 and the rule-of-three bound at Kish's n as ``share_high``."""
    known = np.ones(n, dtype=bool)  # every label is the path of a run in the calls...
    at_hand = runs["trace_weight"].notna().to_numpy()
    known[n - 1] = bool((codes[at_hand] == n - 1).any())  # ... but "(no tool calls)"
    unseen = known & (table["traced_runs"].to_numpy() == 0)
    rows = unseen_rows(table.index[unseen], sample, zero=["runs", "share", "runs_low", "share_low"],
                       share=["share_high"], count=["runs_high"])
    table.loc[unseen, rows.columns] = rows
    return unseen


def _path_intervals(table: pd.DataFrame, sample: TraceSample, codes: np.ndarray, n: int) -> None:
    """Add 95% intervals of :func:`tool_paths`' estimated ``runs`` and ``share`` (per path code)."""
    every = np.arange(len(codes))
    took = sample.sums(every, codes, np.ones(len(codes)), n)
    runs_n = np.repeat(sample.n_h[:, None], n, axis=1)
    share, share_se = sample.ratios(took, took, runs_n, runs_n, took)
    bounds = np.array([share_interval(p, e, sample.traced) for p, e in zip(share, share_se, strict=False)]).reshape(-1, 2)
    # The runs are the share of the runs it is out of: its Wilson interval scaled (positive
    # for a path seen in a few traced runs, where a normal interval would reach below 0).
    population = float((sample.g_weight * sample.n_h).sum())
    table.insert(3, "runs_low", bounds[:, 0] * population)
    table.insert(4, "runs_high", bounds[:, 1] * population)
    table["share_low"], table["share_high"] = bounds[:, 0], bounds[:, 1]


def tool_transitions(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None, *, normalize: bool = False,
                     long: bool = False) -> pd.DataFrame:
    """Which tool follows which: a table of counts from each tool (and ``"(start)"``, a run's
    first call) to the next (and ``"(end)"``, its last). ``normalize=True``: shares of each row.
    Given ``runs``, only the calls of those runs count.

    ``long=True``: one row per transition seen instead, ``from``, ``to``, ``transitions`` and
    ``share`` (of the transitions out of ``from``), most frequent first.

    With a trace budget (``runs`` with ``trace_weight``, as after ``fetch_runs(details="auto")``
    on a busy workspace), the table estimates the whole window from the random trace sample:
    only runs with ``trace_weight`` > 0 count (not the untraced, nor those traced by hand), each
    weighted by its weight. Counts are Horvitz-Thompson totals ``sum w * transitions``, shares
    ratio estimates ``sum w * (from -> to) / sum w * (from -> any)``; ``long=True`` adds 95%
    intervals (``transitions_low``/``_high``: normal, from the stratified variance over the
    strata recovered from the weights; ``share_low``/``_high``: Wilson at Kish's effective
    sample size from the linearised stratified variance; see
    :func:`conduit_notebook.sampling.domain_ratios_from_sums`), and ``.attrs["note"]`` says
    ``"estimated from N traced runs"``. Under a sample the long table also says what each row
    rests on: ``traced_runs`` (sampled runs taking it), ``top5_share`` (share of its count in
    its 5 busiest runs) and ``flag`` ("few traced runs", "concentrated in few runs": the
    interval may not hold); and a transition known to exist (taken in ``tool_calls`` by a run
    outside the random sample) but taken by no sampled run is a row of 0 flagged "not seen in
    the sample", whose ``share_of_runs_high`` is the **rule of three** at Kish's effective n:
    the largest share of runs that could take it (NaN on the other rows; its count and its
    share of ``from``'s transitions have no bound, as a run may take it many times).
    ``attrs["flags"]`` says how rare a transition can be and still be missed. With every trace
    present nothing changes.

    >>> tool_transitions(calls, runs, normalize=True).round(2)
    >>> tool_transitions(calls, runs, long=True).head(10)      # with intervals under a budget
    """
    run_ids, seg_run, starts, ncode, names = _sequences(tool_calls)
    k = len(names)
    start, end = k, k + 1
    lengths = np.diff(np.concatenate([starts, [len(ncode)]])) if len(starts) else starts
    segment = np.repeat(np.arange(len(starts)), lengths)
    is_start = np.zeros(len(ncode), dtype=bool)
    is_start[starts] = True
    previous = np.where(is_start, start, np.concatenate([[start], ncode[:-1]]))
    is_last = np.zeros(len(ncode), dtype=bool)
    is_last[np.concatenate([starts[1:] - 1, [len(ncode) - 1]]) if len(starts) else []] = True
    src = np.concatenate([previous, ncode[is_last]])
    dst = np.concatenate([ncode, np.full(int(is_last.sum()), end)])
    run = np.concatenate([segment, segment[is_last]])  # each transition's segment (run)
    sample, known = None, np.unique(src * (k + 2) + dst)  # every transition of the calls given
    if runs is not None:
        require_columns(runs, ["id"], "tool_transitions")
        sample = trace_sample(runs)
        among = None if sample is None else np.flatnonzero(sample.sampled)  # only sampled runs count
        run = run_positions(run_ids.take(seg_run), runs, among)[run] if len(run) else run
        keep = run >= 0  # calls of runs outside ``runs`` (or of the sample) do not count
        src, dst, run = src[keep], dst[keep], run[keep]
    weights = None if sample is None else sample.weight[run]
    counts = np.bincount(src * (k + 2) + dst, weights=weights, minlength=(k + 2) ** 2).reshape(k + 2, k + 2)
    used = sorted(np.flatnonzero(np.bincount(dst[dst < k], minlength=k)).tolist(), key=lambda c: names[c])
    rows, columns = [start, *used], [*used, end]
    from_names = ["(start)", *[names[c] for c in used]]
    to_names = [*[names[c] for c in used], "(end)"]
    if long:
        table = _transitions_long(counts, rows, columns, from_names, to_names, src, dst, run, sample, k)
        if sample is not None:
            table = _with_unseen_transitions(table, known, counts, names, sample)
    else:
        table = pd.DataFrame(counts[np.ix_(rows, columns)], index=pd.Index(from_names, name="from"),
                             columns=pd.Index(to_names, name="to"))
        if normalize:
            table = table.div(table.sum(axis=1).where(lambda s: s > 0), axis=0)
    if sample is not None:
        table.attrs.update(note=sample.note, estimated_from=sample.traced)
    return table


def _transitions_long(counts: np.ndarray, rows: list[int], columns: list[int], from_names: list[str],
                      to_names: list[str], src: np.ndarray, dst: np.ndarray, run: np.ndarray,
                      sample: TraceSample | None, k: int) -> pd.DataFrame:
    """:func:`tool_transitions` as one row per transition seen, with intervals under a sample."""
    fi, ti = np.nonzero(counts[np.ix_(rows, columns)] > 0)
    out_of = counts[rows].sum(axis=1)
    value = counts[np.ix_(rows, columns)][fi, ti]
    table = pd.DataFrame({"from": [from_names[i] for i in fi], "to": [to_names[j] for j in ti],
                          "transitions": value, "share": value / out_of[fi]})
    if sample is not None and len(table):
        # Per run: its count of each transition seen (y) and of transitions out of its tool (x).
        cell_code = np.full((k + 2) ** 2, -1, dtype=np.int64)
        cell_code[np.asarray(rows)[fi] * (k + 2) + np.asarray(columns)[ti]] = np.arange(len(fi))
        cell = cell_code[src * (k + 2) + dst]
        n_cells, n_rows = len(fi), len(rows)
        pair, y = np.unique(run * n_cells + cell, return_counts=True)
        p_run, p_cell = pair // n_cells, pair % n_cells
        row_index = np.full(k + 2, -1, dtype=np.int64)
        row_index[rows] = np.arange(n_rows)
        from_row = row_index[src]
        rpair, x = np.unique(run * n_rows + from_row, return_counts=True)
        x_of_pair = x[np.searchsorted(rpair, p_run * n_rows + fi[p_cell])]
        r_run, r_row = rpair // n_rows, rpair % n_rows
        sy, syy = (sample.sums(p_run, p_cell, v, n_cells) for v in (y, y.astype(float) ** 2))
        sxy = sample.sums(p_run, p_cell, x_of_pair * y, n_cells)
        sx_rows, sxx_rows = (sample.sums(r_run, r_row, v, n_rows) for v in (x, x.astype(float) ** 2))
        total, total_se = sample.totals(sy, syy)
        share, share_se = sample.ratios(sy, syy, sx_rows[:, fi], sxx_rows[:, fi], sxy)
        seen = np.bincount(r_row, minlength=n_rows)  # sampled runs with a transition out of the row
        bounds = [share_interval(p, e, int(seen[i])) for p, e, i in zip(share, share_se, fi, strict=False)]
        table["transitions_low"] = np.maximum(total - Z95 * total_se, 0.0)
        table["transitions_high"] = total + Z95 * total_se
        table["share_low"], table["share_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
        # What each row rests on: its sampled runs, and the share of its count in the 5 busiest.
        table["traced_runs"] = np.bincount(p_cell, minlength=n_cells).astype(np.int64)
        table["top5_share"] = concentration(p_cell, y, n_cells)
        table = table[["from", "to", "transitions", "transitions_low", "transitions_high", "share", "share_low",
                       "share_high", "traced_runs", "top5_share"]]
    return table.sort_values(["transitions", "from", "to"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def _with_unseen_transitions(table: pd.DataFrame, known: np.ndarray, counts: np.ndarray, names: list[str],
                             sample: TraceSample) -> pd.DataFrame:
    """:func:`tool_transitions`' long table under a sample, with a row for each transition of
    the calls given (a hand-picked trace, a run outside the slice) that no sampled run took:
    0, and the largest share of runs that could take it, the rule of three at Kish's n
    (``share_of_runs_high``; its count and its share of ``from``'s transitions have no bound, a
    run may take it many times); then each row's ``flag``, and the note in ``attrs["flags"]``."""
    k = len(names)
    label = [*names, "(start)", "(end)"]
    missed = known[counts.ravel()[known] == 0]
    unseen = unseen_rows(pd.RangeIndex(len(missed)), sample, share=["share_of_runs_high"],
                         zero=["transitions", "transitions_low", "share", "share_low"],
                         unbounded=["transitions_high", "share_high", "top5_share"])
    unseen.insert(0, "from", [label[c] for c in missed // (k + 2)])
    unseen.insert(1, "to", [label[c] for c in missed % (k + 2)])
    table = table.assign(share_of_runs_high=np.nan)
    if len(unseen):
        table = pd.concat([table, unseen.sort_values(["from", "to"], kind="stable")], ignore_index=True)
    table = table.astype({"traced_runs": np.int64})
    top = table["top5_share"].to_numpy(dtype=float) if "top5_share" in table else np.full(len(table), np.nan)
    table["flag"] = row_flags(table["traced_runs"].to_numpy(), top, sample.traced)
    table.attrs["flags"] = flags_note(table["traced_runs"].to_numpy(), table["flag"].to_numpy(), sample, "transition")
    return table
