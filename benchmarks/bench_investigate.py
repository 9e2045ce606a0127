"""The investigations (compare, tool paths, repeats, conversations, change points) and their
plots on 1,000,000 runs and their ~3.8 million tool calls.

    python benchmarks/bench_investigate.py [--runs 1000000] [--repeat 3]

Target (issue 11): each call within a second or two. Baseline for the ratio column: the same
machine's time for ``summarize(runs)`` on the same frames (the package's basic grouped pass).
The frames are those of ``bench_analysis.py``: 100,000 demo runs repeated 10 times. The
"(10% traces)" rows take a stratified 10% trace sample of them (``choose_traces`` /
``trace_weights``, as ``fetch_runs(details=100_000)`` would) and time the weighted estimates
with their intervals.
"""

from __future__ import annotations

import argparse
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _common import best_of, machine  # noqa: E402
from bench_analysis import big_frames  # noqa: E402

from conduit_notebook import (  # noqa: E402
    change_points,
    compare,
    compare_tools,
    contacts,
    conversations,
    plot_change_points,
    plot_compare,
    plot_tool_paths,
    repeat_rates,
    repeated_calls,
    summarize,
    tool_paths,
    tool_transitions,
)
from conduit_notebook.sampling import choose_traces, trace_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    started = time.perf_counter()
    runs, calls = big_frames(args.runs)
    print(f"{len(runs):,} runs, {len(calls):,} tool calls (built in {time.perf_counter() - started:.0f} s)")
    base_s, _ = best_of(lambda: summarize(runs), args.repeat)
    print(f"baseline: summarize(runs) = {base_s * 1000:.0f} ms")
    cut = runs["created_at"].quantile(0.5)
    early = runs["created_at"] < cut
    a, b = runs[early], runs[~early]
    ids_a = set(a["id"].astype(str))
    in_a = calls["agent_run_id"].astype(str).isin(ids_a).to_numpy()
    calls_a, calls_b = calls[in_a], calls[~in_a]
    table = compare(a, b)
    repeats = repeated_calls(calls, runs)

    traced = choose_traces(runs, np.zeros(len(runs), dtype=bool), len(runs) // 10)
    sampled = runs.assign(trace_weight=trace_weights(runs, traced))
    seen = calls[calls["agent_run_id"].astype(str).isin(set(runs["id"].astype(str)[traced])).to_numpy()]
    seen_in_a = seen["agent_run_id"].astype(str).isin(ids_a).to_numpy()
    seen_a, seen_b = seen[seen_in_a], seen[~seen_in_a]
    seen_repeats = repeated_calls(seen, sampled)

    def plot(fn, *data, **kwargs):
        def draw():
            fig, ax = plt.subplots(figsize=(10, 5))
            fn(*data, ax=ax, **kwargs)
            fig.canvas.draw()  # rendering included, as a notebook would
            plt.close(fig)
        return draw

    cases = {
        "compare(a, b)  (two halves, 500k runs each)": lambda: compare(a, b),
        "compare_tools(calls_a, calls_b, a, b)": lambda: compare_tools(calls_a, calls_b, a, b),
        "tool_paths(calls)": lambda: tool_paths(calls),
        "tool_paths(calls, runs)": lambda: tool_paths(calls, runs),
        "tool_transitions(calls)": lambda: tool_transitions(calls),
        "repeated_calls(calls)": lambda: repeated_calls(calls),
        "repeated_calls(calls, runs)": lambda: repeated_calls(calls, runs),
        "repeat_rates(calls, runs, repeats=...)": lambda: repeat_rates(calls, runs, repeats=repeats),
        "conversations(runs)": lambda: conversations(runs),
        "contacts(runs)": lambda: contacts(runs),
        "change_points('escalation_rate', by='agent_name')":
            lambda: change_points(runs, metric="escalation_rate", by="agent_name"),
        "change_points('p90_duration_s', by='agent_name')":
            lambda: change_points(runs, metric="p90_duration_s", by="agent_name"),
        "change_points('cost_per_run', freq='h')": lambda: change_points(runs, metric="cost_per_run", freq="h"),
        "plot_compare(table)": plot(plot_compare, table),
        "plot_tool_paths(calls, runs=runs)": plot(plot_tool_paths, calls, runs=runs),
        "plot_change_points(by='agent_name')": plot(plot_change_points, runs, by="agent_name"),
        "(10% traces) compare_tools(seen_a, seen_b, a, b)":
            lambda: compare_tools(seen_a, seen_b, sampled[early.to_numpy()], sampled[~early.to_numpy()]),
        "(10% traces) tool_paths(seen, runs)": lambda: tool_paths(seen, sampled),
        "(10% traces) tool_transitions(seen, runs, long=True)": lambda: tool_transitions(seen, sampled, long=True),
        "(10% traces) repeated_calls(seen, runs)": lambda: repeated_calls(seen, sampled),
        "(10% traces) repeat_rates(seen, runs, repeats=...)":
            lambda: repeat_rates(seen, sampled, repeats=seen_repeats),
        "(10% traces) plot_tool_paths(seen, runs=runs)": plot(plot_tool_paths, seen, runs=sampled),
    }
    print(f"{'call':54s} {'best s':>8s} {'x summarize':>12s}  target <= 2 s")
    worst = 0.0
    for name, fn in cases.items():
        seconds, _ = best_of(fn, args.repeat)
        worst = max(worst, seconds)
        print(f"{name:54s} {seconds:8.3f} {seconds / base_s:12.1f}  {'ok' if seconds <= 2 else 'OVER'}")
    print(f"slowest call: {worst:.3f} s")


if __name__ == "__main__":
    main()
