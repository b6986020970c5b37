"""The A/B statistics (:mod:`kaizen.experiments.stats`): each statistic against
scipy/statsmodels on fixed data within 1e-9 (absolute and relative), hand-computed cases
with the arithmetic in the comments, the small-count switch to Fisher, identical arms,
and the source document's example "Improvement" table."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from kaizen.experiments import stats as ab
from kaizen.kpis.maths import deepest_fall, drawdown_series

TOL = 1e-9
RESAMPLES = 2_000  # keeps the file fast; the default is 10,000


def close(actual, expected, tol: float = TOL) -> None:
    """Within ``tol`` both absolutely and relatively."""
    assert actual is not None
    assert abs(actual - expected) <= tol, (actual, expected)
    assert math.isclose(actual, expected, rel_tol=tol), (actual, expected)


# Fixed, heavy-tailed per-trade P&L (Student t with 3 df, in ₹), generated once per run.
_RNG = np.random.default_rng(20240611)
PNL_C = np.round(_RNG.standard_t(3, 140) * 900 + 150, 2)
PNL_T = np.round(_RNG.standard_t(3, 120) * 1100 + 420, 2)
CAPITAL = 100_000.0


# ---------------------------------------------------------------- win rate
def test_win_rate_by_hand():
    # control 45 wins of 100, test 60 of 100:
    #   p_c = 0.45, p_t = 0.60, diff = 0.15 → 15 points
    #   pooled p = (45 + 60) / 200 = 0.525
    #   pooled SE = √(0.525 × 0.475 × (1/100 + 1/100)) = √0.0049875 = 0.070622234459…
    #   z = 0.15 / 0.070622234459 = 2.12397697621…
    #   p = 2 × (1 − Φ(2.12397697621)) = erfc(z / √2) = 0.0336720688563…
    #   Wald SE = √(0.60 × 0.40 / 100 + 0.45 × 0.55 / 100) = √0.004875 = 0.0698212002188…
    #   z_0.975 = 1.95996398454; 1.95996398454 × 0.0698212002188 = 0.136847037786…
    #   CI = 0.15 ∓ 0.136847037786 = [0.0131529622137, 0.286847037786] → ×100 in points
    r = ab.win_rate(45, 100, 60, 100)
    assert (r.metric, r.method, r.ci_method) == ("win_rate", "two-proportion z-test", "Wald (unpooled SE)")
    assert (r.n_control, r.n_test, r.better) == (100, 100, "higher")
    close(r.control, 45.0)
    close(r.test, 60.0)
    close(r.diff, 15.0)
    close(r.statistic, 2.12397697621437)
    close(r.p_value, 0.0336720688563459)
    close(math.erfc(2.12397697621437 / math.sqrt(2)), 0.0336720688563459)  # the formula above
    close(r.ci_low, 1.31529622137042)
    close(r.ci_high, 28.6847037786296)
    assert r.significant and r.improved


@pytest.mark.parametrize(
    "wins_c, n_c, wins_t, n_t",
    [
        (45, 100, 60, 100),
        (583, 1000, 612, 1000),
        (131, 240, 97, 205),
        (70, 150, 52, 90),
        (300, 300, 280, 310),
    ],
)
@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_win_rate_matches_statsmodels(wins_c, n_c, wins_t, n_t, alpha):
    r = ab.win_rate(wins_c, n_c, wins_t, n_t, alpha=alpha)
    assert r.method == "two-proportion z-test"
    z, p = proportions_ztest([wins_t, wins_c], [n_t, n_c])  # pooled SE, two-sided
    low, high = confint_proportions_2indep(
        wins_t, n_t, wins_c, n_c, method="wald", compare="diff", alpha=alpha
    )
    close(r.statistic, float(z))
    close(r.p_value, float(p))
    close(r.ci_low, 100 * float(low))
    close(r.ci_high, 100 * float(high))
    close(r.diff, 100 * (wins_t / n_t - wins_c / n_c))
    assert r.alpha == alpha


def test_small_counts_switch_to_fisher_by_hand():
    # control 1 win of 12, test 6 of 10: 7 wins of 22 trades; the smallest expected cell
    # is 10 × 7 / 22 = 3.18 < 5 → Fisher's exact test. With the margins fixed (10 test
    # trades, 7 wins, 22 trades), the test arm's wins k are hypergeometric:
    #   P(k) = C(10, k) · C(12, 7 − k) / C(22, 7), C(22, 7) = 170,544; numerators
    #   k = 0..7: 792, 9240, 35640, 59400, 46200, 16632, 2520 (observed), 120.
    #   Two-sided p = the outcomes no likelier than k = 6: (792 + 2520 + 120) / 170,544
    #   = 3432 / 170,544 = 0.0201238390093
    numerators = [math.comb(10, k) * math.comb(12, 7 - k) for k in range(8)]
    assert numerators == [792, 9240, 35640, 59400, 46200, 16632, 2520, 120]
    assert sum(numerators) == math.comb(22, 7) == 170_544
    r = ab.win_rate(1, 12, 6, 10)
    assert (r.method, r.ci_method) == ("Fisher's exact test", "Newcombe hybrid score (Wilson)")
    assert r.statistic is None
    close(r.p_value, 3432 / 170_544)
    close(r.p_value, 0.0201238390092879)
    close(r.diff, 100 * (6 / 10 - 1 / 12))  # 51.67 points


@pytest.mark.parametrize(
    "wins_c, n_c, wins_t, n_t",
    [(1, 12, 6, 10), (0, 8, 3, 9), (19, 20, 20, 20), (2, 40, 7, 45), (5, 5, 0, 5), (3, 30, 3, 30)],
)
def test_fisher_and_newcombe_match_scipy_and_statsmodels(wins_c, n_c, wins_t, n_t):
    r = ab.win_rate(wins_c, n_c, wins_t, n_t)
    assert r.method == "Fisher's exact test"
    expected_p = stats.fisher_exact([[wins_t, n_t - wins_t], [wins_c, n_c - wins_c]]).pvalue
    low, high = confint_proportions_2indep(wins_t, n_t, wins_c, n_c, method="newcomb", compare="diff")
    close(r.p_value, float(expected_p))
    close(r.ci_low, 100 * float(low))
    close(r.ci_high, 100 * float(high))
    assert r.ci_low <= r.diff <= r.ci_high


def test_the_switch_is_at_an_expected_count_of_five():
    # 10 trades an arm, 10 wins in all: every expected cell is 10 × 10 / 20 = 5 → z-test
    assert ab.win_rate(4, 10, 6, 10).method == "two-proportion z-test"
    # 9 wins in all: the expected wins are 10 × 9 / 20 = 4.5 < 5 → Fisher
    assert ab.win_rate(4, 10, 5, 10).method == "Fisher's exact test"
    # the rarer outcome counts too: 11 wins, 9 losses → expected losses 10 × 9 / 20 = 4.5
    assert ab.win_rate(6, 10, 5, 10).method == "Fisher's exact test"
    # a big arm does not rescue a small one: 500 and 6 trades, 304 wins and 202 losses
    # → the small arm's expected losses are 6 × 202 / 506 = 2.4
    assert ab.win_rate(300, 500, 4, 6).method == "Fisher's exact test"


def test_identical_win_rates():
    r = ab.win_rate(50, 100, 50, 100)
    assert r.diff == 0.0 and r.statistic == 0.0
    close(r.p_value, 1.0)
    assert r.ci_low < 0 < r.ci_high
    close(r.ci_low, -r.ci_high)
    assert not r.significant and not r.improved
    small = ab.win_rate(2, 6, 2, 6)  # Fisher
    close(small.p_value, 1.0)
    assert small.ci_low < 0 < small.ci_high and not small.significant


@pytest.mark.parametrize(
    "args, message",
    [((101, 100, 50, 100), "control: wins must be between 0 and 100"),
     ((5, 10, -1, 10), "test: wins must be between 0 and 10"),
     ((0, 0, 5, 10), "control: at least 1 trade")],
)  # fmt: skip
def test_win_rate_refuses_impossible_counts(args, message):
    with pytest.raises(ValueError, match=message):
        ab.win_rate(*args)
    with pytest.raises(TypeError):
        ab.win_rate(45.5, 100, 60, 100)
    with pytest.raises(ValueError, match="alpha"):
        ab.win_rate(45, 100, 60, 100, alpha=1.5)


# ---------------------------------------------------------------- average profit
def test_welch_by_hand():
    # control [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5,
    #   s² = 5/3; test [2, 4, 6, 8, 10]: mean 6, squared deviations 16 + 4 + 0 + 4 + 16 = 40,
    #   s² = 10. diff = 3.5.
    #   SE² = (5/3)/4 + 10/5 = 5/12 + 2 = 29/12, SE = 1.55456317551…
    #   t = 3.5 / 1.55456317551 = 2.25143632316…
    #   df = (29/12)² / ((5/12)²/3 + 2²/4) = (841/144) / (457/432) = 2523/457 = 5.52078774617…
    #   p = 2 × P(T_5.5208 > 2.2514) = 0.0691335931924…
    #   t_0.975(5.5208) = 2.49933109295…; CI = 3.5 ∓ 2.49933109295 × 1.55456317551
    #   = 3.5 ∓ 3.88536808051 = [−0.38536808051, 7.38536808051]
    r = ab.avg_profit([1, 2, 3, 4], [2, 4, 6, 8, 10], seed=1, resamples=RESAMPLES)
    assert (r.metric, r.method, r.ci_method, r.better) == (
        "avg_profit",
        "Welch's t-test",
        "Welch–Satterthwaite t",
        "higher",
    )
    assert (r.n_control, r.n_test) == (4, 5)
    close(r.control, 2.5)
    close(r.test, 6.0)
    close(r.diff, 3.5)
    close(r.statistic, 3.5 / math.sqrt(29 / 12))
    close(r.statistic, 2.25143632315937)
    close(r.df, 2523 / 457)
    close(r.p_value, 0.0691335931923923)
    close(r.ci_low, -0.385368080514045)
    close(r.ci_high, 7.38536808051404)
    assert not r.significant and r.improved


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_welch_matches_scipy(alpha):
    r = ab.avg_profit(PNL_C, PNL_T, alpha=alpha, seed=11, resamples=RESAMPLES)
    welch = stats.ttest_ind(PNL_T, PNL_C, equal_var=False)
    ci = welch.confidence_interval(confidence_level=1 - alpha)
    close(r.statistic, float(welch.statistic))
    close(r.p_value, float(welch.pvalue))
    close(r.df, float(welch.df))
    close(r.ci_low, float(ci.low))
    close(r.ci_high, float(ci.high))
    close(r.control, float(np.mean(PNL_C)))
    close(r.test, float(np.mean(PNL_T)))
    close(r.diff, float(np.mean(PNL_T) - np.mean(PNL_C)))
    assert (r.n_control, r.n_test) == (140, 120)


def test_profit_bootstrap_matches_scipy_and_reproduces():
    def mean_diff(control, test, axis=-1):
        return np.mean(test, axis=axis) - np.mean(control, axis=axis)

    expected = stats.bootstrap(
        (PNL_C, PNL_T), mean_diff, n_resamples=RESAMPLES, batch=ab.BOOTSTRAP_BATCH, vectorized=True,
        paired=False, confidence_level=0.95, method="percentile", rng=np.random.default_rng(5),
    ).confidence_interval  # fmt: skip
    first = ab.avg_profit(PNL_C, PNL_T, seed=5, resamples=RESAMPLES)
    again = ab.avg_profit(list(PNL_C), list(PNL_T), seed=5, resamples=RESAMPLES)
    close(first.boot_ci_low, float(expected.low))
    close(first.boot_ci_high, float(expected.high))
    assert first == again  # the same seed, the same numbers, every field
    assert first.boot_method == "bootstrap (2,000 resamples, percentile)"
    other = ab.avg_profit(PNL_C, PNL_T, seed=6, resamples=RESAMPLES)
    assert (other.boot_ci_low, other.boot_ci_high) != (first.boot_ci_low, first.boot_ci_high)
    assert first.boot_ci_low < first.diff < first.boot_ci_high
    # the default is 10,000 resamples, named in the method
    assert ab.avg_profit(PNL_C, PNL_T, seed=5).boot_method == "bootstrap (10,000 resamples, percentile)"


def test_identical_profit_arms():
    r = ab.avg_profit(PNL_C, PNL_C.copy(), seed=3, resamples=RESAMPLES)
    assert r.diff == 0.0 and r.statistic == 0.0
    close(r.p_value, 1.0)
    assert r.ci_low < 0 < r.ci_high and r.boot_ci_low < 0 < r.boot_ci_high
    assert not r.significant


def test_profit_with_no_variance_has_no_welch():
    r = ab.avg_profit([100.0, 100.0, 100.0], [100.0, 100.0], seed=3, resamples=RESAMPLES)
    assert (r.p_value, r.statistic, r.df, r.ci_low, r.ci_high) == (None, None, None, None, None)
    assert r.method == "Welch's t-test (undefined: neither arm's P&L varies)"
    assert (r.boot_ci_low, r.boot_ci_high) == (0.0, 0.0)
    assert not r.significant


@pytest.mark.parametrize(
    "pnl_c, message",
    [([120.0], "control: at least 2 trades"), ([1.0, float("nan")], "control: the P&L has a missing"),
     ([[1.0, 2.0]], "one value per trade")],
)  # fmt: skip
def test_profit_refuses_bad_pnl(pnl_c, message):
    with pytest.raises(ValueError, match=message):
        ab.avg_profit(pnl_c, [1.0, 2.0], seed=1, resamples=RESAMPLES)
    with pytest.raises(ValueError, match="resamples"):
        ab.avg_profit([1.0, 2.0], [1.0, 2.0], seed=1, resamples=10)


# ---------------------------------------------------------------- max drawdown
def test_drawdown_by_hand():
    # capital 1000, P&L [+100, −300, +50, −100, +400]:
    #   equity 1100, 800, 850, 750, 1150; running peak 1100, 1100, 1100, 1100, 1150
    #   falls 0, 300, 250, 350, 0 → the largest is (1100 − 750) / 1100 = 31.8181…%
    # control [+50, −20, +30]: equity 1050, 1030, 1060 → (1050 − 1030) / 1050 = 1.90476…%
    r = ab.max_drawdown([50, -20, 30], [100, -300, 50, -100, 400], 1000, seed=2, resamples=RESAMPLES)
    assert (r.metric, r.better, r.p_value) == ("max_drawdown", "lower", None)
    assert r.method == r.ci_method == "bootstrap (2,000 resamples, percentile, trades kept in time order)"
    assert (r.n_control, r.n_test) == (3, 5)
    close(r.test, 350 / 1100 * 100)
    close(r.test, 31.8181818181818)
    close(r.control, 20 / 1050 * 100)
    close(r.diff, 31.8181818181818 - 1.9047619047619)
    assert not r.improved  # the test arm's drawdown is deeper
    # the starting capital is the first peak: a first-trade loss is already a drawdown
    first_loss = ab.max_drawdown([-100, 50], [-250, 300], 1000, seed=2, resamples=RESAMPLES)
    close(first_loss.control, 10.0)  # (1000 − 900) / 1000
    close(first_loss.test, 25.0)  # (1000 − 750) / 1000


def test_drawdown_is_the_kpi_drawdown():
    """The same number as the KPI's one drawdown computation (kaizen.kpis.maths)."""
    r = ab.max_drawdown(PNL_C, PNL_T, CAPITAL, seed=2, resamples=RESAMPLES)
    close(r.control, deepest_fall(drawdown_series(CAPITAL, PNL_C)).fall_pct)
    close(r.test, deepest_fall(drawdown_series(CAPITAL, PNL_T)).fall_pct)


def test_drawdown_bootstrap_matches_a_plain_loop_and_reproduces():
    """The oracle resamples with scipy.stats.bootstrap from the same seed but walks each
    resample one by one (vectorized=False) through kaizen.kpis.maths, after putting the
    resampled trades back in time order."""

    def deepest(pnl, idx):
        in_order = np.sort(idx).astype(int)
        return deepest_fall(drawdown_series(CAPITAL, pnl[in_order])).fall_pct

    def oracle(idx_c, idx_t):
        return deepest(PNL_T, idx_t) - deepest(PNL_C, idx_c)

    expected = stats.bootstrap(
        (np.arange(len(PNL_C)), np.arange(len(PNL_T))), oracle, n_resamples=RESAMPLES,
        batch=ab.BOOTSTRAP_BATCH, vectorized=False, paired=False, confidence_level=0.90,
        method="percentile", rng=np.random.default_rng(9),
    ).confidence_interval  # fmt: skip
    first = ab.max_drawdown(PNL_C, PNL_T, CAPITAL, alpha=0.10, seed=9, resamples=RESAMPLES)
    close(first.ci_low, float(expected.low))
    close(first.ci_high, float(expected.high))
    assert first == ab.max_drawdown(
        list(PNL_C), list(PNL_T), CAPITAL, alpha=0.10, seed=9, resamples=RESAMPLES
    )
    assert first.ci_low <= first.diff <= first.ci_high


def test_drawdown_bootstrap_keeps_time_order():
    # A path of steady gains then steady losses has a deep drawdown in every resample
    # that keeps time order (gains first, then losses); shuffled, the losses would mix
    # with the gains and the drawdown would mostly be shallow.
    ups_then_downs = [100.0] * 20 + [-100.0] * 20  # peak 3000, then down to 1000: 66.7 %
    flat = [10.0, -10.0] * 20
    r = ab.max_drawdown(flat, ups_then_downs, 1000, seed=4, resamples=RESAMPLES)
    close(r.test, 2000 / 3000 * 100)
    assert r.ci_low > 30  # every resample keeps the climb before the fall
    assert r.significant and not r.improved


def test_identical_drawdown_arms_are_not_significant():
    r = ab.max_drawdown(PNL_C, PNL_C.copy(), CAPITAL, seed=8, resamples=RESAMPLES)
    assert r.diff == 0.0 and r.p_value is None
    assert r.ci_low < 0 < r.ci_high
    assert not r.significant


def test_drawdown_refuses_a_bad_capital():
    for capital in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="capital_base"):
            ab.max_drawdown([1.0, 2.0], [1.0, 2.0], capital, seed=1, resamples=RESAMPLES)


# ---------------------------------------------------------------- significance
def test_significance_follows_p_or_the_bootstrap_ci():
    base = dict(metric="x", control=1.0, test=2.0, diff=1.0, method="m", ci_method="m",
                n_control=100, n_test=100, better="higher")  # fmt: skip
    assert ab.Comparison(ci_low=-1.0, ci_high=3.0, p_value=0.049, **base).significant
    assert not ab.Comparison(ci_low=0.5, ci_high=3.0, p_value=0.05, **base).significant  # p decides
    assert not ab.Comparison(ci_low=0.5, ci_high=3.0, p_value=0.06, alpha=0.05, **base).significant
    assert ab.Comparison(ci_low=0.5, ci_high=3.0, p_value=0.06, alpha=0.10, **base).significant
    assert ab.Comparison(ci_low=0.5, ci_high=3.0, p_value=None, **base).significant
    assert ab.Comparison(ci_low=-3.0, ci_high=-0.5, p_value=None, **base).significant
    assert not ab.Comparison(ci_low=-0.5, ci_high=3.0, p_value=None, **base).significant
    assert not ab.Comparison(ci_low=None, ci_high=None, p_value=None, **base).significant
    with pytest.raises(AttributeError):
        ab.Comparison(ci_low=None, ci_high=None, p_value=None, **base).diff = 2.0  # frozen


# ---------------------------------------------------------------- the document's table
def test_the_documents_example_table():
    """Stop-loss 1.5 % (control) vs 2.0 % (test):

    | Metric           | Control | Test   | Improvement |
    | Win rate         | 58.3 %  | 61.2 % | +2.9 % ✅   |
    | Avg profit/trade | ₹245    | ₹310   | +26.5 % ✅  |
    | Max drawdown     | 12.3 %  | 14.1 % | -1.8 % ❌   |
    """
    win = ab.win_rate(583, 1000, 612, 1000)  # 58.3 % and 61.2 %
    profit = ab.avg_profit([200.0, 290.0], [300.0, 320.0], seed=1, resamples=RESAMPLES)  # means ₹245, ₹310
    # capital 1000: −123 then +60, +40 → trough 877, 12.3 %; −141 then +70, +30 → 14.1 %
    drawdown = ab.max_drawdown([-123.0, 60.0, 40.0], [-141.0, 70.0, 30.0], 1000, seed=1, resamples=RESAMPLES)

    close(win.control, 58.3)
    close(win.test, 61.2)
    close(ab.improvement(win), 2.9)  # points: 61.2 − 58.3
    close(profit.control, 245.0)
    close(profit.test, 310.0)
    close(ab.improvement(profit), 100 * 65 / 245)  # (310 − 245) / 245 = 26.53 %
    close(drawdown.control, 12.3)
    close(drawdown.test, 14.1)
    close(ab.improvement(drawdown), -1.8)  # 14.1 is 1.8 points deeper: worse, negative

    def row(c: ab.Comparison) -> str:
        return f"{ab.improvement(c):+.1f} % {'✅' if c.improved else '❌'}"

    assert [row(win), row(profit), row(drawdown)] == ["+2.9 % ✅", "+26.5 % ✅", "-1.8 % ❌"]


def test_improvement_of_a_loss_and_of_nothing():
    loss_halved = ab.avg_profit([-120.0, -80.0], [-60.0, -40.0], seed=1, resamples=RESAMPLES)  # −100 → −50
    close(ab.improvement(loss_halved), 50.0)
    zero = ab.avg_profit([-10.0, 10.0], [5.0, 15.0], seed=1, resamples=RESAMPLES)  # control mean 0
    assert ab.improvement(zero) is None
    shallower = ab.max_drawdown([-141.0, 70.0], [-123.0, 60.0], 1000, seed=1, resamples=RESAMPLES)
    close(ab.improvement(shallower), 1.8)
    assert shallower.improved


# ---------------------------------------------------------------- sample size
@pytest.mark.parametrize(
    "n_c, n_t, minimum, control, test, reached",
    [(40, 120, 100, 60, 0, False), (100, 100, 100, 0, 0, True), (0, 99, 100, 100, 1, False),
     (150, 3, 100, 0, 97, False), (5, 5, 0, 0, 0, True)],
)  # fmt: skip
def test_insufficient(n_c, n_t, minimum, control, test, reached):
    short = ab.insufficient(n_c, n_t, minimum)
    assert short == ab.Shortfall(control=control, test=test)
    assert short.reached is reached


def test_insufficient_refuses_negative_counts():
    with pytest.raises(ValueError, match="minimum must be ≥ 0"):
        ab.insufficient(1, 1, -1)


def test_importing_stays_cheap():
    """numpy and scipy load only when a statistic is computed."""
    code = "import sys, kaizen.experiments.stats; print(sorted({'numpy', 'scipy'} & set(sys.modules)))"
    plugins = str(Path(__file__).resolve().parents[1] / "plugins")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": plugins})  # fmt: skip
    assert out.stdout.strip() == "[]"
