"""The backfill's dry run lists what it would recompute (kaizen.pipeline.plan_backfill):
the trading days and, per grain, the periods — checked against periods worked out by
hand from the NSE calendar, and against the scopes the real rebuild computes."""

from __future__ import annotations

from datetime import date

import pytest

from kaizen.pipeline import plan_backfill, window_first_day


def request(start, end, grains=("day", "week", "month", "quarter"), reextract=True) -> dict:
    return {"start": start, "end": end, "grains": list(grains), "deliver_to": "none", "dry_run": True,
            "reextract": reextract}


def test_a_range_across_a_quarter_lists_each_grains_periods():
    # Mon 28 Sep … Tue 6 Oct 2026; Fri 2 Oct is Gandhi Jayanti (no session). The first
    # day's window opens on the previous session, Fri 25 Sep 16:00 IST, so the week,
    # month and quarter holding 25–27 Sep are recomputed too.
    plan = plan_backfill(request("2026-09-28", "2026-10-06"))
    days = ["2026-09-28", "2026-09-29", "2026-09-30", "2026-10-01", "2026-10-05", "2026-10-06"]
    assert plan["trading_days"] == days
    assert plan["periods"] == {
        "day": days,
        "week": ["2026-W39", "2026-W40", "2026-W41"],  # 21–27 Sep, 28 Sep–4 Oct, 5–11 Oct
        "month": ["2026-09", "2026-10"],
        "quarter": ["2026-Q3", "2026-Q4"],
    }
    assert plan["plan"] == [
        "Extract 6 trading day(s) 2026-09-28 … 2026-10-06 from every source: " + ", ".join(days),
        "Recompute day: 6 period(s): " + ", ".join(days),
        "Recompute week: 3 period(s): 2026-W39 (21–27 Sep 2026), 2026-W40 (28 Sep – 4 Oct 2026), "
        "2026-W41 (5–11 Oct 2026)",
        "Recompute month: 2 period(s): 2026-09 (1–30 Sep 2026), 2026-10 (1–31 Oct 2026)",
        "Recompute quarter: 2 period(s): 2026-Q3 (1 Jul – 30 Sep 2026), 2026-Q4 (1 Oct – 31 Dec 2026)",
    ]
    assert plan["dry_run"] is True


def test_a_range_ending_on_a_weekend_does_not_list_the_month_that_starts_after_its_last_session():
    # Mon 26 Oct … Sun 1 Nov 2026: the last session is Fri 30 Oct, cut off at 16:00 IST;
    # November starts on 1 Nov 00:00 IST, after it, so nothing of November is recomputed.
    plan = plan_backfill(request("2026-10-26", "2026-11-01", grains=("week", "month")))
    assert plan["trading_days"] == ["2026-10-26", "2026-10-27", "2026-10-28", "2026-10-29", "2026-10-30"]
    assert plan["periods"] == {"week": ["2026-W43", "2026-W44"], "month": ["2026-10"]}


def test_reextract_off_says_nothing_is_fetched():
    plan = plan_backfill(request("2026-11-27", "2026-11-27", grains=("day",), reextract=False))
    assert plan["plan"][0] == ("Extract nothing (reextract off); recompute from what the warehouse holds for "
                               "1 trading day(s) 2026-11-27 … 2026-11-27.")
    assert plan["periods"] == {"day": ["2026-11-27"]} and plan["reextract"] is False


def test_a_range_without_a_session_plans_nothing():
    plan = plan_backfill(request("2026-10-31", "2026-11-01"))  # Sat, Sun
    assert plan["trading_days"] == [] and plan["periods"] == {g: [] for g in ("day", "week", "month", "quarter")}
    assert plan["plan"] == ["No NSE trading day in 2026-10-31 … 2026-11-01: nothing to extract or recompute."]


@pytest.mark.parametrize(("start", "end"), [("2026-09-28", "2026-10-06"), ("2026-10-26", "2026-11-01"),
                                            ("2026-01-01", "2026-12-31")])
def test_the_plan_lists_exactly_the_rollups_the_rebuild_computes(start, end):
    from kaizen import calendar as cal
    from kaizen.kpis import periods
    from kaizen.period import Period

    first, last = date.fromisoformat(start), date.fromisoformat(end)
    days = cal.trading_days(first, last)
    rollups = ("week", "month", "quarter")
    scopes = periods.rollup_scopes(rollups, window_first_day(days[0]), last, as_of=Period.day(days[-1]).closes_utc)
    computed = {g: [Period.of(g, s.period_start).key for s, _ in scopes if s.grain == g] for g in rollups}
    assert plan_backfill(request(start, end, grains=rollups))["periods"] == computed
