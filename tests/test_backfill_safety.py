"""Backfills never corrupt the periods they touch (issue: operated day after day).

On a warehouse rebuilt for 21 Sep – 9 Oct 2026, re-running a few old days — a 2-day
``kaizen_backfill`` inside the closed September (kaizen.pipeline.rebuild, what its
``rebuild_range`` task calls), or a native backfill of the daily DAG for the week of
28 Sep (the pipeline steps its tasks call, day by day) — leaves every week, month and
quarter row identical: each period is recomputed to its own end, or as far as the data
has landed, never cut at the backfill's last day. Before, September's trades were cut
to the backfill's end and the month was marked incomplete."""

from __future__ import annotations

import json
from datetime import date, time

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import pipeline

FIRST, LAST = date(2026, 9, 21), date(2026, 10, 9)
STAMPS = {"run_id", "computed_at"}


def _rollups(engine) -> dict:
    with engine.connect() as c:
        rows = c.execute(sa.text("select * from kpi_values where grain <> 'day'")).mappings()
        return {(r["kpi_id"], r["grain"], str(r["period_start"])[:10]): {k: v for k, v in r.items() if k not in STAMPS}
                for r in rows}


def _september(engine) -> dict:
    with engine.connect() as c:
        return dict(c.execute(sa.text(
            "select kpi_id, value from kpi_values where grain = 'month' and period_start = :p "
            "and kpi_id in ('trades_count', 'net_pnl_inr')"), {"p": "2026-09-01"}).tuples().all())


def test_a_two_day_backfill_in_a_closed_month_changes_no_period(rebuilt):
    before = _rollups(rebuilt)
    assert before[("trades_count", "week", "2026-09-28")]["is_complete"] in (1, True)
    # September began before the history (21 Sep): never complete, however it is recomputed
    assert before[("trades_count", "month", "2026-09-01")]["is_complete"] in (0, False)
    assert {g for _, g, _ in before} == {"week", "month", "quarter"}
    pipeline.rebuild(date(2026, 9, 24), date(2026, 9, 25), "backfill")
    assert _rollups(rebuilt) == before


def test_a_native_backfill_of_a_week_changes_no_period(rebuilt):
    before = _rollups(rebuilt)
    september = _september(rebuilt)
    for d in cal.trading_days(date(2026, 9, 28), date(2026, 10, 2)):
        for source in pipeline.SOURCES:
            pipeline.extract_source(source, d, "native")
        pipeline.compute_day_kpis(d, "native")
        out = pipeline.compute_rollups_to_date(d, "native")
        assert "month:2026-09-01" in out["periods"] or d.month == 10
    assert _rollups(rebuilt) == before
    assert _september(rebuilt) == september and september["trades_count"] > 0


@pytest.mark.parametrize(("run_type", "alerts"), [("scheduled", 1), ("backfill", 0), ("manual", 0),
                                                   ("asset_triggered", 0), (None, 1)])
def test_only_scheduled_runs_raise_the_deadline_alert(run_type, alerts, tmp_path, monkeypatch):
    """The triggerer hands the callback the run as a dict (DAGRunResponse); without a
    Slack connection the alert lands in the outbox, where it is counted. A run type the
    callback cannot read alerts, rather than staying silent."""
    from kaizen import alerts as alerts_mod

    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    run = {"run_id": "r1"} if run_type is None else {"run_id": "r1", "run_type": run_type}
    alerts_mod.daily_review_deadline_missed(context={"dag_run": run})
    sent = list((tmp_path / "alerts").glob("*_deadline.json")) if (tmp_path / "alerts").exists() else []
    assert len(sent) == alerts


def test_recompute_only_fetches_nothing_and_restores_the_kpis(rebuilt, monkeypatch, tmp_path):
    """The backfill form's ``reextract: false``: the sources are not read (the demo
    folder points nowhere) and the KPIs come back as they were from the stored facts."""
    from kaizen.backfill import validate

    with rebuilt.connect() as c:
        before = {r[:3]: r[3:] for r in c.execute(sa.text(
            "select kpi_id, grain, period_start, value, status, is_complete from kpi_values")).tuples()}
    with rebuilt.begin() as c:
        c.exec_driver_sql("delete from kpi_values")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(tmp_path / "nowhere"))
    req = validate({"start": str(FIRST), "end": str(LAST), "reextract": False}, today=date(2026, 12, 4))
    assert req.reextract is False
    out = pipeline.rebuild_backfill(req.as_dict(), "recompute")
    assert out["extracted"] == 0 and out["kpi_rows"] > 0
    with rebuilt.connect() as c:
        after = {r[:3]: r[3:] for r in c.execute(sa.text(
            "select kpi_id, grain, period_start, value, status, is_complete from kpi_values")).tuples()}
    assert after == before


def test_a_wrong_reextract_value_is_refused_naming_the_field():
    from kaizen.backfill import BackfillParamError, validate

    with pytest.raises(BackfillParamError, match="reextract: 'no' is not true or false"):
        validate({"start": "2026-11-02", "end": "2026-11-03", "reextract": "no"}, today=date(2026, 12, 4))


def test_a_period_that_starts_before_the_history_is_never_complete(rebuilt):
    """The history of the rebuilt warehouse begins with 21 Sep's window (Fri 18 Sep
    16:00 IST): September and Q3 ended long ago yet stay incomplete; the weeks from
    21 Sep that have ended, and the days, are complete."""
    from kaizen.kpis import periods

    with rebuilt.connect() as c:
        assert periods.history_start(c) == cal.ist_datetime(date(2026, 9, 18), cal.review_time(date(2026, 9, 18)))
        flags = {(g, str(p)[:10]): bool(v) for g, p, v in c.execute(sa.text(
            "select grain, period_start, min(case when is_complete then 1 else 0 end) from kpi_values "
            "group by grain, period_start")).tuples()}
    assert {k for k, v in flags.items() if not v and k[0] != "day"} == {
        ("month", "2026-09-01"), ("quarter", "2026-07-01"),
        ("week", "2026-10-05"), ("month", "2026-10-01"), ("quarter", "2026-10-01")}  # the last: to date
    assert flags[("week", "2026-09-21")] and flags[("week", "2026-09-28")]
    assert all(v for (g, _), v in flags.items() if g == "day")


def test_the_review_of_a_period_before_the_history_says_what_was_observed(rebuilt, tmp_path):
    """September's monthly review on a history that begins on 21 Sep: titled and marked
    'observed from 21 Sep', not complete, never '(to date)'; October's review (whole
    history) carries no such mark."""
    from kaizen.reports import review

    as_of = cal.ist_datetime(date(2026, 10, 5), time(14, 0))
    sep = review.build_review(rebuilt, "monthly", date(2026, 9, 1), as_of=as_of)
    assert (sep.observed_from, sep.is_complete) == (date(2026, 9, 21), False)
    assert sep.title == "📅 Monthly Review — September 2026 (observed from 21 Sep)"
    out = review.render_review(sep, run_id="t", out_dir=tmp_path)
    assert "(observed from 21 Sep 2026: the history begins then)" in out["markdown"]
    assert "(to date)" not in out["markdown"]
    assert "observed from 21 Sep 2026" in json.dumps(out["headline"], ensure_ascii=False)
    week = review.build_review(rebuilt, "weekly", date(2026, 9, 28), as_of=as_of)
    assert (week.observed_from, week.is_complete) == (None, True) and "observed" not in week.title


# ---------------------------------------------------------------- coverage
def _ist(d: date, hh: int = 0, mm: int = 0):
    return cal.ist_datetime(d, time(hh, mm))


def _spans(engine) -> dict:
    from kaizen.warehouse import coverage

    with engine.connect() as c:
        return coverage.spans(c)


SOURCES = ["action_items", "assignments", "deployments", "errors", "incidents", "latency", "oncall_spans", "orders",
           "probes", "satisfaction", "trades"]


def test_every_source_records_the_span_it_landed(rebuilt):
    """The rebuild of 21 Sep – 9 Oct landed each time source over the windows of those
    sessions (Fri 18 Sep 16:00 – Fri 9 Oct 16:00 IST) and trades and orders over their
    IST days up to the next session (Mon 12 Oct), each as one merged span."""
    time_span = [(_ist(date(2026, 9, 18), 16), _ist(date(2026, 10, 9), 16))]
    day_span = [(_ist(date(2026, 9, 21)), _ist(date(2026, 10, 12)))]
    assert _spans(rebuilt) == {s: day_span if s in ("trades", "orders") else time_span for s in SOURCES}


def test_period_coverage_says_what_each_source_landed(rebuilt):
    with rebuilt.connect() as c:
        rows = {(str(p)[:10], s): (f, m, bool(v)) for p, s, f, m, v in c.execute(sa.text(
            "select period_start, source, first_landed, missing_from, is_covered from period_coverage "
            "where grain = 'week' or grain = 'month'")).tuples()}
    from kaizen.warehouse.coverage import parse_ts

    week = {s: rows[("2026-09-28", s)] for s in SOURCES}
    assert all(v[1:] == (None, True) for v in week.values())
    # September began before the history: every source is missing its first weeks
    first, missing, covered = rows[("2026-09-01", "trades")]
    assert (parse_ts(first), parse_ts(missing), covered) == (_ist(date(2026, 9, 21)), _ist(date(2026, 9, 1)), False)
    first, missing, covered = rows[("2026-09-01", "probes")]
    assert (parse_ts(first), parse_ts(missing), covered) == (_ist(date(2026, 9, 18), 16), _ist(date(2026, 9, 1)), False)


def _drop_probe_coverage(engine, start, end) -> None:
    """As if the Prometheus extract of [start, end) had never landed."""
    from kaizen.warehouse import coverage

    spans = _spans(engine)["probes"]
    now = cal.ist_datetime(date(2026, 10, 9), time(17))
    with engine.begin() as c:
        c.exec_driver_sql("delete from source_coverage where source = 'probes'")
        for a, b in spans:
            coverage.record(c, "probes", a, min(b, start), "t", now)
            coverage.record(c, "probes", max(a, end), b, "t", now)


def test_a_week_with_a_source_gap_stays_open_until_its_data_lands(rebuilt):
    """A closed week whose Saturday probes never landed is not complete, and its review
    says what it awaits. When the data lands — here a backfill of Monday 5 Oct, whose
    window (from Thu 1 Oct 16:00, Fri 2 Oct a holiday) holds that Saturday — the week is
    recomputed to its own end and is complete again, every row as before."""
    from kaizen.kpis import periods
    from kaizen.reports import review

    before = _rollups(rebuilt)
    _drop_probe_coverage(rebuilt, _ist(date(2026, 10, 3)), _ist(date(2026, 10, 4)))
    periods.compute_rollups(rebuilt, ["week"], date(2026, 9, 28), date(2026, 9, 28), "gap",
                            as_of=_ist(date(2026, 10, 9), 16))
    gap = _rollups(rebuilt)
    assert gap[("uptime_pct", "week", "2026-09-28")]["is_complete"] in (0, False)
    as_of = _ist(date(2026, 10, 5), 10)
    week = review.build_review(rebuilt, "weekly", date(2026, 9, 28), as_of=as_of)
    assert week.is_complete is False
    assert week.title.endswith("(awaiting probes from 3 Oct 00:00 IST)")

    pipeline.rebuild(date(2026, 10, 5), date(2026, 10, 5), "late")
    assert _rollups(rebuilt) == before
    assert _spans(rebuilt)["probes"] == [(_ist(date(2026, 9, 18), 16), _ist(date(2026, 10, 9), 16))]


def test_a_warehouse_from_before_coverage_is_seeded_with_what_it_holds(rebuilt):
    """An older release's warehouse has no coverage: the upgrade records each source as
    landed over what its data spans — the same spans the loads record — so its closed
    periods stay complete."""
    from kaizen import warehouse

    recorded = _spans(rebuilt)
    before = _rollups(rebuilt)
    with rebuilt.begin() as c:
        c.exec_driver_sql("drop table source_coverage")
        c.exec_driver_sql("delete from kaizen_schema")
    warehouse.apply_ddl(rebuilt)
    assert _spans(rebuilt) == recorded
    pipeline.rebuild(FIRST, LAST, "recompute", reextract=False)
    assert _rollups(rebuilt) == before


def test_a_delivered_review_is_revised_in_place_when_late_data_changes_it(rebuilt, tmp_path, monkeypatch):
    """The weekly review of W40 (28 Sep – 4 Oct) was delivered (outbox: no Slack here).
    Its Saturday probes turn out not to have landed: the day's run that recomputes the
    week revises the delivered review in place (version 2, "awaiting probes", a
    "Revised:" note). The backfill that lands them revises it again (version 3, the
    first content back); asked once more, nothing changes."""
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
    before = _rollups(rebuilt)
    request = pipeline.resolve_review_period("weekly", param_period_start="2026-09-28")
    first = pipeline.deliver_review(pipeline.render_review(request, "scheduled"), mode="outbox")["outbox"]
    folder = tmp_path / "weekly_review" / "2026-W40"
    v1 = (folder / "review.md").read_text(encoding="utf-8")
    assert first["version"] == 1 and "awaiting" not in v1

    _drop_probe_coverage(rebuilt, _ist(date(2026, 10, 3)), _ist(date(2026, 10, 4)))
    out = pipeline.compute_rollups_to_date(date(2026, 10, 5), "gap")
    assert "week:2026-09-28" in out["changed"]
    (revised,) = pipeline.revise_reviews(out["changed"], "gap", mode="outbox")
    assert (revised["period_key"], revised["outbox"]["version"]) == ("2026-W40", 2)
    v2 = (folder / "review.md").read_text(encoding="utf-8")
    assert "awaiting probes from 3 Oct 00:00 IST" in v2
    notes = json.loads((folder / "revisions.json").read_text(encoding="utf-8"))
    assert [n["version"] for n in notes] == [2] and notes[0]["text"].startswith("Revised:")

    pipeline.rebuild(date(2026, 10, 5), date(2026, 10, 5), "late")
    assert _rollups(rebuilt) == before
    periods = ["week:2026-09-28", "month:2026-10-01", "quarter:2026-10-01", "day:2026-10-05"]
    (again,) = pipeline.revise_reviews(periods, "late", mode="outbox")  # October and Q4 have no review
    assert again["outbox"]["version"] == 3
    assert (folder / "review.md").read_text(encoding="utf-8") == v1
    (same,) = pipeline.revise_reviews(periods, "late", mode="outbox")
    assert same["outbox"]["version"] == 3 and same["outbox"]["action"] != "written"
