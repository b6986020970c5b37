"""Airflow timetables for the review cadences (registered by ``kaizen_plugin.py``).

Light imports only: the standard-library calendar in :mod:`kaizen.calendar`, pendulum
and Airflow's timetable base. No pandas, no calendar package (the scheduler imports
this on every loop).
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import DateTime, instance

from kaizen import calendar as cal
from kaizen.period import Period


def _is_session(d: date) -> bool:
    """An NSE session day (:func:`kaizen.calendar.is_trading_day`): rule, published list
    and the operator's overrides file, re-read when it changes. A year without its
    published list is provisional: its weekdays run unless a fixed-date holiday or an
    override says otherwise, and the daily review says the year is provisional."""
    return cal.is_trading_day(d)


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
    return instance(cal.ist_datetime(d, time(hour, minute))).in_timezone("UTC")


class NSETradingDayTimetable(Timetable):
    """One run per NSE trading day at its review time: 16:00 IST after a regular
    session, later after a late special session (:func:`kaizen.calendar.review_time`,
    the one daily cut-off; this timetable has no time of its own).

    The data interval of trading day D is [previous trading day's review time, D's
    review time): consecutive intervals tile the time line, so weekends and holidays
    fall in the next trading day's interval. The run reports on D = the IST date of the
    interval's end (:meth:`kaizen.period.Period.day` of it has exactly this window).
    """

    summary = "NSE trading days at the daily review time (16:00 IST after a regular session)"
    description = "Every NSE trading day (weekends and NSE holidays skipped), after the close, in IST."

    def serialize(self) -> dict[str, Any]:
        return {}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> NSETradingDayTimetable:
        return cls()  # an older serialisation's hour/minute gave 16:00, the cut-off itself

    @staticmethod
    def _run_time(d: date) -> DateTime:
        return instance(Period.day(d).closes_utc)

    @staticmethod
    def _interval_for(d: date) -> DataInterval:
        start, end = Period.day(d).window_utc()
        return DataInterval(start=instance(start), end=instance(end))

    @staticmethod
    def trading_day_of(interval_end: DateTime) -> date:
        return interval_end.in_timezone("Asia/Kolkata").date()

    def _latest_session_run(self, at: DateTime) -> date:
        """The latest trading day whose review time is not after ``at``."""
        d = at.in_timezone("Asia/Kolkata").date()
        if not _is_session(d) or at < self._run_time(d):
            d = _prev_session(d)
        return d

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run reports on the latest trading day whose review time has passed."""
        return self._interval_for(self._latest_session_run(run_after))

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            d = self.trading_day_of(last_automated_data_interval.end) + timedelta(days=1)
            if not restriction.catchup:  # as CronTriggerTimetable: missed runs collapse into the latest
                d = max(d, self._latest_session_run(pendulum.now("UTC")))
        elif restriction.earliest is None:
            return None
        else:
            earliest = restriction.earliest
            if not restriction.catchup:
                earliest = max(earliest, pendulum.now("UTC"))
            local = earliest.in_timezone("Asia/Kolkata")
            d = local.date()
            # a run is due at d's review time; if that is already before `earliest`, start next day
            if _is_session(d) and self._run_time(d) < earliest:
                d += timedelta(days=1)
        d = _next_session_on_or_after(d)
        info = DagRunInfo.interval(**self._interval_for(d)._asdict())
        if restriction.latest is not None and info.run_after > restriction.latest:
            return None
        return info


class _MeetingTimetable(Timetable):
    """A review meeting on fixed calendar dates at ``hh:mm`` IST. Meetings are not
    sessions: they run on NSE holidays too. Subclasses say which dates and which
    period each meeting reviews."""

    hour: int
    minute: int
    # True: the period runs up to the meeting itself ("to date"); False: to its end day's midnight
    period_ends_at_meeting = False

    def __init__(self, hour: int, minute: int = 0) -> None:
        self.hour = hour
        self.minute = minute

    def serialize(self) -> dict[str, Any]:
        return {"hour": self.hour, "minute": self.minute}

    @classmethod
    def deserialize(cls, data: dict[str, Any]):
        return cls(hour=data["hour"], minute=data["minute"])

    def meeting_on_or_after(self, d: date) -> date:
        raise NotImplementedError

    def period_of(self, meeting: date) -> Period:
        """The period the meeting on ``meeting`` reviews."""
        raise NotImplementedError

    def _info(self, meeting: date) -> DagRunInfo:
        period = self.period_of(meeting)
        run_after = _at(meeting, self.hour, self.minute)
        end_at = run_after if self.period_ends_at_meeting else instance(period.closes_utc)
        return DagRunInfo(
            run_after=run_after,
            data_interval=DataInterval(start=instance(period.opens_utc), end=end_at),
        )

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run reviews the period of the latest meeting not after ``run_after``."""
        return self._info(self._latest_meeting(run_after)).data_interval

    def _latest_meeting(self, at: DateTime) -> date:
        """The latest meeting whose time is not after ``at``."""
        d = at.in_timezone("Asia/Kolkata").date()
        latest = None
        m = self.meeting_on_or_after(d - timedelta(days=100))
        while m <= d:
            if _at(m, self.hour, self.minute) <= at:
                latest = m
            m = self.meeting_on_or_after(m + timedelta(days=1))
        return latest

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            # every period ends on (or, for the monthly review, just before) its meeting day
            end_day = last_automated_data_interval.end.in_timezone("Asia/Kolkata").date()
            meeting = self.meeting_on_or_after(self.meeting_on_or_after(end_day) + timedelta(days=1))
            if not restriction.catchup:  # as CronTriggerTimetable: missed runs collapse into the latest
                meeting = max(meeting, self._latest_meeting(pendulum.now("UTC")))
        elif restriction.earliest is None:
            return None
        else:
            earliest = restriction.earliest
            if not restriction.catchup:
                earliest = max(earliest, pendulum.now("UTC"))
            meeting = self.meeting_on_or_after(earliest.in_timezone("Asia/Kolkata").date())
            if _at(meeting, self.hour, self.minute) < earliest:
                meeting = self.meeting_on_or_after(meeting + timedelta(days=1))
        info = self._info(meeting)
        if restriction.latest is not None and info.run_after > restriction.latest:
            return None
        return info


class WeeklyReviewTimetable(_MeetingTimetable):
    """Mondays at hh:mm IST, reviewing the previous ISO week (Mon–Sun)."""

    description = "Every Monday in IST, reviewing the previous ISO week."

    def __init__(self, hour: int = 10, minute: int = 0) -> None:
        super().__init__(hour, minute)

    @property
    def summary(self) -> str:
        return f"Mondays at {self.hour:02d}:{self.minute:02d} IST (previous ISO week)"

    def meeting_on_or_after(self, d: date) -> date:
        return d + timedelta(days=(7 - d.weekday()) % 7)

    def period_of(self, meeting: date) -> Period:
        return Period.of("week", meeting - timedelta(days=7))


class MonthlyReviewTimetable(_MeetingTimetable):
    """First Monday of each month at hh:mm IST, reviewing the previous calendar month.
    (Cron cannot say this: day-of-month and day-of-week are OR'ed.)"""

    description = "First Monday of each month in IST, reviewing the previous month."

    def __init__(self, hour: int = 14, minute: int = 0) -> None:
        super().__init__(hour, minute)

    @property
    def summary(self) -> str:
        return f"First Monday of the month at {self.hour:02d}:{self.minute:02d} IST (previous month)"

    @staticmethod
    def _first_monday(y: int, m: int) -> date:
        first = date(y, m, 1)
        return first + timedelta(days=(7 - first.weekday()) % 7)

    def meeting_on_or_after(self, d: date) -> date:
        fm = self._first_monday(d.year, d.month)
        if fm >= d:
            return fm
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return self._first_monday(y, m)

    def period_of(self, meeting: date) -> Period:
        return Period.of("month", meeting.replace(day=1) - timedelta(days=1))


class QuarterlyReviewTimetable(_MeetingTimetable):
    """Last Friday of each calendar quarter at hh:mm IST, reviewing the quarter to date
    (quarter start up to the meeting time)."""

    description = "Last Friday of each quarter in IST, reviewing the quarter to date."
    period_ends_at_meeting = True

    def __init__(self, hour: int = 10, minute: int = 0) -> None:
        super().__init__(hour, minute)

    @property
    def summary(self) -> str:
        return f"Last Friday of the quarter at {self.hour:02d}:{self.minute:02d} IST (quarter to date)"

    @staticmethod
    def _last_friday_of_quarter(y: int, q: int) -> date:
        end_month = 3 * q
        nxt = date(y + 1, 1, 1) if end_month == 12 else date(y, end_month + 1, 1)
        last = nxt - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - 4) % 7)

    def meeting_on_or_after(self, d: date) -> date:
        q = (d.month - 1) // 3 + 1
        lf = self._last_friday_of_quarter(d.year, q)
        if lf >= d:
            return lf
        return self._last_friday_of_quarter(d.year + (q == 4), 1 if q == 4 else q + 1)

    def period_of(self, meeting: date) -> Period:
        return Period.of("quarter", meeting)  # to date: the interval ends at the meeting


ALL_TIMETABLES = [
    NSETradingDayTimetable,
    WeeklyReviewTimetable,
    MonthlyReviewTimetable,
    QuarterlyReviewTimetable,
]
