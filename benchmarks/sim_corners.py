"""The trace-sample tool estimates in the corners an analyst reaches by slicing (issue 24): bias,
95% coverage and how often each row is flagged, through the public API (the sample drawn as
fetch_runs draws it: sampling.drawn_traces / trace_weights; then tool_stats). Figures in
docs/statistics.md and benchmarks/README.md; tests/test_corners.py runs it at fast settings.

    python benchmarks/sim_corners.py [reps=400]

Scenarios (a 2,000-run workspace, 4 agents, strata agent x disposition x status):
- small slice: the 10% agent filtered out of a 200-run trace sample (~20 traced runs);
- clustered tool: 5 runs x 100 calls, from a 200-run sample;
- rare tool: used by 2% of runs, 50-run samples (absent from many; then a 0 row with a bound);
- hand-picked: 100 traces picked by hand among the heaviest users of a tool, cached, then the
  same 200-run fetch again (weights before the fix: every trace at hand weighted as drawn).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from conduit_notebook import tool_stats
from conduit_notebook.sampling import drawn_traces, trace_weights

AGENTS = {"ag_small": 0.10, "ag_b": 0.30, "ag_c": 0.30, "ag_d": 0.30}


def population(n: int = 2000, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and tool calls with a known truth: "common" (93% of runs, 1-3 calls), "sometimes"
    (40%, more in escalated runs), "rare" (2%), "clustered" (5 runs x 100 calls)."""
    rng = np.random.default_rng(seed)
    agent = rng.choice(list(AGENTS), size=n, p=list(AGENTS.values()))
    escalated = rng.random(n) < 0.2
    runs = pd.DataFrame({"id": [f"ar{i:08d}" for i in range(n)], "agent_id": agent,
                         "disposition": np.where(escalated, "escalated", "resolved"), "status": "completed",
                         "duration_ms": rng.lognormal(8, 1, n), "total_cost": rng.lognormal(-4, 1, n)})
    rows: list[tuple[int, str]] = []
    for i in range(n):
        if rng.random() < 0.93:
            rows += [(i, "common")] * int(rng.integers(1, 4))
        if rng.random() < (0.6 if escalated[i] else 0.35):
            rows += [(i, "sometimes")] * int(rng.poisson(1.5) + 1)
        if rng.random() < 0.02:
            rows.append((i, "rare"))
    for i in rng.choice(n, 5, replace=False):
        rows += [(int(i), "clustered")] * 100
    # The names as a categorical over every tool, as a frame from the cache or a previous fetch
    # knows them: a tool no sampled run called is still known.
    calls = pd.DataFrame({"agent_run_id": [runs["id"].iloc[i] for i, _ in rows],
                          "name": pd.Categorical([t for _, t in rows])})
    return runs, calls


def sample(runs: pd.DataFrame, total: int, seed: int, have: np.ndarray | None = None,
           design: bool = True) -> pd.DataFrame:
    """``runs`` with the trace weights of a ``total``-trace fetch (``have``: traces at hand)."""
    have = np.zeros(len(runs), dtype=bool) if have is None else have
    drawn = drawn_traces(runs, have, total, seed=seed)
    traced = drawn | have
    weights = trace_weights(runs, traced, drawn if design else None)
    return runs.assign(trace_weight=weights)


def estimate(calls: pd.DataFrame, sampled: pd.DataFrame) -> pd.DataFrame:
    ids = set(sampled.loc[sampled["trace_weight"].notna(), "id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tool_stats(calls[calls["agent_run_id"].isin(ids)], sampled)


def score(rows: list[pd.Series], truth: pd.Series, measures=("calls", "share_of_runs", "calls_per_run")) -> dict:
    """Relative bias, coverage (all rows, and rows not flagged) and the flagged share."""
    out: dict = {"flagged": float(np.mean([bool(r["flag"]) for r in rows]))}
    for m in measures:
        est = np.array([r[m] for r in rows], dtype=float)
        hit = np.array([r[f"{m}_low"] <= truth[m] <= r[f"{m}_high"] for r in rows])
        clean = np.array([not r["flag"] for r in rows])
        out[m] = (float(np.nanmean(est) / truth[m] - 1), float(hit.mean()),
                  float(hit[clean].mean()) if clean.any() else float("nan"))
    return out


def small_slice(runs, calls, reps, seed=0):
    mine = runs[runs["agent_id"] == "ag_small"]
    truth = tool_stats(calls, mine).loc["common"]
    rows = []
    for r in range(reps):
        rows.append(estimate(calls, sample(runs, 200, seed + r)[lambda f: f["agent_id"] == "ag_small"]).loc["common"])
    return score(rows, truth)


def clustered(runs, calls, reps, seed=0):
    truth = tool_stats(calls, runs).loc["clustered"]
    rows = [estimate(calls, sample(runs, 200, seed + r)).loc["clustered"] for r in range(reps)]
    seen = [row for row in rows if row["traced_runs"] > 0]
    scored = score(seen, truth, ("calls", "share_of_runs"))
    # Bias over every draw (a draw that missed the tool estimates 0).
    for m in ("calls", "share_of_runs"):
        scored[m] = (float(np.mean([row[m] for row in rows]) / truth[m] - 1), *scored[m][1:])
    return {**scored, "seen": len(seen) / reps}


def rare(runs, calls, reps, seed=0):
    truth = tool_stats(calls, runs).loc["rare", "share_of_runs"]
    absent, bound_holds, hits = 0, 0, []
    for r in range(reps):
        table = estimate(calls, sample(runs, 50, seed + r))
        row = table.loc["rare"]  # always a row: the tool is known from the calls
        hits.append(row["share_of_runs_low"] <= truth <= row["share_of_runs_high"])
        if row["traced_runs"] == 0:
            absent += 1
            bound_holds += row["share_of_runs_high"] >= truth
    return {"absent": absent / reps, "bound_holds": bound_holds / max(absent, 1), "coverage": float(np.mean(hits))}


def hand_picked(runs, calls, reps, seed=0):
    truth = tool_stats(calls, runs).loc["sometimes", "calls"]
    heavy = calls[calls["name"] == "sometimes"]["agent_run_id"].value_counts()
    ids = runs["id"].to_numpy()
    out = {}
    for label, design in (("before (every trace weighted)", False), ("after (drawn only)", True)):
        est = []
        for r in range(reps):
            first = sample(runs, 200, seed + r)
            picked = np.isin(ids, heavy.index[:100])
            have = first["trace_weight"].notna().to_numpy() | picked
            est.append(estimate(calls, sample(runs, 200, seed + r, have=have, design=design)).loc["sometimes", "calls"])
        out[label] = float(np.mean(est) / truth - 1)
    return out


def main(reps: int = 400) -> None:
    runs, calls = population()
    print(f"small slice (10% agent, 200-run sample), 'common': {small_slice(runs, calls, reps)}")
    print(f"clustered tool (5 runs x 100 calls), 200-run sample: {clustered(runs, calls, reps)}")
    print(f"rare tool (2% of runs), 50-run samples: {rare(runs, calls, reps)}")
    print(f"hand-picked traces cached, bias of 'sometimes' calls: {hand_picked(runs, calls, max(reps // 4, 20))}")



# -- paths and transitions (issue 24 items 1-2 for tool_paths / tool_transitions) -----------------

def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _runs_taking(calls: pd.DataFrame, pair: tuple[str, str]) -> float:
    """The share of the 2,000 runs whose calls take transition ``pair`` at least once."""
    ordered = calls.assign(step=np.arange(len(calls)))
    names = ordered["name"].astype(str).to_numpy()
    run = ordered["agent_run_id"].to_numpy()
    first = np.r_[True, run[1:] != run[:-1]]
    last = np.r_[run[1:] != run[:-1], True]
    src = np.where(first, "(start)", np.concatenate([[""], names[:-1]]))
    hits = set(run[(src == pair[0]) & (names == pair[1])])
    if pair[1] == "(end)":
        hits = set(run[last & (names == pair[0])])
    return len(hits)


def rare_path_and_transition(runs, calls, reps, n=50, seed=0):
    """A path and a transition of about 2% of runs, in ``n``-run samples, every call of the
    workspace known (the cache, a previous fetch): how often absent, does the bound hold when
    absent, how often does the interval shown (or the bound) hold the truth, how often flagged."""
    from conduit_notebook.investigate import tool_paths, tool_transitions

    paths = tool_paths(calls, runs.assign(input_tokens=0, output_tokens=0, total_tokens=0)).set_index("path")
    path = (paths["share"] - 0.02).abs().idxmin()
    long = tool_transitions(calls, runs, long=True).set_index(["from", "to"])
    taking = {pair: _runs_taking(calls, pair) / len(runs) for pair in long.index if "rare" in pair}
    pair = min(taking, key=lambda p: abs(taking[p] - 0.02))
    out = {"path": path, "path_share": float(paths.loc[path, "share"]), "transition": " > ".join(pair),
           "transition_runs_share": taking[pair]}
    p_abs = p_bound = p_hit = p_flag = t_abs = t_bound = t_hit = t_flag = 0
    for r in range(reps):
        sampled = sample(runs, n, seed + r).assign(input_tokens=0, output_tokens=0, total_tokens=0)
        p_row = _quiet(tool_paths, calls, sampled).set_index("path").loc[path]
        t_row = _quiet(tool_transitions, calls, sampled, long=True).set_index(["from", "to"]).loc[pair]
        p_flag += bool(p_row["flag"])
        t_flag += bool(t_row["flag"])
        p_hit += p_row["share_low"] <= out["path_share"] <= p_row["share_high"]
        if p_row["traced_runs"] == 0:
            p_abs += 1
            p_bound += p_row["share_high"] >= out["path_share"]
        if t_row["traced_runs"] == 0:
            t_abs += 1
            t_bound += t_row["share_of_runs_high"] >= taking[pair]
            t_hit += t_row["share_of_runs_high"] >= taking[pair]
        else:
            t_hit += t_row["share_low"] <= long.loc[pair, "share"] <= t_row["share_high"]
    return {**out, "path_absent": p_abs / reps, "path_bound_holds": p_bound / max(p_abs, 1),
            "path_coverage": p_hit / reps, "path_flagged": p_flag / reps, "transition_absent": t_abs / reps,
            "transition_bound_holds": t_bound / max(t_abs, 1), "transition_coverage": t_hit / reps,
            "transition_flagged": t_flag / reps}


def slice_paths_and_transitions(runs, calls, reps, seed=0):
    """The 10% agent sliced out of a 200-run sample (~20 traced runs), its commonest path and
    transition: relative bias, coverage (all draws, and draws not flagged), share flagged."""
    from conduit_notebook.investigate import tool_paths, tool_transitions

    mine = runs[runs["agent_id"] == "ag_small"].assign(input_tokens=0, output_tokens=0, total_tokens=0)
    truth_p = tool_paths(calls, mine).set_index("path")
    path = truth_p["runs"].idxmax()
    truth_t = tool_transitions(calls, mine, long=True).set_index(["from", "to"])
    pair = truth_t["transitions"].idxmax()
    rows_p, rows_t = [], []
    for r in range(reps):
        sampled = sample(runs, 200, seed + r).assign(input_tokens=0, output_tokens=0, total_tokens=0)
        part = sampled[sampled["agent_id"] == "ag_small"]
        rows_p.append(_quiet(tool_paths, calls, part).set_index("path").loc[path])
        rows_t.append(_quiet(tool_transitions, calls, part, long=True).set_index(["from", "to"]).loc[pair])
    return {"path": path, **{f"path {k}": v for k, v in score(rows_p, truth_p.loc[path], ("share", "runs")).items()},
            "transition": " > ".join(pair),
            **{f"transition {k}": v for k, v in score(rows_t, truth_t.loc[pair], ("transitions", "share")).items()}}


def paths_main(reps: int = 400) -> None:
    runs, calls = population()
    print(f"rare path / transition (~2% of runs), 50-run samples: {rare_path_and_transition(runs, calls, reps)}")
    print(f"small slice (10% agent, 200-run sample), commonest path / transition: "
          f"{slice_paths_and_transitions(runs, calls, reps)}")

# -- every path and transition of a workspace with known paths ------------------------------------

PATHS = {"search > answer": 0.55, "search > search > answer": 0.25, "answer": 0.13,
         "search > lookup > answer": 0.05, "search > refund > answer": 0.02}


def path_population(n: int = 2000, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`population`'s runs taking the paths of :data:`PATHS` (escalating half the time on
    the two that search twice or refund); 5 of them loop "retry" 50 times after "search" (a
    transition concentrated in few runs)."""
    runs, _ = population(n, seed)
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(list(PATHS), size=n, p=list(PATHS.values()))
    looping = set(rng.choice(n, 5, replace=False).tolist())
    ids: list[str] = []
    names: list[str] = []
    for i, path in enumerate(chosen):
        tools = ["search", *["retry"] * 50, "answer"] if i in looping else path.split(" > ")
        ids += [runs["id"].iloc[i]] * len(tools)
        names += tools
    escalated = np.isin(chosen, ["search > search > answer", "search > refund > answer"]) & (rng.random(n) < 0.5)
    runs = runs.assign(disposition=np.where(escalated, "escalated", "resolved"), input_tokens=0, output_tokens=0,
                       total_tokens=0)
    return runs, pd.DataFrame({"agent_run_id": ids, "name": names})


def every_row(runs, calls, reps, seed=0, size=200):
    """Every true path and transition over ``size``-run samples (every call known): the largest
    relative bias among rows of 5% of runs or more, and how often an interval shown misses the
    truth on a row not flagged (the issue's bar: coverage >= 90% or flagged)."""
    from conduit_notebook.investigate import tool_paths, tool_transitions

    paths = tool_paths(calls, runs).set_index("path")
    long = tool_transitions(calls, runs, long=True).set_index(["from", "to"])
    common_t = pd.Series({pair: _runs_taking(calls, pair) for pair in long.index}) >= 0.05 * len(runs)
    est_p, est_t = [], []
    for r in range(reps):
        sampled = sample(runs, size, seed + r)
        est_p.append(_quiet(tool_paths, calls, sampled).set_index("path").reindex(paths.index))
        est_t.append(_quiet(tool_transitions, calls, sampled, long=True).set_index(["from", "to"]).reindex(long.index))
    out = {}
    for label, truth, rows, measures, common in (
            ("paths", paths, est_p, ("runs", "share"), (paths["share"] >= 0.05).to_numpy()),
            ("transitions", long, est_t, ("transitions", "share"), common_t.reindex(long.index).to_numpy())):
        flagged = np.array([r["flag"].astype(bool).to_numpy() for r in rows])
        for m in measures:
            value = np.array([r[m].to_numpy(dtype=float) for r in rows])
            hit = ((np.array([r[f"{m}_low"].to_numpy(dtype=float) for r in rows]) <= truth[m].to_numpy())
                   & (truth[m].to_numpy() <= np.array([r[f"{m}_high"].to_numpy(dtype=float) for r in rows])))
            bias = np.nanmean(value, axis=0)[common] / truth[m].to_numpy(dtype=float)[common] - 1
            out[f"{label} {m}"] = {"max |bias|, rows of 5%+ of runs": float(np.abs(bias).max()),
                                   "coverage unflagged": float(hit[~flagged].mean()),
                                   "coverage all": float(hit.mean()), "flagged": float(flagged.mean())}
    return out


def every_row_main(reps: int = 400) -> None:
    runs, calls = path_population()
    print(f"every path and transition (known paths, 2,000 runs), 200-run samples: {every_row(runs, calls, reps)}")
    print(f"small slice (10% agent, 200-run sample), commonest path / transition: "
          f"{slice_paths_and_transitions(runs, calls, reps)}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
    paths_main(*(int(a) for a in sys.argv[1:2]))
    every_row_main(*(int(a) for a in sys.argv[1:2]))
