"""The demo's runs, drawn column-wise: when each run came (days, hours, the last minutes), how
it ended (status), what it used (calls, tokens, duration, cost: one latent difficulty drives
them together; failed runs stop early) and its disposition. Each step draws from the data's one
generator in the order the data has always drawn, so a seed gives the same workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ._random import seed_int

# Guests write more in the day and evening than at night (share of runs by UTC hour).
_HOURLY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.4, 3.6, 4.2, 4.4, 4.3, 4.0, 4.1, 4.3, 4.5, 4.6, 4.4,
     4.2, 4.0, 3.6, 3.0, 2.2, 1.5]
)
_HOURLY = _HOURLY / _HOURLY.sum()
# Weekends are busier for leisure stays (Monday first).
_WEEKDAY = np.array([0.95, 0.9, 0.9, 0.95, 1.1, 1.2, 1.0])


REASONS: dict[str, list[str]] = {
    "awaiting_guest": ["missing_reservation_number", "identity_not_verified", "dates_unclear"],
    "handed_off": ["guest_requested_human", "language_not_supported", "vip_guest"],
    "no_action_needed": ["thank_you_message", "automated_notification", "duplicate_message"],
    "spam": ["marketing_message", "unrelated_inquiry"],
}

ERRORS = [
    ("Tool get_reservation timed out after 30s", 0.25),
    ("Model provider returned 529: overloaded", 0.25),
    ("Context length exceeded: 131072 tokens", 0.1),
    ("PMS integration returned 502 Bad Gateway", 0.2),
    ("Invalid tool arguments: missing 'reservation_id'", 0.1),
    ("Run cancelled: conversation closed by operator", 0.1),
]


def _past_times(rng: np.random.Generator, n: int, day_p: np.ndarray, day0: datetime, end_ms: int) -> np.ndarray:
    """``n`` run times (epoch ms) from the days' and hours' weights, none after ``end_ms``: today's
    hours weigh only for the part of them that has passed."""
    day0_ms = int(day0.timestamp() * 1000)
    starts = day0_ms - np.arange(len(day_p))[:, None] * 86_400_000 + np.arange(24)[None, :] * 3_600_000
    passed = np.clip((end_ms - starts) / 3_600_000, 0.0, 1.0)  # the share of each hour before end
    weight = (day_p[:, None] * _HOURLY[None, :] * passed).ravel()
    if not weight.sum() > 0:  # a window of no time at all: the runs land just before end
        return end_ms - rng.integers(1_000, 60_000, size=n)
    cell = rng.choice(weight.size, size=n, p=weight / weight.sum())
    length = (passed.ravel()[cell] * 3_600_000).astype(np.int64)
    return starts.ravel()[cell] + (rng.random(n) * length).astype(np.int64)


def draw_times(rng: np.random.Generator, n: int, *, end: datetime, days: int, seed: int) -> np.ndarray:
    """Creation times (epoch ms): a day (weekends busier), an hour of the day (daytime busier),
    a second; a few runs in the last minutes."""
    end_ms = int(end.timestamp() * 1000)
    day0 = end.replace(hour=0, minute=0, second=0, microsecond=0)
    weekdays = np.array([(day0 - timedelta(days=int(d))).weekday() for d in np.arange(days)])
    day_p = _WEEKDAY[weekdays] / _WEEKDAY[weekdays].sum()
    day = rng.choice(days, size=n, p=day_p)
    hour = rng.choice(24, size=n, p=_HOURLY)
    ms = rng.integers(0, 3_600_000, size=n)
    created = int(day0.timestamp() * 1000) - day * 86_400_000 + hour * 3_600_000 + ms
    # Today's hours still to come are drawn again from the hours that have been (moving them a
    # day back doubled yesterday just after midnight); a generator of their own, so that the
    # other draws stay as they were.
    future = np.flatnonzero(created > end_ms)
    if len(future):
        created[future] = _past_times(np.random.default_rng([seed_int(seed), 14]), len(future), day_p, day0, end_ms)
    recent = rng.random(n) < 0.002
    return np.where(recent, end_ms - rng.integers(1_000, 600_000, size=n), created)


def draw_statuses(rng: np.random.Generator, agent: np.ndarray, profiles: list[Any]) -> np.ndarray:
    """Failed or completed by each agent's failure rate; the newest run of each agent was just
    accepted, the next two are still running, and a handful of stuck runs hang about."""
    n = len(agent)
    fail_p = np.array([p.failure_rate for p in profiles])[agent]
    status = np.where(rng.random(n) < fail_p, "failed", "completed").astype("<U9")
    for a in range(len(profiles)):
        rows = np.flatnonzero(agent == a)[:3]
        status[rows[:1]] = "accepted"
        status[rows[1:3]] = "running"
    status[(rng.random(n) < 0.0008) & (status != "accepted")] = "running"
    return status


@dataclass
class Usage:
    """What each run used, and which runs finished with usage and a completion time."""

    calls: np.ndarray
    z: np.ndarray  # the latent difficulty
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    duration: np.ndarray
    cost: np.ndarray
    failed: np.ndarray
    finished: np.ndarray
    has_usage: np.ndarray
    has_completed_at: np.ndarray


def draw_usage(rng: np.random.Generator, agent: np.ndarray, profiles: list[Any], status: np.ndarray) -> Usage:
    """Tool calls, tokens, duration and cost: one latent "difficulty" drives them together;
    failed runs stop early (shorter, fewer tokens, often no usage at all)."""
    n = len(agent)
    mean_calls = np.array([p.mean_calls for p in profiles])[agent]
    calls = np.clip(rng.poisson(mean_calls) + (rng.random(n) < 0.5), 0, 14)
    z = rng.standard_normal(n)
    in_median = np.array([p.input_median for p in profiles])[agent]
    out_median = np.array([p.output_median for p in profiles])[agent]
    input_tokens = np.round(in_median * (0.6 + 0.15 * calls) * np.exp(0.35 * z + 0.25 * rng.standard_normal(n))
                            ).astype(np.int64)
    output_tokens = np.round(out_median * np.exp(0.3 * z + 0.45 * rng.standard_normal(n))).astype(np.int64)
    duration = np.round((1200 + 700 * calls) * np.exp(0.4 * z + 0.5 * rng.standard_normal(n))
                        + output_tokens * 6).astype(np.int64)
    price_in = np.array([p.price_in for p in profiles])[agent]
    price_out = np.array([p.price_out for p in profiles])[agent]
    cost = np.round(input_tokens * price_in + output_tokens * price_out, 6)
    failed = status == "failed"
    cut = rng.uniform(0.1, 0.7, size=n)
    input_tokens = np.where(failed, np.round(input_tokens * cut), input_tokens).astype(np.int64)
    output_tokens = np.where(failed, np.round(output_tokens * cut * 0.3), output_tokens).astype(np.int64)
    cost = np.where(failed, np.round(input_tokens * price_in + output_tokens * price_out, 6), cost)
    calls = np.where(failed, np.minimum(calls, rng.integers(0, 3, size=n)), calls)
    duration = np.where(failed, np.round(duration * cut + 30_000 * (rng.random(n) < 0.25)), duration)
    has_usage = ~failed | (rng.random(n) < 0.5)
    has_completed_at = ~failed | (rng.random(n) < 0.7)
    finished = (status == "completed") | failed
    return Usage(calls, z, input_tokens, output_tokens, duration, cost, failed, finished,
                 has_usage & finished, has_completed_at & finished)


def draw_dispositions(rng: np.random.Generator, agent: np.ndarray, status: np.ndarray, z: np.ndarray,
                      profiles: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A per-agent mix of dispositions and reasons for completed runs, none for the others;
    escalations cluster on hard (long, token-heavy) runs."""
    n = len(agent)
    disposition = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    for a, profile in enumerate(profiles):
        rows = np.flatnonzero((agent == a) & (status == "completed"))
        names = list(profile.dispositions)
        p = np.array(list(profile.dispositions.values()))
        picked = rng.choice(len(names), size=len(rows), p=p / p.sum())
        hard = z[rows] > 1.2
        esc = names.index("escalated") if "escalated" in names else None
        if esc is not None:
            picked = np.where(hard & (rng.random(len(rows)) < 0.35), esc, picked)
        for k, name in enumerate(names):
            chosen = rows[picked == k]
            disposition[chosen] = name
            pool = (profile.resolved_reasons if name == "resolved"
                    else profile.escalation_reasons if name == "escalated"
                    else REASONS.get(name, ("unspecified",)))
            reason[chosen] = np.array(pool, dtype=object)[rng.integers(0, len(pool), size=len(chosen))]
    return disposition, reason
