"""RunExplorer responsiveness: a filter change on 100,000 runs, for each visible tab.

    python benchmarks/bench_widgets.py [--runs 100000]

A filter change re-filters the runs and their tool calls, refreshes the run list and redraws
the visible tab. Outside a kernel `display()` draws nothing, so here it renders what it is given
as a notebook would: a figure to PNG (as the inline backend does), a table to HTML. Target
(issue 5): at most 300 ms. Baseline for the ratio: `filter_runs` alone, in the same run.
"""

from __future__ import annotations

import argparse
import io
import time

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from _common import best_of, machine  # noqa: E402
from conduit_notebook import RunExplorer, filter_runs, runs_frame, tool_calls_frame  # noqa: E402
from conduit_notebook import widgets  # noqa: E402
from conduit_notebook.demo import DemoData  # noqa: E402


def render_like_a_notebook(obj) -> None:
    if isinstance(obj, Figure):
        obj.savefig(io.BytesIO(), format="png", dpi=72)
    elif hasattr(obj, "to_html"):
        obj.to_html()


class Frames:
    def __init__(self, runs, tool_calls):
        self.runs, self.tool_calls = runs, tool_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()
    print(machine())
    data = DemoData(runs=args.runs, agents=6, seed=0)
    names = {a["id"]: a["name"] for a in data.agents}
    records = data.records()
    frames = Frames(runs_frame(records, agent_names=names), tool_calls_frame(records))
    del records
    widgets.display = render_like_a_notebook
    print(f"{len(frames.runs):,} runs, {len(frames.tool_calls):,} tool calls")
    started = time.perf_counter()
    explorer = RunExplorer(frames)
    print(f"RunExplorer(frames): {time.perf_counter() - started:.2f} s to build and draw the first tab")
    floor_s, _ = best_of(lambda: filter_runs(frames.runs, statuses=["completed"], agents=["Billing"]), args.repeat)
    print(f"baseline filter_runs alone: {floor_s * 1000:.0f} ms")
    # One agent, two, another, then all 100,000 runs (the heaviest redraw).
    choices = [("Billing",), ("Billing", "Check-in"), ("Reservations",), ()]
    worst = 0.0
    for index, tab in enumerate(RunExplorer.TABS):
        explorer._tabs.selected_index = index
        times = []
        for k in range(args.repeat):
            value = choices[k % len(choices)]
            if explorer._agents.value == value:
                value = choices[(k + 1) % len(choices)]
            started = time.perf_counter()
            explorer._agents.value = value  # the observer refilters and redraws, synchronously
            times.append(time.perf_counter() - started)
        if explorer._errors.value:
            raise SystemExit(f"the explorer showed an error: {explorer._errors.value}")
        seconds = max(times)  # the slowest of the changes: all runs selected is the heaviest
        worst = max(worst, seconds)
        print(f"filter change with the {tab:12s} tab open: fastest {min(times) * 1000:4.0f} ms, "
              f"median {sorted(times)[len(times) // 2] * 1000:4.0f} ms, slowest {seconds * 1000:4.0f} ms "
              f"({seconds / floor_s:.1f}x filter_runs)  {'ok' if seconds <= 0.3 else 'OVER'} (target <= 300 ms)")
    print(f"slowest: {worst * 1000:.0f} ms")


if __name__ == "__main__":
    main()
