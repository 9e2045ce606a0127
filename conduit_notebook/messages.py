"""A guest conversation's messages (``GET /v1/conversations/{id}/messages``) as a DataFrame:
what the guest wrote (inbound), what the agent or a team member sent (outbound), on which
channel and when.

>>> from conduit_notebook import fetch_messages, messages_frame
>>> messages = fetch_messages(frames.runs["conversation_id"].dropna().unique()[:20])
>>> frames.fetch_messages(review["id"])          # the threads of these runs, into frames.messages

A thread of up to 100 messages costs one request (more pages for a longer one), through the
client's pace (the same budget as traces) and the cache: a stored thread is asked for again only
when a run of its conversation started or finished after it was fetched, or with
``refresh=True``. A thread that could not be fetched, or a message that cannot be read, is a row
of the errors table, never dropped silently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import pandas as pd

from . import times
from .cache import CachedThread, RunCache
from .client import ConduitClient
from .errors import ConduitError
from .frames import CATEGORY, STRING, TIMESTAMP, errors_frame
from .progress import progress_bar
from .records import json_problem, readable_time

__all__ = ["MESSAGE_COLUMNS", "concat_messages", "fetch_messages", "fetch_threads", "message_problem", "messages_frame",
           "newest_activity", "plan_threads", "thread_requests", "with_message_dtypes"]

#: The messages table: column -> dtype, in order; other fields the API sends follow these.
MESSAGE_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "conversation_id": CATEGORY,
    "direction": CATEGORY,
    "channel": CATEGORY,
    "status": CATEGORY,
    "body": STRING,
    "sent_at": TIMESTAMP,
    "created_at": TIMESTAMP,
    "sender_user_id": CATEGORY,
    "sender_external_id": CATEGORY,
    "sender_name": CATEGORY,
}
_SENDER = ("user_id", "external_id", "name")
#: Threads fetched at once; the client's pace decides how fast they go.
THREAD_WORKERS = 8


def message_problem(record: Any) -> str | None:
    """Why a message record cannot be framed or stored, or None if it can: not a JSON object, no
    string id, a ``sent_at``/``created_at`` that is not a time, a sender that is not an object,
    a broken character (a lone surrogate) in its text."""
    if not isinstance(record, Mapping):
        kind = "null" if record is None else type(record).__name__
        return f"the record is a JSON {kind}, not an object"
    if not isinstance(record.get("id"), str) or not record["id"]:
        return "it has no id"
    for key in ("sent_at", "created_at"):
        if record.get(key) is not None and not readable_time(record.get(key)):  # missing stays missing
            return f"its {key} {record.get(key)!r} is not a time"
    if record.get("sender") is not None and not isinstance(record.get("sender"), Mapping):
        return "its sender is not an object"
    return json_problem(record)


def messages_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Message records (the API's JSON objects) -> one row per message: :data:`MESSAGE_COLUMNS`
    (``sender`` spread into ``sender_user_id``, ``sender_external_id`` and ``sender_name``), then
    any other field the API sends; UTC timestamps; repeated values as categoricals; one row per
    ``id`` (the last copy wins); sorted by conversation, then ``sent_at`` (then ``created_at``).
    Records that :func:`message_problem` turns away are left out (:func:`fetch_messages` lists
    them in its errors). No I/O: works on records you already have.

    >>> messages_frame(json.load(open("messages.json"))["data"])
    """
    rows = []
    for record in records:
        if message_problem(record) is not None:
            continue
        row = {k: v for k, v in record.items() if k != "sender"}
        sender = record.get("sender") or {}
        for key in _SENDER:
            row[f"sender_{key}"] = sender.get(key)
        for key, value in sender.items():
            if key not in _SENDER:
                row[f"sender_{key}"] = value
        rows.append(row)
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in MESSAGE_COLUMNS))
    raw = pd.DataFrame.from_records(rows, columns=[*MESSAGE_COLUMNS, *extra])
    frame = pd.DataFrame(index=raw.index)
    for name, dtype in MESSAGE_COLUMNS.items():
        values = raw[name].astype(object).where(raw[name].notna(), None)
        if dtype is TIMESTAMP:
            frame[name] = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").astype(TIMESTAMP)
        else:
            text = values.map(lambda v: None if v is None else str(v))
            frame[name] = text.astype("category") if dtype == CATEGORY else text.astype(STRING)
    for name in extra:
        frame[name] = raw[name].astype(object).where(raw[name].notna(), None)
    return _sorted(frame.drop_duplicates("id", keep="last"))


def with_message_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The table's own columns in their dtypes (a Parquet round trip can turn an all-missing
    categorical into objects)."""
    for name, dtype in MESSAGE_COLUMNS.items():
        if name in frame and str(frame[name].dtype) != str(dtype):
            frame[name] = frame[name].astype("category" if dtype == CATEGORY else dtype)
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = frame["conversation_id"].astype(object).fillna("")
    return (frame.assign(_c=order.to_numpy())
            .sort_values(["_c", "sent_at", "created_at", "id"], kind="stable", na_position="last")
            .drop(columns="_c").reset_index(drop=True))


def concat_messages(*frames: pd.DataFrame) -> pd.DataFrame:
    """Message frames as one: each message once (the later frame's copy), categoricals merged,
    in the table's order."""
    frames = tuple(f for f in frames if len(f)) or frames[:1]
    if len(frames) == 1:
        return frames[0]
    both = pd.concat([f.astype({c: object for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
                      for f in frames], ignore_index=True)
    for name, dtype in MESSAGE_COLUMNS.items():
        if dtype == CATEGORY:
            both[name] = both[name].astype("category")
    return _sorted(both.drop_duplicates("id", keep="last"))


def _ms(stamp: Any) -> int | None:
    return None if stamp is None or pd.isna(stamp) else int(pd.Timestamp(stamp).timestamp() * 1000)


def _still_holds(thread: CachedThread, newest_ms: int | None) -> bool:
    """A stored thread holds unless a run of its conversation started or finished after it was
    fetched (that run's messages, or replies to it, may have come since)."""
    known = max(thread.fetched_ms, thread.last_ms or thread.fetched_ms)
    return newest_ms is None or newest_ms <= known


def newest_activity(runs: pd.DataFrame) -> dict[str, int]:
    """Per conversation, the newest moment (epoch ms) a run of it started or finished."""
    if not len(runs) or "conversation_id" not in runs:
        return {}
    stamps = runs["created_at"]
    if "completed_at" in runs:
        stamps = pd.concat([stamps, runs["completed_at"]], axis=1).max(axis=1)
    newest = stamps.groupby(runs["conversation_id"].astype(object), sort=False).max().dropna()
    return {str(cid): int(pd.Timestamp(t).timestamp() * 1000) for cid, t in newest.items()}


ThreadPlan = tuple[list[str], dict[str, CachedThread]]


def plan_threads(conversation_ids: Iterable[Any], *, cache: RunCache | None = None, source: str = "",
                 newest: Mapping[str, int] | None = None, refresh: bool = False) -> ThreadPlan:
    """The conversations whose thread must be fetched (not stored, or stale: one request each, a
    thread over 100 messages more), and the stored threads that still hold; the cache is read once."""
    ids = [str(c) for c in dict.fromkeys(conversation_ids) if c is not None and not pd.isna(c)]
    if refresh or cache is None:
        return ids, {}
    stored = cache.threads(source, ids)
    newest = newest or {}
    todo = [c for c in ids if c not in stored or not _still_holds(stored[c], newest.get(c))]
    fetch = set(todo)
    return todo, {c: t for c, t in stored.items() if c not in fetch}


def thread_requests(conversation_ids: Iterable[Any], *, cache: RunCache | None = None, source: str = "",
                    newest: Mapping[str, int] | None = None, refresh: bool = False) -> list[str]:
    """The conversations whose thread must be fetched (see :func:`plan_threads`)."""
    return plan_threads(conversation_ids, cache=cache, source=source, newest=newest, refresh=refresh)[0]


def _fetch_one(client: ConduitClient, conversation_id: str, stopping: threading.Event
               ) -> tuple[list[Any], int]:
    pages, records = 0, []
    for page in client.iter_message_pages(conversation_id):
        pages += 1
        records.extend(page)
        if stopping.is_set():
            break
    return records, pages


def fetch_threads(client: ConduitClient, cache: RunCache | None, source: str, conversation_ids: list[str],
                  *, newest: Mapping[str, int] | None = None, refresh: bool = False,
                  progress: bool = False, plan: ThreadPlan | None = None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The messages of these conversations (stored threads that still hold, the rest fetched
    concurrently within the pace and stored), the errors, and the requests made. ``plan``: what
    :func:`plan_threads` said for them, when the caller has it already."""
    todo, stored = plan if plan is not None else plan_threads(conversation_ids, cache=cache, source=source,
                                                              newest=newest, refresh=refresh)
    records: list[Any] = [m for t in stored.values() for m in t.messages]
    errors: list[dict[str, Any]] = []
    fresh: dict[str, CachedThread] = {}
    requests_before = client.stats.requests
    bar = None
    if progress and todo:
        bar = progress_bar(True, total=len(todo), desc="threads", unit="conversation")
    stopping = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(THREAD_WORKERS, len(todo))), thread_name_prefix="conduit-thread")
    try:
        futures = {pool.submit(_fetch_one, client, cid, stopping): cid for cid in todo}
        for future in as_completed(futures):
            cid = futures[future]
            try:
                thread, _ = future.result()
            except ConduitError as exc:
                errors.append({"agent_id": None, "agent_run_id": None, "status_code": getattr(exc, "status_code", None),
                               "attempts": getattr(exc, "attempts", None),
                               "error": f"The messages of conversation {cid} could not be fetched: {exc}"})
            else:
                bad = [(m, message_problem(m)) for m in thread]
                bad = [(m, p) for m, p in bad if p is not None]
                for m, problem in bad:
                    mid = m.get("id") if isinstance(m, Mapping) else None
                    errors.append({"agent_id": None, "agent_run_id": None, "status_code": None, "attempts": None,
                                   "error": f"A message of conversation {cid}{f' ({mid})' if isinstance(mid, str) else ''} "
                                            f"could not be read: {problem}. It was left out (and the thread not "
                                            "cached, so it is asked for again next time)."})
                good = [m for m in thread if message_problem(m) is None]
                records.extend(good)
                if not bad:
                    last = max((_ms(pd.Timestamp(m["sent_at"])) or 0 for m in good if m.get("sent_at")), default=None)
                    fresh[cid] = CachedThread(int(times.utc_now().timestamp() * 1000), last, good)
            if bar is not None:
                bar.update(1)
            if cache is not None and len(fresh) >= 200:
                cache.put_threads(source, fresh)
                fresh.clear()
    finally:
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if cache is not None:
            cache.put_threads(source, fresh)
        if bar is not None:
            bar.close()
    return messages_frame(records), errors_frame(errors), int(client.stats.requests - requests_before)


def _open_cache(cache: RunCache | str | Any | None) -> RunCache | None:
    if cache is False:
        return None
    if isinstance(cache, RunCache):
        return cache
    return RunCache(None if cache is None or cache is True else cache)


def fetch_messages(conversation_ids: Iterable[str] | str, *, client: ConduitClient | None = None,
                   cache: RunCache | str | bool | None = None, progress: bool | None = None,
                   refresh: bool = False) -> pd.DataFrame:
    """The messages of these guest conversations (a run's ``conversation_id``), as one frame
    (:func:`messages_frame`): one request per thread of up to 100 messages, within the client's
    pace, through the cache (``cache=False``: none; a path or :class:`RunCache`: that file). A
    stored thread is used as it is unless ``refresh=True`` (:meth:`RunFrames.fetch_messages`
    also asks again when a run of the conversation is newer than the stored thread).

    ``frame.attrs["errors"]`` lists the threads that could not be fetched and the messages that
    could not be read (rows of the errors table, as dicts: ``errors_frame(frame.attrs["errors"])``;
    a warning says how many); ``frame.attrs["requests"]`` counts the requests made.

    >>> fetch_messages(["cv_abc", "cv_def"], client=client)
    """
    if isinstance(conversation_ids, str):
        conversation_ids = [conversation_ids]
    ids = list(conversation_ids)
    bad = [c for c in ids if not isinstance(c, str) or not c]
    if bad:
        raise ValueError(f"conversation_ids must be conversation ids (non-empty strings, a run's "
                         f"conversation_id); got {bad[0]!r}")
    own_client = client is None
    client = client or ConduitClient()
    store = _open_cache(client.cache_path if cache is None and client.cache_path else cache)
    try:
        source = f"{client.base_url}#{client.workspace_id or ''}"
        show = bool(progress) if progress is not None else False
        messages, errors, requests = fetch_threads(client, store, source, ids, refresh=refresh, progress=show)
    finally:
        if store is not None and store is not cache:
            store.close()
        if own_client:
            client.close()
    if len(errors):
        import warnings

        warnings.warn(f"{len(errors)} thread(s) or message(s) could not be fetched or read; see "
                      "frame.attrs['errors']", UserWarning, stacklevel=2)
    messages.attrs["errors"] = errors.astype(object).where(errors.notna(), None).to_dict("records")
    messages.attrs["requests"] = requests
    return messages
