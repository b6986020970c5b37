"""Airflow timetables for the review cadences (registered by ``kaizen_plugin.py``).

Light imports only: the standard-library calendar in :mod:`kaizen.calendar`, pendulum
and Airflow's timetable base. No pandas, no calendar package (the scheduler imports
this on every loop).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pendulum
from pendulum import DateTime, instance

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable, TimeRestriction
from kaizen import calendar as cal


def _is_session(d: date) -> bool:
    """Like :func:`kaizen.calendar.is_trading_day`, but past the holiday data's last
    year every weekday counts: the run is still created, and its first task fails
    loudly with :class:`~kaizen.calendar.CalendarNotCovered` (a visible failure, not
    a silently missing or silently wrong schedule)."""
    try:
        return cal.is_trading_day(d)
    except cal.CalendarNotCovered:
        return d.weekday() < 5


def _prev_session(d: date) -> date:
    d -= timedelta(days=1)
    while not _is_session(d):
        d -= timedelta(days=1)
    return d


def _next_session_on_or_after(d: date) -> date:
    while not _is_session(d):
        d += timedelta(days=1)
    return d


def _at(d: date, hour: int, minute: int) -> DateTime:
    return instance(cal.ist_datetime(d, cal.REVIEW_TIME.replace(hour=hour, minute=minute))).in_timezone("UTC")


class NSETradingDayTimetable(Timetable):
    """One run per NSE trading day at ``hh:mm`` IST (default 16:00, after the close).

    The data interval of trading day D is [previous trading day hh:mm IST, D hh:mm IST):
    consecutive intervals tile the time line, so weekends and holidays fall in the next
    trading day's interval. The run reports on D = the IST date of the interval's end.
    """

    def __init__(self, hour: int = 16, minute: int = 0) -> None:
        self.hour = hour
        self.minute = minute

    @property
    def summary(self) -> str:
        return f"NSE trading days at {self.hour:02d}:{self.minute:02d} IST"

    description = "Every NSE trading day (weekends and NSE holidays skipped), after the close, in IST."

    def serialize(self) -> dict[str, Any]:
        return {"hour": self.hour, "minute": self.minute}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> NSETradingDayTimetable:
        return cls(hour=data["hour"], minute=data["minute"])

    def _interval_for(self, d: date) -> DataInterval:
        return DataInterval(
            start=_at(_prev_session(d), self.hour, self.minute), end=_at(d, self.hour, self.minute)
        )

    @staticmethod
    def trading_day_of(interval_end: DateTime) -> date:
        return interval_end.in_timezone("Asia/Kolkata").date()

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run reports on the latest trading day whose review time has passed."""
        local = run_after.in_timezone("Asia/Kolkata")
        d = local.date()
        if not _is_session(d) or (local.hour, local.minute) < (self.hour, self.minute):
            d = _prev_session(d)
        return self._interval_for(d)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            d = self.trading_day_of(last_automated_data_interval.end) + timedelta(days=1)
        elif restriction.earliest is None:
            return None
        else:
            earliest = restriction.earliest
            if not restriction.catchup:
                earliest = max(earliest, pendulum.now("UTC"))
            local = earliest.in_timezone("Asia/Kolkata")
            d = local.date()
            # a run is due at d's review time; if that is already before `earliest`, start next day
            if _at(d, self.hour, self.minute) < earliest:
                d += timedelta(days=1)
        d = _next_session_on_or_after(d)
        info = DagRunInfo.interval(**self._interval_for(d)._asdict())
        if restriction.latest is not None and info.run_after > restriction.latest:
            return None
        return info
