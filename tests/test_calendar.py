"""The NSE calendar past its published lists (issue 11): fixed-date holidays by rule,
provisional years, the operator's overrides file (extra and removed holidays, special
sessions with their own hours, weekends included) read by the registered timetable as
the scheduler asks it, the early warning in the daily review, and old dates going to
the quarantine instead of aborting an extract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pendulum
import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.period import review_window_utc
from source_wire import order, trade

REPO = Path(__file__).resolve().parents[1]
IST = "Asia/Kolkata"


def _ist(y, m, d, h=16, mi=0):
    return pendulum.datetime(y, m, d, h, mi, tz=IST)


@pytest.fixture
def overrides(tmp_path, monkeypatch):
    """Point the calendar at a fresh overrides file; ``write(doc)`` replaces its content."""
    path = tmp_path / "overrides.json"

    def write(doc: dict) -> Path:
        path.write_text(json.dumps(doc))
        # a new mtime even on a coarse clock, and no 1 s wait for the reload check
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * (write.n + 1)))
        write.n += 1
        return path

    write.n = 0
    write({})
    monkeypatch.setenv(cal.ENV_OVERRIDES, str(path))
    monkeypatch.setattr(cal, "RELOAD_CHECK_SECONDS", 0.0)
    cal.refresh()
    yield write
    monkeypatch.delenv(cal.ENV_OVERRIDES)
    cal.refresh()


# ---------------------------------------------------------------- rule, list, provisional
@pytest.mark.parametrize("year", [2027, 2028, 2031, 2040])
def test_fixed_date_holidays_apply_in_every_year_on_weekdays(year, overrides):
    fixed = [date(year, 1, 26), date(year, 4, 14), date(year, 5, 1), date(year, 8, 15), date(year, 10, 2),
             date(year, 12, 25)]
    for d in fixed:
        h = cal.holiday(d)
        if d.weekday() < 5:
            assert h is not None and h.source == "rule", d
            assert not cal.is_trading_day(d)
        else:
            assert h is None and not cal.is_trading_day(d)  # a weekend: closed anyway
    assert cal.is_provisional(year)
    # a provisional year: every other weekday is a session of regular hours
    weekdays = sum(1 for k in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)
                   if (date(year, 1, 1) + timedelta(k)).weekday() < 5)
    fixed_on_weekdays = sum(1 for d in fixed if d.weekday() < 5)
    rep = cal.year_report(year)
    assert rep["provisional"] and len(rep["sessions"]) == weekdays - fixed_on_weekdays
    assert {(s.open, s.close) for s in rep["sessions"]} == {(time(9, 15), time(15, 30))}


def test_2027_by_hand():
    # 26 Jan Tue and 14 Apr Wed are weekday holidays; 1 May, 15 Aug, 2 Oct, 25 Dec 2027 are weekends
    rep = cal.year_report(2027)
    assert [(h.day, h.source) for h in rep["holidays"]] == [(date(2027, 1, 26), "rule"), (date(2027, 4, 14), "rule")]
    assert len(rep["sessions"]) == 261 - 2


def test_published_years_are_confirmed_and_coverage_starts_in_2020():
    assert not cal.is_provisional(2026) and not cal.is_provisional(2020)
    assert cal.holiday(date(2026, 11, 24)).source == "list"  # Guru Nanak Jayanti: a festival
    assert cal.holiday(date(2026, 1, 26)).source == "list"  # listed and a rule: the list names it
    with pytest.raises(cal.CalendarNotCovered, match="2019-06-03 is before the NSE calendar's coverage"):
        cal.is_trading_day(date(2019, 6, 3))


def test_published_lists_agree_with_pandas_market_calendars():
    """An independent source for 2020–2026: the weekday closures of the XNSE calendar.
    The one known difference: 21 Oct 2025 (Diwali Laxmi Pujan) is on NSE's list, with a
    Muhurat session in the shipped overrides; the package trades it as a full day."""
    import pandas_market_calendars as mcal

    nse = mcal.get_calendar("XNSE")
    for year in range(2020, 2027):
        sessions = set(nse.schedule(f"{year}-01-01", f"{year}-12-31").index.date)
        closed = {date(year, 1, 1) + timedelta(k) for k in range(366)} - sessions
        closed = {d for d in closed if d.year == year and d.weekday() < 5}
        listed = set(cal.calendar().lists[year])
        assert listed - closed == ({date(2025, 10, 21)} if year == 2025 else set()), year
        assert closed - listed == set(), year


def test_shipped_special_sessions_budget_saturday_and_muhurat():
    budget = cal.session(date(2025, 2, 1))
    assert budget is not None and budget.special and (budget.open, budget.close) == (time(9, 15), time(15, 30))
    muhurat = cal.session(date(2025, 10, 21))
    assert (muhurat.open, muhurat.close) == (time(13, 45), time(14, 45))
    assert cal.holiday(date(2025, 10, 21)) is None  # the special session wins over the list
    assert cal.session_bounds_utc(date(2025, 10, 21)) == (
        datetime(2025, 10, 21, 8, 15, tzinfo=cal.UTC), datetime(2025, 10, 21, 9, 15, tzinfo=cal.UTC))


# ---------------------------------------------------------------- the registered timetable
@pytest.fixture(scope="module")
def scheduled_timetable():
    """daily_review's timetable as the scheduler holds it: parsed from the DAG file,
    serialised and read back (an unregistered class would fail here)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagBag(dag_folder=str(REPO / "dags" / "daily_review.py")).get_dag("daily_review")
    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).timetable


def _scheduled_days(tt, start: pendulum.DateTime, until: date) -> list[tuple[date, pendulum.DateTime]]:
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    info = tt.next_dagrun_info_v2(last_dagrun_info=None, restriction=restriction)
    out = []
    while info.run_after.in_timezone(IST).date() <= until:
        out.append((info.data_interval.end.in_timezone(IST).date(), info.run_after))
        info = tt.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
    return out


def test_daily_review_runs_in_2027_and_2028_skip_fixed_holidays(scheduled_timetable):
    runs = _scheduled_days(scheduled_timetable, _ist(2026, 12, 28, 0), date(2028, 2, 29))
    days = [d for d, _ in runs]
    assert date(2027, 1, 26) not in days and date(2028, 1, 26) not in days  # Tue, Wed: Republic Day
    assert date(2027, 1, 1) in days and date(2027, 12, 24) in days
    assert date(2026, 12, 25) not in days and date(2027, 12, 31) in days
    assert date(2027, 1, 25) in days and date(2027, 1, 27) in days
    assert all(d.weekday() < 5 for d in days)
    assert all(at.in_timezone(IST).time() == pendulum.time(16, 0) for _, at in runs)
    # every weekday of 2027 but the two fixed-date holidays on weekdays
    assert len([d for d in days if d.year == 2027]) == 259


def test_overrides_change_the_next_runs_without_code_change(scheduled_timetable, overrides):
    from airflow.timetables.base import TimeRestriction

    before = _scheduled_days(scheduled_timetable, _ist(2027, 3, 1, 0), date(2027, 3, 10))
    assert [d for d, _ in before] == [date(2027, 3, d) for d in (1, 2, 3, 4, 5, 8, 9, 10)]
    overrides({
        "holidays": {"2027-03-04": "Holi (operator)"},
        "special_sessions": {"2027-03-06": {"name": "Budget Saturday", "open": "10:00", "close": "14:00"}},
    })
    after = _scheduled_days(scheduled_timetable, _ist(2027, 3, 1, 0), date(2027, 3, 10))
    assert [d for d, _ in after] == [date(2027, 3, d) for d in (1, 2, 3, 5, 6, 8, 9, 10)]
    # Saturday's run at 16:00 IST; its interval runs from Friday's review, Monday's from Saturday's
    sat = dict(after)[date(2027, 3, 6)]
    assert sat == _ist(2027, 3, 6)
    mon = scheduled_timetable.next_dagrun_info_v2(
        last_dagrun_info=scheduled_timetable.next_dagrun_info_v2(
            last_dagrun_info=None,
            restriction=TimeRestriction(earliest=_ist(2027, 3, 6, 12), latest=None, catchup=True)),
        restriction=TimeRestriction(earliest=_ist(2027, 3, 6, 12), latest=None, catchup=True))
    assert mon.data_interval.start == _ist(2027, 3, 6) and mon.data_interval.end == _ist(2027, 3, 8)
    # Wednesday's run reports through Thursday's closure up to Friday
    fri = [i for i, (d, _) in enumerate(after) if d == date(2027, 3, 5)][0]
    assert after[fri - 1][0] == date(2027, 3, 3)
    # the daily review window of the Saturday is its own, with its own session hours
    assert review_window_utc(date(2027, 3, 6)) == (_ist(2027, 3, 5), _ist(2027, 3, 6))
    assert cal.session_bounds_utc(date(2027, 3, 6)) == (_ist(2027, 3, 6, 10), _ist(2027, 3, 6, 14))
    # an edit in place is seen too
    overrides({"removed_holidays": {"2027-01-26": "NSE trades after all (test)"}})
    days = [d for d, _ in _scheduled_days(scheduled_timetable, _ist(2027, 1, 25, 0), date(2027, 1, 27))]
    assert days == [date(2027, 1, 25), date(2027, 1, 26), date(2027, 1, 27)]


def test_an_evening_special_session_is_reviewed_after_its_close(scheduled_timetable, overrides):
    overrides({"special_sessions": {"2027-10-31": {"name": "Muhurat trading", "open": "18:00", "close": "19:15"}}})
    runs = _scheduled_days(scheduled_timetable, _ist(2027, 10, 29, 0), date(2027, 11, 1))
    assert [(d, at.in_timezone(IST).time()) for d, at in runs] == [
        (date(2027, 10, 29), pendulum.time(16, 0)),
        (date(2027, 10, 31), pendulum.time(19, 45)),  # a Sunday: 30 minutes after its 19:15 close
        (date(2027, 11, 1), pendulum.time(16, 0)),
    ]
    assert cal.review_time(date(2027, 10, 31)) == time(19, 45)
    assert review_window_utc(date(2027, 11, 1))[0] == _ist(2027, 10, 31, 19, 45)
    from kaizen.pipeline import resolve_trading_day

    # a manual run at 19:00 that evening reports on Friday: the session has not been reviewed yet
    assert resolve_trading_day(run_after=_ist(2027, 10, 31, 19)) == date(2027, 10, 29)
    assert resolve_trading_day(run_after=_ist(2027, 10, 31, 19, 45)) == date(2027, 10, 31)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"holidays": {"2027-13-01": "x"}}, "holidays: '2027-13-01' is not a date"),
        ({"special_sessions": {"2027-03-06": {"name": "x", "open": "9:15", "close": "15:30"}}},
         "special_sessions.2027-03-06.open: '9:15' is not a time in HH:MM"),
        ({"special_sessions": {"2027-03-06": {"name": "x", "open": "15:30", "close": "09:15"}}},
         "special_sessions.2027-03-06: open 15:30 is not before close 09:15"),
        ({"special_sessions": {"2027-03-06": {"open": "10:00", "close": "12:00"}}},
         "special_sessions.2027-03-06.name is missing"),
        ({"holiday": {"2027-03-04": "Holi"}}, "unknown key(s) 'holiday'"),
        ({"special_sessions": {"2027-03-06": {"name": "x", "open": "10:10", "close": "12:00"}}},
         "special_sessions.2027-03-06: hours must be on a quarter hour"),
        ({"holiday_lists": {"2027": {"2028-01-03": "x"}}}, "holiday_lists.2027: 2028-01-03 is not in 2027"),
        ({"holidays": {"2027-03-04": "a"}, "removed_holidays": {"2027-03-04": "b"}},
         "2027-03-04 is both in 'holidays' and in 'removed_holidays'"),
    ],
)
def test_a_malformed_overrides_file_is_refused_naming_the_field(overrides, doc, message):
    path = overrides(doc)
    with pytest.raises(cal.CalendarFileError) as err:
        cal.is_trading_day(date(2027, 3, 1))
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_published_list_in_the_overrides_confirms_the_year(overrides):
    assert cal.is_provisional(2027) and cal.provisional_notes(date(2026, 12, 1))
    overrides({"holiday_lists": {"2027": {"2027-03-22": "Holi", "2027-01-26": "Republic Day"}}})
    assert not cal.is_provisional(2027) and cal.provisional_notes(date(2026, 12, 1)) == []
    assert cal.holiday(date(2027, 3, 22)).source == "list"
    assert cal.holiday(date(2027, 4, 14)).source == "rule"  # the rule still applies


def test_cli_prints_a_year_with_sources_and_whether_provisional(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    env.pop(cal.ENV_OVERRIDES, None)
    out = subprocess.run([sys.executable, "-m", "kaizen", "calendar", "--year", "2027"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "NSE calendar 2027 — PROVISIONAL" in out
    assert "sessions: 259 (0 special)" in out
    assert "2027-01-26 Tue  Republic Day  [rule]" in out
    out = subprocess.run([sys.executable, "-m", "kaizen", "calendar", "--year", "2025"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "confirmed" in out and "2025-02-01 Sat  09:15–15:30 IST" in out and "[override]" in out
    assert "[list]" in out
    bad = subprocess.run([sys.executable, "-m", "kaizen", "calendar", "--year", "2019"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "before the NSE calendar's coverage" in bad.stderr


# ---------------------------------------------------------------- the daily review's warning
@pytest.mark.parametrize(
    ("day", "lines"),
    [
        (date(2026, 10, 30), []),
        (date(2026, 11, 2), ["The NSE holiday list for 2027 is not confirmed yet"]),
        (date(2026, 12, 1), ["The NSE holiday list for 2027 is not confirmed yet"]),
        (date(2027, 3, 1), ["The NSE holiday list for 2027 is not confirmed: only fixed-date holidays"]),
    ],
)
def test_daily_review_warns_from_1_november_when_next_year_is_provisional(engine, day, lines):
    from kaizen.reports import daily

    report = daily.build_daily(engine, day)
    assert [n for n in report.notes if "NSE holiday list" in n] == [
        n for n in report.notes if any(line in n for line in lines)]
    assert len(report.notes) == len(lines)
    rendered = daily.render_daily(report)
    context = [b for b in rendered["payload"]["blocks"] if b.get("block_id") == "calendar"]
    if lines:
        (block,) = context
        text = block["elements"][0]["text"]
        assert lines[0] in text and "plugins/kaizen/data/nse_holidays.json" in text
        assert "nse_calendar_overrides.json" in text
        assert lines[0] in rendered["markdown"]
    else:
        assert context == [] and "NSE holiday list" not in rendered["markdown"]


# ---------------------------------------------------------------- old and odd dates
def test_a_trade_dated_2019_goes_to_quarantine_and_the_day_loads(engine):
    from kaizen.sources import trading

    d = date(2026, 11, 26)
    trades = [trade("T1"), trade("T2"),
              trade("OLD", entry="2019-03-05T04:00:00Z", exit="2026-11-26T05:00:00Z"),
              trade("SAT", entry="2026-11-28T04:00:00Z", exit="2026-11-28T05:00:00Z")]
    orders = [order("O1"), order("O2", trade_id="T2")]
    res = {r.source: r for r in trading.extract_range(d, d, engine, "r1", lambda a, b: {"trades": trades,
                                                                                         "orders": orders})}
    t = res["trades"]
    assert (t.extracted, t.loaded, t.quarantined) == (3, 2, 1)  # SAT closed on the 28th: not this day
    assert t.extracted == t.loaded + t.quarantined
    with engine.connect() as c:
        (key, reason), = c.execute(sa.text("select record_key, reason from quarantine where source = 'trades'")).all()
        loaded = sorted(r[0] for r in c.execute(sa.text("select trade_id from raw_trades")))
    assert key == "OLD" and loaded == ["T1", "T2"]
    assert reason.startswith("entry_time 2019-03-05 09:30:00 IST is outside the calendar")
    assert "before the NSE calendar's coverage" in reason


def test_a_trade_outside_a_special_sessions_hours_is_quarantined(overrides):
    from kaizen.sources import trading

    overrides({"special_sessions": {"2027-03-06": {"name": "Budget Saturday", "open": "10:00", "close": "12:00"}}})
    d = date(2027, 3, 6)
    inside = trade("IN", entry="2027-03-06T04:45:00Z", exit="2027-03-06T06:00:00Z")  # 10:15–11:30 IST
    late = trade("LATE", entry="2027-03-06T04:45:00Z", exit="2027-03-06T07:00:00Z")  # exit 12:30 IST
    # as of that evening: a trade of a day still to come would be quarantined as future
    as_of = datetime(2027, 3, 6, 14, 0, tzinfo=cal.UTC)
    n, rows, rejects = trading.parse_trades(d, d, [inside, late], as_of=as_of)
    assert n == 2 and list(rows["trade_id"]) == ["IN"]
    (rej,) = rejects
    assert rej.record_key == "LATE"
    assert rej.reason == "exit_time 2027-03-06 12:30:00 IST outside the NSE session (10:00–12:00 IST that day)"


def test_the_readme_example_overrides_file_is_valid(overrides):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**The overrides file**"):]
    example = json.loads(section[section.index("```json") + 7:section.index("```", section.index("```json") + 7)])
    overrides(example)
    assert not cal.is_provisional(2027) and cal.holiday(date(2027, 3, 22)).source == "list"
    assert cal.holiday(date(2027, 6, 17)).source == "override"
    assert cal.is_trading_day(date(2027, 4, 14))  # removed
    assert cal.session(date(2027, 10, 29)).name == "Muhurat trading"
    assert cal.review_time(date(2027, 10, 29)) == time(19, 45)
