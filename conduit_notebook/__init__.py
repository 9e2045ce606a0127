"""conduit-notebook: analyse Conduit AI-agent runs in Jupyter with pandas, matplotlib and ipywidgets."""

from __future__ import annotations

from . import demo
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
    "demo",
]
