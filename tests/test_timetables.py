"""NSE trading-day timetable: first, next, holidays, manual runs, serialisation."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from kaizen import calendar as cal
from kaizen.timetables import NSETradingDayTimetable

IST = "Asia/Kolkata"
TT = NSETradingDayTimetable()


def _ist(y, m, d, h=16, mi=0):
    return pendulum.datetime(y, m, d, h, mi, tz=IST)


def _runs(start: pendulum.DateTime, n: int) -> list:
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    info = TT.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    out = [info]
    for _ in range(n - 1):
        info = TT.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
        out.append(info)
    return out


def test_run_after_friday_27_nov_is_monday_30_nov():
    fri = DataInterval(_ist(2026, 11, 26), _ist(2026, 11, 27))
    nxt = TT.next_dagrun_info(
        last_automated_data_interval=fri,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=True),
    )
    assert nxt.run_after == _ist(2026, 11, 30)
    assert nxt.data_interval == DataInterval(_ist(2026, 11, 27), _ist(2026, 11, 30))


def test_weekends_and_2026_holidays_get_no_run():
    runs = _runs(_ist(2026, 11, 20, 0), 30)
    days = [r.run_after.in_timezone(IST).date() for r in runs]
    assert days[:7] == [
        date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 25),  # 24 Nov: Guru Nanak Jayanti
        date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1),
    ]
    assert date(2026, 12, 25) not in days and date(2026, 12, 24) in days and date(2026, 12, 28) in days
    assert all(d.weekday() < 5 for d in days)
    assert all(r.run_after.in_timezone(IST).time() == pendulum.time(16, 0) for r in runs)
    # intervals tile the time line: each starts where the previous ended
    assert all(a.data_interval.end == b.data_interval.start for a, b in zip(runs, runs[1:], strict=False))


def test_first_run_respects_start_date_time_of_day():
    # earliest after 16:00 on a trading day: that day's run is already past, next one is due
    first = _runs(_ist(2026, 11, 26, 17), 1)[0]
    assert first.run_after == _ist(2026, 11, 27)
    first = _runs(_ist(2026, 11, 26, 15), 1)[0]
    assert first.run_after == _ist(2026, 11, 26)


def test_latest_bound_stops_scheduling():
    restriction = TimeRestriction(earliest=_ist(2026, 11, 27), latest=_ist(2026, 11, 28), catchup=True)
    last = DataInterval(_ist(2026, 11, 26), _ist(2026, 11, 27))
    assert TT.next_dagrun_info(last_automated_data_interval=last, restriction=restriction) is None


@pytest.mark.parametrize(
    ("run_after", "expected_day"),
    [
        (_ist(2026, 11, 27, 16, 5), date(2026, 11, 27)),  # after the review time: today
        (_ist(2026, 11, 27, 15, 59), date(2026, 11, 26)),  # before it: the previous trading day
        (_ist(2026, 11, 29, 12), date(2026, 11, 27)),  # Sunday: Friday
        (_ist(2026, 11, 24, 18), date(2026, 11, 23)),  # NSE holiday: the day before
    ],
)
def test_manual_run_reports_latest_complete_trading_day(run_after, expected_day):
    interval = TT.infer_manual_data_interval(run_after=run_after)
    assert NSETradingDayTimetable.trading_day_of(interval.end) == expected_day
    assert interval.start == _ist(*cal.previous_trading_day(expected_day).timetuple()[:3])


def test_a_provisional_year_is_scheduled_and_its_runs_resolve():
    last_2026 = DataInterval(_ist(2026, 12, 30), _ist(2026, 12, 31))
    nxt = TT.next_dagrun_info(
        last_automated_data_interval=last_2026,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=True),
    )
    assert nxt.run_after == _ist(2027, 1, 1)
    from kaizen.pipeline import resolve_trading_day

    assert resolve_trading_day(data_interval_end=nxt.data_interval.end) == date(2027, 1, 1)


def test_a_day_before_the_calendar_fails_loudly():
    from kaizen.pipeline import resolve_trading_day

    with pytest.raises(cal.CalendarNotCovered, match="before the NSE calendar's coverage.*2020-01-01"):
        resolve_trading_day(param_day="2019-12-31")


def test_serialise_round_trip_through_airflow():
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    back = decode_timetable(encode_timetable(NSETradingDayTimetable()))
    assert isinstance(back, NSETradingDayTimetable)
    assert back.summary.startswith("NSE trading days at the daily review time")
    # a DAG serialised before the cut-off moved to the calendar still reads back
    assert NSETradingDayTimetable.deserialize({"hour": 16, "minute": 0}).serialize() == {}


# ---- review meetings: weekly, monthly, quarterly -------------------------------------

from kaizen.timetables import (  # noqa: E402
    MonthlyReviewTimetable,
    QuarterlyReviewTimetable,
    WeeklyReviewTimetable,
)


def _meetings(tt, start, n):
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    out = [info]
    for _ in range(n - 1):
        info = tt.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
        out.append(info)
    return out


def test_weekly_mondays_10_ist_previous_iso_week():
    runs = _meetings(WeeklyReviewTimetable(), _ist(2026, 11, 25, 0), 3)
    assert [r.run_after for r in runs] == [_ist(2026, 11, 30, 10), _ist(2026, 12, 7, 10), _ist(2026, 12, 14, 10)]
    assert runs[0].data_interval == DataInterval(_ist(2026, 11, 23, 0), _ist(2026, 11, 30, 0))


# first Mondays of each month 2026–2027, checked against a printed calendar
FIRST_MONDAYS = [
    (2026, 1, 5), (2026, 2, 2), (2026, 3, 2), (2026, 4, 6), (2026, 5, 4), (2026, 6, 1),
    (2026, 7, 6), (2026, 8, 3), (2026, 9, 7), (2026, 10, 5), (2026, 11, 2), (2026, 12, 7),
    (2027, 1, 4), (2027, 2, 1), (2027, 3, 1), (2027, 4, 5), (2027, 5, 3), (2027, 6, 7),
    (2027, 7, 5), (2027, 8, 2), (2027, 9, 6), (2027, 10, 4), (2027, 11, 1), (2027, 12, 6),
]


def test_monthly_first_mondays_14_ist_2026_2027():
    runs = _meetings(MonthlyReviewTimetable(), _ist(2026, 1, 1, 0), 24)
    assert [r.run_after for r in runs] == [_ist(y, m, d, 14) for y, m, d in FIRST_MONDAYS]
    # the run on 2 Nov 2026 reviews October
    nov = runs[10]
    assert nov.data_interval == DataInterval(_ist(2026, 10, 1, 0), _ist(2026, 11, 1, 0))
    assert runs[12].data_interval == DataInterval(_ist(2026, 12, 1, 0), _ist(2027, 1, 1, 0))


LAST_FRIDAYS = [(2026, 3, 27), (2026, 6, 26), (2026, 9, 25), (2026, 12, 25),
                (2027, 3, 26), (2027, 6, 25), (2027, 9, 24), (2027, 12, 31)]


def test_quarterly_last_fridays_10_ist_quarter_to_date_even_on_holidays():
    runs = _meetings(QuarterlyReviewTimetable(), _ist(2026, 1, 1, 0), 8)
    assert [r.run_after for r in runs] == [_ist(y, m, d, 10) for y, m, d in LAST_FRIDAYS]
    # 25 Dec 2026 and 26 Jun 2026 are NSE holidays: the meeting still happens
    assert not cal.is_trading_day(date(2026, 12, 25)) and not cal.is_trading_day(date(2026, 6, 26))
    q4 = runs[3]
    assert q4.data_interval == DataInterval(_ist(2026, 10, 1, 0), _ist(2026, 12, 25, 10))


@pytest.mark.parametrize(
    ("tt", "run_after", "start", "end"),
    [
        (WeeklyReviewTimetable(), _ist(2026, 11, 29, 12), _ist(2026, 11, 16, 0), _ist(2026, 11, 23, 0)),
        (MonthlyReviewTimetable(), _ist(2026, 11, 29, 12), _ist(2026, 10, 1, 0), _ist(2026, 11, 1, 0)),
        (MonthlyReviewTimetable(), _ist(2026, 11, 2, 13), _ist(2026, 9, 1, 0), _ist(2026, 10, 1, 0)),
        (QuarterlyReviewTimetable(), _ist(2026, 11, 29, 12), _ist(2026, 7, 1, 0), _ist(2026, 9, 25, 10)),
    ],
)
def test_meeting_manual_runs_review_latest_meeting_period(tt, run_after, start, end):
    assert tt.infer_manual_data_interval(run_after=run_after) == DataInterval(start, end)


@pytest.mark.parametrize("cls", [WeeklyReviewTimetable, MonthlyReviewTimetable, QuarterlyReviewTimetable])
def test_meeting_timetables_serialise(cls):
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    tt = cls(hour=9, minute=45)
    back = decode_timetable(encode_timetable(tt))
    assert type(back) is cls and (back.hour, back.minute) == (9, 45)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (_ist(2026, 12, 4, 17, 53), _ist(2026, 12, 4)),  # Friday after its review: that run, not 5 missed ones
        (_ist(2026, 12, 4, 15, 59), _ist(2026, 12, 3)),  # before Friday's review time: Thursday's
        (_ist(2026, 12, 6, 9, 0), _ist(2026, 12, 4)),  # on Sunday: Friday's
        (_ist(2026, 11, 20, 17, 0), _ist(2026, 11, 23)),  # nothing missed: the next run, as with catch-up
    ],
)
def test_without_catchup_missed_runs_collapse_into_the_latest(monkeypatch, now, expected):
    """After a pause or a backfill (last automated run Fri 20 Nov), catchup=False creates one
    run, the latest due, as Airflow's CronTriggerTimetable does — not one per missed day."""
    monkeypatch.setattr("kaizen.timetables.pendulum.now", lambda tz="UTC": now.in_timezone(tz))
    last = DataInterval(_ist(2026, 11, 19), _ist(2026, 11, 20))
    nxt = TT.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=False),
    )
    assert nxt.run_after == expected
    assert nxt.data_interval.end == expected


def test_without_catchup_a_missed_weekly_review_runs_once(monkeypatch):
    from kaizen.timetables import WeeklyReviewTimetable

    tt = WeeklyReviewTimetable()
    monkeypatch.setattr("kaizen.timetables.pendulum.now", lambda tz="UTC": _ist(2026, 12, 4, 12).in_timezone(tz))
    last = DataInterval(_ist(2026, 11, 2, 0), _ist(2026, 11, 9, 0))  # week 45, reviewed Mon 9 Nov
    nxt = tt.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=False),
    )
    assert nxt.run_after == _ist(2026, 11, 30, 10)  # the latest Monday meeting, not 16 and 23 Nov too
    with_catchup = tt.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=True),
    )
    assert with_catchup.run_after == _ist(2026, 11, 16, 10)


@pytest.mark.parametrize("tt", [NSETradingDayTimetable(), WeeklyReviewTimetable(), MonthlyReviewTimetable(),
                                QuarterlyReviewTimetable()], ids=lambda tt: type(tt).__name__)
@pytest.mark.parametrize("now", [_ist(2027, 2, 10, 12), _ist(2026, 12, 28, 15), _ist(2027, 4, 1, 9)])
def test_without_catchup_a_pause_of_four_weeks_gives_only_the_latest_run(monkeypatch, tt, now):
    """Last automated run 4 weeks before ``now``: with catchup=False the next run is the
    latest one due (what catch-up would have run last), as CronTriggerTimetable does —
    or, when nothing was missed, simply the next one."""
    monkeypatch.setattr("kaizen.timetables.pendulum.now", lambda tz="UTC": now.in_timezone(tz))
    catch_up = TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=True)
    runs = [tt.next_dagrun_info(last_automated_data_interval=None, restriction=catch_up)]
    while runs[-1].run_after <= now:
        runs.append(tt.next_dagrun_info(last_automated_data_interval=runs[-1].data_interval, restriction=catch_up))
    last = [r for r in runs if r.run_after <= now.subtract(weeks=4)][-1]
    missed = [r for r in runs if last.run_after < r.run_after <= now]
    expected = missed[-1] if missed else runs[runs.index(last) + 1]
    nxt = tt.next_dagrun_info(last_automated_data_interval=last.data_interval,
                              restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=False))
    assert (nxt.run_after, nxt.data_interval) == (expected.run_after, expected.data_interval)
    if isinstance(tt, NSETradingDayTimetable | WeeklyReviewTimetable):
        assert len(missed) > 1  # there were several to skip
