"""Day-grain KPIs of one NSE trading day, from the ``raw_*`` landing tables into
``kpi_values`` (grain ``day``, period_start = period_end = the trading day).

Scopes (docs/contracts.md "Time rules"; the catalog's ``conventions``):
- trading KPIs: trades with ``trading_day = D`` (closed on D), orders with
  ``trading_day = D`` (submitted on D); Sharpe over the trailing 252 sessions, drawdown
  over the equity curve since the first trading day in ``raw_trades``;
- reliability, incident, alert and deployment KPIs: the review window of D,
  [previous trading day 16:00 IST, D 16:00 IST); MTBF over the trailing 90 days ending
  at the window's end.

Idempotency: a row whose content is unchanged is not rewritten (see
:mod:`kaizen.kpis.periods`). The maths lives in :mod:`kaizen.kpis.maths`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.kpis import catalog as catalog_mod
from kaizen.kpis import status as st
from kaizen.kpis.measures import Measure, measure_scope  # noqa: F401
from kaizen.kpis.periods import build_rows, day_scope, previous_periods, write_scope  # noqa: F401
from kaizen.period import Period

GRAIN = "day"


def previous_days(day: date, n: int = st.TREND_HISTORY) -> list[date]:
    return previous_periods(GRAIN, day, n)


def measure_day(conn, day: date, cat: catalog_mod.Catalog | None = None) -> dict[str, Measure]:
    """Every day-grain measure of trading day ``day`` (reads only)."""
    return measure_scope(conn, day_scope(day), cat)


def compute_day(
    engine: sa.Engine,
    day: date,
    run_id: str,
    *,
    computed_at: datetime | None = None,
    as_of: datetime | None = None,
) -> list[dict]:
    """Compute every day-grain KPI of trading day ``day`` and upsert ``kpi_values``.

    Returns the rows as stored (unchanged rows keep their earlier ``computed_at`` and
    ``run_id``). ``is_complete`` is true once the day's review window has ended: when
    ``as_of`` is given, ``as_of ≥ window end``; without it the day is taken as complete
    (daily runs are scheduled at/after 16:00 IST, the window's end)."""
    if not cal.is_trading_day(day):
        raise ValueError(
            f"{day.isoformat()} is not an NSE trading day: day-grain KPIs exist only for sessions"
        )
    scope = day_scope(day)
    is_complete = True if as_of is None else Period.day(day).is_complete(as_of)
    with warehouse.writing(engine) as conn:
        return write_scope(
            conn,
            scope,
            run_id,
            cat=catalog_mod.load_catalog(),
            is_complete=is_complete,
            stamp=computed_at or datetime.now(UTC),
        )
