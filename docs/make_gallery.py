"""Render every plot on demo data to docs/gallery/*.png.

    python docs/make_gallery.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from conduit_notebook import (  # noqa: E402
    ConduitClient,
    demo,
    fetch_runs,
    plots,  # noqa: E402
)

OUT = Path(__file__).resolve().parent / "gallery"


def _before_after(runs):
    """Check-in's runs before and after the demo's planted escalation step."""
    from conduit_notebook import change_points, compare

    step = change_points(runs, by="agent_name").iloc[0]
    agent = runs[runs["agent_name"] == step["agent_name"]]
    return compare(agent[agent["created_at"] < step["at"]], agent[agent["created_at"] >= step["at"]])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with demo.serve(runs=6000, agents=6, seed=0) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=100_000)
        frames = fetch_runs(client=client, since="28d", cache=False, progress=False)
    runs, calls = frames.runs, frames.tool_calls
    figures = {
        "duration_hist_by_agent": lambda ax: plots.plot_duration(runs, by="agent_name", ax=ax),
        "duration_ecdf_by_disposition": lambda ax: plots.plot_duration(runs, by="disposition", kind="ecdf", ax=ax),
        "tokens_by_agent": lambda ax: plots.plot_tokens(runs, by="agent_name", ax=ax),
        "tokens_over_time": lambda ax: plots.plot_tokens(runs, freq="D", ax=ax),
        "cost_by_agent": lambda ax: plots.plot_cost(runs, by="agent_name", ax=ax),
        "cost_over_time_by_agent": lambda ax: plots.plot_cost(runs, by="agent_name", freq="D", ax=ax),
        "dispositions_share_daily": lambda ax: plots.plot_dispositions(runs, freq="D", ax=ax),
        "dispositions_count_weekly": lambda ax: plots.plot_dispositions(runs, freq="W", normalize=False, ax=ax),
        "tool_usage": lambda ax: plots.plot_tool_usage(calls, ax=ax),
        "tool_usage_by_disposition": lambda ax: plots.plot_tool_usage(calls, by="disposition", ax=ax),
        "duration_vs_tokens_by_disposition": lambda ax: plots.plot_duration_vs_tokens(runs, ax=ax),
        "duration_vs_tokens_by_cost": lambda ax: plots.plot_duration_vs_tokens(runs, by="total_cost", ax=ax),
        "empty": lambda ax: plots.plot_cost(runs.iloc[0:0], ax=ax),
        "change_points_escalation_by_agent": lambda ax: plots.plot_change_points(runs, by="agent_name", ax=ax),
        "tool_paths_by_disposition": lambda ax: plots.plot_tool_paths(calls, runs, ax=ax),
        "compare_check_in_before_after": lambda ax: plots.plot_compare(_before_after(runs), ax=ax),
    }
    for name, draw in figures.items():
        fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
        draw(ax)
        fig.savefig(OUT / f"{name}.png", dpi=100)
        plt.close(fig)
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
