"""NSE trading days, IST periods and grains. Pure standard library (no pandas, no
calendar package), so the scheduler's timetables can import it cheaply.

Holidays come from ``data/nse_holidays.json``: dates derived from
``pandas_market_calendars`` (NSE) plus the override list in
``data/nse_holiday_overrides.json``; ``python -m kaizen calendar-data`` rebuilds it.
The file names the last year it covers; asking about a later date raises
:class:`CalendarNotCovered` instead of silently treating every weekday as a session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
UTC = UTC
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
REVIEW_TIME = time(16, 0)  # the daily review's cut-off and schedule
HOLIDAYS_FILE = Path(__file__).resolve().parent / "data" / "nse_holidays.json"
GRAINS = ("day", "week", "month", "quarter")


class CalendarNotCovered(LookupError):
    """The holiday data does not cover the asked date: update it, do not guess."""


@dataclass(frozen=True)
class HolidayData:
    first_year: int
    last_year: int
    holidays: frozenset[date]
    names: dict


@lru_cache(maxsize=1)
def holiday_data() -> HolidayData:
    doc = json.loads(HOLIDAYS_FILE.read_text())
    return HolidayData(
        first_year=doc["first_year"],
        last_year=doc["last_year"],
        holidays=frozenset(date.fromisoformat(d) for d in doc["holidays"]),
        names=doc["holidays"],
    )


def check_covered(d: date) -> None:
    data = holiday_data()
    if not data.first_year <= d.year <= data.last_year:
        raise CalendarNotCovered(
            f"NSE holiday data covers {data.first_year}–{data.last_year}, not {d.isoformat()}: "
            f"add the exchange's {d.year} holiday list to "
            "plugins/kaizen/data/nse_holiday_overrides.json and run "
            "`python -m kaizen calendar-data`."
        )


def is_trading_day(d: date) -> bool:
    check_covered(d)
    return d.weekday() < 5 and d not in holiday_data().holidays


def next_trading_day(d: date) -> date:
    """The first trading day strictly after ``d``."""
    d += timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before ``d``."""
    d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in ``[start, end]`` (both inclusive)."""
    out, d = [], start
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def ist_datetime(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST)


def session_bounds_utc(d: date) -> tuple[datetime, datetime]:
    """NSE session [09:15, 15:30) IST of day ``d`` in UTC."""
    return (ist_datetime(d, SESSION_OPEN).astimezone(UTC), ist_datetime(d, SESSION_CLOSE).astimezone(UTC))


def review_window_utc(d: date) -> tuple[datetime, datetime]:
    """The daily review window of trading day ``d``: [previous trading day 16:00 IST,
    ``d`` 16:00 IST). Windows of consecutive trading days tile the time line, so the
    weekend and holidays fall in the next trading day's window and every minute is
    reported exactly once."""
    prev = previous_trading_day(d)
    return (ist_datetime(prev, REVIEW_TIME).astimezone(UTC), ist_datetime(d, REVIEW_TIME).astimezone(UTC))


def window_day(ts: datetime) -> date:
    """The trading day whose review window holds the instant ``ts`` (aware): the first
    trading day whose 16:00 IST review time is after ``ts``."""
    local = ts.astimezone(IST)
    d = local.date()
    if local.time() >= REVIEW_TIME or not is_trading_day(d):
        d = next_trading_day(d)
    return d


def day_bounds_utc(start: date, end_inclusive: date) -> tuple[datetime, datetime]:
    """IST calendar days [start 00:00, end+1 00:00) in UTC."""
    return (
        ist_datetime(start, time(0)).astimezone(UTC),
        ist_datetime(end_inclusive + timedelta(days=1), time(0)).astimezone(UTC),
    )


def ist_date(ts: datetime) -> date:
    return ts.astimezone(IST).date()


def period_bounds(grain: str, d: date) -> tuple[date, date]:
    """The period of ``grain`` containing ``d``: (first day, last day), IST dates."""
    if grain == "day":
        return d, d
    if grain == "week":
        start = d - timedelta(days=d.weekday())
        return start, start + timedelta(days=6)
    if grain == "month":
        start = d.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt - timedelta(days=1)
    if grain == "quarter":
        q0 = (d.month - 1) // 3 * 3 + 1
        start = d.replace(month=q0, day=1)
        nxt = (start + timedelta(days=95)).replace(day=1)
        return start, nxt - timedelta(days=1)
    raise ValueError(f"unknown grain {grain!r}; expected one of {', '.join(GRAINS)}")


def utc_text(ts: datetime) -> str:
    """Canonical UTC text for binding timestamps on SQLite and PostgreSQL alike:
    fixed width, so text order is time order in SQLite."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: timestamps must carry a time zone")
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    # isoformat is ~4× faster than strftime; the offset is always +00:00 here
    return ts.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + "+00:00"
