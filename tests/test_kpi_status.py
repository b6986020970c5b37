"""Status and trend rules (kaizen.kpis.status), table-driven."""

from __future__ import annotations

import math

import pytest

from kaizen.kpis.status import meets, status_for, trend_for


@pytest.mark.parametrize(
    "value, target, comparator, n, min_sample, stale, no_events, expected",
    [
        (58.3, 55, ">", 12, 1, False, False, "on_target"),
        (55.0, 55, ">", 12, 1, False, False, "off_target"),  # strict: 55 is not > 55
        (10000, 10000, ">=", 1, 1, False, False, "on_target"),
        (9999.99, 10000, ">=", 1, 1, False, False, "off_target"),
        (499.9, 500, "<", 10, 1, False, False, "on_target"),
        (500, 500, "<", 10, 1, False, False, "off_target"),
        (15, 15, "<=", 3, 1, False, False, "on_target"),
        (1.8, 1.5, ">", 19, 20, False, False, "insufficient_data"),  # too few sessions
        (1.8, 1.5, ">", 20, 20, False, False, "on_target"),
        (None, 55, ">", 0, 1, False, False, "insufficient_data"),
        (float("nan"), 55, ">", 5, 1, False, False, "insufficient_data"),
        (None, 30, ">", 0, 1, False, True, "no_events"),  # MTBF without failures
        (99.95, 99.9, ">=", 1200, 1, True, False, "stale"),  # stale wins over on_target
        (None, None, None, 0, 1, True, True, "stale"),  # stale wins over no_events
        (None, 30, ">", 0, 20, False, True, "no_events"),  # no_events wins over insufficient
        (12, None, None, 12, 0, False, False, "on_target"),  # no target: nothing to miss
        (0, None, None, 0, 0, False, False, "on_target"),  # a real zero count
        (-38.9, 0, ">", 1440, 1, False, False, "off_target"),  # overspent error budget
    ],
)
def test_status_for(value, target, comparator, n, min_sample, stale, no_events, expected):
    got = status_for(
        value,
        target=target,
        comparator=comparator,
        sample_size=n,
        min_sample=min_sample,
        stale=stale,
        no_events=no_events,
    )
    assert got == expected


def test_unknown_comparator():
    with pytest.raises(ValueError):
        meets(1, "==", 1)


@pytest.mark.parametrize(
    "value, history, better, band, expected",
    [
        # mean 50; 56 is +12 % → improving when higher is better …
        (56, [50, 50, 50, 50], "higher", 5, "improving"),
        # … and declining when lower is better
        (56, [50, 50, 50, 50], "lower", 5, "declining"),
        (44, [50, 50, 50, 50], "lower", 5, "improving"),
        (44, [50, 50, 50, 50], "higher", 5, "declining"),
        # +5 % exactly is inside the ±5 % band
        (52.5, [50, 50, 50, 50], "higher", 5, "stable"),
        (52.6, [50, 50, 50, 50], "higher", 5, "improving"),
        # band 0: any change counts
        (50.1, [50], "higher", 0, "improving"),
        # mean of [40, 60] = 50 (None ignored); 48 is −4 % → stable
        (48, [40, None, 60, float("nan")], "higher", 5, "stable"),
        # negative mean: −1,000 vs mean −2,000 is +50 % of |mean| → improving for P&L
        (-1000, [-2000, -2000], "higher", 5, "improving"),
        # largest loss: −3,000 vs mean −2,000 → −50 % → declining (higher is better)
        (-3000, [-2000, -2000, -2000, -2000], "higher", 5, "declining"),
        # zero mean: 0 → stable; any positive → by sign
        (0, [0, 0], "lower", 5, "stable"),
        (3, [0, 0], "lower", 5, "declining"),
        (3, [0, 0], "higher", 5, "improving"),
        # no history, or no value → n/a
        (50, [], "higher", 5, "n/a"),
        (50, [None, None], "higher", 5, "n/a"),
        (None, [50, 50], "higher", 5, "n/a"),
        (float("nan"), [50], "higher", 5, "n/a"),
    ],
)
def test_trend_for(value, history, better, band, expected):
    assert trend_for(value, history, better=better, neutral_band_pct=band) == expected


def test_trend_rejects_unknown_direction():
    with pytest.raises(ValueError):
        trend_for(1, [1], better="up")


def test_nan_is_treated_as_missing():
    assert math.isnan(float("nan"))
    assert (
        status_for(float("nan"), target=None, comparator=None, sample_size=1, min_sample=0)
        == "insufficient_data"
    )
