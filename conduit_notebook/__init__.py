"""conduit-notebook: analyse Conduit AI-agent runs in Jupyter with pandas, matplotlib and ipywidgets."""

from __future__ import annotations

from . import demo
from .cache import RunCache, cache_info, clear_cache
from .client import ConduitClient
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConduitError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from .export import read_parquet
from .fetch import RunFrames, fetch_runs
from .frames import agents_frame, errors_frame, runs_frame, tool_calls_frame
from .pacing import RateLimiter

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConduitClient",
    "ConduitError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "RunCache",
    "RunFrames",
    "agents_frame",
    "cache_info",
    "clear_cache",
    "demo",
    "errors_frame",
    "fetch_runs",
    "read_parquet",
    "runs_frame",
    "tool_calls_frame",
]
