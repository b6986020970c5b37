"""The pure KPI maths (:mod:`kaizen.kpis.maths`): no database, no fixtures. Every
expected value is worked out by hand in the comments."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from kaizen.kpis import maths
from kaizen.kpis.maths import (
    DrawdownPoint,
    deepest_fall,
    drawdown_series,
    histogram_quantile,
    percentile,
    sharpe,
)

INF = float("inf")
NAN = float("nan")


# ---------------------------------------------------------------- histogram_quantile
@pytest.mark.parametrize(
    "q, buckets, expected",
    [
        # interpolation inside a bucket: rank 0.95 × 200 = 190 in (0.25, 0.5]:
        # 0.25 + 0.25 × (190 − 140) ÷ (194 − 140) = 0.25 + 0.25 × 50/54
        (0.95, [("0.1", 80), ("0.25", 140), ("0.5", 194), ("+Inf", 200)], 0.25 + 0.25 * 50 / 54),
        # the lowest bucket interpolates from 0: rank 50 in (0, 0.1]: 0.1 × 50/80 = 0.0625
        (0.5, [("0.1", 80), ("0.25", 90), ("+Inf", 100)], 0.0625),
        # rank exactly on a bucket boundary: 0.8 × 100 = 80 → upper bound of (0, 0.1]
        (0.8, [("0.1", 80), ("0.25", 90), ("+Inf", 100)], 0.1),
        # the rank in the +Inf bucket: 0.99 × 100 = 99 > 90 → highest finite bound 0.25
        (0.99, [("0.1", 80), ("0.25", 90), ("+Inf", 100)], 0.25),
        # every observation in +Inf: rank 5 > 0 → highest finite bound 0.1
        (0.5, [("0.1", 0), ("+Inf", 10)], 0.1),
        # an empty bucket in the middle is skipped: rank 75 > 50 in (0.1, 0.2] (empty),
        # lands in (0.2, 0.4]: 0.2 + 0.2 × (75 − 50) ÷ (100 − 50) = 0.3
        (0.75, [("0.1", 50), ("0.2", 50), ("0.4", 100), ("+Inf", 100)], 0.3),
        # ... and a rank equal to the count before it stays in the earlier bucket:
        # rank 50 in (0, 0.1]: 0.1 × 50/50 = 0.1
        (0.5, [("0.1", 50), ("0.2", 50), ("+Inf", 100)], 0.1),
        # q = 0: rank 0 in the lowest non-empty bucket → its lower edge 0
        (0.0, [("0.1", 80), ("0.25", 90), ("+Inf", 100)], 0.0),
        # q = 1 with observations in +Inf → highest finite bound 0.25
        (1.0, [("0.1", 80), ("0.25", 90), ("+Inf", 100)], 0.25),
        # q = 1 with none in +Inf: rank 100 in (0.1, 0.25]: 0.1 + 0.15 × 20/20 = 0.25
        (1.0, [("0.1", 80), ("0.25", 100), ("+Inf", 100)], 0.25),
        # unsorted input and duplicate bounds ('0.5' and '0.50' coalesce: 30 + 30 = 60);
        # rank 50 in (0.1, 0.5]: 0.1 + 0.4 × (50 − 20) ÷ (60 − 20) = 0.4
        (0.5, [("+Inf", 100), ("0.5", 30), ("0.1", 20), ("0.50", 30)], 0.4),
        # non-monotonic counts forced monotonic: 0.25 → 70 becomes 80; rank 90 in (0.25, 1]:
        # 0.25 + 0.75 × (90 − 80) ÷ (100 − 80) = 0.625
        (0.9, [("0.1", 80), ("0.25", 70), ("1", 100), ("+Inf", 100)], 0.625),
        # the lowest bound ≤ 0 and the rank lands there → that bound
        (0.1, [("-1", 20), ("1", 50), ("+Inf", 100)], -1.0),
        # floats (and ints) as bounds and counts work too
        (0.5, [(0.1, 80), (INF, 100)], 0.0625),
        (0.5, [(0.1, 80.0), (INF, 100.0)], 0.0625),
    ],
)
def test_histogram_quantile(q, buckets, expected):
    assert histogram_quantile(q, buckets) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "q, buckets",
    [
        (0.5, []),  # no buckets at all
        (0.5, [("0.1", 80), ("0.25", 90)]),  # no +Inf bucket
        (0.5, [("+Inf", 100)]),  # fewer than 2 buckets
        (0.5, [("0.1", 0), ("+Inf", 0)]),  # zero counts: no observations
        (1.0, [("0.1", 0), ("0.25", 0), ("+Inf", 0)]),
        (0.0, [("0.1", 0), ("+Inf", 5)]),  # q 0 in an empty lowest bucket: 0 ÷ 0
        (NAN, [("0.1", 1), ("+Inf", 1)]),
    ],
)
def test_histogram_quantile_nan(q, buckets):
    assert math.isnan(histogram_quantile(q, buckets))


@pytest.mark.parametrize("q, expected", [(-0.1, -INF), (1.1, INF), (-INF, -INF), (INF, INF)])
def test_histogram_quantile_q_out_of_range(q, expected):
    # checked before the buckets: even an unusable histogram gives ±Inf
    assert histogram_quantile(q, [("0.1", 1), ("+Inf", 1)]) == expected
    assert histogram_quantile(q, []) == expected


# ---------------------------------------------------------------- percentile
@pytest.mark.parametrize(
    "values, q, expected",
    [
        # numpy 'linear': index q/100 × (n − 1) into the sorted values, interpolated
        ([1, 2, 3, 4], 50, 2.5),  # index 1.5: 2 + 0.5 × (3 − 2)
        ([1, 2, 3, 4], 0, 1.0),  # the minimum
        ([1, 2, 3, 4], 100, 4.0),  # the maximum
        ([1, 2, 3, 4], 95, 3.85),  # index 2.85: 3 + 0.85 × (4 − 3)
        ([4, 1, 3, 2], 25, 1.75),  # unsorted input; index 0.75: 1 + 0.75 × (2 − 1)
        ([10, 20, 30, 40, 50], 90, 46.0),  # index 3.6: 40 + 0.6 × (50 − 40)
        ([10, 20, 30, 40, 50], 50, 30.0),  # index 2: an exact value, the median
        ([7], 90, 7.0),  # one value: every percentile is that value
        ([Decimal("1.5"), 2.5], 50, 2.0),  # Decimals (PostgreSQL numerics) are floats
        ((v for v in (2.0, 4.0)), 50, 3.0),  # any iterable
    ],
)
def test_percentile(values, q, expected):
    got = percentile(values, q)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("values", [[], ()])
def test_percentile_of_nothing_is_none(values):
    assert percentile(values, 50) is None


# ---------------------------------------------------------------- sharpe
SQRT_252 = math.sqrt(252)


@pytest.mark.parametrize(
    "returns, rf, expected",
    [
        # mean 0.02, std ddof 1 = √((0.01² + 0.01²) ÷ 1) = 0.01 √2 → √2 × √252 = √504
        ([0.01, 0.03], 0.0, (math.sqrt(504), 0.02, 0.01 * math.sqrt(2))),
        ([-0.01, -0.03], 0.0, (-math.sqrt(504), -0.02, 0.01 * math.sqrt(2))),
        # rf 25.2 % a year → 0.001 a session; excess 0.001, −0.001, 0.003:
        # mean 0.001, std = √((0 + 4e-6 + 4e-6) ÷ 2) = 0.002 → 0.5 × √252
        ([0.002, 0.0, 0.004], 0.252, (0.5 * SQRT_252, 0.001, 0.002)),
        # 1, 2, 3, 4 (× 0.01): mean 0.025, std = √((2.25 + 0.25 + 0.25 + 2.25) ÷ 3) × 0.01
        (
            [0.01, 0.02, 0.03, 0.04],
            0.0,
            (0.025 / (0.01 * math.sqrt(5 / 3)) * SQRT_252, 0.025, 0.01 * math.sqrt(5 / 3)),
        ),
    ],
)
def test_sharpe(returns, rf, expected):
    value, mean, std = sharpe(returns, rf)
    assert (value, mean, std) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "returns, rf, expected",
    [
        ([0.25, 0.25, 0.25], 0.0, (None, 0.25, 0.0)),  # std 0: no Sharpe
        ([0.001, 0.001, 0.001], 0.0, (None, 0.001, 0.0)),
        ([0.01], 0.0, (None, 0.01, None)),  # one return: no std
        ([0.01], 0.252, (None, 0.009, None)),  # ... the mean is still the excess return
        ([], 0.0, (None, None, None)),  # no returns
    ],
)
def test_sharpe_undefined(returns, rf, expected):
    value, mean, std = sharpe(returns, rf)
    assert value is None
    assert mean == (None if expected[1] is None else pytest.approx(expected[1], rel=1e-12))
    assert std == (None if expected[2] is None else pytest.approx(expected[2], abs=1e-18))


def test_sharpe_annualises_with_252_sessions():
    assert maths.SESSIONS_PER_YEAR == 252
    value, mean, std = sharpe([0.01, 0.03])
    assert value == pytest.approx(mean / std * SQRT_252, rel=1e-15)


# ---------------------------------------------------------------- drawdown
def P(equity, peak):  # noqa: N802 - a point, worked out by hand: fall and fall % follow
    fall = peak - equity
    return DrawdownPoint(equity, peak, fall, 100.0 * fall / peak)


@pytest.mark.parametrize(
    ("capital", "pnl", "expected"),
    [
        (100.0, [], []),  # no sessions, no points
        # rising only: every session is a new peak, nothing below it
        (100.0, [5.0, 10.0], [P(105.0, 105.0), P(115.0, 115.0)]),
        # a first-session loss is a drawdown from the capital base: 100 − 10 = 90, 10 % below 100
        (100.0, [-10.0], [P(90.0, 100.0)]),
        # a fall and a recovery past the old peak: 120, 90 (25 % below 120), 130 (new peak)
        (100.0, [20.0, -30.0, 40.0], [P(120.0, 120.0), P(90.0, 120.0), P(130.0, 130.0)]),
        # a new peak after a fall, then a smaller fall below the new peak: 110, 99, 150, 135
        (100.0, [10.0, -11.0, 51.0, -15.0], [P(110.0, 110.0), P(99.0, 110.0), P(150.0, 150.0), P(135.0, 150.0)]),
    ],
)
def test_drawdown_series(capital, pnl, expected):
    assert drawdown_series(capital, pnl) == expected


def test_drawdown_series_by_hand_percentages():
    points = drawdown_series(100.0, [20.0, -30.0, 40.0])
    assert [pt.fall for pt in points] == [0.0, 30.0, 0.0]
    assert [pt.fall_pct for pt in points] == [0.0, 25.0, 0.0]
    # the chart's signed percentage: ≤ 0 and never −0.0 at a peak
    assert [pt.below_peak_pct for pt in points] == [0.0, -25.0, 0.0]
    assert math.copysign(1.0, points[0].below_peak_pct) == 1.0


@pytest.mark.parametrize(
    ("pnl", "expected"),
    [
        ([], None),
        ([5.0, 10.0], P(105.0, 105.0)),  # never below a peak: the first point, with no fall
        # 90 from 100 is 10 %; 135 from 150 is also 10 %: the earliest wins a tie
        ([-10.0, 60.0, -15.0], P(90.0, 100.0)),
        # 99 from 110 is 10 %, 120 from 160 is 25 %: the deeper one
        ([10.0, -11.0, 61.0, -40.0], P(120.0, 160.0)),
    ],
)
def test_deepest_fall(pnl, expected):
    assert deepest_fall(drawdown_series(100.0, pnl)) == expected


def test_deepest_fall_takes_any_iterable():
    points = drawdown_series(100.0, [-10.0, 5.0, -20.0])  # 90, 95, 75: 25 % at the end
    assert deepest_fall(iter(points)) == P(75.0, 100.0)
    assert deepest_fall(pt for i, pt in enumerate(points) if i < 2) == P(90.0, 100.0)
