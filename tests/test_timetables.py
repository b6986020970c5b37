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


def test_past_holiday_data_runs_are_created_and_fail_loudly():
    last_2026 = DataInterval(_ist(2026, 12, 30), _ist(2026, 12, 31))
    nxt = TT.next_dagrun_info(
        last_automated_data_interval=last_2026,
        restriction=TimeRestriction(earliest=_ist(2026, 1, 1), latest=None, catchup=True),
    )
    assert nxt.run_after == _ist(2027, 1, 1)  # scheduled, not silently dropped …
    from kaizen.pipeline import resolve_trading_day

    with pytest.raises(cal.CalendarNotCovered, match="covers 2020–2026.*2027"):
        resolve_trading_day(data_interval_end=nxt.data_interval.end)  # … and its first task fails


def test_serialise_round_trip_through_airflow():
    from airflow.serialization.encoders import encode_timetable
    from airflow.serialization.decoders import decode_timetable

    tt = NSETradingDayTimetable(hour=16, minute=30)
    back = decode_timetable(encode_timetable(tt))
    assert isinstance(back, NSETradingDayTimetable)
    assert (back.hour, back.minute) == (16, 30)
    assert back.summary == "NSE trading days at 16:30 IST"
