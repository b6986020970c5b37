"""The pure maths of the KPIs: no database, no configuration, no other kaizen module.

- :func:`histogram_quantile`: Prometheus ``histogram_quantile`` over classic buckets
  (the latency SLI);
- :func:`percentile`: numpy's default ('linear') percentile (execution time, MTTR,
  MTTA, lead time, recovery time);
- :func:`sharpe`: annualised Sharpe ratio of daily returns, 252 sessions a year;
- :func:`drawdown_series`: the one drawdown computation, an end-of-day point per
  session (equity, running peak, fall below the peak, fall as % of the peak). The
  ``max_drawdown_pct`` KPI (:mod:`kaizen.kpis.measures`, through :func:`deepest_fall`)
  and the review's equity and drawdown chart (:mod:`kaizen.reports.review`) both read it.

numpy is imported inside the functions that need it, so importing this module stays
cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

SESSIONS_PER_YEAR = 252  # Sharpe annualisation (NSE trading sessions a year)


# ---------------------------------------------------------------- quantiles
def histogram_quantile(q: float, buckets) -> float:
    """Prometheus ``histogram_quantile`` (classic buckets, promql/quantile.go
    ``bucketQuantile``): ``buckets`` is an iterable of (upper bound, cumulative count);
    bounds may be floats or Prometheus ``le`` strings ('0.25', '+Inf'). Returns NaN when
    there is no +Inf bucket, fewer than 2 buckets or 0 observations; −Inf for q < 0,
    +Inf for q > 1. Buckets with equal bounds are summed, float noise (≤ 1e-12
    relative) is smoothed and non-monotonic counts are forced monotonic as Prometheus
    does. A rank in the +Inf bucket returns the highest finite bound; the lowest bucket
    interpolates from 0 unless its bound is ≤ 0 (then that bound is returned)."""
    if isinstance(q, float) and math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bs = sorted(((float(le), float(c)) for le, c in buckets), key=lambda b: b[0])
    if not bs or not math.isinf(bs[-1][0]) or bs[-1][0] < 0:
        return math.nan
    # coalesceBuckets
    merged: list[list[float]] = []
    for ub, c in bs:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    # correctPrecisionErrors(tolerance 1e-12)
    prev = merged[0][1]
    for b in merged[1:]:
        curr = b[1]
        delta = abs(curr - prev)
        if delta == 0:
            continue
        eps = delta / curr if curr != 0 else math.inf
        if eps <= 1e-12:
            b[1] = prev
        else:
            prev = curr
    # ensureMonotonic
    top = merged[0][1]
    for b in merged[1:]:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the +Inf bucket: first index with count >= rank
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    if count == 0:  # only when rank = 0 lands in an empty lowest bucket: Go's 0/0 = NaN
        return math.nan
    return start + (end - start) * (rank / count)


def percentile(values, q: float) -> float | None:
    """numpy's default ('linear') percentile, ``q`` in 0–100; None for no values."""
    import numpy as np

    vals = np.asarray(values, dtype=float) if isinstance(values, np.ndarray) else [float(v) for v in values]
    return float(np.percentile(vals, q)) if len(vals) else None


# ---------------------------------------------------------------- returns
def sharpe(daily_returns, rf_annual: float = 0.0) -> tuple[float | None, float | None, float | None]:
    """(annualised Sharpe, mean excess daily return, std ddof=1); None where undefined.

    Excess return = daily return − ``rf_annual`` ÷ 252; Sharpe = mean ÷ std × √252
    (:data:`SESSIONS_PER_YEAR`).
    Fewer than 2 returns: no std and no Sharpe; std 0 (or not finite): no Sharpe."""
    import numpy as np

    r = np.asarray([float(x) for x in daily_returns], dtype=float) - rf_annual / SESSIONS_PER_YEAR
    if len(r) < 2:
        return None, (float(r.mean()) if len(r) else None), None
    mean, std = float(r.mean()), float(r.std(ddof=1))
    if std == 0 or not math.isfinite(std):
        return None, mean, std
    return mean / std * math.sqrt(SESSIONS_PER_YEAR), mean, std


# ---------------------------------------------------------------- drawdown
class DrawdownPoint(NamedTuple):
    """The equity curve at the end of one session."""

    equity: float  # capital + cumulative P&L
    peak: float  # running max of equity, the starting capital included
    fall: float  # peak − equity (≥ 0, in the currency of the P&L)
    fall_pct: float  # 100 × fall ÷ peak (≥ 0)

    @property
    def below_peak_pct(self) -> float:
        """The fall as a signed percentage for charts: ≤ 0, and 0.0 (never −0.0) at a
        peak. Bit for bit ``100 × (equity − peak) ÷ peak`` (negation is exact)."""
        return 0.0 - self.fall_pct


def drawdown_series(capital: float, daily_pnl: Iterable[float]) -> list[DrawdownPoint]:
    """One :class:`DrawdownPoint` per session of ``daily_pnl`` (in session order): the
    equity starts at ``capital`` (> 0), which is also the first peak, so a loss on the
    first session is already a drawdown."""
    out: list[DrawdownPoint] = []
    equity = peak = capital
    for p in daily_pnl:
        equity += float(p)
        peak = max(peak, equity)
        fall = peak - equity
        out.append(DrawdownPoint(equity, peak, fall, 100.0 * fall / peak))
    return out


def deepest_fall(points: Iterable[DrawdownPoint]) -> DrawdownPoint | None:
    """The point with the largest fall ÷ peak (the maximum drawdown); the earliest one
    on a tie, a point with no fall when every point is at its peak, None for no points."""
    worst = None
    for pt in points:
        if worst is None or pt.fall / pt.peak > worst.fall / worst.peak:
            worst = pt
    return worst

