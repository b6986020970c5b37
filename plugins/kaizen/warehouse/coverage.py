"""What each source has landed, as spans of time (``source_coverage``), and how much of a
KPI period each source covers (``period_coverage``).

Every load of a window — a Prometheus, PagerDuty or GitHub window, a trading-day slice —
records the span it covered for its source; spans that overlap or touch are merged, so a
source that has landed every day since it began holds one span. Trades and orders are
kept by trading day: a slice of sessions ``first``..``last`` covers the IST days from
``first`` up to the next session (no trade can exist between sessions), and they are
judged over a period's IST days; the time sources over its UTC window. A period is
complete only when every source that has ever landed covers it (:func:`covers`); a
source that never landed (not configured) is not waited for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.period import Period, midnight_utc, window_day

Span = tuple[datetime, datetime]

DAY_SLICED = ("trades", "orders")  # sources loaded by trading day, not by time window


def parse_ts(v) -> datetime:
    """A stored timestamp (PostgreSQL: aware datetime; SQLite: its UTC text) → aware UTC."""
    ts = v if isinstance(v, datetime) else datetime.fromisoformat(v)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def record(conn: sa.Connection, source: str, start: datetime, end: datetime, run_id: str,
           at: datetime) -> None:
    """Add [start, end) to ``source``'s landed spans, merging those it overlaps or
    touches (caller's transaction, under the write lock)."""
    if end <= start:
        return
    params = {"source": source, "start": warehouse.bind_value(start), "end": warehouse.bind_value(end)}
    near = sa.text("source = :source and covered_from <= :end and covered_to >= :start")
    touching = conn.execute(sa.text(f"select covered_from, covered_to from source_coverage where {near}"),
                            params).tuples().all()
    lo = min([start, *(parse_ts(a) for a, _ in touching)])
    hi = max([end, *(parse_ts(b) for _, b in touching)])
    conn.execute(sa.text(f"delete from source_coverage where {near}"), params)
    warehouse.insert_rows(conn, "source_coverage",
                          [{"source": source, "covered_from": lo, "covered_to": hi}],
                          {"run_id": run_id, "loaded_at": at})


def spans(conn: sa.Connection) -> dict[str, list[Span]]:
    """Every source's landed spans, in time order."""
    out: dict[str, list[Span]] = {}
    for source, a, b in conn.execute(sa.text(
            "select source, covered_from, covered_to from source_coverage order by source, covered_from")):
        out.setdefault(source, []).append((parse_ts(a), parse_ts(b)))
    return out


def of_window(landed: Iterable[Span], start: datetime, end: datetime) -> dict:
    """One source over the window [start, end): ``first_landed``, the first instant
    landed in it; ``last_landed``, the end of the last span landed in it (clipped to the
    window); ``missing_from``, the first instant not landed (None: none missing); and
    ``is_covered``, whether nothing is missing."""
    inside = [(max(a, start), min(b, end)) for a, b in sorted(landed) if a < end and b > start]
    upto = start
    for a, b in inside:
        if a > upto:
            break
        upto = max(upto, b)
    missing = upto if upto < end else None
    return {"first_landed": inside[0][0] if inside else None, "last_landed": inside[-1][1] if inside else None,
            "missing_from": missing, "is_covered": missing is None}


def day_span(first: date, last: date) -> Span:
    """What a slice of the trading days ``first``..``last`` covers: 00:00 IST of
    ``first`` to 00:00 IST of the next session after ``last`` (or of the next day, past
    the calendar's end)."""
    try:
        after = cal.next_trading_day(last)
    except cal.CalendarNotCovered:  # past the calendar: claim no more than the day itself
        after = last + timedelta(days=1)
    return midnight_utc(first), midnight_utc(after)


def period_rows(all_spans: dict[str, list[Span]], period: Period, start: datetime | None = None) -> list[dict]:
    """The ``period_coverage`` rows of ``period``: the time sources over its UTC window,
    the day-sliced ones over its IST days; ``start`` (the history's start, when later)
    narrows both to what could have been observed."""
    windows = {False: (period.opens_utc, period.closes_utc),
               True: (midnight_utc(period.start), midnight_utc(period.end + timedelta(days=1)))}
    if start is not None:
        windows = {False: (max(windows[False][0], start), windows[False][1]),
                   True: (max(windows[True][0], midnight_utc(window_day(start))), windows[True][1])}
    return [{"grain": period.grain, "period_start": period.start, "source": source,
             **of_window(all_spans[source], *windows[source in DAY_SLICED])}
            for source in sorted(all_spans)]


def covers(rows: Iterable[dict]) -> bool:
    """Whether every source covers the period (true when no source has landed yet)."""
    return all(r["is_covered"] for r in rows)


def history_start(conn: sa.Connection) -> datetime | None:
    """Where the warehouse's history begins for every time-line source: the later of
    the first loaded trading day's review window and the first probed slot (None:
    nothing landed). A period that starts before it is never complete."""
    from kaizen.warehouse import facts

    starts = []
    day = conn.execute(sa.text("select min(trading_day) from fct_trading_day")).scalar()
    if day is not None:
        starts.append(Period.day(warehouse.as_date(day)).opens_utc)
    slot = conn.execute(sa.text("select min(slot) from fct_probe_slot")).scalar()
    if slot is not None:
        starts.append(facts.slot_start(int(slot)))
    return max(starts) if starts else None


def landed_to(conn: sa.Connection) -> datetime | None:
    """The review cut-off of the latest trading day whose trades or orders are loaded:
    how far the warehouse's data reaches (None: nothing loaded)."""
    days = [conn.execute(sa.text(f"select max(trading_day) from {t}")).scalar()
            for t in ("fct_trading_day", "fct_orders_day")]
    days = [warehouse.as_date(d) for d in days if d is not None]
    return Period.day(max(days)).closes_utc if days else None


# the sources of each landing table, for a warehouse that predates coverage
_SEED_TABLES = {
    "trades": "raw_trades", "orders": "raw_orders", "probes": "raw_probe_minutes",
    "latency": "raw_latency_buckets", "errors": "raw_error_minutes", "deployments": "raw_deployments",
    "incidents": "raw_incidents", "action_items": "raw_action_items",
    "oncall_spans": "raw_oncall_spans", "assignments": "raw_incident_assignments",
    "satisfaction": "raw_satisfaction_responses",
}


def seed(conn: sa.Connection, at: datetime) -> None:
    """A warehouse that predates coverage: each source with rows is recorded as landed
    over what its data spans — the trading days loaded, and the time sources from the
    history start to the last loaded session's review time — as the releases before it
    assumed when they marked periods complete."""
    start, end = history_start(conn), landed_to(conn)
    if start is None or end is None or end <= start:
        return
    first, last = (conn.execute(sa.text(f"select {f}(trading_day) from fct_trading_day")).scalar()
                   for f in ("min", "max"))
    for source, table in sorted(_SEED_TABLES.items()):
        if conn.execute(sa.text(f"select 1 from {table} limit 1")).first() is None:
            continue
        span = day_span(warehouse.as_date(first), warehouse.as_date(last)) if source in DAY_SLICED else (start, end)
        record(conn, source, *span, "kaizen-coverage-seed", at)
