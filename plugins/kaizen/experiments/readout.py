"""A/B readouts: each registered experiment (:mod:`kaizen.experiments.registry`) read
out from the trades that carry its arms, compared with :mod:`kaizen.experiments.stats`,
and stored in ``experiments`` / ``experiment_results``.

Which trades: closed trades (``raw_trades``) of the experiment's ``scope`` strategy whose
``ab_arm`` is its control or test arm, closed on the IST trading days from
``planned_start`` to ``planned_end`` — or to the day read out, while the experiment
runs — in exit order (each arm's equity path, for its drawdown, is its own trades in that order on the
capital base).

What a readout says:

- per arm: trades, wins, win rate, average profit per trade, net P&L, max drawdown;
- per metric of the experiment: the difference test − control with its CI and p-value,
  and an outcome — ``better`` / ``worse`` (significant at the experiment's alpha, in the
  metric's better or worse direction), ``no_difference``, or ``insufficient`` while an
  arm has fewer trades than the minimum sample (then no verdict at all, and the readout
  says how many trades each arm still needs);
- **while the experiment runs** the figures are interim: the readout warns that the
  verdict is final only at the planned end (stopping at the first significant peek
  inflates the false-positive rate well above alpha), and no suggestion is made;
- **once it has ended** (the day after ``planned_end``): the final verdict, and the
  registered decision rule's suggestion for the owner — never a decision made.

A late trade (loaded after the end) changes the stored final readout; the Slack readout
is then revised in place through the delivery ledger.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from kaizen import config, warehouse
from kaizen.experiments import stats
from kaizen.experiments.registry import (
    BETTER,
    ENDED,
    INSUFFICIENT,
    METRIC_NAMES,
    NO_DIFFERENCE,
    RUNNING,
    WORSE,
    Experiment,
    Registry,
    Suggestion,
)

log = logging.getLogger(__name__)

RESAMPLES = 10_000  # bootstrap resamples (average profit's second CI, the drawdown's CI)
METRIC_LABELS = {"win_rate": "Win Rate", "avg_profit": "Avg Profit", "max_drawdown": "Max Drawdown"}
VERDICTS = {BETTER: "significant improvement", WORSE: "significant deterioration",
            NO_DIFFERENCE: "no significant difference", INSUFFICIENT: "insufficient sample"}


@dataclass(frozen=True)
class Arm:
    role: str  # control or test
    name: str  # the ab_arm value
    trades: int
    wins: int
    win_rate: float | None  # % of trades with net P&L > 0
    avg_profit: float | None  # ₹ per trade
    net_pnl: float
    max_drawdown: float | None  # % below the running peak of the arm's own equity path


@dataclass(frozen=True)
class MetricResult:
    metric: str
    comparison: stats.Comparison | None  # None: fewer than 2 trades in an arm
    outcome: str  # better, worse, no_difference, insufficient
    improvement: float | None  # the source document's "Improvement" column (see stats.improvement)

    @property
    def label(self) -> str:
        return METRIC_LABELS[self.metric]

    @property
    def verdict(self) -> str:
        return VERDICTS[self.outcome]


@dataclass(frozen=True)
class Readout:
    experiment: Experiment
    status: str  # running or ended
    as_of: date  # the last IST day of trades counted
    control: Arm
    test: Arm
    shortfall: stats.Shortfall
    metrics: list[MetricResult] = field(default_factory=list)
    suggestion: Suggestion | None = None  # the final readout's, from the registered rule

    @property
    def final(self) -> bool:
        return self.status == ENDED

    @property
    def primary(self) -> MetricResult:
        return next(m for m in self.metrics if m.metric == self.experiment.primary_metric)

    @property
    def verdict(self) -> str:
        """One line: the primary metric's verdict, or what the sample still lacks."""
        if not self.shortfall.reached:
            return f"insufficient sample: {self.missing_text}"
        return f"{self.primary.verdict} in {METRIC_NAMES[self.primary.metric]}"

    @property
    def missing_text(self) -> str:
        need = self.experiment.min_sample_per_arm
        parts = [f"{arm.role} ({arm.name}) needs {missing} more trade{'s' if missing != 1 else ''}"
                 for arm, missing in ((self.control, self.shortfall.control), (self.test, self.shortfall.test))
                 if missing]
        return f"{'; '.join(parts)} to reach the minimum of {need} per arm" if parts else ""

    @property
    def warning(self) -> str | None:
        if self.final:
            return None
        return (f"Interim figures: the verdict is final only at the planned end "
                f"({self.experiment.planned_end:%d %b %Y}). Stopping early on a significant peek "
                f"inflates the false-positive rate well above {self.experiment.alpha:.0%}.")


# ---------------------------------------------------------------- computing
def _seed(experiment_id: str) -> int:
    """A bootstrap seed of the experiment's own: the same readout gives the same CIs."""
    return int(hashlib.sha256(experiment_id.encode()).hexdigest()[:8], 16)


def read_trades(conn: sa.Connection, e: Experiment, until: date) -> dict[str, list[float]]:
    """Net P&L of the experiment's closed trades per arm, in exit order."""
    rows = conn.execute(sa.text(
        "select ab_arm, net_pnl_inr from raw_trades where strategy = :scope and ab_arm in (:c, :t) "
        "and trading_day >= :first and trading_day <= :last order by exit_time, trade_id"),
        {"scope": e.scope, "c": e.control_arm, "t": e.test_arm,
         "first": warehouse.bind_value(e.planned_start), "last": warehouse.bind_value(until)}).all()
    out: dict[str, list[float]] = {e.control_arm: [], e.test_arm: []}
    for arm, pnl in rows:
        out[arm].append(float(pnl))
    return out


def _arm(role: str, name: str, pnl: list[float], capital: float) -> Arm:
    n = len(pnl)
    wins = sum(1 for p in pnl if p > 0)
    drawdown = float(stats.max_drawdown_pct(pnl, capital)) if n else None
    return Arm(role, name, n, wins, 100 * wins / n if n else None, sum(pnl) / n if n else None,
               round(sum(pnl), 2), drawdown)


def _compare(metric: str, e: Experiment, c: list[float], t: list[float], capital: float) -> stats.Comparison | None:
    if len(c) < 2 or len(t) < 2:
        return None
    if metric == "win_rate":
        return stats.win_rate(sum(p > 0 for p in c), len(c), sum(p > 0 for p in t), len(t), e.alpha)
    if metric == "avg_profit":
        return stats.avg_profit(c, t, e.alpha, seed=_seed(e.id), resamples=RESAMPLES)
    return stats.max_drawdown(c, t, capital, e.alpha, seed=_seed(e.id), resamples=RESAMPLES)


def read_out(conn: sa.Connection, e: Experiment, day: date, capital: float | None = None) -> Readout:
    """The readout of ``e`` as of IST day ``day`` (its planned end at the latest)."""
    capital = capital if capital is not None else config.capital_base_inr()
    status = e.status(day)
    until = min(day, e.planned_end)
    trades = read_trades(conn, e, until)
    c, t = trades[e.control_arm], trades[e.test_arm]
    shortfall = stats.insufficient(len(c), len(t), e.min_sample_per_arm)
    results = []
    for metric in e.metrics:
        comparison = _compare(metric, e, c, t, capital)
        if comparison is None or not shortfall.reached:
            outcome = INSUFFICIENT
        elif comparison.significant:
            outcome = BETTER if comparison.improved else WORSE
        else:
            outcome = NO_DIFFERENCE
        results.append(MetricResult(metric, comparison, outcome,
                                    stats.improvement(comparison) if comparison else None))
    suggestion = None
    if status == ENDED:
        suggestion = e.suggest({m.metric: m.outcome for m in results})
    return Readout(e, status, until, _arm("control", e.control_arm, c, capital), _arm("test", e.test_arm, t, capital),
                   shortfall, results, suggestion)


SETTLE_DAYS = 30  # an ended experiment is read out again for this long: late trades revise it


def read_out_all(engine: sa.Engine, registry: Registry, day: date) -> list[Readout]:
    """Every experiment running on ``day``, or ended within :data:`SETTLE_DAYS` before it
    (planned ones have nothing to read; older ones are settled)."""
    out = []
    with engine.connect() as conn:
        for e in registry.experiments:
            status = e.status(day)
            if status == RUNNING or (status == ENDED and (day - e.planned_end).days <= SETTLE_DAYS):
                out.append(read_out(conn, e, day))
    return out


# ---------------------------------------------------------------- storing
def experiment_row(e: Experiment, at: datetime) -> dict:
    return {
        "experiment_id": e.id, "hypothesis": e.hypothesis, "scope": e.scope, "control_arm": e.control_arm,
        "test_arm": e.test_arm, "metrics": ",".join(e.metrics), "primary_metric": e.primary_metric,
        "min_sample_per_arm": e.min_sample_per_arm, "planned_start": e.planned_start,
        "planned_end": e.planned_end, "decision_rule": str(e.decision_rule), "owner": e.owner,
        "alpha": e.alpha, "registry_source": e.source, "registry_row": e.row, "loaded_at": at,
    }


def result_rows(r: Readout) -> list[dict]:
    """One row per arm and metric (the arm's value and n) and one per metric for the
    difference (value test − control, its CI, p-value and verdict)."""
    rows = []
    for m in r.metrics:
        for arm in (r.control, r.test):
            rows.append({"arm": arm.role, "metric": m.metric, "value": getattr(arm, m.metric), "n": arm.trades,
                         "ci_low": None, "ci_high": None, "p_value": None, "verdict": None, "method": None})
        cmp = m.comparison
        rows.append({"arm": "difference", "metric": m.metric, "value": cmp.diff if cmp else None,
                     "n": r.control.trades + r.test.trades,
                     "ci_low": cmp.ci_low if cmp else None, "ci_high": cmp.ci_high if cmp else None,
                     "p_value": cmp.p_value if cmp else None, "verdict": m.verdict,
                     "method": cmp.method if cmp else None})
    for row in rows:
        row.update(experiment_id=r.experiment.id, as_of=r.as_of, status=r.status,
                   final=r.final, improvement=None)
    for row, m in zip([x for x in rows if x["arm"] == "difference"], r.metrics, strict=True):
        row["improvement"] = m.improvement
    return rows


def store(engine: sa.Engine, registry: Registry, readouts: list[Readout], run_id: str,
          at: datetime | None = None) -> int:
    """The registry into ``experiments`` and each readout into ``experiment_results``
    (replacing the same experiment and day); returns the result rows written."""
    from datetime import UTC

    at = at or datetime.now(UTC)
    written = 0
    with warehouse.writing(engine) as conn:
        if registry.experiments:
            warehouse.upsert(conn, "experiments", [experiment_row(e, at) for e in registry.experiments],
                             ["experiment_id"])
        for r in readouts:
            conn.execute(sa.text("delete from experiment_results where experiment_id = :e and as_of = :d"),
                         {"e": r.experiment.id, "d": warehouse.bind_value(r.as_of)})
            rows = result_rows(r)
            written += warehouse.insert_rows(conn, "experiment_results", rows, {"computed_at": at, "run_id": run_id})
    return written
