"""KPI measures over one *scope*: a period of any grain, up to a point in time.

A :class:`Scope` says which trading days (trades, orders) and which UTC window
(probes, latency, errors, alerts, incidents, deployments) a period covers:

- grain ``day`` (trading day D): trades closed / orders submitted on D; the review
  window [previous trading day 16:00 IST, D 16:00 IST);
- grains ``week``, ``month``, ``quarter``: trading days of the period up to the as-of
  day; the window [period start 00:00 IST, min(period end + 1 00:00 IST, as-of)).

Counts and sums come from the rows of the scope, never from averaging finer grains;
percentiles, medians, Sharpe and drawdown are recomputed from the rows or the daily
series at every grain. pandas/numpy are imported inside functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.kpis import catalog as catalog_mod

COVERAGE_MIN = 0.99  # probe / histogram / error-counter minutes ÷ period minutes
SLO = 0.999  # availability SLO; the error budget is BUDGET_FRACTION of the period
BUDGET_FRACTION = 0.001  # 1 − SLO, spelled exactly (1 − 0.999 is 0.0010000000000000009 in floats)
SHARPE_SESSIONS = 252
MTBF_WINDOW = timedelta(days=90)
FAILURE_PRIORITIES = ("P0", "P1")
ALERT_SPLITS = ("P0", "P1", "P2")


@dataclass
class Measure:
    """One KPI's figures before status and trend."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    sample_size: int | None = None
    stale: bool = False
    no_events: bool = False


@dataclass(frozen=True)
class Scope:
    """What one period covers, to date."""

    grain: str
    period_start: date  # IST date
    period_end: date  # IST date, inclusive (the whole period, even when computed to date)
    first_day: date  # trades/orders: trading_day between first_day and last_day
    last_day: date
    start: datetime  # UTC window of the time-based sources [start, end)
    end: datetime
    full_minutes: float  # minutes of the whole period (the error budget's base)
    session_days: tuple[date, ...]  # NSE sessions in scope (session uptime, avg daily P&L)
    business_days: int  # Mon–Fri dates in scope (deployments per business day)

    @property
    def window_minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0


def weekdays(first: date, last: date) -> int:
    """Mon–Fri dates in [first, last]."""
    n, d = 0, first
    while d <= last:
        n += d.weekday() < 5
        d += timedelta(days=1)
    return n


# ---------------------------------------------------------------- pure maths
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

    vals = [float(v) for v in values]
    return float(np.percentile(vals, q)) if vals else None


def sharpe(daily_returns, rf_annual: float = 0.0) -> tuple[float | None, float | None, float | None]:
    """(annualised Sharpe, mean excess daily return, std ddof=1); None where undefined."""
    import numpy as np

    r = np.asarray([float(x) for x in daily_returns], dtype=float) - rf_annual / 252.0
    if len(r) < 2:
        return None, (float(r.mean()) if len(r) else None), None
    mean, std = float(r.mean()), float(r.std(ddof=1))
    if std == 0 or not math.isfinite(std):
        return None, mean, std
    return mean / std * math.sqrt(252.0), mean, std


def drawdown_at(capital: float, daily_pnl: list[float]) -> tuple[float, float]:
    """(peak, equity) at the end of the last session: equity = capital + cumulative
    P&L, peak = running max of equity including the starting capital."""
    equity = peak = capital
    for p in daily_pnl:
        equity += p
        peak = max(peak, equity)
    return peak, equity


def business_days(day: date) -> int:
    """Mon–Fri dates D' with previous trading day < D' ≤ D (≥ 1)."""
    return weekdays(cal.previous_trading_day(day) + timedelta(days=1), day)


def _f(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _fsum(values) -> float:
    return math.fsum(float(v) for v in values)


def _minutes(td) -> float:
    return td.total_seconds() / 60.0


# ---------------------------------------------------------------- reading helpers
def _frame(conn, sql, params=None, ts_cols=(), date_cols=()):
    from kaizen import warehouse

    return warehouse.read_frame(conn, sql, params, ts_cols=ts_cols, date_cols=date_cols)


def _rows(conn, sql, params) -> list[tuple]:
    from kaizen import warehouse

    return conn.execute(sa.text(sql), {k: warehouse.bind_value(v) for k, v in params.items()}).tuples().all()


def _scalar_row(conn, sql, params):
    from kaizen import warehouse

    return conn.execute(sa.text(sql), {k: warehouse.bind_value(v) for k, v in params.items()}).one()


PROBE_SQL = """
with minutes as (
    select ts, min(is_up) as is_up
    from raw_probe_minutes
    where ts >= :start and ts < :end
    group by ts
)
select count(*) as probed_minutes,
       coalesce(sum(case when is_up = 1 then 1 else 0 end), 0) as good_minutes
from minutes
"""


def _probe_minutes(conn, start: datetime, end: datetime) -> tuple[int, int]:
    r = _scalar_row(conn, PROBE_SQL, {"start": start, "end": end})
    return int(r.probed_minutes), int(r.good_minutes)


# ---------------------------------------------------------------- trading
def trading_measures(conn, scope: Scope, capital: float, rf_annual: float) -> dict[str, Measure]:
    first, last = scope.first_day, scope.last_day
    today = [
        float(r[0])
        for r in _rows(
            conn,
            "select net_pnl_inr from raw_trades where trading_day >= :first and trading_day <= :last",
            {"first": first, "last": last},
        )
    ]
    sessions_in_scope = len(scope.session_days)
    n = len(today)
    stale = n == 0
    wins = [p for p in today if p > 0]
    losses = [p for p in today if p < 0]
    net = _fsum(today)
    gross_profit, gross_loss = _fsum(wins), -_fsum(losses)
    m: dict[str, Measure] = {
        "trades_count": Measure(float(n) if n else None, sample_size=n, stale=stale),
        "win_rate_pct": Measure(100.0 * len(wins) / n if n else None, len(wins), n, n, stale=stale),
        "net_pnl_inr": Measure(net if n else None, sample_size=n, stale=stale),
        "avg_daily_pnl_inr": Measure(
            net / sessions_in_scope if n else None,
            net if n else None,
            float(sessions_in_scope),
            sessions_in_scope if n else 0,
            stale=stale,
        ),
        "largest_win_inr": Measure(
            max(wins) if wins else None, sample_size=len(wins), stale=stale, no_events=not wins
        ),
        "largest_loss_inr": Measure(
            min(losses) if losses else None, sample_size=len(losses), stale=stale, no_events=not losses
        ),
        "profit_factor": Measure(
            gross_profit / gross_loss if losses else None,
            gross_profit if n else None,
            gross_loss if n else None,
            n,
            stale=stale,
            no_events=not losses,
        ),
    }

    # Session P&L per trading day since the history start (sessions without trades: 0).
    # Session P&L since the history start, summed by the database and taken to the
    # paisa: P&L is booked in paisa, so the rounded sum is exact on both dialects.
    per_day = {
        d if isinstance(d, date) else date.fromisoformat(str(d)[:10]): round(float(total), 2)
        for d, total in _rows(
            conn,
            "select trading_day, sum(net_pnl_inr) from raw_trades where trading_day <= :day group by trading_day",
            {"day": last},
        )
    }
    if per_day:
        sessions = cal.trading_days(min(per_day), last)
        session_pnl = [per_day.get(d, 0.0) for d in sessions]
    else:
        sessions, session_pnl = [], []
    if scope.grain == "day":
        window = session_pnl[-SHARPE_SESSIONS:]  # rolling: the trailing 252 sessions
    else:
        window = [p for d, p in zip(sessions, session_pnl, strict=True) if d >= first]
    value, mean, std = sharpe([p / capital for p in window], rf_annual)
    m["sharpe_ratio"] = Measure(value, mean, std, len(window), stale=stale)

    # Deepest end-of-day fall below the running peak (since history start) reached in scope.
    equity = peak = capital
    worst = None  # (fall, peak)
    for d, p in zip(sessions, session_pnl, strict=True):
        equity += p
        peak = max(peak, equity)
        if d >= first and (worst is None or (peak - equity) / peak > worst[0] / worst[1]):
            worst = (peak - equity, peak)
    m["max_drawdown_pct"] = Measure(
        100.0 * worst[0] / worst[1] if worst else None,
        worst[0] if worst else None,
        worst[1] if worst else None,
        len(sessions),
        stale=stale,
    )

    import pandas as pd

    orders = _frame(
        conn,
        "select order_id, status, submitted_at, filled_at from raw_orders "
        "where trading_day >= :first and trading_day <= :last order by order_id",
        {"first": first, "last": last},
        ts_cols=("submitted_at", "filled_at"),
    )
    submitted = len(orders)
    o_stale = submitted == 0
    exec_ms: list[float] = []
    filled = 0
    for status, sub, fill in (
        zip(orders["status"], orders["submitted_at"], orders["filled_at"], strict=True) if submitted else []
    ):
        if str(status).lower() == "filled":
            filled += 1
            if pd.notna(fill):
                exec_ms.append((fill - sub).total_seconds() * 1000.0)
    m["execution_success_pct"] = Measure(
        100.0 * filled / submitted if submitted else None, filled, submitted, submitted, stale=o_stale
    )
    total_ms = _fsum(exec_ms)
    m["avg_execution_ms"] = Measure(
        total_ms / len(exec_ms) if exec_ms else None,
        total_ms if exec_ms else None,
        len(exec_ms),
        len(exec_ms),
        stale=o_stale,
    )
    m["p95_execution_ms"] = Measure(percentile(exec_ms, 95), sample_size=len(exec_ms), stale=o_stale)
    return m


# ---------------------------------------------------------------- reliability
def _incident_minutes(conn, since: str, until: str, placed_by: str, start: datetime, end: datetime) -> list[float]:
    """Minutes from ``since`` to ``until`` of the incidents whose ``placed_by`` time is in
    [start, end) and that have both times (column names are this module's constants)."""
    df = _frame(
        conn,
        f"select incident_id, {since}, {until} from raw_incidents "
        f"where {placed_by} >= :start and {placed_by} < :end "
        f"and {since} is not null and {until} is not null order by incident_id",
        {"start": start, "end": end},
        ts_cols=(since, until),
    )
    return [_minutes(b - a) for a, b in zip(df[since], df[until], strict=True)] if len(df) else []


def _mean_minutes(values: list[float]) -> Measure:
    """Mean with numerator (total minutes) and denominator (incidents); no_events when none."""
    total = _fsum(values)
    n = len(values)
    return Measure(total / n if n else None, total if n else None, n, n, no_events=not n)


def reliability_measures(conn, scope: Scope) -> dict[str, Measure]:
    start, end = scope.start, scope.end
    window_minutes = scope.window_minutes
    m: dict[str, Measure] = {}

    probed, good = _probe_minutes(conn, start, end)
    p_stale = probed < COVERAGE_MIN * window_minutes
    down = probed - good
    m["uptime_pct"] = Measure(100.0 * good / probed if probed else None, good, probed, probed, stale=p_stale)
    m["downtime_minutes"] = Measure(float(down) if probed else None, sample_size=probed, stale=p_stale)
    budget = scope.full_minutes * BUDGET_FRACTION
    remaining = budget - down
    m["error_budget_remaining_pct"] = Measure(
        100.0 * remaining / budget if probed else None,
        remaining if probed else None,
        budget,
        probed,
        stale=p_stale,
    )
    m["error_budget_minutes"] = Measure(budget, sample_size=probed)
    m["error_budget_used_minutes"] = Measure(
        float(down) if probed else None, float(down) if probed else None, budget, probed, stale=p_stale
    )
    allowed = probed * BUDGET_FRACTION
    m["error_budget_burn_rate"] = Measure(
        down / allowed if probed else None, float(down) if probed else None, allowed, probed, stale=p_stale
    )
    m["error_budget_runout_days"] = Measure(
        budget / (down / probed) / 1440.0 if probed and down else None,
        sample_size=probed,
        stale=p_stale,
        no_events=bool(probed) and not down,
    )

    s_probed = s_good = 0
    session_minutes = 0.0
    for d in scope.session_days:
        s_start, s_end = cal.session_bounds_utc(d)
        s_start, s_end = max(s_start, start), min(s_end, end)
        if s_end <= s_start:
            continue
        p, g = _probe_minutes(conn, s_start, s_end)
        s_probed, s_good = s_probed + p, s_good + g
        session_minutes += (s_end - s_start).total_seconds() / 60.0
    m["session_uptime_pct"] = Measure(
        100.0 * s_good / s_probed if s_probed else None,
        s_good,
        s_probed,
        s_probed,
        stale=s_probed < COVERAGE_MIN * session_minutes,
    )

    # Rows, not SQL sums: math.fsum is exact, so both dialects give the same figures.
    per_le: dict[str, list[float]] = {}
    lat_minutes: set = set()
    for ts, le, c in _rows(
        conn,
        "select ts, le, request_count from raw_latency_buckets where ts >= :start and ts < :end",
        {"start": start, "end": end},
    ):
        per_le.setdefault(str(le), []).append(float(c))
        lat_minutes.add(ts)
    if per_le:
        buckets = [(le, _fsum(v)) for le, v in per_le.items()]
        inf_count = sum(c for le, c in buckets if math.isinf(float(le)))
        q = histogram_quantile(0.95, buckets)
        m["sli_p95_latency_ms"] = Measure(
            _f(q * 1000.0) if math.isfinite(q) else None,
            sample_size=int(round(inf_count)),
            stale=len(lat_minutes) < COVERAGE_MIN * window_minutes,
            no_events=inf_count == 0,
        )
    else:
        m["sli_p95_latency_ms"] = Measure(None, sample_size=0, stale=True)

    errors = [
        float(r[0])
        for r in _rows(
            conn,
            "select error_count from raw_error_minutes where ts >= :start and ts < :end",
            {"start": start, "end": end},
        )
    ]
    e_minutes = len(errors)
    m["errors_count"] = Measure(
        _fsum(errors) if e_minutes else None,
        sample_size=e_minutes,
        stale=e_minutes < COVERAGE_MIN * window_minutes,
    )

    days = (end - start).total_seconds() / 86400.0
    alerts = _frame(
        conn,
        "select alert_id, priority from raw_alerts where created_at >= :start and created_at < :end",
        {"start": start, "end": end},
    )
    prios = [p for p in alerts["priority"]] if len(alerts) else []
    m["alerts_per_day"] = Measure(len(prios) / days, len(prios), days, len(prios))
    for p in ALERT_SPLITS:
        k = sum(1 for x in prios if x == p)
        m[f"alerts_per_day_{p.lower()}"] = Measure(k / days, k, days, k)

    # MTTR over incidents resolved in the window; MTTD and MTTA over those triggered in it
    ttr = _incident_minutes(conn, "triggered_at", "resolved_at", "resolved_at", start, end)
    m["mttr_minutes"] = _mean_minutes(ttr)
    m["mttr_p50_minutes"] = Measure(percentile(ttr, 50), sample_size=len(ttr), no_events=not ttr)
    m["mttd_minutes"] = _mean_minutes(
        _incident_minutes(conn, "impact_start_at", "triggered_at", "triggered_at", start, end)
    )
    tta = _incident_minutes(conn, "triggered_at", "acknowledged_at", "triggered_at", start, end)
    m["mtta_minutes"] = _mean_minutes(tta)
    m["mtta_p50_minutes"] = Measure(percentile(tta, 50), sample_size=len(tta), no_events=not tta)

    f_start = end - MTBF_WINDOW
    f_probed, f_good = _probe_minutes(conn, f_start, end)
    failures = int(
        _scalar_row(
            conn,
            "select count(*) as n from raw_incidents where triggered_at >= :start and triggered_at < :end "
            "and priority in ('P0', 'P1')",
            {"start": f_start, "end": end},
        ).n
    )
    up_days = (MTBF_WINDOW.total_seconds() / 60.0 - (f_probed - f_good)) / 1440.0
    m["mtbf_days"] = Measure(
        up_days / failures if failures else None,
        up_days,
        failures,
        failures,
        no_events=failures == 0,
    )
    return m


# ---------------------------------------------------------------- delivery
def delivery_measures(conn, scope: Scope) -> dict[str, Measure]:
    import pandas as pd

    start, end = scope.start, scope.end
    deps = _frame(
        conn,
        "select deployment_id, status, is_rollback, rolled_back, created_at, finished_at, first_commit_at "
        "from raw_deployments where lower(environment) = 'production' "
        "and finished_at >= :start and finished_at < :end order by deployment_id",
        {"start": start, "end": end},
        ts_cols=("created_at", "finished_at", "first_commit_at"),
    )
    ok = (
        [
            r
            for r in deps.to_dict("records")
            if str(r["status"]).lower() == "success" and not bool(r["is_rollback"])
        ]
        if len(deps)
        else []
    )
    n = len(ok)
    bdays = scope.business_days
    m: dict[str, Measure] = {
        "deployments_per_day": Measure(n / bdays if bdays else None, n, bdays, n, no_events=not bdays)
    }

    leads = [
        (r["finished_at"] - r["first_commit_at"]).total_seconds() / 3600.0
        for r in ok
        if pd.notna(r["first_commit_at"])
    ]
    m["lead_time_hours"] = Measure(percentile(leads, 50), sample_size=len(leads), no_events=not leads)
    m["lead_time_p90_hours"] = Measure(percentile(leads, 90), sample_size=len(leads), no_events=not leads)

    causing = {
        str(r[0])
        for r in conn.execute(
            sa.text(
                "select distinct caused_by_deployment_id from raw_incidents where caused_by_deployment_id is not null"
            )
        )
    }
    failed = {
        str(r["deployment_id"]) for r in ok if bool(r["rolled_back"]) or str(r["deployment_id"]) in causing
    }
    m["change_failure_rate_pct"] = Measure(
        100.0 * len(failed) / n if n else None, len(failed), n, n, no_events=n == 0
    )

    rec = _frame(
        conn,
        "select i.incident_id, i.resolved_at, d.finished_at from raw_incidents as i "
        "join raw_deployments as d on d.deployment_id = i.caused_by_deployment_id "
        "where i.resolved_at >= :start and i.resolved_at < :end and d.finished_at is not null "
        "order by i.incident_id",
        {"start": start, "end": end},
        ts_cols=("resolved_at", "finished_at"),
    )
    rt = (
        [_minutes(r - f) for r, f in zip(rec["resolved_at"], rec["finished_at"], strict=True)]
        if len(rec)
        else []
    )
    m["recovery_time_minutes"] = Measure(percentile(rt, 50), sample_size=len(rt), no_events=not rt)
    return m


# ---------------------------------------------------------------- post-incident practice
POSTMORTEM_DUE = timedelta(hours=48)
ACTION_ITEM_PRIORITIES = ("P0", "P1", "P2")  # P3 is best effort: no due date, not measured


def practice_measures(conn, scope: Scope) -> dict[str, Measure]:
    """Post-mortem practice from ``raw_action_items`` (GitHub issues) and ``raw_incidents``.

    Both KPIs place an obligation in the period by its **due time**, so every counted
    item has a final outcome at the scope's end and recomputing later never changes it:

    - ``action_items_on_time_pct``: action items (P0–P2) whose SLA ``due_at`` falls in
      [start, end); completed on time = closed (state closed) at or before ``due_at``.
    - ``postmortems_on_time_pct``: P0/P1 incidents whose post-mortem deadline
      (resolved + 48 h) falls in [start, end); on time = a post-mortem issue for the
      incident created at or before the deadline.
    No item / incident due → value NULL, status ``no_events``.
    """
    start, end = scope.start, scope.end
    m: dict[str, Measure] = {}
    due = _rows(
        conn,
        "select issue_number, state, closed_at, due_at from raw_action_items "
        "where kind = 'action_item' and priority in ('P0', 'P1', 'P2') "
        "and due_at >= :start and due_at < :end order by issue_number",
        {"start": start, "end": end},
    )
    from kaizen.sources.base import parse_ts  # text (SQLite) or datetime (PostgreSQL) → aware UTC

    n_due = len(due)
    on_time = sum(
        1
        for _num, state, closed, due_at in due
        if str(state) == "closed" and closed is not None and parse_ts(closed) <= parse_ts(due_at)
    )
    m["action_items_on_time_pct"] = Measure(
        100.0 * on_time / n_due if n_due else None, on_time, n_due, n_due, no_events=not n_due
    )

    incidents = _rows(
        conn,
        "select incident_id, resolved_at from raw_incidents where priority in ('P0', 'P1') "
        "and resolved_at >= :start and resolved_at < :end order by incident_id",
        {"start": start - POSTMORTEM_DUE, "end": end - POSTMORTEM_DUE},
    )
    published: dict[str, datetime] = {}
    if incidents:
        q = sa.text(
            "select incident_id, min(created_at) as first_at from raw_action_items "
            "where kind = 'postmortem' and incident_id in :ids group by incident_id"
        ).bindparams(sa.bindparam("ids", expanding=True))
        for iid, first_at in conn.execute(q, {"ids": [str(r[0]) for r in incidents]}):
            published[str(iid)] = parse_ts(first_at)
    n_inc = len(incidents)
    pm_on_time = sum(
        1
        for iid, resolved in incidents
        if str(iid) in published and published[str(iid)] <= parse_ts(resolved) + POSTMORTEM_DUE
    )
    m["postmortems_on_time_pct"] = Measure(
        100.0 * pm_on_time / n_inc if n_inc else None, pm_on_time, n_inc, n_inc, no_events=not n_inc
    )
    return m


# ---------------------------------------------------------------- one scope
def measure_scope(conn, scope: Scope, cat: catalog_mod.Catalog | None = None) -> dict[str, Measure]:
    """Every measure of one scope (reads only)."""
    cat = cat or catalog_mod.load_catalog()
    rf = float(cat.convention("risk_free_rate_annual", 0.0) or 0.0)
    out: dict[str, Measure] = {}
    out.update(trading_measures(conn, scope, config.capital_base_inr(), rf))
    out.update(reliability_measures(conn, scope))
    out.update(delivery_measures(conn, scope))
    out.update(practice_measures(conn, scope))
    return out
