"""Status and trend of a KPI value (DESIGN.md "Status and trend"). Pure functions.

status ∈ on_target, off_target, insufficient_data, no_events, stale — precedence:
stale (the source looks missing or incomplete) > no_events (nothing happened that the
KPI measures) > insufficient_data (too few samples, or no value) > on/off target.
A KPI without a target is ``on_target`` whenever it has a valid value.

trend ∈ improving, declining, stable, n/a: the value against the mean of the previous
(up to four) periods' non-null values, as a change relative to |mean|, read in the
KPI's better direction; within ±neutral band → stable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

ON_TARGET = "on_target"
OFF_TARGET = "off_target"
INSUFFICIENT = "insufficient_data"
NO_EVENTS = "no_events"
STALE = "stale"
STATUSES = (ON_TARGET, OFF_TARGET, INSUFFICIENT, NO_EVENTS, STALE)

IMPROVING = "improving"
DECLINING = "declining"
STABLE = "stable"
NA = "n/a"
TRENDS = (IMPROVING, DECLINING, STABLE, NA)
TREND_HISTORY = 4


def meets(value: float, comparator: str, target: float) -> bool:
    if comparator == ">":
        return value > target
    if comparator == ">=":
        return value >= target
    if comparator == "<":
        return value < target
    if comparator == "<=":
        return value <= target
    raise ValueError(f"unknown comparator {comparator!r}")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def status_for(
    value: float | None,
    *,
    target: float | None,
    comparator: str | None,
    sample_size: int | None,
    min_sample: int,
    stale: bool = False,
    no_events: bool = False,
) -> str:
    if stale:
        return STALE
    if no_events:
        return NO_EVENTS
    if _missing(value) or (sample_size or 0) < min_sample:
        return INSUFFICIENT
    if target is None or comparator is None:
        return ON_TARGET
    return ON_TARGET if meets(float(value), comparator, float(target)) else OFF_TARGET


def trend_for(
    value: float | None,
    history: Iterable[float | None],
    *,
    better: str,
    neutral_band_pct: float = 5.0,
) -> str:
    """``history``: the values of the previous periods of the same grain (at most the
    last four are used by the caller; None/NaN entries are ignored)."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    past = [float(v) for v in history if not _missing(v)]
    if _missing(value) or not past:
        return NA
    mean = sum(past) / len(past)
    value = float(value)
    if mean == 0:
        if value == 0:
            return STABLE
        up = value > 0
    else:
        change_pct = (value - mean) / abs(mean) * 100.0
        if abs(change_pct) <= neutral_band_pct:
            return STABLE
        up = change_pct > 0
    return IMPROVING if up == (better == "higher") else DECLINING
