"""Source coverage (kaizen.warehouse.coverage): spans of time each source has landed,
merged as they land, and what they say of a period's window. Values by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from kaizen import calendar as cal
from kaizen.period import Period
from kaizen.warehouse import coverage


def _utc(h: int, m: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=UTC)


def test_spans_that_overlap_or_touch_merge_and_others_stay_apart(engine):
    at = _utc(12)
    with engine.begin() as c:
        coverage.record(c, "probes", _utc(1), _utc(2), "a", at)
        coverage.record(c, "probes", _utc(3), _utc(4), "b", at)
        coverage.record(c, "errors", _utc(2), _utc(3), "c", at)
        coverage.record(c, "probes", _utc(5), _utc(5), "empty", at)  # nothing landed: no span
        assert coverage.spans(c) == {"probes": [(_utc(1), _utc(2)), (_utc(3), _utc(4))],
                                     "errors": [(_utc(2), _utc(3))]}
        coverage.record(c, "probes", _utc(2), _utc(3), "d", at)  # touches both: one span
        coverage.record(c, "probes", _utc(1, 30), _utc(2, 30), "e", at)  # inside: no change
        coverage.record(c, "probes", _utc(3, 30), _utc(6), "f", at)  # overlaps the end
        assert coverage.spans(c)["probes"] == [(_utc(1), _utc(6))]
        assert c.exec_driver_sql("select count(*) from source_coverage").scalar() == 2


def test_a_trading_day_slice_covers_its_days_up_to_the_next_session():
    # Thu 1 Oct 2026; Fri 2 Oct is Gandhi Jayanti, then the weekend: next session Mon 5 Oct
    assert coverage.day_span(date(2026, 10, 1), date(2026, 10, 1)) == (
        cal.ist_datetime(date(2026, 10, 1), time(0)), cal.ist_datetime(date(2026, 10, 5), time(0)))
    assert coverage.day_span(date(2026, 9, 28), date(2026, 9, 29)) == (
        cal.ist_datetime(date(2026, 9, 28), time(0)), cal.ist_datetime(date(2026, 9, 30), time(0)))


@pytest.mark.parametrize(("spans", "expected"), [
    ([(_utc(0), _utc(23))], (_utc(1), _utc(22), None, True)),
    ([(_utc(0), _utc(5)), (_utc(6), _utc(23))], (_utc(1), _utc(22), _utc(5), False)),
    ([(_utc(3), _utc(9))], (_utc(3), _utc(9), _utc(1), False)),
    ([(_utc(0), _utc(9))], (_utc(1), _utc(9), _utc(9), False)),
    ([(_utc(23), _utc(23, 30))], (None, None, _utc(1), False)),
    ([], (None, None, _utc(1), False)),
])
def test_a_window_is_covered_only_without_a_hole(spans, expected):
    got = coverage.of_window(spans, _utc(1), _utc(22))
    assert (got["first_landed"], got["last_landed"], got["missing_from"], got["is_covered"]) == expected


def test_a_day_judges_trades_by_its_date_and_time_sources_by_its_window():
    """Trading day Mon 23 Nov 2026: its window opens Fri 20 Nov 16:00 IST; trades of
    Friday's slice reach Monday 00:00, so Monday's trades are still missing."""
    day = Period.day(date(2026, 11, 23))
    spans = {"trades": [coverage.day_span(date(2026, 11, 20), date(2026, 11, 20))],
             "probes": [(cal.ist_datetime(date(2026, 11, 20), time(16)), cal.ist_datetime(date(2026, 11, 23), time(16)))]}
    rows = {r["source"]: r for r in coverage.period_rows(spans, day)}
    assert rows["probes"]["is_covered"] is True
    assert rows["trades"]["missing_from"] == cal.ist_datetime(date(2026, 11, 23), time(0))
    assert not coverage.covers(rows.values())
    assert coverage.covers([])  # nothing landed yet: no source to wait for
