"""KPI rows for periods of every grain: the scope of a period, status and trend, and
the idempotent write into ``kpi_values``.

- ``day``: one NSE trading day (see :func:`day_scope`).
- ``week`` (ISO, Mon–Sun), ``month``, ``quarter``: recomputed *to date* after each
  trading day from the landing tables (:func:`period_scope`), flagged ``is_complete``
  once the as-of time has passed the period's end.

A row whose content is unchanged is not rewritten, so recomputing any period leaves
``kpi_values`` identical (``computed_at``/``run_id`` keep the run that last changed it).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.kpis import catalog as catalog_mod
from kaizen.kpis import status as st
from kaizen.kpis.measures import Measure, Scope, business_days, measure_scope, weekdays

ROLLUP_GRAINS = ("week", "month", "quarter")
CONTENT_COLS = (
    "period_end",
    "value",
    "numerator",
    "denominator",
    "sample_size",
    "target",
    "status",
    "trend",
    "is_complete",
)


# ---------------------------------------------------------------- scopes
def day_scope(day: date) -> Scope:
    start, end = cal.review_window_utc(day)
    return Scope(
        grain="day",
        period_start=day,
        period_end=day,
        first_day=day,
        last_day=day,
        start=start,
        end=end,
        full_minutes=(end - start).total_seconds() / 60.0,
        session_days=(day,),
        business_days=business_days(day),
    )


def period_scope(grain: str, any_day: date, as_of: datetime) -> Scope:
    """The ``grain`` period containing ``any_day``, covered up to ``as_of`` (aware)."""
    ps, pe = cal.period_bounds(grain, any_day)
    start, full_end = cal.day_bounds_utc(ps, pe)
    end = min(full_end, max(start, as_of.astimezone(UTC)))
    as_of_day = (end - timedelta(microseconds=1)).astimezone(cal.IST).date() if end > start else ps - timedelta(1)
    # trades of a session count once its review time has passed (the daily run's cut-off)
    last = min(pe, as_of_day)
    if last >= ps and last == as_of_day and end < full_end:
        local = end.astimezone(cal.IST)
        if local.date() == last and cal.is_trading_day(last) and local.time() < cal.review_time(last):
            last = last - timedelta(days=1)
    sessions = tuple(cal.trading_days(ps, last)) if last >= ps else ()
    return Scope(
        grain=grain,
        period_start=ps,
        period_end=pe,
        first_day=ps,
        last_day=max(last, ps - timedelta(days=1)),
        start=start,
        end=end,
        full_minutes=(full_end - start).total_seconds() / 60.0,
        session_days=sessions,
        business_days=weekdays(ps, last) if last >= ps else 0,
    )


def periods_between(grain: str, first: date, last: date) -> list[date]:
    """Start dates of the ``grain`` periods overlapping [first, last]."""
    out, d = [], cal.period_bounds(grain, first)[0]
    while d <= last:
        out.append(d)
        d = cal.period_bounds(grain, d)[1] + timedelta(days=1)
    return out


def period_end_at(scope: Scope) -> datetime:
    if scope.grain == "day":
        return cal.review_window_utc(scope.period_start)[1]
    return datetime.combine(scope.period_end + timedelta(days=1), time(0), tzinfo=cal.IST).astimezone(UTC)


# ---------------------------------------------------------------- rows
def _f(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, date) or isinstance(b, date):
        return str(a)[:10] == str(b)[:10]
    return str(a) == str(b)


def previous_periods(grain: str, period_start: date, n: int = st.TREND_HISTORY) -> list[date]:
    out, d = [], period_start
    for _ in range(n):
        d = cal.previous_trading_day(d) if grain == "day" else cal.period_bounds(grain, d - timedelta(days=1))[0]
        out.append(d)
    return out


def build_rows(
    scope: Scope | None,
    measures: dict[str, Measure],
    cat: catalog_mod.Catalog,
    history: dict[str, list[float]],
    *,
    is_complete: bool,
    grain: str = "day",
) -> list[dict]:
    """kpi_values rows (without computed_at/run_id) for every active KPI of the grain."""
    grain = scope.grain if scope is not None else grain
    rows = []
    for k in cat.active(grain):
        if k.id not in measures:
            raise KeyError(
                f"KPI {k.id!r} is active at grain {grain} in the catalog but kaizen.kpis does not compute it"
            )
        mm = measures[k.id]
        sample = None if mm.sample_size is None else int(mm.sample_size)
        value = _f(mm.value)
        if sample is not None and sample < k.min_sample:
            value = None  # too few samples: never a misleading figure
        status = st.status_for(
            value,
            target=k.target,
            comparator=k.comparator,
            sample_size=sample,
            min_sample=k.min_sample,
            stale=mm.stale,
            no_events=mm.no_events,
        )
        rows.append(
            {
                "kpi_id": k.id,
                "grain": grain,
                "period_start": scope.period_start,
                "period_end": scope.period_end,
                "value": value,
                "numerator": _f(mm.numerator),
                "denominator": _f(mm.denominator),
                "sample_size": sample,
                "target": k.target,
                "status": status,
                "trend": st.trend_for(
                    value, history.get(k.id, []), better=k.better, neutral_band_pct=k.neutral_band_pct
                ),
                "is_complete": is_complete,
            }
        )
    return rows


def _period_key(v) -> str:
    return str(v)[:10]


def write_scopes(
    conn,
    scopes,
    run_id: str,
    *,
    cat: catalog_mod.Catalog,
    stamp: datetime,
    data=None,
) -> list[dict]:
    """Compute the rows of many scopes — ``(scope, is_complete)`` pairs — from one read
    of the landing tables, and upsert those whose content changed (caller's
    transaction). Scopes of a grain are taken in time order, so a period's trend sees
    the rows just computed for the periods before it. Returns the rows as stored."""
    from kaizen import warehouse
    from kaizen.kpis.measures import load_data

    scopes = sorted(scopes, key=lambda s: (s[0].grain, s[0].period_start))
    if not scopes:
        return []
    data = data or load_data(conn, [s for s, _ in scopes])
    # the stored rows of every scope and of the periods its trend looks back to
    stored: dict[tuple[str, str], dict[str, dict]] = {}
    for grain in sorted({s.grain for s, _ in scopes}):
        mine = [s for s, _ in scopes if s.grain == grain]
        lo = min(previous_periods(grain, mine[0].period_start)[-1], mine[0].period_start)
        for r in conn.execute(
            sa.text("select * from kpi_values where grain = :grain and period_start >= :lo and period_start <= :hi"),
            {"grain": grain, "lo": lo.isoformat(), "hi": mine[-1].period_start.isoformat()},
        ).mappings():
            stored.setdefault((grain, _period_key(r["period_start"])), {})[r["kpi_id"]] = dict(r)
    out, changed, gone = [], [], []
    for scope, is_complete in scopes:
        key = (scope.grain, scope.period_start.isoformat())
        history: dict[str, list[float]] = {}
        for prev in previous_periods(scope.grain, scope.period_start):
            for kpi_id, r in stored.get((scope.grain, prev.isoformat()), {}).items():
                if r["value"] is not None:
                    history.setdefault(kpi_id, []).append(float(r["value"]))
        rows = build_rows(scope, measure_scope(data, scope, cat), cat, history, is_complete=is_complete)
        existing = stored.get(key, {})
        now: dict[str, dict] = {}
        for r in rows:
            old = existing.get(r["kpi_id"])
            if old is not None and all(_same(r[c], old[c]) for c in CONTENT_COLS):
                row = {**r, "computed_at": old["computed_at"], "run_id": old["run_id"]}
            else:
                row = {**r, "computed_at": stamp, "run_id": run_id}
                changed.append(row)
            out.append(row)
            now[r["kpi_id"]] = row
        gone += [(scope.grain, scope.period_start, k) for k in sorted(set(existing) - set(now))]
        stored[key] = now
    warehouse.upsert(conn, "kpi_values", changed, key=("kpi_id", "grain", "period_start"))
    for grain, ps, kpi_id in gone:
        conn.execute(
            sa.text("delete from kpi_values where grain = :grain and period_start = :day and kpi_id = :id"),
            {"grain": grain, "day": ps.isoformat(), "id": kpi_id},
        )
    return out


def write_scope(
    conn,
    scope: Scope,
    run_id: str,
    *,
    cat: catalog_mod.Catalog,
    is_complete: bool,
    stamp: datetime,
) -> list[dict]:
    """One scope's rows (see :func:`write_scopes`)."""
    return write_scopes(conn, [(scope, is_complete)], run_id, cat=cat, stamp=stamp)


def rollup_scopes(grains, first: date, last: date, *, as_of: datetime) -> list[tuple[Scope, bool]]:
    """``(scope, is_complete)`` of every ``grain`` period overlapping [first, last], to
    ``as_of``; periods that start after ``as_of`` are skipped (nothing to report yet)."""
    out = []
    for grain in grains:
        if grain not in ROLLUP_GRAINS:
            raise ValueError(f"grain: {grain!r} is not one of {', '.join(ROLLUP_GRAINS)}")
        for ps in periods_between(grain, first, last):
            scope = period_scope(grain, ps, as_of)
            if scope.end > scope.start:
                out.append((scope, as_of >= period_end_at(scope)))
    return out


def compute_rollups(
    engine: sa.Engine,
    grains,
    first: date,
    last: date,
    run_id: str,
    *,
    as_of: datetime,
    computed_at: datetime | None = None,
) -> list[dict]:
    """Recompute every ``grain`` period overlapping [first, last] to ``as_of``.

    Periods that start after ``as_of`` are skipped (nothing to report yet)."""
    scopes = rollup_scopes(grains, first, last, as_of=as_of)
    with engine.begin() as conn:
        return write_scopes(
            conn, scopes, run_id, cat=catalog_mod.load_catalog(), stamp=computed_at or datetime.now(UTC)
        )
