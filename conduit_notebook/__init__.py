"""conduit-notebook: analyse Conduit AI-agent runs in Jupyter with pandas, matplotlib and ipywidgets."""

from __future__ import annotations

from . import accessor as _accessor  # noqa: F401  (registers DataFrame.conduit)
from . import demo
from .analysis import (
    cost_breakdown,
    filter_runs,
    outliers,
    review_sample,
    summarize,
    tool_stats,
    tool_stats_estimated,
)
from .cache import RunCache, cache_info, clear_cache
from .client import ConduitClient
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
)
from .escalations import escalation_summary, fetch_escalations
from .export import read_parquet
from .fetch import RunFrames, fetch_runs
from .investigate import (
    change_points,
    compare,
    compare_tools,
    contacts,
    conversations,
    metric_levels,
    repeat_rates,
    repeated_calls,
    run_paths,
    tool_paths,
    tool_transitions,
)
from .frames import agents_frame, decode_json, errors_frame, runs_frame, tool_calls_frame
from .pacing import RateLimiter, SharedPace
from .review import ReviewStore, cohen_kappa, review_plan, review_report, stratified_accuracy, wilson_interval
from .widgets import DispositionReview, RunExplorer, RunInspector
from .plots import (
    DISPOSITION_COLORS,
    disposition_colors,
    plot_change_points,
    plot_compare,
    plot_cost,
    plot_dispositions,
    plot_duration,
    plot_duration_vs_tokens,
    plot_tokens,
    plot_tool_paths,
    plot_tool_usage,
)

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
    "escalation_summary",
    "fetch_escalations",
    "fetch_runs",
    "filter_runs",
    "metric_levels",
    "outliers",
    "plot_change_points",
    "plot_compare",
    "plot_cost",
    "plot_dispositions",
    "plot_duration",
    "plot_duration_vs_tokens",
    "plot_tokens",
    "plot_tool_paths",
    "plot_tool_usage",
    "read_parquet",
    "repeat_rates",
    "repeated_calls",
    "review_plan",
    "review_report",
    "review_sample",
    "run_paths",
    "runs_frame",
    "stratified_accuracy",
    "summarize",
    "tool_calls_frame",
    "tool_paths",
    "tool_stats",
    "tool_stats_estimated",
    "tool_transitions",
    "wilson_interval",
]
