"""Typed columns from JSON values, the layer under :mod:`conduit_notebook.frames`: the dtypes of
the tables, values -> Arrow arrays (numbers checked whole, times in range, text kept as text),
nested JSON as a column of JSON text (:func:`json_text`, :func:`decode_json`), categoricals from
Arrow, and empty frames of the right dtypes. Pure functions, no I/O."""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .schema import RUN_STATUSES

try:  # several times faster than json for the many small values of tool calls
    import orjson
except ImportError:  # pragma: no cover - a dependency; json does the same, slower
    orjson = None  # type: ignore[assignment]  # every use checks for None first

__all__ = ["CATEGORY", "FLOAT", "INT", "JSON_TEXT", "STRING", "TIMESTAMP", "arrow_categorical", "decode_json",
           "gc_paused", "json_text", "pandas_type"]


STRING = pd.StringDtype("pyarrow")


#: Nested JSON (a tool call's ``input`` and ``output``, fields the API adds that hold objects):
#: a column of JSON text in Arrow, an eighth of the memory of Python dicts and no work for the
#: garbage collector. :func:`decode_json` (or ``calls.conduit.input_json()``) gives the values.
JSON_TEXT = pd.ArrowDtype(pa.string())


TIMESTAMP = pd.DatetimeTZDtype("ns", "UTC")


CATEGORY = "category"


INT = "Int64"


FLOAT = "float64"


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


def bulk(func: F) -> F:
    """Run ``func`` with the cyclic GC paused (see :func:`gc_paused`)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


ARROW_KIND = {STRING: pa.string(), CATEGORY: pa.string(), TIMESTAMP: pa.string(),
               INT: pa.float64(), FLOAT: pa.float64()}


ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
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


def to_text(value: Any) -> Any:
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


def arrow_column(values: Sequence[Any] | pa.Array, dtype: Any) -> pa.Array:
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
            except ARROW_ERRORS:
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
        except ARROW_ERRORS:
            return values  # fractional values: keep them, as floats, rather than truncate
    if dtype in (STRING, CATEGORY):
        if not isinstance(values, pa.Array):
            try:
                values = pa.array(values, type=pa.string())
            except ARROW_ERRORS:
                values = pa.array([to_text(v) for v in values], type=pa.string())
        return values.dictionary_encode() if dtype == CATEGORY else values
    raise AssertionError(f"no arrow form for {dtype!r}")  # pragma: no cover


def object_array(values: Sequence[Any]) -> pd.Series:
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


def infer_extra(values: list[Any]) -> Any:
    """A column the API added: strings become strings, whole numbers Int64, other JSON objects."""
    try:
        inferred = pa.array(values)
    except ARROW_ERRORS:
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
        return object_array(values)
    return json_text(values)  # objects, lists, mixed kinds: JSON text


def as_records(records: Iterable[Mapping[str, Any]] | pd.DataFrame, name: str) -> list[Mapping[str, Any]]:
    if isinstance(records, pd.DataFrame):
        raise TypeError(f"{name} takes the API's JSON records (a list of dicts), not a DataFrame")
    if isinstance(records, Mapping):
        # One run, or an API envelope ({"data": [...]} / {"data": {...}}).
        data = records.get("data", records)
        records = data if isinstance(data, list) else [data]
    out = list(records)
    if not all_dicts(out):
        for i, r in enumerate(out):
            if not isinstance(r, Mapping):
                raise TypeError(f"{name} takes dicts of run JSON; item {i} is a {type(r).__name__}")
    return out


def make_frame(arrays: dict[str, pa.Array], objects: dict[str, Any], order: Sequence[str]) -> pd.DataFrame:
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


def empty_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    arrays = {n: arrow_column([], d) for n, d in columns.items()
              if d is not object and d != JSON_TEXT and d not in ("boolean", "int64", "int32")}
    objects = {n: (object_array([]) if d is object else pd.array([], dtype=d))
               for n, d in columns.items() if n not in arrays}
    return make_frame(arrays, objects, list(columns))


def read_struct(records: list[Mapping[str, Any]], struct: pa.StructType) -> pa.StructArray | None:
    """The fast path: pa.array() reads the known fields of every record at once (None if any
    record does not fit the expected types, and the slower per-field path takes over)."""
    try:
        return pa.array(records, type=struct)
    except ARROW_ERRORS:
        return None


def all_dicts(items: list[Any]) -> bool:
    return set(map(type, items)) <= {dict}
