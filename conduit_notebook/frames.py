"""Conduit JSON records -> typed pandas DataFrames. Pure functions, no I/O.

>>> from conduit_notebook import runs_frame, tool_calls_frame
>>> runs = runs_frame(records)             # one row per run
>>> calls = tool_calls_frame(records)      # one row per tool call, in trace order

Timestamps are tz-aware UTC, low-cardinality strings are categoricals, counts are nullable
integers (a run without ``token_usage`` has missing counts, never 0). Fields the API adds
later become columns of their own; nothing is dropped. An empty input gives empty frames with
the same columns and dtypes.
"""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .schema import DETAIL_COLUMNS, RUN_STATUSES

try:  # several times faster than json for the many small values of tool calls
    import orjson
except ImportError:  # pragma: no cover - a dependency; json does the same, slower
    orjson = None  # type: ignore[assignment]  # every use checks for None first

__all__ = [
    "AGENT_COLUMNS",
    "DETAIL_COLUMNS",
    "ERROR_COLUMNS",
    "JSON_TEXT",
    "RUN_COLUMNS",
    "TOOL_CALL_COLUMNS",
    "agent_labels",
    "agents_frame",
    "decode_json",
    "errors_frame",
    "runs_frame",
    "tool_calls_frame",
]

STRING = pd.StringDtype("pyarrow")
#: Nested JSON (a tool call's ``input`` and ``output``, fields the API adds that hold objects):
#: a column of JSON text in Arrow, an eighth of the memory of Python dicts and no work for the
#: garbage collector. :func:`decode_json` (or ``calls.conduit.input_json()``) gives the values.
JSON_TEXT = pd.ArrowDtype(pa.string())
TIMESTAMP = pd.DatetimeTZDtype("ns", "UTC")
CATEGORY = "category"
INT = "Int64"
FLOAT = "float64"

#: The runs table: column -> dtype, in order. Unknown top-level fields follow these.
RUN_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "run_id": STRING,
    "agent_id": CATEGORY,
    "agent_name": CATEGORY,
    "workspace_id": CATEGORY,
    "status": CATEGORY,
    "disposition": CATEGORY,
    "disposition_reason": CATEGORY,
    "error": STRING,
    "created_at": TIMESTAMP,
    "completed_at": TIMESTAMP,
    "duration_ms": INT,
    "input_tokens": INT,
    "output_tokens": INT,
    "total_tokens": INT,
    "total_cost": FLOAT,
    "tool_call_count": INT,
    "contact_id": CATEGORY,
    "conversation_id": CATEGORY,
    "trigger_id": CATEGORY,
    "trigger_event_id": STRING,
    "session_id": STRING,
    "trace_id": STRING,
    "response": STRING,
    "reflection": STRING,
}

#: The tool-call table: column -> dtype. Extra keys of trace items follow ``output``.
#: ``agent_run_id`` repeats for every call of a run, so it is a categorical too.
TOOL_CALL_COLUMNS: dict[str, Any] = {
    "agent_run_id": CATEGORY,
    "agent_id": CATEGORY,
    "step": "int32",
    "name": CATEGORY,
    "input": JSON_TEXT,
    "output": JSON_TEXT,
    "created_at": TIMESTAMP,
    "status": CATEGORY,
    "disposition": CATEGORY,
}
_PARENT_COLUMNS = ("created_at", "status", "disposition")

AGENT_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "name": STRING,
    "description": STRING,
    "workspace_id": STRING,
    "enabled": "boolean",
    "operation_mode": CATEGORY,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "trigger_count": INT,
}

ERROR_COLUMNS: dict[str, Any] = {
    "agent_id": STRING,
    "agent_run_id": STRING,
    "status_code": INT,
    "error": STRING,
    "attempts": INT,
}

# Keys of a record that do not become a column of the same name.
_USAGE = {"input_tokens": "input", "output_tokens": "output"}
_DERIVED = {"input_tokens", "output_tokens", "total_tokens", "tool_call_count"}
_KNOWN_RUN_KEYS = (set(RUN_COLUMNS) - _DERIVED) | {"token_usage", "tool_trace"}
_KNOWN_CALL_KEYS = {"name", "input", "output"}

@contextmanager
def gc_paused() -> Iterator[None]:
    """Creating hundreds of thousands of small dicts triggers a cyclic-GC pass every few
    hundred allocations, and now and then a full one over every object of the process; none of
    the new objects can be garbage yet, so those passes are pure cost (about half the decoding
    time here, far more in a notebook already holding millions of objects)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


F = TypeVar("F", bound=Callable[..., Any])


def _bulk(func: F) -> F:
    """Run ``func`` with the cyclic GC paused (see :func:`gc_paused`)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


_ARROW_KIND = {STRING: pa.string(), CATEGORY: pa.string(), TIMESTAMP: pa.string(),
               INT: pa.float64(), FLOAT: pa.float64()}
# What pa.array() reads of a run in one pass, in C++: every known scalar, the usage and the tool
# names. Numbers are read as floats and checked to be whole afterwards (a struct conversion would
# silently truncate 1.5 to 1).
_RUN_STRUCT = pa.struct(
    [(name, _ARROW_KIND[dtype]) for name, dtype in RUN_COLUMNS.items() if name not in _DERIVED]
    + [("token_usage", pa.struct([("input", pa.float64()), ("output", pa.float64())]))]
)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                 ValueError, OverflowError)


def pandas_type(arrow_type: pa.DataType) -> Any:
    """The pandas dtype for an Arrow type where ours differs from pyarrow's default (None: the default)."""
    if arrow_type == pa.string() or arrow_type == pa.large_string():
        return STRING
    if arrow_type == pa.int64():
        return pd.Int64Dtype()
    if arrow_type == pa.bool_():
        return pd.BooleanDtype()
    return None


def _to_text(value: Any) -> Any:
    """A non-string where text was expected (an error object, say) keeps its JSON text."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any) -> float | None:
    """A JSON number, or a number sent as text ("4213"); anything else is missing."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        # Beyond a 64-bit integer no count or cost is real: missing, not a crash.
        return value if -2**63 <= value < 2**63 else None
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_MIN_TIME = pd.Timestamp("1678-01-01", tz="UTC")
_MAX_TIME = pd.Timestamp("2262-01-01", tz="UTC")


def _arrow(values: Sequence[Any] | pa.Array, dtype: Any) -> pa.Array:
    """JSON values (or an arrow array read by the fast path) -> the arrow array for ``dtype``."""
    if dtype is TIMESTAMP:
        if isinstance(values, pa.Array):
            try:
                # Through microseconds, which hold year 1: pyarrow 15 wrapped Go's zero time
                # around to 1754 when casting to nanoseconds.
                wide = values.cast(pa.timestamp("us", tz="UTC"))
                real = pc.and_(pc.greater_equal(wide, pa.scalar(_MIN_TIME, type=wide.type)),
                               pc.less_equal(wide, pa.scalar(_MAX_TIME, type=wide.type)))
                return pc.if_else(real, wide, pa.scalar(None, type=wide.type)).cast(pa.timestamp("ns", tz="UTC"))
            except _ARROW_ERRORS:
                values = values.to_pylist()
        # Go's zero time (0001-01-01T00:00:00Z) means "not set"; nothing that far out is real.
        # Dropped by its year before parsing: pandas 2.2 turned it into 1754 instead of NaT.
        values = [None if isinstance(v, str) and v[:4].isdigit() and not "1678" <= v[:4] <= "2261" else v
                  for v in values]
        parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")
        parsed = parsed.where((parsed >= _MIN_TIME) & (parsed <= _MAX_TIME))
        return pa.array(parsed.astype(TIMESTAMP), type=pa.timestamp("ns", tz="UTC"))
    if dtype in (INT, FLOAT):
        if not isinstance(values, pa.Array):
            numbers = [_number(v) for v in values]
            values = pa.array(numbers, type=pa.float64(), from_pandas=False)
        if dtype == FLOAT:
            return values
        try:
            return values.cast(pa.int64())  # safe: fails on 1.5, keeps whole numbers
        except _ARROW_ERRORS:
            return values  # fractional values: keep them, as floats, rather than truncate
    if dtype in (STRING, CATEGORY):
        if not isinstance(values, pa.Array):
            try:
                values = pa.array(values, type=pa.string())
            except _ARROW_ERRORS:
                values = pa.array([_to_text(v) for v in values], type=pa.string())
        return values.dictionary_encode() if dtype == CATEGORY else values
    raise AssertionError(f"no arrow form for {dtype!r}")  # pragma: no cover


def _object_array(values: Sequence[Any]) -> pd.Series:
    # The values themselves (dicts, lists, strings...), never unpacked into nested arrays.
    return pd.Series(values, dtype=object)


def _dumps_one(value: Any) -> bytes:
    try:
        if orjson is None:  # pragma: no cover
            raise TypeError
        return orjson.dumps(value)
    except (TypeError, ValueError):  # an integer beyond 64 bits, a key that is not a string...
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()


# Between values in one orjson call: a raw newline never occurs in compact JSON (strings escape
# it), so ",\n," can only be the boundary between two top-level values.
_BOUNDARY = b",\n,"


def json_text(values: Sequence[Any]) -> pd.api.extensions.ExtensionArray:
    """JSON values -> a :data:`JSON_TEXT` array (None stays missing).

    One ``orjson.dumps`` of all the values, split at the boundaries in Arrow: per-value calls
    cost several times more than the encoding itself."""
    values = list(values)
    array = None
    if orjson is not None and hasattr(orjson, "Fragment") and values:
        interleaved = [orjson.Fragment(b"\n")] * (2 * len(values) - 1)
        interleaved[::2] = values
        try:
            document = orjson.dumps(interleaved)
        except (TypeError, ValueError):  # an integer beyond 64 bits, a lone surrogate...
            document = None
        if document is not None:
            parts = pc.split_pattern(pa.array([document[1:-1]], type=pa.large_binary()), _BOUNDARY)
            texts = parts.flatten().cast(pa.large_string()).cast(pa.string())
            array = pc.if_else(pc.equal(texts, "null"), pa.scalar(None, pa.string()), texts)
    if array is None:
        encoded = [None if v is None else _dumps_one(v) for v in values]
        # Bytes to string is a check of UTF-8, not a copy.
        array = pa.array(encoded, type=pa.binary()).cast(pa.string())
    return pd.array(array, dtype=JSON_TEXT)


def decode_json(texts: pd.Series | Sequence[str | None]) -> pd.Series:
    """A column of JSON text (``calls["input"]``) -> a Series of Python values (dicts, lists,
    strings, numbers; missing stays None), with the same index. One parse for the whole column.

    >>> decode_json(calls["input"]).str.get("reservation_id")
    """
    index = texts.index if isinstance(texts, pd.Series) else None
    array = pa.array(texts.array if isinstance(texts, pd.Series) else texts, type=pa.string(),
                     from_pandas=True) if not isinstance(texts, pa.Array) else texts
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], pa.string())
    values = _parse_texts(array.cast(pa.large_string()))
    series = pd.Series(np.empty(len(values), dtype=object), index=index, dtype=object)
    series[:] = values if len(values) else []
    return series


def _parse_texts(texts: pa.Array) -> list[Any]:
    if len(texts) == 0:
        return []
    texts = pc.fill_null(texts, "null")
    one = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], type=pa.int64()), texts)
    document = pc.binary_join(one, pa.scalar(",", pa.large_string()))[0].as_py()
    with gc_paused():
        if orjson is not None:
            try:
                return orjson.loads(f"[{document}]")
            except orjson.JSONDecodeError:
                pass  # nested deeper than orjson goes, or an integer beyond 64 bits
        return json.loads(f"[{document}]")


def _infer_extra(values: list[Any]) -> Any:
    """A column the API added: strings become strings, whole numbers Int64, other JSON objects."""
    try:
        inferred = pa.array(values)
    except _ARROW_ERRORS:
        return json_text(values)
    kind = inferred.type
    if kind == pa.string():
        return pd.array(inferred, dtype=STRING)
    if kind == pa.bool_():
        return pd.array(values, dtype="boolean")
    if kind == pa.int64():
        return pd.array(cast(Any, values), dtype=INT)
    if kind == pa.float64():
        return inferred.to_numpy(zero_copy_only=False)
    if kind == pa.null():
        return _object_array(values)
    return json_text(values)  # objects, lists, mixed kinds: JSON text


def _as_records(records: Iterable[Mapping[str, Any]] | pd.DataFrame, name: str) -> list[Mapping[str, Any]]:
    if isinstance(records, pd.DataFrame):
        raise TypeError(f"{name} takes the API's JSON records (a list of dicts), not a DataFrame")
    if isinstance(records, Mapping):
        # One run, or an API envelope ({"data": [...]} / {"data": {...}}).
        data = records.get("data", records)
        records = data if isinstance(data, list) else [data]
    out = list(records)
    if not _all_dicts(out):
        for i, r in enumerate(out):
            if not isinstance(r, Mapping):
                raise TypeError(f"{name} takes dicts of run JSON; item {i} is a {type(r).__name__}")
    return out


def _frame(arrays: dict[str, pa.Array], objects: dict[str, Any], order: Sequence[str]) -> pd.DataFrame:
    """Arrow columns (converted in one go) and ready-made pandas columns, in ``order``."""
    plain = {n: a for n, a in arrays.items() if not pa.types.is_dictionary(a.type)}
    frame = pa.table(plain).to_pandas(types_mapper=pandas_type) if plain else pd.DataFrame(
        index=pd.RangeIndex(len(next(iter(arrays.values()))) if arrays else 0))
    for name, array in arrays.items():
        if name not in plain:
            frame[name] = arrow_categorical(array, name)
    for name, values in objects.items():
        frame[name] = values.values if isinstance(values, pd.Series) else values
    return frame[list(order)]


def arrow_categorical(array: pa.Array | pa.ChunkedArray, name: str) -> pd.Categorical:
    """An Arrow dictionary (or string) column -> a categorical whose categories stay Arrow
    strings (no Python string per category: 100,000 run ids would be ~25 MB of them), sorted
    unless ``name`` is an id kept in order of appearance."""
    if isinstance(array, pa.ChunkedArray):
        array = (array.combine_chunks() if array.num_chunks
                 else pa.array([], type=pa.dictionary(pa.int32(), pa.string())))
    if not pa.types.is_dictionary(array.type):
        array = array.cast(pa.string()).dictionary_encode()
    dictionary = array.dictionary.cast(pa.string())
    codes = array.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if name not in _UNSORTED and len(dictionary):
        values = dictionary.to_pylist()
        order = _category_order(name, values)
        position = {v: i for i, v in enumerate(order)}
        remap = np.array([position[v] for v in values], dtype=np.int64)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        dictionary = pa.array(order, type=pa.string())
    categories = pd.Index(pd.array(dictionary, dtype="str"))
    # An Arrow dictionary holds each value once: pandas' check of that costs a hash table of
    # Python strings (13 MB for 100,000 run ids), so it is skipped where pandas allows it.
    fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = fastpath(categories, False) if fastpath else pd.CategoricalDtype(categories)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


# Ids as categories: thousands of them, in order of appearance (newest run first).
_UNSORTED = {"agent_run_id", "contact_id", "conversation_id"}


def _category_order(name: str, categories: pd.Index) -> list[str]:
    """Sorted categories, so that frames built apart agree; statuses in lifecycle order."""
    values = sorted(str(c) for c in categories)
    if name == "status":
        lifecycle = list(RUN_STATUSES)
        return lifecycle + [v for v in values if v not in lifecycle]
    return values


def _empty(columns: Mapping[str, Any]) -> pd.DataFrame:
    arrays = {n: _arrow([], d) for n, d in columns.items()
              if d is not object and d != JSON_TEXT and d not in ("boolean", "int64", "int32")}
    objects = {n: (_object_array([]) if d is object else pd.array([], dtype=d))
               for n, d in columns.items() if n not in arrays}
    return _frame(arrays, objects, list(columns))


def _read_struct(records: list[Mapping[str, Any]], struct: pa.StructType) -> pa.StructArray | None:
    """The fast path: pa.array() reads the known fields of every record at once (None if any
    record does not fit the expected types, and the slower per-field path takes over)."""
    try:
        return pa.array(records, type=struct)
    except _ARROW_ERRORS:
        return None


def agent_labels(names: Mapping[Any, Any]) -> dict[Any, Any]:
    """Agent ids -> the labels the ``agent_name`` column shows: each agent's name, and where two
    agents share one, the name and the end of the id (``"Front desk (…4f2a1c)"``), so that a
    table or a plot grouped by name never merges two agents. Missing names stay missing."""
    counts: dict[Any, int] = {}
    for name in names.values():
        if isinstance(name, str):
            counts[name] = counts.get(name, 0) + 1
    labels = {}
    for agent_id, name in names.items():
        if isinstance(name, str) and counts[name] > 1:
            text = str(agent_id)
            labels[agent_id] = f"{name} (…{text[-6:]})" if len(text) > 6 else f"{name} ({text})"
        else:
            labels[agent_id] = name
    if len(set(v for v in labels.values() if v is not None)) < sum(v is not None for v in labels.values()):
        # Ids that end alike: the whole id.
        labels = {a: (f"{n} ({a})" if isinstance(n, str) and counts[n] > 1 else n) for a, n in names.items()}
    return labels


@_bulk
def runs_frame(
    records: Iterable[Mapping[str, Any]],
    *,
    agent_names: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """One row per run, from the API's run records (list summaries or full records).

    Columns are :data:`RUN_COLUMNS` in order, then any field the API added (kept, not dropped).
    ``agent_names`` maps agent ids to names for the ``agent_name`` column. Summaries leave the
    detail-only columns empty.

    >>> runs = runs_frame(client.iter_runs(agent_id))
    >>> runs.groupby("disposition", observed=True)["total_cost"].sum()
    """
    records = _as_records(records, "runs_frame")
    if not records:
        return _empty(RUN_COLUMNS)
    struct = _read_struct(records, _RUN_STRUCT)
    if struct is not None:
        field = struct.field
        # pc.struct_field keeps a null token_usage null (StructArray.field would give 0s).
        usage = {k: pc.struct_field(field("token_usage"), k) for k in ("input", "output")}
    else:
        def field(name: str) -> list[Any]:
            return [r.get(name) for r in records]
        raw = [r.get("token_usage") for r in records]
        usages = [u if isinstance(u, Mapping) else {} for u in raw]
        usage = {k: _arrow([u.get(k) for u in usages], INT) for k in ("input", "output")}
        usage = {k: v.cast(pa.float64()) for k, v in usage.items()}
    # Counted in Python: reading the traces into Arrow just to count them costs more.
    trace_lengths = pa.array([len(t) if type(t) is list else None
                              for t in (r.get("tool_trace") for r in records)], type=pa.int64())
    arrays: dict[str, pa.Array] = {}
    for name, dtype in RUN_COLUMNS.items():
        if name in _USAGE:
            arrays[name] = _arrow(usage[_USAGE[name]], dtype)
        elif name == "total_tokens":
            arrays[name] = _arrow(pc.add(usage["input"], usage["output"]), dtype)
        elif name == "tool_call_count":
            arrays[name] = trace_lengths.cast(pa.int64())
        else:
            arrays[name] = _arrow(field(name), dtype)
    if agent_names:
        ids = arrays["agent_id"]
        names = pa.array([agent_names.get(i) for i in ids.dictionary.to_pylist()], type=pa.string())
        given = arrays["agent_name"].cast(pa.string())
        named = pc.take(names, ids.indices)
        arrays["agent_name"] = pc.coalesce(given, named).dictionary_encode()
    extra_keys = sorted(set().union(*records) - _KNOWN_RUN_KEYS)
    objects = {key: _infer_extra([r.get(key) for r in records]) for key in extra_keys}
    return _frame(arrays, objects, [*RUN_COLUMNS, *extra_keys])


_CALL_PARENT_STRUCT = pa.struct(
    [("id", pa.string()), ("agent_id", pa.string()), ("created_at", pa.string()),
     ("status", pa.string()), ("disposition", pa.string())]
)


def _known_fields(items: list[Mapping[str, Any]]) -> tuple[list[Any], list[Any], list[Any], bool]:
    """Names, inputs and outputs of trace items, at C speed when every item has all three
    (the last value says whether they did)."""
    try:
        columns = [list(map(itemgetter(key), items)) for key in ("name", "input", "output")]
        return columns[0], columns[1], columns[2], True
    except KeyError:
        columns = [[item.get(key) for item in items] for key in ("name", "input", "output")]
        return columns[0], columns[1], columns[2], False


def _all_dicts(items: list[Any]) -> bool:
    return set(map(type, items)) <= {dict}


@_bulk
def tool_calls_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per tool call, in trace order, from full run records (``get_run``'s).

    Columns are :data:`TOOL_CALL_COLUMNS`: the run's ``id`` as ``agent_run_id`` (Conduit's own
    name for that key), ``agent_id``, the 0-based ``step``, the tool ``name``, its ``input`` and
    ``output`` as JSON text (:data:`JSON_TEXT`; ``decode_json(calls["input"])`` or
    ``calls.conduit.input_json()`` gives the Python values), any extra keys a trace item carries (an error, a duration),
    and the parent run's ``created_at``, ``status`` and ``disposition``.

    >>> calls = tool_calls_frame(records)
    >>> calls.merge(runs, left_on="agent_run_id", right_on="id")
    """
    records = _as_records(records, "tool_calls_frame")
    traces: list[Sequence[Any]] = [t if type(t) is list else () for t in (r.get("tool_trace") for r in records)]
    counts = np.fromiter(map(len, traces), dtype=np.int64, count=len(traces))
    total = int(counts.sum())
    if total == 0:
        return _empty(TOOL_CALL_COLUMNS)
    items = list(chain.from_iterable(traces))
    if not _all_dicts(items):
        items = [i if isinstance(i, Mapping) else {"output": i} for i in items]
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    struct = _read_struct(records, _CALL_PARENT_STRUCT)

    with_calls = pa.array(counts > 0)
    parent_among = pa.array(np.repeat(np.arange(int((counts > 0).sum())), counts[counts > 0]))

    def parent_column(name: str, dtype: Any) -> pa.Array:
        values = struct.field(name) if struct is not None else pa.array(
            [_to_text(r.get(name)) for r in records], type=pa.string())
        # Only runs with calls: a run id category with no rows would be noise in value_counts.
        column = _arrow(values.filter(with_calls), dtype)
        if isinstance(column, pa.DictionaryArray):  # repeat the codes, not the strings
            return pa.DictionaryArray.from_arrays(column.indices.take(parent_among), column.dictionary)
        return column.take(parent_among)

    arrays = {
        "agent_run_id": parent_column("id", CATEGORY),
        "agent_id": parent_column("agent_id", CATEGORY),
    }
    for key in _PARENT_COLUMNS:
        arrays[key] = parent_column(key, TOOL_CALL_COLUMNS[key])
    names, inputs, outputs, complete = _known_fields(items)
    arrays["name"] = _arrow(names, CATEGORY)
    objects: dict[str, Any] = {
        "step": (np.arange(total, dtype=np.int64) - starts).astype(np.int32),
        "input": json_text(inputs),
        "output": json_text(outputs),
    }
    # Extra keys (an error, a duration) are usually on a few items: find and read those only.
    # When every item has name, input and output, an item with other keys has more than three.
    if complete:
        odd = [j for j, item in enumerate(items) if len(item) != 3]
    else:
        odd = [j for j, item in enumerate(items) if item.keys() != _KNOWN_CALL_KEYS]
    extra_keys = sorted(set().union(*(items[j] for j in odd)) - _KNOWN_CALL_KEYS - set(TOOL_CALL_COLUMNS))
    if extra_keys:
        for key in extra_keys:
            values: list[Any] = [None] * total
            for j in odd:
                values[j] = items[j].get(key)
            objects[key] = _infer_extra(values)
    order = ["agent_run_id", "agent_id", "step", "name", "input", "output", *extra_keys,
             *_PARENT_COLUMNS]
    return _frame(arrays, objects, order)


def agents_frame(agents: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per agent: :data:`AGENT_COLUMNS` (``trigger_count`` counts its triggers)."""
    agents = _as_records(agents, "agents_frame")
    if not agents:
        return _empty(AGENT_COLUMNS)
    arrays, objects = {}, {}
    for name, dtype in AGENT_COLUMNS.items():
        if name == "trigger_count":
            values = [len(a["triggers"]) if isinstance(a.get("triggers"), list) else None for a in agents]
        else:
            values = [a.get(name) for a in agents]
        if dtype == "boolean":
            objects[name] = pd.array([v if isinstance(v, bool) else None for v in values], dtype="boolean")
        else:
            arrays[name] = _arrow(values, dtype)
    return _frame(arrays, objects, list(AGENT_COLUMNS))


def errors_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run or page that could not be fetched: :data:`ERROR_COLUMNS`."""
    rows = list(rows)
    if not rows:
        return _empty(ERROR_COLUMNS)
    arrays = {name: _arrow([r.get(name) for r in rows], dtype) for name, dtype in ERROR_COLUMNS.items()}
    return _frame(arrays, {}, list(ERROR_COLUMNS))


def newest_first(runs: pd.DataFrame, calls: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs newest first (ties by id); tool calls in their runs' order, then by step."""
    created = runs["created_at"]
    if created.is_monotonic_decreasing and created.notna().all():
        return runs, calls  # already in order (one compacted segment): nothing to do
    runs = runs.sort_values(["created_at", "id"], ascending=[False, True], kind="stable",
                            na_position="last", ignore_index=True)
    if len(calls):
        position = pd.Series(range(len(runs)), index=runs["id"].astype(object))
        order = calls["agent_run_id"].astype(object).map(position)
        calls = (calls.assign(_order=order.to_numpy())
                 .sort_values(["_order", "step"], kind="stable", ignore_index=True)
                 .drop(columns="_order"))
    return runs, calls

