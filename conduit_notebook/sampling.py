"""Trace samples: which runs' traces to fetch within a budget, and how to weigh them back.

Every run of a window comes from the list pages (100 a request); a run's trace costs one request
of its own. When not every trace fits the budget, :func:`choose_traces` picks a stratified
sample: strata are agent x disposition x status, every stratum gets at least one traced run,
the rest is shared in proportion to the strata's sizes, and within a stratum runs are taken in
the order of a seeded hash of their id (reproducible with ``seed``, and stable as the window
moves, so a later call reuses the traces it already has).

Each traced run then stands for its stratum: :func:`trace_weights` gives it
``runs in the stratum / traced runs in the stratum``; :func:`stratified_totals` estimates a
population total from the traced runs with its standard error.

Failed traces are non-response: a run whose trace failed for good (``trace_failed``) stays in
the runs without a trace, and the runs of its stratum that were traced stand for it (the
weighting-class adjustment). That assumes the failed traces are missing at random within agent x
disposition x status; when failures concentrate on big traces the estimates are low, which no
interval shows. :func:`trace_failures` counts them and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["STRATA", "TRACE_FAILED", "choose_traces", "design_groups", "drawn_traces", "id_keys", "domain_ratios_from_sums", "domain_totals_from_sums", "strata_codes",
           "stratified_totals", "trace_failures", "trace_weights"]

#: The columns whose combinations are the strata of a trace sample.
STRATA = ("agent_id", "disposition", "status")
#: The runs column marking a run whose trace was asked for and failed for good (non-response).
TRACE_FAILED = "trace_failed"


def id_keys(ids: pd.Series, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each id, the same whatever the row order and in every call: the
    one order key of every seeded pick (the trace sample, the review sample).

    Fixed-width ids (Conduit's are) are hashed as 8-byte words (multilinear hashing with seeded
    odd multipliers, then a splitmix64 finaliser) in a few vectorised passes; sorting a million id
    strings would take ten times as long. Other ids fall back to pandas' hash.
    """
    rng = np.random.default_rng([abs(int(seed)), 0x5EED])
    array = pa.array(ids.astype("string").array).cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset: array.offset + len(array) + 1]
    lengths = np.diff(offsets)
    if array.null_count or len(lengths) == 0 or lengths.min() != lengths.max() or lengths[0] == 0:
        key = "".join(f"{b:02x}" for b in rng.integers(0, 256, size=8, dtype=np.uint8))
        return pd.util.hash_pandas_object(ids.astype(object), index=False, hash_key=key).to_numpy()
    width = int(lengths[0])
    words = -(-width // 8)
    raw = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(len(array), width)
    if width % 8:
        padded = np.zeros((len(array), words * 8), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    columns = raw.view(np.uint64)
    multipliers = rng.integers(1, 2**63, size=words, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        h = columns[:, 0] * multipliers[0]
        for k in range(1, words):
            h += columns[:, k] * multipliers[k]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def strata_codes(runs: pd.DataFrame, columns: Sequence[str] = STRATA) -> np.ndarray:
    """One integer per run naming its stratum (missing values are a level of their own)."""
    combined = np.zeros(len(runs), dtype=np.int64)
    for column in columns:
        if column not in runs:
            continue
        values = runs[column]
        codes = (values.cat.codes if isinstance(values.dtype, pd.CategoricalDtype)
                 else values.astype("category").cat.codes).to_numpy().astype(np.int64) + 1
        combined = combined * (int(codes.max(initial=0)) + 1) + codes
    return np.unique(combined, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Traced runs wanted per stratum: proportional to size (largest remainders), at least one
    each, never more than the stratum holds."""
    sizes = np.asarray(sizes, dtype=np.int64)
    want = np.minimum(sizes, 1)
    rest = max(0, total - int(want.sum()))
    if rest and sizes.sum():
        room = sizes - want
        share = rest * room / max(int(room.sum()), 1)
        extra = np.floor(share).astype(np.int64)
        left = min(rest, int(room.sum())) - int(extra.sum())
        if left > 0:
            order = np.argsort(-(share - extra), kind="stable")
            extra[order[:left]] += 1
        want = want + np.minimum(extra, room)
    return want


def drawn_traces(runs: pd.DataFrame, have: np.ndarray, total: int, *, seed: int = 0) -> np.ndarray:
    """Which runs the random sample of about ``total`` traces draws: in each stratum the first
    runs in seeded hash order, up to the stratum's share; a stratum whose every run has its
    trace at hand (``have``) is drawn whole (a census of it). Traces at hand outside the draw
    (picked by hand, by the inspector, by another seed or window) are not part of it, so they
    never take random-sample weights (:func:`trace_weights` with ``drawn``)."""
    have = np.asarray(have, dtype=bool)
    if total >= len(runs):
        return np.ones(len(runs), dtype=bool)
    codes = strata_codes(runs)
    n_strata = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=n_strata)
    wanted = _allocate(sizes, total)
    rank = id_keys(runs["id"], seed)
    order = np.lexsort((rank, codes))  # by stratum, then hash order
    stratum = codes[order]
    # Position of each run within its stratum's hash order.
    starts = np.searchsorted(stratum, np.arange(n_strata))
    position = np.arange(len(order)) - starts[stratum]
    drawn = np.zeros(len(runs), dtype=bool)
    drawn[order[position < wanted[stratum]]] = True
    census = np.bincount(codes[have], minlength=n_strata) == sizes
    return drawn | census[codes]


def choose_traces(runs: pd.DataFrame, have: np.ndarray, total: int, *, seed: int = 0) -> np.ndarray:
    """Which runs' traces to fetch so that the random sample of about ``total`` runs of ``runs``
    (:func:`drawn_traces`) carries one.

    ``have`` marks the runs whose trace is already at hand (the cache): those of the sample cost
    nothing. Returns a boolean mask of the runs to fetch: the runs drawn that lack a trace.
    """
    have = np.asarray(have, dtype=bool)
    if total >= len(runs):
        return ~have
    return drawn_traces(runs, have, total, seed=seed) & ~have


def trace_weights(runs: pd.DataFrame, traced: np.ndarray, drawn: np.ndarray | None = None) -> np.ndarray:
    """Per run: ``runs in its stratum / traced runs in its stratum`` if it is traced, else NaN.

    ``drawn`` (default: every run) marks the runs the random sample drew
    (:func:`drawn_traces`): a traced run outside it (hand-picked, cached from another draw) gets
    weight 0, shown but left out of every estimate, and does not count in its stratum.

    Every run traced gives weights of 1. Runs of a stratum without any traced run are
    represented by the others: the weights are scaled by ``all runs / runs in traced strata``
    (a ratio adjustment), so the weights always add up to the number of runs.

    A run whose trace was asked for and failed is not traced: the traced runs of its stratum
    stand for it too (a weighting-class non-response adjustment, which assumes the failed
    traces are missing at random within the stratum; see :func:`trace_failures`).
    """
    at_hand = np.asarray(traced, dtype=bool)
    traced = at_hand if drawn is None else at_hand & np.asarray(drawn, dtype=bool)
    weights = np.where(at_hand, 0.0, np.nan)
    if not traced.any():
        return weights
    codes = strata_codes(runs)
    sizes = np.bincount(codes)
    n = np.bincount(codes[traced], minlength=len(sizes))
    covered = sizes[n > 0].sum()
    scale = len(runs) / covered if covered else np.nan
    weights[traced] = sizes[codes[traced]] / n[codes[traced]] * scale
    return weights


def trace_failures(runs: pd.DataFrame) -> tuple[int, str | None]:
    """How many of ``runs`` lack their trace because fetching it failed (``trace_failed``), and
    the note an estimate from the other traces carries (None when there are none).

    Method: the failures are non-response, adjusted by weighting within strata (agent x
    disposition x status, :func:`trace_weights`). Assumption: within a stratum a failed trace
    looks like the traced ones (missing at random). If failures go with big traces (timeouts on
    long runs), the estimates are biased low and their intervals do not show it. Simulated on
    the demo data (2,000 runs, 40 draws, every trace asked for): 20% failing at random, total
    calls biased 0.0% with 91% coverage for the five commonest tools; 24% failing among the
    bigger half of the traces, -9% and 20% coverage: hence the note.
    """
    if TRACE_FAILED not in runs:
        return 0, None
    failed = int(runs[TRACE_FAILED].fillna(False).astype(bool).sum())
    if not failed:
        return 0, None
    return failed, (f"{failed:,} of {len(runs):,} runs' traces failed (errors table): non-response, "
                    "reweighted within agent x disposition x status, assuming the failed traces are "
                    "missing at random within those strata; if failures go with big traces, these "
                    "estimates are low and their intervals do not show it (frames.fetch_traces() "
                    "tries them again)")


def stratified_totals(
    values: np.ndarray,
    strata: np.ndarray,
    sizes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Population totals of each column of ``values`` (traced runs x measures) and their
    standard errors, by the stratified expansion estimator.

    ``strata`` gives each traced run's stratum, ``sizes`` the number of runs in each stratum
    (traced or not). The total is ``sum_h N_h * mean_h`` and its variance
    ``sum_h N_h**2 * (1 - n_h / N_h) * s2_h / n_h`` (simple random sampling within strata,
    without replacement). A stratum with a single traced run borrows the pooled within-stratum
    variance. Strata without traced runs count through a ratio adjustment of the others.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    sizes = np.asarray(sizes, dtype=float)
    k = len(sizes)
    n = np.bincount(strata, minlength=k).astype(float)
    s1 = np.stack([np.bincount(strata, weights=values[:, j], minlength=k) for j in range(values.shape[1])], axis=1)
    s2 = np.stack([np.bincount(strata, weights=values[:, j] ** 2, minlength=k) for j in range(values.shape[1])], axis=1)
    return totals_from_sums(s1, s2, n, sizes)


def totals_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stratified_totals` from per-stratum sums (strata x measures) of the values and of
    their squares, the traced runs ``n`` and all runs ``sizes`` per stratum."""
    n = np.asarray(n, dtype=float)[:, None]
    sizes = np.asarray(sizes, dtype=float)[:, None]
    seen = n[:, 0] > 0
    covered = sizes[seen].sum()
    scale = sizes.sum() / covered if covered else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
        total = (sizes * mean).sum(axis=0) * scale
        within = np.where(n > 1, (s2 - s1 ** 2 / np.maximum(n, 1)) / np.maximum(n - 1, 1), np.nan)
        dof = np.maximum(n - 1, 0).sum()
        pooled = np.where(n > 1, within * (n - 1), 0.0).sum(axis=0) / dof if dof else np.zeros(s1.shape[1])
        within = np.where(np.isnan(within), pooled, np.maximum(within, 0.0))
        fpc = np.where(sizes > 0, 1 - n / np.maximum(sizes, 1), 0.0)
        var = np.where(n > 0, sizes ** 2 * fpc * within / np.maximum(n, 1), 0.0).sum(axis=0) * scale ** 2
    return total, np.sqrt(var)


def design_groups(runs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sample design as far as ``runs`` still shows it, from the stored ``trace_weight``.

    Returns, per run, its design group (-1 for runs outside the random sample: untraced, or
    traced by hand with weight 0), and per group its weight, its agent (an integer code) and
    whether the group looks partial. A group is the traced runs sharing agent x disposition x
    status *and* weight: in one fetch these are exactly the strata (every traced run of a
    stratum has the stratum's weight), and frames concatenated from several fetches keep their
    designs apart because their weights differ. A group is partial (a filter took part of its
    stratum) unless its key's runs in ``runs`` number what the weights say (``sum w``).
    """
    weight = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
    sampled = weight > 0  # NaN and 0 (hand-picked) are outside the random sample
    key = strata_codes(runs)
    n_keys = int(key.max()) + 1 if len(key) else 0
    wkey = np.round(np.where(sampled, weight, 0.0), 6)
    _, wcode = np.unique(wkey, return_inverse=True)
    combined = key.astype(np.int64) * (int(wcode.max(initial=0)) + 1) + wcode.reshape(-1)
    uniq, group = np.unique(combined[sampled], return_inverse=True)
    groups = np.full(len(runs), -1, dtype=np.int64)
    groups[sampled] = group
    n_groups = len(uniq)
    group_weight = np.zeros(n_groups)
    group_weight[group] = weight[sampled]
    group_key = np.zeros(n_groups, dtype=np.int64)
    group_key[group] = key[sampled]
    agent = runs["agent_id"] if "agent_id" in runs else pd.Series(np.zeros(len(runs)))
    agent_code = pd.factorize(agent, use_na_sentinel=False)[0]
    group_agent = np.zeros(n_groups, dtype=np.int64)
    group_agent[group] = agent_code[sampled]
    # Runs of each key in the frame against what the weights of its groups stand for.
    in_frame = np.bincount(key, minlength=n_keys).astype(float)
    stands_for = np.bincount(key[sampled], weights=weight[sampled], minlength=n_keys)
    partial_key = np.abs(in_frame - stands_for) > 0.5 + 1e-6 * in_frame
    return groups, group_weight, group_agent, partial_key[group_key]


def domain_totals_from_sums(
    s1: np.ndarray, s2: np.ndarray, n: np.ndarray, weight: np.ndarray, agent: np.ndarray, partial: np.ndarray,
    flat: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Totals ``sum w * y`` over the sampled runs and their standard errors, from per-group
    sums (groups x measures) of ``y`` and ``y**2``, the sampled runs ``n``, the weight, the
    agent and the partial flag of each group (see :func:`design_groups`).

    Variance: stratified sampling without replacement within each group,
    ``sum_g w_g**2 n_g (1 - 1/w_g) s2_g`` (a weight of 1 is a fully traced stratum: no
    variance). Small or uninformative strata are made conservative: a group with a single
    sampled run takes the variance among all its agent's sampled runs (the agent's strata
    collapsed into one: between-strata differences count too, so it errs wide), and a group
    whose sampled runs show no variation at all takes the pooled within-group variance of its
    agent's groups (of all groups if the agent shows none), so that a stratum whose few traced
    runs happen to agree does not claim certainty. A partial group
    (a filter kept part of its stratum) adds ``w_g**2 n_g (1 - 1/w_g) mean_g**2`` for the
    randomness of how many of its traced runs fall in the filter, taken at its largest (as if
    the filter kept a small part). When even the pooled variance is 0, a group showing no
    variation takes the Laplace-shrunk floor ``p (1 - p)``, ``p = 1 / (n_g + 2)``: the variance of
    one more run differing by one (all equal in the sample is not all equal in the stratum).
    ``flat`` (groups x measures) marks more groups as showing
    no variation, for a measure whose spread comes from a rarer event than its own values
    show (the repeat calls behind calls per run).
    """
    s1 = np.asarray(s1, dtype=float)
    s2 = np.asarray(s2, dtype=float)
    n = np.asarray(n, dtype=float)[:, None]
    w = np.asarray(weight, dtype=float)[:, None]
    total = (w * s1).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
        within = np.where(n > 1, np.maximum(s2 - s1 ** 2 / np.maximum(n, 1), 0.0) / np.maximum(n - 1, 1), 0.0)
        dof = np.maximum(n - 1, 0)
        ss = within * dof
        everywhere = ss.sum(axis=0) / max(float(dof.sum()), 1.0)
        agents = np.asarray(agent, dtype=np.int64)
        n_agents = int(agents.max()) + 1 if len(agents) else 0
        def spread(t1: np.ndarray, t2: np.ndarray, m: float) -> np.ndarray:
            return np.maximum(t2 - t1 ** 2 / m, 0.0) / (m - 1) if m > 1 else np.zeros(s1.shape[1])

        collapsed_all = spread(s1.sum(axis=0), s2.sum(axis=0), float(n.sum()))
        pooled = np.zeros_like(within)
        collapsed = np.zeros_like(within)
        for a in range(n_agents):
            mine = agents == a
            d = float(dof[mine].sum())
            p = ss[mine].sum(axis=0) / d if d else np.zeros(s1.shape[1])
            pooled[mine] = np.where(p > 0, p, everywhere)
            c = spread(s1[mine].sum(axis=0), s2[mine].sum(axis=0), float(n[mine].sum()))
            collapsed[mine] = np.where(c > 0, c, collapsed_all)
        flat_ = (within <= 0) if flat is None else (within <= 0) | np.asarray(flat, dtype=bool)
        # One sampled run: the agent's strata collapsed into one (between-strata spread counts,
        # so this errs wide); no variation seen: the agent's pooled within-stratum variance.
        used = np.where(n < 2, collapsed, np.where(flat_, np.maximum(within, pooled), within))
        # And where the agent shows no spread either (every sampled run alike: a tool all of a
        # slice's traced runs called once), a Laplace-shrunk floor: the Bernoulli variance of
        # one more run differing by one, p (1 - p) with p = 1 / (n + 2), so that no interval
        # collapses to a point while runs remain untraced.
        used = np.where(flat_, np.maximum(used, (n + 1) / (n + 2) ** 2), used)
        fpc = np.clip(1 - 1 / np.maximum(w, 1), 0, 1)
        var = w ** 2 * n * fpc * used
        var = var + np.where(np.asarray(partial, dtype=bool)[:, None], w ** 2 * n * fpc * mean ** 2, 0.0)
    return total, np.sqrt(var.sum(axis=0))


def domain_ratios_from_sums(
    sy: np.ndarray, syy: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray,
    n: np.ndarray, weight: np.ndarray, agent: np.ndarray, partial: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratios ``R = sum w * y / sum w * x`` over the sampled runs and their standard errors, from
    per-group sums (groups x measures) of ``y``, ``y**2``, ``x``, ``x**2`` and ``x * y``, with
    the groups' sampled runs ``n``, weight, agent and partial flag (see :func:`design_groups`).

    The ratio is linearised (Taylor): its variance is that of the total of
    ``z = y - R * x`` (by :func:`domain_totals_from_sums`, with its conservative rules for small
    and uninformative strata) over ``(sum w * x)**2``. A share of runs is ``x = 1``; a share of
    transitions out of a tool is ``x`` = the run's transitions out of it.
    """
    sy, sx = np.asarray(sy, dtype=float), np.asarray(sx, dtype=float)
    w = np.asarray(weight, dtype=float)[:, None]
    y_total, x_total = (w * sy).sum(axis=0), (w * sx).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(x_total > 0, y_total / np.where(x_total > 0, x_total, 1), np.nan)
        r = np.nan_to_num(ratio)
        _, z_se = domain_totals_from_sums(sy - r * sx, np.asarray(syy) - 2 * r * np.asarray(sxy) + r ** 2 * np.asarray(sxx),
                                          n, weight, agent, partial)
        se = np.where(x_total > 0, z_se / np.where(x_total > 0, x_total, 1), np.nan)
    return ratio, se
