"""Every summary and every plot on 1,000,000 runs (and their ~3.8 million tool calls).

    python benchmarks/bench_analysis.py [--runs 1000000]

Target (issue 4): at most 1 s a call on this machine. The frames are 100,000 demo runs
repeated 10 times (new ids, shifted 4 weeks each time), so that the data has demo-like
distributions without generating a million full records. Baseline for the ratio column: the
same machine's time for `runs.groupby("agent_name").size()`, a floor for any grouped pass.
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from _common import best_of, machine  # noqa: E402
from conduit_notebook import (  # noqa: E402
    cost_breakdown,
    outliers,
    plot_cost,
    plot_dispositions,
    plot_duration,
    plot_duration_vs_tokens,
    plot_tokens,
    plot_tool_usage,
    review_sample,
    runs_frame,
    summarize,
    tool_calls_frame,
    tool_stats,
)
from conduit_notebook.demo import DemoData  # noqa: E402


def big_frames(runs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = min(runs, 100_000)
    data = DemoData(runs=base, agents=6, seed=0)
    names = {a["id"]: a["name"] for a in data.agents}
    records = data.records()
    r0, c0 = runs_frame(records, agent_names=names), tool_calls_frame(records)
    copies = max(1, runs // base)
    run_parts, call_parts = [], []
    for k in range(copies):
        shift = pd.Timedelta(days=28 * k)
        r = r0.copy()
        r["id"] = (r0["id"].astype(str) + f"_{k}").astype(r0["id"].dtype)
        r["created_at"] = r0["created_at"] - shift
        c = c0.copy()
        c["agent_run_id"] = (c0["agent_run_id"].astype(str) + f"_{k}")
        c["created_at"] = c0["created_at"] - shift
        run_parts.append(r)
        call_parts.append(c)
    runs_df = pd.concat(run_parts, ignore_index=True)
    calls_df = pd.concat(call_parts, ignore_index=True)
    calls_df["agent_run_id"] = calls_df["agent_run_id"].astype("category")
    for column in ("agent_id", "agent_name", "status", "disposition", "disposition_reason"):
        runs_df[column] = runs_df[column].astype("category")
    for column in ("agent_id", "name", "status", "disposition"):
        calls_df[column] = calls_df[column].astype("category")
    return runs_df, calls_df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    started = time.perf_counter()
    runs, calls = big_frames(args.runs)
    print(f"{len(runs):,} runs, {len(calls):,} tool calls (built in {time.perf_counter() - started:.0f} s)")
    floor_s, _ = best_of(lambda: runs.groupby("agent_name", observed=True).size(), args.repeat)
    print(f"floor: runs.groupby('agent_name').size() = {floor_s * 1000:.0f} ms")

    def plot(fn, frame, **kwargs):
        def draw():
            fig, ax = plt.subplots(figsize=(9, 5))
            fn(frame, ax=ax, **kwargs)
            fig.canvas.draw()  # rendering included, as a notebook would
            plt.close(fig)
        return draw

    cases = {
        "summarize()": lambda: summarize(runs),
        "summarize(by='agent_name')": lambda: summarize(runs, by="agent_name"),
        "summarize(by=['agent_name', 'disposition'], freq='D')":
            lambda: summarize(runs, by=["agent_name", "disposition"], freq="D"),
        "cost_breakdown(by='agent_name')": lambda: cost_breakdown(runs, by="agent_name"),
        "cost_breakdown(by='disposition', freq='W')": lambda: cost_breakdown(runs, by="disposition", freq="W"),
        "tool_stats(calls)": lambda: tool_stats(calls),
        "tool_stats(calls, runs)": lambda: tool_stats(calls, runs),
        "outliers('duration_ms', by='agent_name')": lambda: outliers(runs, "duration_ms", by="agent_name"),
        "outliers('total_cost')": lambda: outliers(runs, "total_cost"),
        "review_sample(n=100)": lambda: review_sample(runs, n=100),
        "plot_duration(by='agent_name')": plot(plot_duration, runs, by="agent_name"),
        "plot_duration(kind='ecdf', by='disposition')": plot(plot_duration, runs, kind="ecdf", by="disposition"),
        "plot_tokens(by='agent_name')": plot(plot_tokens, runs, by="agent_name"),
        "plot_tokens(freq='D')": plot(plot_tokens, runs, freq="D"),
        "plot_cost(by='agent_name')": plot(plot_cost, runs, by="agent_name"),
        "plot_cost(by='agent_name', freq='W')": plot(plot_cost, runs, by="agent_name", freq="W"),
        "plot_dispositions(freq='W')": plot(plot_dispositions, runs, freq="W"),
        "plot_tool_usage(calls, by='disposition')": plot(plot_tool_usage, calls, by="disposition"),
        "plot_duration_vs_tokens()": plot(plot_duration_vs_tokens, runs),
    }
    print(f"{'call':58s} {'best s':>8s} {'x floor':>8s}  target <= 1 s")
    worst = 0.0
    for name, fn in cases.items():
        seconds, _ = best_of(fn, args.repeat)
        worst = max(worst, seconds)
        print(f"{name:58s} {seconds:8.3f} {seconds / floor_s:8.1f}  {'ok' if seconds <= 1 else 'OVER'}")
    print(f"slowest call: {worst:.3f} s")


if __name__ == "__main__":
    main()
