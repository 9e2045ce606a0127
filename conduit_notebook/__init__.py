"""conduit-notebook: analyse Conduit AI-agent runs in Jupyter with pandas, matplotlib and ipywidgets.

Names are imported when first used (PEP 562), so that ``import conduit_notebook`` and the
``conduit-notebook`` command start fast: pandas, matplotlib.pyplot and ipywidgets load with
the first function that needs them. ``DataFrame.conduit`` is registered as soon as pandas is
there (at import if it already is, else with the first frame this package builds).
"""

from __future__ import annotations

import importlib
import sys

from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CacheError,
    ConduitError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    UnknownAgentError,
)

#: Where each lazily imported public name lives.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["cost_breakdown", "filter_runs", "outliers", "review_sample", "summarize", "tool_stats",
                     "tool_stats_estimated"], "analysis"),
    **dict.fromkeys(["RunCache", "cache_info", "clear_cache"], "cache"),
    "ConduitClient": "client",
    **dict.fromkeys(["escalation_summary", "fetch_escalations"], "escalations"),
    "fetch_runs": "fetch",
    **dict.fromkeys(["fetch_messages", "messages_frame"], "messages"),
    **dict.fromkeys(["escalation_quality", "outcomes"], "conversation_outcomes"),
    "run_thread": "thread",
    "judge_from_outcomes": "ppi",
    "style_table": "styling",
    **dict.fromkeys(["Lake", "read_lake", "write_lake"], "lake"),
    "plot_escalation_quality": "plots",
    **dict.fromkeys(["RunFrames", "read_parquet"], "runframes"),
    **dict.fromkeys(["change_points", "compare", "compare_tools", "contacts", "conversations", "metric_levels",
                     "repeat_rates", "repeated_calls", "run_paths", "tool_paths", "tool_transitions"],
                    "investigate"),
    **dict.fromkeys(["agents_frame", "decode_json", "errors_frame", "runs_frame", "tool_calls_frame"], "frames"),
    **dict.fromkeys(["RateLimiter", "SharedPace"], "pacing"),
    **dict.fromkeys(["ReviewStore", "cohen_kappa", "review_plan", "review_report", "stratified_accuracy"],
                    "review"),
    **dict.fromkeys(["holm", "wilson_interval"], "stats"),
    **dict.fromkeys(["DispositionReview", "RunExplorer", "RunInspector"], "widgets"),
    **dict.fromkeys(["DISPOSITION_COLORS", "disposition_colors", "plot_change_points", "plot_compare", "plot_cost",
                     "plot_dispositions", "plot_duration", "plot_duration_vs_tokens", "plot_tokens",
                     "plot_tool_paths", "plot_tool_usage"], "plots"),
}


def __getattr__(name: str) -> object:
    if name == "demo":
        importlib.import_module(".accessor", __name__)  # the demo's frames have .conduit too
        return importlib.import_module(".demo", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(".accessor", __name__)  # registers DataFrame.conduit
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if "pandas" in sys.modules:  # pandas is loaded already: registering the accessor costs nothing
    importlib.import_module(".accessor", __name__)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "ConduitClient",
    "ConduitError",
    "DISPOSITION_COLORS",
    "DispositionReview",
    "Lake",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "ReviewStore",
    "RunCache",
    "RunExplorer",
    "RunFrames",
    "RunInspector",
    "SharedPace",
    "UnknownAgentError",
    "agents_frame",
    "cache_info",
    "change_points",
    "clear_cache",
    "cohen_kappa",
    "compare",
    "compare_tools",
    "contacts",
    "conversations",
    "cost_breakdown",
    "decode_json",
    "demo",
    "disposition_colors",
    "errors_frame",
    "escalation_quality",
    "escalation_summary",
    "fetch_escalations",
    "fetch_messages",
    "fetch_runs",
    "filter_runs",
    "holm",
    "judge_from_outcomes",
    "messages_frame",
    "metric_levels",
    "outcomes",
    "outliers",
    "plot_change_points",
    "plot_compare",
    "plot_cost",
    "plot_dispositions",
    "plot_duration",
    "plot_duration_vs_tokens",
    "plot_escalation_quality",
    "plot_tokens",
    "plot_tool_paths",
    "plot_tool_usage",
    "read_lake",
    "read_parquet",
    "repeat_rates",
    "repeated_calls",
    "review_plan",
    "review_report",
    "review_sample",
    "run_paths",
    "run_thread",
    "runs_frame",
    "stratified_accuracy",
    "style_table",
    "summarize",
    "tool_calls_frame",
    "tool_paths",
    "tool_stats",
    "tool_stats_estimated",
    "tool_transitions",
    "wilson_interval",
    "write_lake",
]
