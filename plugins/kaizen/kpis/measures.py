"""KPI measures over one *scope*: a period of any grain, up to a point in time.

A :class:`Scope` says which trading days (trades, orders) and which UTC window
(probes, latency, errors, alerts, incidents, deployments) a period covers:

- grain ``day`` (trading day D): trades closed / orders submitted on D; the review
  window [previous trading day 16:00 IST, D 16:00 IST);
- grains ``week``, ``month``, ``quarter``: trading days of the period up to the as-of
  day; the window [period start 00:00 IST, min(period end + 1 00:00 IST, as-of)).

Counts and sums come from the rows of the scope, never from averaging finer grains;
percentiles, medians, Sharpe and drawdown are recomputed from the rows or the daily
series at every grain. Trading, orders and the per-minute series come from the facts
(:mod:`kaizen.warehouse.facts`: per trading day, per 15-minute slot); incidents,
alerts, deployments and action items from their landing tables. No DAG file imports
this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from kaizen import calendar as cal
from kaizen import config, warehouse
from kaizen.kpis import catalog as catalog_mod
from kaizen.kpis.maths import deepest_fall, drawdown_series, histogram_quantile, percentile, sharpe
from kaizen.warehouse import facts

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
    # where the warehouse's history begins (None: unknown); trailing windows that reach
    # back past it (MTBF's 90 days) count only what was observed
    observed_from: datetime | None = None

    @property
    def window_minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0


# ---------------------------------------------------------------- helpers
def _f(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _fsum(values) -> float:
    """Exact sum of floats (order-independent, so every dialect and batch agrees)."""
    return math.fsum(values)


def _minutes(td) -> float:
    return td.total_seconds() / 60.0


# ---------------------------------------------------------------- the data, in memory
# Measures read the facts and the small landing tables ONCE for a span of scopes (one
# day, or every day and period of a year-long rebuild), then each scope is a pair of
# binary searches into them. A window's minutes are the sums over its 15-minute slots:
# every window edge Kaizen uses is a slot edge (kaizen.warehouse.facts).
class _Prefix:
    """Prefix sums of integer columns along sorted keys: totals over a key range."""

    def __init__(self, keys: list, columns: list[list[int]]):
        import numpy as np

        self.keys = np.asarray(keys, dtype="int64")
        self.sums = np.vstack([np.zeros((1, len(columns)), dtype="int64"),
                               np.cumsum(np.asarray(columns, dtype="int64").reshape(len(columns), -1).T, axis=0)])

    def range(self, lo: int, hi: int) -> tuple[int, int]:
        import numpy as np

        return int(np.searchsorted(self.keys, lo)), int(np.searchsorted(self.keys, hi))

    def total(self, lo: int, hi: int) -> list[int]:
        i, j = self.range(lo, hi)
        return [int(x) for x in self.sums[j] - self.sums[i]]


def _slots(start: datetime, end: datetime) -> tuple[int, int]:
    """The 15-minute slots of the window [start, end), whose ends are slot edges."""
    lo, hi = facts.slot_of(start), facts.slot_of(end)
    if facts.slot_start(lo) != start or facts.slot_start(hi) != end:
        raise ValueError(f"window {start}…{end} does not start and end on 15-minute edges")
    return lo, hi


@dataclass
class Data:
    """The rows every measure needs for a set of scopes."""

    trading: list  # fct_trading_day rows (dicts) from the history start to last_day, by day
    trading_days: list  # their days (bisect)
    session_pnl: dict  # date → session P&L (to the paisa), the whole history to last_day
    last_day: date  # the last trading day of the scopes read
    orders: list  # fct_orders_day rows (dicts), by day
    order_days: list  # their days (bisect)
    exec_days: list  # fct_execution_day: the day of each execution time, sorted
    exec_ms: object  # numpy: the execution times in ms, aligned with exec_days
    exec_orders: object  # numpy: how many filled orders of the day took that long
    probes: _Prefix  # fct_probe_slot: probed, up, down minutes by slot
    errors: _Prefix  # fct_error_slot: minutes by slot
    error_slots: list  # fct_error_slot (slot, errors, errors_rest), by slot
    latency: list  # fct_latency_slot (slot, le, count, count_rest), by slot
    latency_slots: list  # their slots (bisect)
    latency_minutes: _Prefix  # minutes with a histogram, by slot
    alert_ts: list  # alert creation times, sorted
    alert_priority: list  # aligned with alert_ts
    incidents: list  # dicts with aware datetimes
    causing: set  # deployment ids named by any incident
    deployments: list  # production deployments finished in the span
    recoveries: list  # (incident id, resolved_at, deployment finished_at)
    action_items: list
    postmortems: dict  # incident id → first post-mortem issue created_at
    conn: object = None  # the connection read from: families that load their own rows (team, cost) use it
    _equity: dict = field(default_factory=dict, repr=False)

    def equity(self, capital: float) -> tuple[list[date], list[float], list]:
        """Every trading day from the first session with P&L to the last day read, its
        session P&L (0 without trades) and the drawdown series on ``capital``: computed
        once for all the scopes read, which each take the prefix up to their last day
        (the running peak of a day depends only on the days before it)."""
        if capital not in self._equity:
            sessions = cal.trading_days(min(self.session_pnl), self.last_day) if self.session_pnl else []
            pnl = [self.session_pnl.get(d, 0.0) for d in sessions]
            self._equity[capital] = sessions, pnl, drawdown_series(capital, pnl)
        return self._equity[capital]


TRADING_FACT_COLS = ("trading_day", "trades", "wins", "losses", "net_pnl_inr", "net_pnl_rest_inr",
                     "gross_profit_inr", "gross_profit_rest_inr", "gross_loss_inr", "gross_loss_rest_inr",
                     "largest_win_inr", "largest_loss_inr")
ORDER_FACT_COLS = ("trading_day", "submitted", "filled", "executions", "execution_ms", "execution_rest_ms")


def _pairs(rows, name: str):
    """The (sum, rest) pairs of fact column ``name`` (see :mod:`kaizen.warehouse.facts`)."""
    return ((r[f"{name}_inr"], r[f"{name}_rest_inr"]) for r in rows)


_as_date = warehouse.as_date


def _between(keys: list, rows: list, lo, hi) -> list:
    """The ``rows`` whose sorted ``keys`` are in [lo, hi]."""
    import bisect

    return rows[bisect.bisect_left(keys, lo):bisect.bisect_right(keys, hi)]


def _day_facts(rows, cols) -> list[dict]:
    out = [dict(zip(cols, r, strict=True)) for r in rows]
    for r in out:
        r["trading_day"] = _as_date(r["trading_day"])
    return out


def load_data(conn, scopes) -> Data:
    """Read what ``scopes`` need, once: the day facts of their trading days (trading:
    the whole history, for Sharpe and drawdown), the slot facts of their windows (down
    minutes from 90 days before the first window's end, for MTBF) and the events of
    their windows."""
    import numpy as np

    from kaizen import warehouse
    from kaizen.sources.base import parse_ts

    scopes = list(scopes)
    first_day = min(s.first_day for s in scopes)
    last_day = max(s.last_day for s in scopes)
    end = max(s.end for s in scopes)
    start = min(s.start for s in scopes)
    mtbf_start = min(start, min(s.end for s in scopes) - MTBF_WINDOW)  # probes and failures
    lo = min(mtbf_start, start - POSTMORTEM_DUE)  # incidents
    window = {"start": start, "end": end}
    days = {"first": first_day, "last": last_day}
    slot_hi = facts.slot_of(end - timedelta(microseconds=1)) + 1
    slots = {"lo": facts.slot_of(start), "hi": slot_hi}  # the windows
    mtbf_slots = {"lo": facts.slot_of(mtbf_start), "hi": slot_hi}  # and the 90 days before for MTBF

    def rows(sql, params=None):
        return warehouse.fetch_rows(conn, sql, params)

    trading = _day_facts(rows(f"select {', '.join(TRADING_FACT_COLS)} from fct_trading_day "
                              "where trading_day <= :last order by trading_day", days), TRADING_FACT_COLS)
    # P&L is booked in paisa: a session's P&L to the paisa is exact on every dialect
    session_pnl = {r["trading_day"]: round(facts.compose(_pairs([r], "net_pnl")), 2) for r in trading}
    orders = _day_facts(rows(f"select {', '.join(ORDER_FACT_COLS)} from fct_orders_day "
                             "where trading_day >= :first and trading_day <= :last order by trading_day", days),
                        ORDER_FACT_COLS)
    execs = rows("select trading_day, execution_us, orders from fct_execution_day "
                 "where trading_day >= :first and trading_day <= :last order by trading_day, execution_us", days)
    probe_rows = rows("select slot, probed_minutes, up_minutes, down_minutes from fct_probe_slot "
                      "where slot >= :lo and slot < :hi order by slot", mtbf_slots)
    error_rows = rows("select slot, minutes, errors, errors_rest from fct_error_slot "
                      "where slot >= :lo and slot < :hi order by slot", slots)
    latency = rows("select slot, le, count, count_rest, slot_minutes from fct_latency_slot "
                   "where slot >= :lo and slot < :hi order by slot, le_seconds", slots)
    lat_minutes = {r[0]: r[4] for r in latency}
    alerts = [(parse_ts(t), p) for t, p in rows(
        "select created_at, priority from raw_alerts where created_at >= :start and created_at < :end "
        "order by created_at", window)]

    inc_cols = ("incident_id", "priority", "triggered_at", "acknowledged_at", "resolved_at", "impact_start_at")
    incidents = [
        dict(zip(inc_cols, (r[0], r[1], *(parse_ts(v) for v in r[2:])), strict=True))
        for r in rows(
            f"select {', '.join(inc_cols)} from raw_incidents "
            "where (triggered_at >= :lo and triggered_at < :end) or (resolved_at >= :lo and resolved_at < :end) "
            "order by incident_id",
            {"lo": lo, "end": end},
        )
    ]
    causing = {
        str(r[0])
        for r in rows(
            "select distinct caused_by_deployment_id from raw_incidents where caused_by_deployment_id is not null"
        )
    }
    dep_cols = ("deployment_id", "status", "is_rollback", "rolled_back", "finished_at", "first_commit_at")
    deployments = [
        {**dict(zip(dep_cols, r, strict=True)), "finished_at": parse_ts(r[4]), "first_commit_at": parse_ts(r[5])}
        for r in rows(
            f"select {', '.join(dep_cols)} from raw_deployments where lower(environment) = 'production' "
            "and finished_at >= :start and finished_at < :end order by deployment_id",
            window,
        )
    ]
    recoveries = [
        (str(r[0]), parse_ts(r[1]), parse_ts(r[2]))
        for r in rows(
            "select i.incident_id, i.resolved_at, d.finished_at from raw_incidents as i "
            "join raw_deployments as d on d.deployment_id = i.caused_by_deployment_id "
            "where i.resolved_at >= :start and i.resolved_at < :end and d.finished_at is not null "
            "order by i.incident_id",
            window,
        )
    ]
    action_items = [
        (r[0], str(r[1]), parse_ts(r[2]), parse_ts(r[3]))
        for r in rows(
            "select issue_number, state, closed_at, due_at from raw_action_items "
            "where kind = 'action_item' and priority in ('P0', 'P1', 'P2') "
            "and due_at >= :start and due_at < :end order by issue_number",
            window,
        )
    ]
    postmortems = {
        str(iid): parse_ts(first_at)
        for iid, first_at in rows(
            "select incident_id, min(created_at) from raw_action_items "
            "where kind = 'postmortem' and incident_id is not null group by incident_id"
        )
    }
    return Data(
        trading=trading,
        trading_days=[r["trading_day"] for r in trading],
        session_pnl=session_pnl,
        last_day=last_day,
        orders=orders,
        order_days=[r["trading_day"] for r in orders],
        exec_days=[_as_date(r[0]) for r in execs],
        exec_ms=facts.execution_ms(0, np.asarray([r[1] for r in execs], dtype=np.int64)),
        exec_orders=np.asarray([r[2] for r in execs], dtype=np.int64),
        probes=_Prefix([r[0] for r in probe_rows], [[r[k] for r in probe_rows] for k in (1, 2, 3)]),
        errors=_Prefix([r[0] for r in error_rows], [[r[1] for r in error_rows]]),
        error_slots=[(r[0], r[2], r[3]) for r in error_rows],
        latency=[(r[0], r[1], r[2], r[3]) for r in latency],
        latency_slots=[r[0] for r in latency],
        latency_minutes=_Prefix(sorted(lat_minutes), [[lat_minutes[k] for k in sorted(lat_minutes)]]),
        alert_ts=[t for t, _ in alerts],
        alert_priority=[p for _, p in alerts],
        incidents=incidents,
        causing=causing,
        deployments=deployments,
        recoveries=recoveries,
        action_items=action_items,
        postmortems=postmortems,
        conn=conn,
    )


def _data(src, scope: Scope) -> Data:
    """``src`` is loaded :class:`Data` or a connection to load it from."""
    return src if isinstance(src, Data) else load_data(src, [scope])


def _probe_minutes(data: Data, start: datetime, end: datetime) -> tuple[int, int]:
    """(probed minutes, minutes up on every instance) in [start, end)."""
    probed, up, _ = data.probes.total(*_slots(start, end))
    return probed, up


# ---------------------------------------------------------------- trading
def trading_measures(src, scope: Scope, capital: float, rf_annual: float) -> dict[str, Measure]:
    data = _data(src, scope)
    first, last = scope.first_day, scope.last_day
    import bisect

    import numpy as np

    days = data.trading[bisect.bisect_left(data.trading_days, first):bisect.bisect_right(data.trading_days, last)]
    sessions_in_scope = len(scope.session_days)
    n = sum(r["trades"] for r in days)
    n_wins, n_losses = sum(r["wins"] for r in days), sum(r["losses"] for r in days)
    wins = [r["largest_win_inr"] for r in days if r["largest_win_inr"] is not None]
    losses = [r["largest_loss_inr"] for r in days if r["largest_loss_inr"] is not None]
    orders = _between(data.order_days, data.orders, first, last)
    submitted = sum(r["submitted"] for r in orders)
    # A day of a provisional calendar year without a single trade or order is most likely
    # a festival holiday the calendar does not know yet: "no events", not a stale source.
    holiday = scope.grain == "day" and n == 0 and submitted == 0 and cal.is_provisional(first.year)
    stale = n == 0 and not holiday
    net = facts.compose(_pairs(days, "net_pnl"))
    gross_profit, gross_loss = facts.compose(_pairs(days, "gross_profit")), facts.compose(_pairs(days, "gross_loss"))
    m: dict[str, Measure] = {
        "trades_count": Measure(float(n) if n else None, sample_size=n, stale=stale),
        "win_rate_pct": Measure(100.0 * n_wins / n if n else None, n_wins, n, n, stale=stale),
        "net_pnl_inr": Measure(net if n else None, sample_size=n, stale=stale),
        "avg_daily_pnl_inr": Measure(
            net / sessions_in_scope if n else None,
            net if n else None,
            float(sessions_in_scope),
            sessions_in_scope if n else 0,
            stale=stale,
        ),
        "largest_win_inr": Measure(
            max(wins) if wins else None, sample_size=n_wins, stale=stale, no_events=not n_wins
        ),
        "largest_loss_inr": Measure(
            min(losses) if losses else None, sample_size=n_losses, stale=stale, no_events=not n_losses
        ),
        "profit_factor": Measure(
            gross_profit / gross_loss if n_losses else None,
            gross_profit if n else None,
            gross_loss if n else None,
            n,
            stale=stale,
            no_events=not n_losses,
        ),
    }

    # Session P&L per trading day since the history start (sessions without trades: 0).
    sessions, session_pnl, points = data.equity(capital)
    upto = bisect.bisect_right(sessions, last)
    sessions, session_pnl, points = sessions[:upto], session_pnl[:upto], points[:upto]
    if scope.grain == "day":
        window = session_pnl[-SHARPE_SESSIONS:]  # rolling: the trailing 252 sessions
    else:
        window = [p for d, p in zip(sessions, session_pnl, strict=True) if d >= first]
    value, mean, std = sharpe([p / capital for p in window], rf_annual)
    m["sharpe_ratio"] = Measure(value, mean, std, len(window), stale=stale)

    # Deepest end-of-day fall below the running peak (since history start) reached in scope.
    worst = deepest_fall(pt for d, pt in zip(sessions, points, strict=True) if d >= first)
    m["max_drawdown_pct"] = Measure(
        worst.fall_pct if worst else None,
        worst.fall if worst else None,
        worst.peak if worst else None,
        len(sessions),
        stale=stale,
    )

    o_stale = submitted == 0 and not holiday
    filled = sum(r["filled"] for r in orders)
    executions = sum(r["executions"] for r in orders)
    m["execution_success_pct"] = Measure(
        100.0 * filled / submitted if submitted else None, filled, submitted, submitted, stale=o_stale
    )
    total_ms = facts.compose((r["execution_ms"], r["execution_rest_ms"]) for r in orders)
    m["avg_execution_ms"] = Measure(
        total_ms / executions if executions else None,
        total_ms if executions else None,
        executions,
        executions,
        stale=o_stale,
    )
    # every filled order's time, each taken as often as it occurred
    exec_ms = np.repeat(*(_between(data.exec_days, col, first, last) for col in (data.exec_ms, data.exec_orders)))
    m["p95_execution_ms"] = Measure(percentile(exec_ms, 95), sample_size=len(exec_ms), stale=o_stale)
    if holiday:
        for measure in m.values():
            measure.no_events = measure.no_events or measure.value is None
    return m


# ---------------------------------------------------------------- reliability
def _incident_minutes(data: Data, since: str, until: str, placed_by: str, start: datetime, end: datetime):
    """Minutes from ``since`` to ``until`` of the incidents whose ``placed_by`` time is in
    [start, end) and that have both times."""
    return [
        _minutes(r[until] - r[since])
        for r in data.incidents
        if r[placed_by] is not None and start <= r[placed_by] < end and r[since] is not None and r[until] is not None
    ]


def _mean_minutes(values: list[float]) -> Measure:
    """Mean with numerator (total minutes) and denominator (incidents); no_events when none."""
    total = _fsum(values)
    n = len(values)
    return Measure(total / n if n else None, total if n else None, n, n, no_events=not n)


def reliability_measures(src, scope: Scope) -> dict[str, Measure]:
    data = _data(src, scope)
    start, end = scope.start, scope.end
    window_minutes = scope.window_minutes
    m: dict[str, Measure] = {}

    probed, good = _probe_minutes(data, start, end)
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
        p, g = _probe_minutes(data, s_start, s_end)
        s_probed, s_good = s_probed + p, s_good + g
        session_minutes += (s_end - s_start).total_seconds() / 60.0
    m["session_uptime_pct"] = Measure(
        100.0 * s_good / s_probed if s_probed else None,
        s_good,
        s_probed,
        s_probed,
        stale=s_probed < COVERAGE_MIN * session_minutes,
    )

    lo, hi = _slots(start, end)
    sums: dict[str, list[float]] = {}
    for _, le, count, rest in _between(data.latency_slots, data.latency, lo, hi - 1):
        sums.setdefault(le, []).extend((count, rest))
    buckets = sorted(((le, math.fsum(v)) for le, v in sums.items()), key=lambda b: float(b[0]))
    if buckets:
        inf_count = sum(c for le, c in buckets if math.isinf(float(le)))
        q = histogram_quantile(0.95, buckets)
        m["sli_p95_latency_ms"] = Measure(
            _f(q * 1000.0) if math.isfinite(q) else None,
            sample_size=int(round(inf_count)),
            stale=data.latency_minutes.total(lo, hi)[0] < COVERAGE_MIN * window_minutes,
            no_events=inf_count == 0,
        )
    else:
        m["sli_p95_latency_ms"] = Measure(None, sample_size=0, stale=True)

    [e_minutes] = data.errors.total(lo, hi)
    i, j = data.errors.range(lo, hi)
    errors = facts.compose((e, r) for _, e, r in data.error_slots[i:j])
    m["errors_count"] = Measure(
        errors if e_minutes else None,
        sample_size=e_minutes,
        stale=e_minutes < COVERAGE_MIN * window_minutes,
    )

    days = (end - start).total_seconds() / 86400.0
    import bisect

    i, j = bisect.bisect_left(data.alert_ts, start), bisect.bisect_left(data.alert_ts, end)
    n_alerts = j - i
    m["alerts_per_day"] = Measure(n_alerts / days, n_alerts, days, n_alerts)
    for p in ALERT_SPLITS:
        k = sum(1 for x in data.alert_priority[i:j] if x == p)
        m[f"alerts_per_day_{p.lower()}"] = Measure(k / days, k, days, k)

    # MTTR over incidents resolved in the window; MTTD and MTTA over those triggered in it
    ttr = _incident_minutes(data, "triggered_at", "resolved_at", "resolved_at", start, end)
    m["mttr_minutes"] = _mean_minutes(ttr)
    m["mttr_p50_minutes"] = Measure(percentile(ttr, 50), sample_size=len(ttr), no_events=not ttr)
    m["mttd_minutes"] = _mean_minutes(
        _incident_minutes(data, "impact_start_at", "triggered_at", "triggered_at", start, end)
    )
    tta = _incident_minutes(data, "triggered_at", "acknowledged_at", "triggered_at", start, end)
    m["mtta_minutes"] = _mean_minutes(tta)
    m["mtta_p50_minutes"] = Measure(percentile(tta, 50), sample_size=len(tta), no_events=not tta)

    f_start = end - MTBF_WINDOW
    if scope.observed_from is not None:  # the observed window only (semantic change, see the README)
        f_start = min(max(f_start, scope.observed_from), end)
    f_down = data.probes.total(*_slots(f_start, end))[2]
    failures = sum(
        1
        for r in data.incidents
        if r["priority"] in FAILURE_PRIORITIES and r["triggered_at"] is not None and f_start <= r["triggered_at"] < end
    )
    up_days = (_minutes(end - f_start) - f_down) / 1440.0
    m["mtbf_days"] = Measure(
        up_days / failures if failures else None,
        up_days,
        failures,
        failures,
        no_events=failures == 0,
    )
    return m


# ---------------------------------------------------------------- delivery
def delivery_measures(src, scope: Scope) -> dict[str, Measure]:
    data = _data(src, scope)
    start, end = scope.start, scope.end
    ok = [
        r
        for r in data.deployments
        if start <= r["finished_at"] < end and str(r["status"]).lower() == "success" and not bool(r["is_rollback"])
    ]
    n = len(ok)
    bdays = scope.business_days
    m: dict[str, Measure] = {
        "deployments_per_day": Measure(n / bdays if bdays else None, n, bdays, n, no_events=not bdays)
    }
    leads = [
        (r["finished_at"] - r["first_commit_at"]).total_seconds() / 3600.0
        for r in ok
        if r["first_commit_at"] is not None
    ]
    m["lead_time_hours"] = Measure(percentile(leads, 50), sample_size=len(leads), no_events=not leads)
    m["lead_time_p90_hours"] = Measure(percentile(leads, 90), sample_size=len(leads), no_events=not leads)
    failed = {
        str(r["deployment_id"]) for r in ok if bool(r["rolled_back"]) or str(r["deployment_id"]) in data.causing
    }
    m["change_failure_rate_pct"] = Measure(
        100.0 * len(failed) / n if n else None, len(failed), n, n, no_events=n == 0
    )
    rt = [_minutes(resolved - finished) for _iid, resolved, finished in data.recoveries if start <= resolved < end]
    m["recovery_time_minutes"] = Measure(percentile(rt, 50), sample_size=len(rt), no_events=not rt)
    return m


# ---------------------------------------------------------------- post-incident practice
POSTMORTEM_DUE = timedelta(hours=48)
ACTION_ITEM_PRIORITIES = ("P0", "P1", "P2")  # P3 is best effort: no due date, not measured


def practice_measures(src, scope: Scope) -> dict[str, Measure]:
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
    data = _data(src, scope)
    start, end = scope.start, scope.end
    m: dict[str, Measure] = {}
    due = [r for r in data.action_items if start <= r[3] < end]
    n_due = len(due)
    on_time = sum(1 for _num, state, closed, due_at in due if state == "closed" and closed is not None and closed <= due_at)
    m["action_items_on_time_pct"] = Measure(
        100.0 * on_time / n_due if n_due else None, on_time, n_due, n_due, no_events=not n_due
    )
    incidents = [
        r
        for r in data.incidents
        if r["priority"] in FAILURE_PRIORITIES
        and r["resolved_at"] is not None
        and start - POSTMORTEM_DUE <= r["resolved_at"] < end - POSTMORTEM_DUE
    ]
    n_inc = len(incidents)
    pm_on_time = sum(
        1
        for r in incidents
        if str(r["incident_id"]) in data.postmortems
        and data.postmortems[str(r["incident_id"])] <= r["resolved_at"] + POSTMORTEM_DUE
    )
    m["postmortems_on_time_pct"] = Measure(
        100.0 * pm_on_time / n_inc if n_inc else None, pm_on_time, n_inc, n_inc, no_events=not n_inc
    )
    return m


# ---------------------------------------------------------------- one scope
def measure_scope(src, scope: Scope, cat: catalog_mod.Catalog | None = None) -> dict[str, Measure]:
    """Every measure of one scope (reads only); ``src`` is a connection or the
    :class:`Data` loaded for a batch of scopes by :func:`load_data`."""
    cat = cat or catalog_mod.load_catalog()
    data = _data(src, scope)
    rf = float(cat.convention("risk_free_rate_annual", 0.0) or 0.0)
    out: dict[str, Measure] = {}
    out.update(trading_measures(data, scope, config.capital_base_inr(), rf))
    out.update(reliability_measures(data, scope))
    out.update(delivery_measures(data, scope))
    out.update(practice_measures(data, scope))
    from kaizen.cost.measures import cost_figures  # plain dicts: that module cannot import this one

    out.update({k: Measure(**v) for k, v in cost_figures(data, scope).items()})
    from kaizen.team.measures import team_measures  # plain dicts too, for the same reason

    out.update({k: Measure(**v) for k, v in team_measures(data, scope).items()})
    return out
