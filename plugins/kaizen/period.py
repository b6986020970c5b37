"""The one ``Period`` type: a grain and the IST days it spans, with everything Kaizen
derives from it — its key and labels, its UTC window as of an instant (the daily review
window for a day), its trading and business days to date, its neighbours. Standard
library only (timetables import it).

- ``day``: one NSE trading day D. Its window is the daily review window
  [previous trading day's review time, D's review time) — 16:00 IST after a regular
  session (:func:`kaizen.calendar.review_time`, the one cut-off) — so consecutive days
  tile the time line and weekends and holidays fall in the next trading day.
- ``week`` (ISO, Mon–Sun), ``month``, ``quarter`` (calendar quarters): IST calendar
  days [start 00:00 IST, end + 1 00:00 IST), or to date: up to an as-of instant.

Keys: ``2026-11-27``, ``2026-W47``, ``2026-10``, ``2026-Q4``. A period travels between
tasks as :meth:`Period.as_dict` and comes back with :meth:`Period.from_dict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kaizen import calendar as cal

GRAINS = ("day", "week", "month", "quarter")
ROLLUP_GRAINS = GRAINS[1:]

_KEY = re.compile(r"^(\d{4})-(?:(\d{2})-(\d{2})|W(\d{2})|(\d{2})|Q([1-4]))$")


def _check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"grain: {grain!r} is not one of {', '.join(GRAINS)}")


def weekdays(first: date, last: date) -> int:
    """Mon–Fri dates in [first, last] (0 when last < first)."""
    n, d = 0, first
    while d <= last:
        n += d.weekday() < 5
        d += timedelta(days=1)
    return n


def midnight_utc(d: date) -> datetime:
    """00:00 IST of ``d`` as an aware UTC datetime."""
    return datetime.combine(d, time(0), tzinfo=cal.IST).astimezone(UTC)


@dataclass(frozen=True, order=True)
class Period:
    grain: str
    start: date  # first IST day
    end: date  # last IST day, inclusive (the whole period, even when reviewed to date)

    # ------------------------------------------------------------ construction
    @classmethod
    def of(cls, grain: str, day: date) -> Period:
        """The ``grain`` period containing IST date ``day``."""
        _check_grain(grain)
        if grain == "day":
            return cls("day", day, day)
        if grain == "week":
            start = day - timedelta(days=day.weekday())
            return cls(grain, start, start + timedelta(days=6))
        if grain == "month":
            start = day.replace(day=1)
        else:
            start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        months = 1 if grain == "month" else 3
        y, m = divmod(start.month - 1 + months, 12)
        return cls(grain, start, date(start.year + y, m + 1, 1) - timedelta(days=1))

    @classmethod
    def day(cls, d: date) -> Period:
        return cls.of("day", d)

    @classmethod
    def parse(cls, key: str) -> Period:
        """The period of a key: ``2026-11-27``, ``2026-W47``, ``2026-10`` or ``2026-Q4``."""
        m = _KEY.match(str(key).strip())
        if not m:
            raise ValueError(f"period key {key!r} is not YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn")
        y, month, dom, week, mon, q = m.groups()
        try:
            if dom:
                return cls.day(date(int(y), int(month), int(dom)))
            if week:
                return cls.of("week", date.fromisocalendar(int(y), int(week), 1))
            if mon:
                return cls.of("month", date(int(y), int(mon), 1))
            return cls.of("quarter", date(int(y), 3 * int(q) - 2, 1))
        except ValueError as exc:
            raise ValueError(f"period key {key!r}: {exc}") from None

    @classmethod
    def between(cls, grain: str, first: date, last: date) -> list[Period]:
        """The ``grain`` periods overlapping [first, last], in order (for ``day``: the
        trading days)."""
        if grain == "day":
            return [cls.day(d) for d in cal.trading_days(first, last)]
        out, p = [], cls.of(grain, first)
        while p.start <= last:
            out.append(p)
            p = p.next()
        return out

    # ------------------------------------------------------------ names
    @property
    def key(self) -> str:
        if self.grain == "day":
            return self.start.isoformat()
        if self.grain == "week":
            y, w, _ = self.start.isocalendar()
            return f"{y}-W{w:02d}"
        if self.grain == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.year}-Q{self.quarter}"

    @property
    def quarter(self) -> int:
        """Calendar quarter (1–4) of the start."""
        return (self.start.month - 1) // 3 + 1

    @property
    def fiscal_label(self) -> str:
        """Indian fiscal quarter of the start (April–March, named by the year it ends):
        Oct 2026 → 'FY27 Q3'."""
        d = self.start
        fy = d.year + 1 if d.month >= 4 else d.year
        return f"FY{fy % 100:02d} Q{(d.month - 4) % 12 // 3 + 1}"

    @property
    def range_text(self) -> str:
        """'23–29 Nov 2026' (see :func:`range_text`)."""
        return range_text(self.start, self.end)

    def __str__(self) -> str:
        return self.key

    # ------------------------------------------------------------ neighbours
    def next(self) -> Period:
        if self.grain == "day":
            return Period.day(cal.next_trading_day(self.start))
        return Period.of(self.grain, self.end + timedelta(days=1))

    def previous(self, n: int = 1) -> list[Period]:
        """The ``n`` periods before this one, latest first (for ``day``: trading days)."""
        out, p = [], self
        for _ in range(n):
            if p.grain == "day":
                p = Period.day(cal.previous_trading_day(p.start))
            else:
                p = Period.of(p.grain, p.start - timedelta(days=1))
            out.append(p)
        return out

    # ------------------------------------------------------------ time
    @property
    def opens_utc(self) -> datetime:
        """Where the period's window starts: for a day, the previous trading day's review
        time; else 00:00 IST of its first day."""
        if self.grain == "day":
            prev = cal.previous_trading_day(self.start)
            return cal.ist_datetime(prev, cal.review_time(prev)).astimezone(UTC)
        return midnight_utc(self.start)

    @property
    def closes_utc(self) -> datetime:
        """Where the whole period's window ends: for a day, its review time (the daily
        cut-off); else 00:00 IST of the day after its last day."""
        if self.grain == "day":
            return cal.ist_datetime(self.start, cal.review_time(self.start)).astimezone(UTC)
        return midnight_utc(self.end + timedelta(days=1))

    def window_utc(self, as_of: datetime | None = None) -> tuple[datetime, datetime]:
        """[start, end) in UTC, to date: the end is clipped to ``as_of`` (aware) taken
        down to its quarter hour — the per-minute facts are kept per 15-minute slot,
        and every cut-off is a slot edge — and is never before the start."""
        start, end = self.opens_utc, self.closes_utc
        if as_of is not None:
            as_of = as_of.astimezone(UTC)
            as_of -= timedelta(minutes=as_of.minute % 15, seconds=as_of.second, microseconds=as_of.microsecond)
            end = min(end, max(start, as_of))
        return start, end

    def is_complete(self, as_of: datetime) -> bool:
        """Whether ``as_of`` has reached the end of the period's window."""
        return as_of >= self.closes_utc

    def last_day(self, as_of: datetime | None = None) -> date | None:
        """The last IST day whose trades and orders count as of ``as_of``: a session's
        trades count once its review time has passed. None when no day counts yet."""
        if self.grain == "day" or as_of is None:
            return self.end
        start, end = self.window_utc(as_of)
        if end <= start:
            return None
        as_of_day = (end - timedelta(microseconds=1)).astimezone(cal.IST).date()
        last = min(self.end, as_of_day)
        if last == as_of_day and end < self.closes_utc:
            local = end.astimezone(cal.IST)
            if local.date() == last and cal.is_trading_day(last) and local.time() < cal.review_time(last):
                last -= timedelta(days=1)
        return last if last >= self.start else None

    def trading_days(self, as_of: datetime | None = None) -> tuple[date, ...]:
        """NSE sessions of the period whose trades count as of ``as_of``."""
        last = self.last_day(as_of)
        return tuple(cal.trading_days(self.start, last)) if last is not None else ()

    def business_days(self, as_of: datetime | None = None) -> int:
        """Mon–Fri dates the period covers as of ``as_of``; for a day, those since the
        previous trading day (0 for a weekend special session)."""
        if self.grain == "day":
            return weekdays(cal.previous_trading_day(self.start) + timedelta(days=1), self.start)
        last = self.last_day(as_of)
        return weekdays(self.start, last) if last is not None else 0

    # ------------------------------------------------------------ between tasks
    def as_dict(self) -> dict:
        return {"grain": self.grain, "start": self.start.isoformat(), "end": self.end.isoformat(), "key": self.key}

    @classmethod
    def from_dict(cls, d: dict) -> Period:
        p = cls.of(d["grain"], date.fromisoformat(d["start"]))
        if p.start.isoformat() != d["start"]:
            raise ValueError(f"period {d!r}: {d['start']} is not the start of its {d['grain']}")
        return p


def review_window_utc(day: date) -> tuple[datetime, datetime]:
    """The daily review window of trading day ``day`` (``Period.day(day).window_utc()``)."""
    return Period.day(day).window_utc()


def window_day(ts: datetime) -> date:
    """The trading day whose daily review window holds the instant ``ts`` (aware): the
    first trading day whose review time is after ``ts``."""
    local = ts.astimezone(cal.IST)
    d = local.date()
    if not cal.is_trading_day(d) or local.time() >= cal.review_time(d):
        d = cal.next_trading_day(d)
    return d


def windows_utc(first: date, last: date) -> tuple[datetime, datetime]:
    """From the review window start of trading day ``first`` to the end of ``last``'s:
    the time a range of daily extracts covers."""
    return Period.day(first).opens_utc, Period.day(last).closes_utc


def range_text(a: date, b: date) -> str:
    """Two dates as one span: '23–29 Nov 2026', '30 Nov – 6 Dec 2026',
    '29 Dec 2025 – 4 Jan 2026'."""
    if a.year != b.year:
        return f"{a.day} {a:%b %Y} – {b.day} {b:%b %Y}"
    if a.month != b.month:
        return f"{a.day} {a:%b} – {b.day} {b:%b %Y}"
    return f"{a.day}–{b.day} {b:%b %Y}"
