"""The one Period type (kaizen.period): keys, fiscal labels, windows as of an instant,
trading and business days to date, neighbours, and the dict it travels as. Values are
worked out by hand against a printed 2026 calendar (NSE holidays: 2 Oct Gandhi
Jayanti, 20 Oct Dussehra, 10 Nov Diwali Balipratipada, 24 Nov Guru Nanak Jayanti,
25 Dec Christmas). No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kaizen import calendar as cal
from kaizen.period import GRAINS, Period, window_day, windows_utc


def ist(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=cal.IST)


@pytest.mark.parametrize(
    ("grain", "day", "start", "end", "key", "fiscal"),
    [
        ("day", date(2026, 11, 27), date(2026, 11, 27), date(2026, 11, 27), "2026-11-27", "FY27 Q3"),
        ("week", date(2026, 11, 27), date(2026, 11, 23), date(2026, 11, 29), "2026-W48", "FY27 Q3"),
        ("week", date(2027, 1, 2), date(2026, 12, 28), date(2027, 1, 3), "2026-W53", "FY27 Q3"),  # ISO year
        ("week", date(2025, 12, 31), date(2025, 12, 29), date(2026, 1, 4), "2026-W01", "FY26 Q3"),
        ("month", date(2026, 2, 14), date(2026, 2, 1), date(2026, 2, 28), "2026-02", "FY26 Q4"),
        ("month", date(2028, 2, 29), date(2028, 2, 1), date(2028, 2, 29), "2028-02", "FY28 Q4"),
        ("month", date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31), "2026-12", "FY27 Q3"),
        ("quarter", date(2026, 11, 27), date(2026, 10, 1), date(2026, 12, 31), "2026-Q4", "FY27 Q3"),
        ("quarter", date(2026, 4, 1), date(2026, 4, 1), date(2026, 6, 30), "2026-Q2", "FY27 Q1"),
        ("quarter", date(2026, 3, 31), date(2026, 1, 1), date(2026, 3, 31), "2026-Q1", "FY26 Q4"),
    ],
)
def test_period_of_a_day_key_and_fiscal_label(grain, day, start, end, key, fiscal):
    p = Period.of(grain, day)
    assert (p.start, p.end, p.key, p.fiscal_label) == (start, end, key, fiscal)
    assert Period.parse(key) == p
    assert Period.from_dict(p.as_dict()) == p


@pytest.mark.parametrize("bad", ["2026-W54", "2026-13", "2026-Q5", "2026-02-30", "26-10", "2026/10", ""])
def test_a_bad_key_is_refused_with_its_text(bad):
    with pytest.raises(ValueError, match="period key"):
        Period.parse(bad)


def test_from_dict_refuses_a_start_that_is_not_the_periods_start():
    with pytest.raises(ValueError, match="not the start of its month"):
        Period.from_dict({"grain": "month", "start": "2026-11-02"})
    with pytest.raises(ValueError, match="grain"):
        Period.of("year", date(2026, 1, 1))


def test_day_window_is_the_daily_review_window():
    # Mon 30 Nov 2026: from Fri 27 Nov 16:00 IST; Wed 25 Nov: from Mon 23 Nov (24th a holiday)
    assert Period.day(date(2026, 11, 30)).window_utc() == (ist(2026, 11, 27, 16), ist(2026, 11, 30, 16))
    assert Period.day(date(2026, 11, 25)).window_utc() == (ist(2026, 11, 23, 16), ist(2026, 11, 25, 16))
    assert windows_utc(date(2026, 11, 25), date(2026, 11, 30)) == (ist(2026, 11, 23, 16), ist(2026, 11, 30, 16))
    assert window_day(ist(2026, 11, 28, 9)) == date(2026, 11, 30)
    assert window_day(ist(2026, 11, 27, 15, 59)) == date(2026, 11, 27)
    assert window_day(ist(2026, 11, 27, 16)) == date(2026, 11, 30)


@pytest.mark.parametrize(
    ("grain", "day", "as_of", "window", "last", "sessions", "business", "complete"),
    [
        # the November month to Wed 25 Nov 16:00 IST: trades through the 25th count
        ("month", date(2026, 11, 1), ist(2026, 11, 25, 16), (ist(2026, 11, 1), ist(2026, 11, 25, 16)),
         date(2026, 11, 25), 16, 18, False),
        # … to 15:59 the same day: the 25th's session is not reviewed yet
        ("month", date(2026, 11, 1), ist(2026, 11, 25, 15, 59), (ist(2026, 11, 1), ist(2026, 11, 25, 15, 45)),  # to the quarter hour
         date(2026, 11, 24), 15, 17, False),
        # … at the end of the month: whole (19 sessions: 30 days less 9 weekend days and 2 holidays)
        ("month", date(2026, 11, 1), ist(2026, 12, 1), (ist(2026, 11, 1), ist(2026, 12, 1)),
         date(2026, 11, 30), 19, 21, True),
        # a week reviewed on its Sunday: Saturday's date is the last day, no session on it
        ("week", date(2026, 11, 23), ist(2026, 11, 29, 12), (ist(2026, 11, 23), ist(2026, 11, 29, 12)),
         date(2026, 11, 29), 4, 5, False),
        # a quarter whose start is after as_of: nothing counts yet
        ("quarter", date(2027, 1, 1), ist(2026, 12, 25, 10), (ist(2027, 1, 1), ist(2027, 1, 1)), None, 0, 0, False),
        # Q4 2026 to its review meeting, Fri 25 Dec 10:00 IST (a holiday): through Thu 24 Dec
        ("quarter", date(2026, 10, 1), ist(2026, 12, 25, 10), (ist(2026, 10, 1), ist(2026, 12, 25, 10)),
         date(2026, 12, 25), 57, 62, False),
    ],
)
def test_to_date(grain, day, as_of, window, last, sessions, business, complete):
    p = Period.of(grain, day)
    assert p.window_utc(as_of) == window
    assert p.last_day(as_of) == last
    assert len(p.trading_days(as_of)) == sessions
    assert p.business_days(as_of) == business
    assert p.is_complete(as_of) is complete


def test_q4_2026_sessions_by_hand():
    # Oct: 22 weekdays − 2 Oct − 20 Oct = 20; Nov: 21 − 10 Nov − 24 Nov = 19; Dec 1–24: 18
    days = Period.of("quarter", date(2026, 10, 1)).trading_days(ist(2026, 12, 25, 10))
    assert len(days) == 20 + 19 + 18
    assert days[0] == date(2026, 10, 1) and days[-1] == date(2026, 12, 24)


def test_business_days_of_a_day_count_the_weekdays_since_the_previous_session():
    assert Period.day(date(2026, 11, 30)).business_days() == 1  # Sat, Sun are not business days
    assert Period.day(date(2026, 11, 25)).business_days() == 2  # Tue 24 (holiday) and Wed 25
    assert Period.day(date(2026, 10, 21)).business_days() == 2  # Dussehra Tue 20 Oct


def test_previous_and_next():
    assert [p.key for p in Period.day(date(2026, 11, 25)).previous(3)] == ["2026-11-23", "2026-11-20", "2026-11-19"]
    assert [p.key for p in Period.parse("2026-W01").previous(2)] == ["2025-W52", "2025-W51"]
    assert [p.key for p in Period.parse("2026-01").previous(2)] == ["2025-12", "2025-11"]
    assert [p.key for p in Period.parse("2026-Q1").previous(4)] == ["2025-Q4", "2025-Q3", "2025-Q2", "2025-Q1"]
    assert Period.day(date(2026, 11, 23)).next().key == "2026-11-25"
    assert Period.parse("2026-12").next().key == "2027-01"


def test_between_lists_every_overlapping_period_in_order():
    assert [p.key for p in Period.between("month", date(2026, 10, 15), date(2027, 1, 2))] == [
        "2026-10", "2026-11", "2026-12", "2027-01"]
    assert [p.key for p in Period.between("quarter", date(2026, 3, 31), date(2026, 4, 1))] == ["2026-Q1", "2026-Q2"]
    assert [p.key for p in Period.between("day", date(2026, 11, 21), date(2026, 11, 25))] == [
        "2026-11-23", "2026-11-25"]


def test_windows_tile_the_time_line():
    for grain in GRAINS:
        ps = Period.between(grain, date(2026, 9, 1), date(2026, 12, 31))
        for a, b in zip(ps, ps[1:], strict=False):
            assert a.closes_utc == b.opens_utc, (a, b)
            assert a.closes_utc.tzinfo is UTC
    year = Period.between("day", date(2026, 1, 2), date(2026, 12, 31))
    minutes = sum((p.closes_utc - p.opens_utc) / timedelta(minutes=1) for p in year)
    assert minutes == (year[-1].closes_utc - year[0].opens_utc) / timedelta(minutes=1)
