"""KPI rows for periods of every grain: the scope of a period, status and trend, and
the idempotent write into ``kpi_values``.

- ``day``: one NSE trading day; ``week`` (ISO, Mon–Sun), ``month``, ``quarter``:
  recomputed *to date* after each trading day from the landing tables, flagged
  ``is_complete`` once the as-of time has passed the period's end. What a period
  covers is :class:`kaizen.period.Period`; :func:`scope_of` turns it into a
  :class:`~kaizen.kpis.measures.Scope` for the measures.

A row whose content is unchanged is not rewritten, so recomputing any period leaves
``kpi_values`` identical (``computed_at``/``run_id`` keep the run that last changed it).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.kpis import catalog as catalog_mod
from kaizen.kpis import status as st
from kaizen.kpis.measures import Measure, Scope, measure_scope
from kaizen.period import ROLLUP_GRAINS, Period, weekdays, window_day
from kaizen.warehouse import coverage
from kaizen.warehouse.coverage import history_start, landed_to  # noqa: F401  (re-exported)

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
def scope_of(period: Period, as_of: datetime | None = None) -> Scope:
    """What ``period`` covers to ``as_of`` (aware; None: the whole period): its trading
    days (trades, orders), its UTC window (the time-based sources) and business days."""
    start, end = period.window_utc(None if period.grain == "day" else as_of)
    last = period.last_day(as_of)
    return Scope(
        grain=period.grain,
        period_start=period.start,
        period_end=period.end,
        first_day=period.start,
        last_day=last if last is not None else period.start - timedelta(days=1),
        start=start,
        end=end,
        full_minutes=(period.closes_utc - start).total_seconds() / 60.0,
        session_days=(period.start,) if period.grain == "day" else period.trading_days(as_of),
        business_days=period.business_days(as_of),
    )


def observed(scope: Scope, begins: datetime | None) -> Scope:
    """The part of ``scope`` the warehouse's history observed, which begins at ``begins``:
    a period that starts before it has its rates taken over the span observed — the
    trading sessions from the first observed one, the business days and minutes from
    ``begins`` (semantic change, see the README). Every scope learns where the history
    begins, for the trailing windows (MTBF) that reach back past it."""
    if begins is None:
        return scope
    if scope.start >= begins:
        return replace(scope, observed_from=begins)
    start = min(begins, scope.end)
    first = max(scope.first_day, window_day(begins))
    return replace(
        scope,
        start=start,
        first_day=first,
        full_minutes=scope.full_minutes - (start - scope.start).total_seconds() / 60.0,
        session_days=tuple(d for d in scope.session_days if d >= first),
        business_days=weekdays(cal.previous_trading_day(first) + timedelta(days=1), scope.last_day),
        observed_from=begins,
    )


def day_scope(day: date) -> Scope:
    return scope_of(Period.day(day))


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
    return [p.start for p in Period.of(grain, period_start).previous(n)]


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
    out, changed, gone, covered = [], [], [], []
    begins = history_start(conn)
    landed = coverage.spans(conn)
    first_observed = window_day(begins) if begins is not None else None
    for scope, is_complete in scopes:
        if first_observed is not None and scope.period_end < first_observed:
            continue  # every day of it before the first observed session: nothing to report
        period = Period.of(scope.grain, scope.period_start)
        cov = coverage.period_rows(landed, period)
        covered += cov
        # complete: ended, and every source has landed its whole window; a period that
        # starts before the history begins never is — the days before were never
        # observed, whatever its end (semantic change, see the README)
        is_complete = is_complete and (begins is None or scope.start >= begins) and coverage.covers(cov)
        scope = observed(scope, begins)
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
    warehouse.upsert(conn, "period_coverage", covered, key=("grain", "period_start", "source"))
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


def rollup_scopes(grains, first: date, last: date, *, as_of: datetime,
                  landed: datetime | None = None) -> list[tuple[Scope, bool]]:
    """``(scope, is_complete)`` of every ``grain`` period overlapping [first, last], to
    ``as_of`` — or, when the data has ``landed`` further, to that point or the period's
    own end, whichever comes first: recomputing an old day never cuts the periods around
    it short. Periods that start after that point are skipped (nothing to report yet)."""
    out = []
    for grain in grains:
        if grain not in ROLLUP_GRAINS:
            raise ValueError(f"grain: {grain!r} is not one of {', '.join(ROLLUP_GRAINS)}")
        for period in Period.between(grain, first, last):
            upto = as_of if landed is None or landed <= as_of else max(as_of, min(landed, period.closes_utc))
            scope = scope_of(period, upto)
            if scope.end > scope.start:
                out.append((scope, period.is_complete(upto)))
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
    to_landed: bool = False,
) -> list[dict]:
    """Recompute every ``grain`` period overlapping [first, last] to ``as_of`` (with
    ``to_landed``: as far as the data has landed, each to at most its own end; see
    :func:`rollup_scopes`). Periods that start after that are skipped."""
    with warehouse.writing(engine) as conn:
        landed = landed_to(conn) if to_landed else None
        scopes = rollup_scopes(grains, first, last, as_of=as_of, landed=landed)
        return write_scopes(
            conn, scopes, run_id, cat=catalog_mod.load_catalog(), stamp=computed_at or datetime.now(UTC)
        )
