"""A local Conduit-compatible server with synthetic hospitality data, for demos and tests.

>>> from conduit_notebook import demo, ConduitClient
>>> with demo.serve(runs=500) as server:
...     client = ConduitClient(server.token, base_url=server.base_url)
...     agents = list(client.iter_agents())

``conduit-notebook serve-demo`` runs the same server from the command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ._data import DemoData
from ._profiles import PROFILES
from ._records import RecordSet
from ._server import DemoServer, Fault, LoggedRequest

__all__ = ["DEMO_REQUESTS_PER_MINUTE", "DemoData", "DemoServer", "Fault", "LoggedRequest", "PROFILES", "RecordSet",
           "connect", "serve", "serve_records"]

#: The pace a client keeps against a built-in demo server started without a rate limit: high
#: enough never to wait (the server answers a few hundred requests a second here). Never for
#: a real workspace, whose limit is the API's.
DEMO_REQUESTS_PER_MINUTE = 600_000


@contextmanager
def serve(
    *,
    runs: int = 2000,
    agents: int = 3,
    seed: int = 0,
    requests_per_minute: int | None = None,
    rate_window: float = 60.0,
    rate_mode: str = "sliding",
    port: int = 0,
    token: str | None = None,
    end: datetime | None = None,
    days: int = 28,
    runs_per_day: int | None = None,
    plant: bool = True,
) -> Iterator[DemoServer]:
    """Serve a synthetic workspace on 127.0.0.1 for the duration of a ``with`` block.

    Yields a :class:`DemoServer` with ``.base_url``, ``.token``, ``.workspace_id``, ``.data`` and
    ``.requests`` (the log of answered requests). ``requests_per_minute`` turns on a rate limit
    that answers 429 with ``Retry-After`` (counted over ``rate_window`` seconds, scaled: tests use
    a short window to see a limit bite in seconds; ``rate_mode="fixed"`` counts in fixed windows
    instead of a sliding one); ``port=0`` picks a free port. ``runs_per_day`` (instead of ``runs``)
    makes a busy workspace: ``runs_per_day * days`` runs. The data is the same for the same
    ``seed`` and ``end`` (the newest run time; default now, to the minute). ``plant=False``: the
    control workspace, without :attr:`DemoData.planted` patterns.
    """
    data = DemoData(runs=runs, agents=agents, seed=seed, end=end, days=days, runs_per_day=runs_per_day,
                    plant=plant)
    with _running(DemoServer(data, token=token, requests_per_minute=requests_per_minute,
                             rate_window=rate_window, rate_mode=rate_mode, port=port)) as server:
        yield server


@contextmanager
def serve_records(
    agents: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    *,
    escalations: list[dict[str, Any]] | None = None,
    messages: list[Any] | None = None,
    requests_per_minute: int | None = None,
    port: int = 0,
    token: str | None = None,
) -> Iterator[DemoServer]:
    """Serve the given agents and full run records (and ``escalations``, and conversations'
    ``messages``) exactly as they are.

    For the reference's examples, records a user saved, or records shaped to test schema drift
    (missing fields, unknown fields, odd timestamps).
    """
    with _running(DemoServer(RecordSet(agents, runs, escalations, messages), token=token,
                             requests_per_minute=requests_per_minute, port=port)) as server:
        yield server


@contextmanager
def _running(server: DemoServer) -> Iterator[DemoServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(*, runs: int = 4000, agents: int = 4, seed: int = 0, requests_per_minute: float | None = None):
    """A :class:`ConduitClient` for the real API when ``CONDUIT_API_TOKEN`` is set, else for a demo
    server started for this session (it stops when Python exits). A demo client's fetches go to a
    temporary cache of this session (``client.cache_path``), never the user's cache.

    What the example notebooks start with: the same cells run against either.

    >>> client = demo.connect()
    >>> client.demo_server    # the DemoServer, or None on the real API
    """
    import atexit
    import os
    import shutil
    import tempfile

    from ..client import TOKEN_ENV, ConduitClient

    if os.environ.get(TOKEN_ENV):
        client = ConduitClient(requests_per_minute=requests_per_minute or 120)
        client.demo_server = None
        return client
    server = DemoServer(DemoData(runs=runs, agents=agents, seed=seed)).start()
    atexit.register(server.stop)
    # The demo workspace is gone when Python exits: its runs go to a cache of this session only,
    # never the user's (``fetch_runs(client=client)`` without ``cache=`` uses it).
    scratch = tempfile.mkdtemp(prefix="conduit-demo-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    # The demo server has no rate limit: no need to pace as for the real API (nor to share a pace).
    client = ConduitClient(server.token, base_url=server.base_url, shared_pace=False,
                           requests_per_minute=requests_per_minute or DEMO_REQUESTS_PER_MINUTE)
    client.demo_server = server
    client.cache_path = os.path.join(scratch, "runs.sqlite")
    return client
