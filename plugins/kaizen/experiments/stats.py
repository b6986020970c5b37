"""The statistics of an A/B experiment readout: pure functions of the two arms' trades
(no warehouse, no Airflow, no other kaizen module; stdlib, numpy and scipy only).

Each comparison returns a :class:`Comparison`: the per-arm values, the difference
``test − control``, a confidence interval for it (95 % by default, ``alpha``), a
p-value when the method gives one, and the method named in words for the report.

========================  =====================================  ==========================
metric (units)            p-value                                confidence interval
========================  =====================================  ==========================
:func:`win_rate`          two-proportion z-test, pooled SE;      Wald, unpooled SE;
(% of trades won;         Fisher's exact test when any expected  Newcombe's hybrid score
diff in points)           cell of the 2×2 table is < 5           (Wilson) with Fisher
:func:`avg_profit`        Welch's t-test                         Welch–Satterthwaite t, and
(₹ per trade)                                                    a percentile bootstrap
                                                                 (``boot_ci_low/high``)
:func:`max_drawdown`      none                                   percentile bootstrap,
(% below the peak)                                               trades kept in time order
========================  =====================================  ==========================

Choices, and why:

- **Win rate in percent** (0–100), its difference in percentage points: the reports
  show "58.3 %" and the source document's "Improvement" of "+2.9 %" is points.
- **The z-test's p-value uses the pooled SE** (the SE under the null hypothesis of equal
  rates, as ``statsmodels.stats.proportion.proportions_ztest``), **its CI the unpooled
  (Wald) SE** (the SE at the observed rates, as ``confint_proportions_2indep(
  method="wald")``). The two can disagree at the edge of significance;
  :attr:`Comparison.significant` follows the p-value.
- **Small counts** (any expected cell count < 5, the classical rule for the normal
  approximation): the p-value is Fisher's exact test (two-sided, ``scipy.stats.
  fisher_exact``) and the CI is Newcombe's hybrid score interval (method 10 of Newcombe
  1998, from Wilson score intervals), which keeps sensible coverage where Wald's
  collapses (a rate of 0 % or 100 % has a Wald SE of 0).
- **Average profit: Welch's t-test** (no equal-variance assumption: the arms trade
  differently), computed by ``scipy.stats.ttest_ind(test, control, equal_var=False)``.
  Per-trade P&L is heavy-tailed, so a bootstrap CI of the difference of means is reported
  next to it, on the same :class:`Comparison` (``boot_ci_low``, ``boot_ci_high``,
  ``boot_method``); the verdict (:attr:`Comparison.significant`) stays Welch's p-value,
  and a report may flag the two CIs disagreeing about 0.
- **Bootstrap: the percentile method**, not BCa. BCa's acceleration is a jackknife
  estimate of the third moment, which is at its noisiest exactly on heavy-tailed P&L,
  and the jackknife is not consistent for a maximum (the drawdown); the percentile
  interval is simple, never degenerates to NaN, and at the minimum sample of 100 trades
  an arm its skew bias on a mean is small. ``scipy.stats.bootstrap`` does the
  resampling, the two arms resampled independently, from
  ``numpy.random.default_rng(seed)``: the same seed gives the same interval.
- **Drawdown on each arm's own equity path**: equity = ``capital_base`` + the cumulative
  net P&L of that arm's trades in time order; drawdown = the largest (running peak −
  equity) ÷ running peak × 100, the starting capital counting as the first peak (as
  :mod:`kaizen.kpis.maths`). The bootstrap resamples each arm's trades with replacement
  and **keeps their time order** (the resampled indices are sorted) rather than a
  moving-block bootstrap: the arms run side by side over the same sessions, so the time
  order is the market's, shared by both arms, not a nuisance to reshuffle; keeping it
  asks "how much would the drawdown move had the arm taken a different draw of its
  trades in this same market", while blocks put in a random order would build markets
  that did not happen and widen both arms' intervals with order luck. It is approximate
  (a maximum is a hard statistic for any bootstrap, and a longer path tends to a deeper
  drawdown, so compare arms over the same period); there is no p-value, and the
  comparison is significant when the CI excludes 0.
- Lower drawdown is better: :attr:`Comparison.better` is ``"lower"`` for it and
  ``"higher"`` for the others, and :attr:`Comparison.improved` says which way the test
  arm moved (for ✅/❌); :func:`improvement` gives the document's "Improvement" column.

numpy and scipy are imported inside the functions, so importing this module stays cheap
(it sits under DAG-parsed code).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

WIN_RATE = "win_rate"
AVG_PROFIT = "avg_profit"
MAX_DRAWDOWN = "max_drawdown"

EXPECTED_CELL_MIN = 5  # below this expected count in any 2×2 cell: Fisher, not the z-test
BOOTSTRAP_BATCH = 1_000  # resamples per vectorised batch (memory: batch × trades × 8 bytes)

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Comparison:
    """One metric compared between the control and the test arm.

    Units: win rate in % (its ``diff`` and CI in percentage points), average profit in ₹
    per trade, max drawdown in % below the peak (positive; a deeper drawdown is larger).
    """

    metric: str  # WIN_RATE, AVG_PROFIT or MAX_DRAWDOWN
    control: float  # the control arm's value
    test: float  # the test arm's value
    diff: float  # test − control
    ci_low: float | None  # the (1 − alpha) CI of diff; None when the method gives none
    ci_high: float | None
    p_value: float | None  # two-sided; None when the method gives none
    method: str  # the test, in words: "two-proportion z-test", "Welch's t-test", …
    ci_method: str  # how ci_low/ci_high were computed, in words
    n_control: int  # trades in the control arm
    n_test: int
    better: Better  # "higher" or "lower": which direction of the metric is an improvement
    alpha: float = 0.05
    statistic: float | None = None  # z or t, when the test has one
    df: float | None = None  # Welch–Satterthwaite degrees of freedom (average profit)
    boot_ci_low: float | None = None  # average profit: the bootstrap CI of diff
    boot_ci_high: float | None = None
    boot_method: str | None = None

    @property
    def significant(self) -> bool:
        """p < alpha; with no p-value (a bootstrap-only comparison), the CI excludes 0."""
        if self.p_value is not None:
            return self.p_value < self.alpha
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def improved(self) -> bool:
        """The test arm moved the metric in its better direction (significant or not):
        the report's ✅ when True, ❌ when False."""
        return self.diff > 0 if self.better == "higher" else self.diff < 0


@dataclass(frozen=True)
class Shortfall:
    """Trades each arm still needs to reach the minimum sample (0 once reached)."""

    control: int
    test: int

    @property
    def reached(self) -> bool:
        return self.control == 0 and self.test == 0


# ---------------------------------------------------------------- win rate
def win_rate(wins_c: int, n_c: int, wins_t: int, n_t: int, alpha: float = 0.05) -> Comparison:
    """Win rate (% of trades with a positive net P&L) of the test arm against the control.

    The p-value is the two-sided two-proportion z-test with the pooled SE, z =
    (p_t − p_c) ÷ √(p(1 − p)(1/n_c + 1/n_t)) with p = all wins ÷ all trades; the CI is
    Wald's, diff ± z_(1−alpha/2) × √(p_c(1 − p_c)/n_c + p_t(1 − p_t)/n_t). When any
    expected cell count of the 2×2 table (arm × won/lost) is below 5, the p-value is
    Fisher's exact test and the CI Newcombe's hybrid score interval instead.
    """
    from scipy import stats

    wins_c, n_c = _counts(wins_c, n_c, "control")
    wins_t, n_t = _counts(wins_t, n_t, "test")
    _check_alpha(alpha)
    p_c, p_t = wins_c / n_c, wins_t / n_t
    diff = p_t - p_c
    z_crit = float(stats.norm.isf(alpha / 2))

    if _min_expected_count(wins_c, n_c, wins_t, n_t) < EXPECTED_CELL_MIN:
        table = [[wins_t, n_t - wins_t], [wins_c, n_c - wins_c]]
        p_value = float(stats.fisher_exact(table, alternative="two-sided").pvalue)
        low_t, high_t = _wilson(wins_t, n_t, z_crit)
        low_c, high_c = _wilson(wins_c, n_c, z_crit)
        ci_low = diff - math.hypot(p_t - low_t, high_c - p_c)
        ci_high = diff + math.hypot(high_t - p_t, p_c - low_c)
        z = None
        method, ci_method = "Fisher's exact test", "Newcombe hybrid score (Wilson)"
    else:
        pooled = (wins_c + wins_t) / (n_c + n_t)
        z = diff / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
        p_value = float(2 * stats.norm.sf(abs(z)))
        se = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
        ci_low, ci_high = diff - z_crit * se, diff + z_crit * se
        method, ci_method = "two-proportion z-test", "Wald (unpooled SE)"

    return Comparison(
        metric=WIN_RATE, control=100 * p_c, test=100 * p_t, diff=100 * diff,
        ci_low=100 * ci_low, ci_high=100 * ci_high, p_value=p_value,
        method=method, ci_method=ci_method, n_control=n_c, n_test=n_t,
        better="higher", alpha=alpha, statistic=z,
    )  # fmt: skip


def _min_expected_count(wins_c: int, n_c: int, wins_t: int, n_t: int) -> float:
    """The smallest expected count of the 2×2 table under independence: row total ×
    column total ÷ grand total, smallest for the smaller arm and the rarer outcome."""
    wins = wins_c + wins_t
    losses = n_c + n_t - wins
    return min(n_c, n_t) * min(wins, losses) / (n_c + n_t)


def _wilson(wins: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval for one proportion (no continuity correction)."""
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


# ---------------------------------------------------------------- average profit
def avg_profit(
    pnl_c: Iterable[float],
    pnl_t: Iterable[float],
    alpha: float = 0.05,
    *,
    seed: int,
    resamples: int = 10_000,
) -> Comparison:
    """Average net P&L per trade (₹) of the test arm against the control.

    Welch's t-test (``scipy.stats.ttest_ind(test, control, equal_var=False)``) gives the
    statistic, the two-sided p-value, the Welch–Satterthwaite degrees of freedom and the
    CI of the difference of means; a percentile bootstrap of mean(test) − mean(control)
    (``resamples`` resamples, each arm resampled independently, seeded by ``seed``) gives
    ``boot_ci_low``/``boot_ci_high``. When neither arm's P&L varies, Welch's test is
    undefined: p-value, t, df and the t CI are None (the bootstrap CI is then the point).
    """
    import numpy as np
    from scipy import stats

    c, t = _pnl(pnl_c, "control"), _pnl(pnl_t, "test")
    _check_alpha(alpha)
    seed, resamples = _check_bootstrap(seed, resamples)
    mean_c, mean_t = float(c.mean()), float(t.mean())

    statistic = p_value = df = ci_low = ci_high = None
    method = "Welch's t-test (undefined: neither arm's P&L varies)"
    if np.ptp(c) > 0 or np.ptp(t) > 0:
        method = "Welch's t-test"
        welch = stats.ttest_ind(t, c, equal_var=False)
        ci = welch.confidence_interval(confidence_level=1 - alpha)
        statistic, p_value, df = float(welch.statistic), float(welch.pvalue), float(welch.df)
        ci_low, ci_high = float(ci.low), float(ci.high)

    def mean_diff(control, test, axis=-1):
        return np.mean(test, axis=axis) - np.mean(control, axis=axis)

    boot_low, boot_high = _percentile_bootstrap((c, t), mean_diff, alpha, seed, resamples)
    return Comparison(
        metric=AVG_PROFIT, control=mean_c, test=mean_t, diff=mean_t - mean_c,
        ci_low=ci_low, ci_high=ci_high, p_value=p_value,
        method=method, ci_method="Welch–Satterthwaite t",
        n_control=len(c), n_test=len(t), better="higher", alpha=alpha,
        statistic=statistic, df=df, boot_ci_low=boot_low, boot_ci_high=boot_high,
        boot_method=f"bootstrap ({resamples:,} resamples, percentile)",
    )  # fmt: skip


# ---------------------------------------------------------------- max drawdown
def max_drawdown(
    pnl_c: Iterable[float],
    pnl_t: Iterable[float],
    capital_base: float,
    alpha: float = 0.05,
    *,
    seed: int,
    resamples: int = 10_000,
) -> Comparison:
    """Maximum drawdown (% below the running peak) of each arm's own equity path, test
    against control. ``pnl_c`` and ``pnl_t`` are each arm's per-trade net P&L **in time
    order**; both paths start at ``capital_base`` (> 0), which is also the first peak.

    The CI of the difference is a percentile bootstrap that resamples each arm's trades
    with replacement and keeps them in time order (see the module docstring for why);
    there is no p-value: the comparison is significant when the CI excludes 0. Lower is
    better.
    """
    import numpy as np

    c, t = _pnl(pnl_c, "control"), _pnl(pnl_t, "test")
    capital = float(capital_base)
    if not (math.isfinite(capital) and capital > 0):
        raise ValueError(f"capital_base must be a positive number, got {capital_base!r}")
    _check_alpha(alpha)
    seed, resamples = _check_bootstrap(seed, resamples)
    dd_c, dd_t = float(max_drawdown_pct(c, capital)), float(max_drawdown_pct(t, capital))

    def drawdown_diff(idx_c, idx_t, axis=-1):
        # scipy resamples the trade indices; sorting them puts each resample back in
        # time order before its equity path is walked
        in_order_c = np.sort(idx_c, axis=axis).astype(np.intp)
        in_order_t = np.sort(idx_t, axis=axis).astype(np.intp)
        return max_drawdown_pct(t[in_order_t], capital) - max_drawdown_pct(c[in_order_c], capital)

    indices = (np.arange(len(c)), np.arange(len(t)))
    low, high = _percentile_bootstrap(indices, drawdown_diff, alpha, seed, resamples)
    boot = f"bootstrap ({resamples:,} resamples, percentile, trades kept in time order)"
    return Comparison(
        metric=MAX_DRAWDOWN, control=dd_c, test=dd_t, diff=dd_t - dd_c,
        ci_low=low, ci_high=high, p_value=None, method=boot, ci_method=boot,
        n_control=len(c), n_test=len(t), better="lower", alpha=alpha,
    )  # fmt: skip


def max_drawdown_pct(pnl: np.ndarray, capital: float) -> np.ndarray:
    """Max drawdown in % of each path along the last axis (a scalar for one path):
    equity = capital + cumulative P&L, peak = running max of equity and capital."""
    import numpy as np

    equity = capital + np.cumsum(pnl, axis=-1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=-1), capital)
    return np.max((peak - equity) / peak, axis=-1) * 100.0


# ---------------------------------------------------------------- report helpers
def improvement(comparison: Comparison) -> float | None:
    """The source document's "Improvement" column, signed so that better is positive:

    - win rate: the difference in percentage points (58.3 % → 61.2 %: +2.9);
    - average profit: the relative change in %, against the control's magnitude
      (₹245 → ₹310: +26.5; a loss of ₹100 → ₹50: +50); None when the control is 0;
    - max drawdown: the difference in points, negated as lower is better (12.3 % →
      14.1 %: −1.8).

    Unrounded: rounding is the report's.
    """
    if comparison.metric == WIN_RATE:
        return comparison.diff
    if comparison.metric == AVG_PROFIT:
        if comparison.control == 0:
            return None
        return 100.0 * comparison.diff / abs(comparison.control)
    if comparison.metric == MAX_DRAWDOWN:
        return -comparison.diff
    raise ValueError(f"no improvement rule for metric {comparison.metric!r}")


def insufficient(n_c: int, n_t: int, minimum: int) -> Shortfall:
    """How many trades the control and the test arm still need to reach ``minimum``
    each (0 for an arm that has reached it); :attr:`Shortfall.reached` when both have."""
    n_c, n_t, minimum = (
        _non_negative(v, name) for v, name in ((n_c, "n_c"), (n_t, "n_t"), (minimum, "minimum"))
    )
    return Shortfall(control=max(minimum - n_c, 0), test=max(minimum - n_t, 0))


# ---------------------------------------------------------------- shared
def _percentile_bootstrap(samples, statistic, alpha: float, seed: int, resamples: int) -> tuple[float, float]:
    """The (1 − alpha) percentile-bootstrap CI of ``statistic`` over independent
    ``samples``, resampled by ``scipy.stats.bootstrap`` from ``default_rng(seed)``."""
    import numpy as np
    from scipy import stats

    result = stats.bootstrap(
        samples, statistic, n_resamples=resamples, batch=BOOTSTRAP_BATCH, vectorized=True,
        paired=False, confidence_level=1 - alpha, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _pnl(values: Iterable[float], arm: str) -> np.ndarray:
    """One arm's per-trade net P&L as a float array: one-dimensional, finite (closed
    trades only), at least two trades (a bootstrap and a variance need two)."""
    import numpy as np

    arr = np.asarray(values if isinstance(values, Sized) else list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{arm}: the P&L must be one value per trade, got shape {arr.shape}")
    if len(arr) < 2:
        raise ValueError(f"{arm}: at least 2 trades are needed, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{arm}: the P&L has a missing or infinite value (an open trade?)")
    return arr


def _counts(wins: int, n: int, arm: str) -> tuple[int, int]:
    wins, n = operator.index(wins), operator.index(n)
    if n < 1:
        raise ValueError(f"{arm}: at least 1 trade is needed, got {n}")
    if not 0 <= wins <= n:
        raise ValueError(f"{arm}: wins must be between 0 and {n} trades, got {wins}")
    return wins, n


def _non_negative(value: int, name: str) -> int:
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{name} must be ≥ 0, got {value}")
    return value


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")


def _check_bootstrap(seed: int, resamples: int) -> tuple[int, int]:
    """The seed must be a plain non-negative integer (a Generator would be consumed and
    not reproduce); at least 100 resamples for a percentile interval to mean anything."""
    seed, resamples = operator.index(seed), operator.index(resamples)
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    if resamples < 100:
        raise ValueError(f"resamples must be ≥ 100, got {resamples}")
    return seed, resamples
