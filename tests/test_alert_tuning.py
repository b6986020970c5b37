"""The monthly alert-tuning deep dive over PagerDuty alerts, incidents and log entries in
PagerDuty's wire format (loaded by the real source): every alert's class computed by
hand — led to an incident, noisy (auto-resolved within N minutes, never acknowledged),
duplicate, unacknowledged — the share that led to incidents, the trend against the
< 10/day target (equal to the alerts_per_day KPI), the top candidates to tune and their
rank rule; the alert rule and the resolve agent the PagerDuty parse now keeps; a
warehouse from before those columns is migrated. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from kaizen.alerting import tuning
from kaizen.kpis import periods
from kaizen.period import Period
from kaizen.sources import pagerduty
from source_wire import DAY, alert, incident, log_entry, write_pagerduty_demo

AS_OF = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)  # Fri 27 Nov 16:00 IST
INTEGRATION = {"id": "PINT1", "type": "events_api_v2_inbound_integration_reference", "summary": "Prometheus"}


def _alert(aid, iid, created, *, rule=None, event_class=None, summary="probe failed", service=None):
    a = alert(aid, iid, created, summary=summary)
    if rule:
        a["body"]["details"]["alertname"] = rule
    if event_class:
        a["body"]["cef_details"] = {"event_class": event_class}
    if service:
        a["service"] = dict(a["service"], summary=service)
    return a


def _resolve(lid, iid, at, by_person):
    e = log_entry(lid, iid, "resolve_log_entry", at)
    if not by_person:
        e["agent"] = INTEGRATION
    return e


def tuning_data():
    """Six incidents of 25–26 Nov (D's review window), nine alerts (see the test)."""
    incs = [
        incident("IA", 201, "2026-11-25T12:00:00Z", last_change="2026-11-25T12:40:00Z"),  # acked (log)
        incident("IB", 202, "2026-11-25T13:00:00Z", priority="P3", resolved_at="2026-11-25T13:04:00Z"),
        incident("IC", 203, "2026-11-25T14:00:00Z", priority="P3", resolved_at="2026-11-25T14:05:00Z"),
        incident("ID", 204, "2026-11-25T15:00:00Z", priority="P3", resolved_at="2026-11-25T15:30:00Z"),
        incident("IE", 205, "2026-11-25T16:00:00Z", status="triggered", priority="P2"),
        incident("IF", 206, "2026-11-25T17:00:00Z", status="acknowledged", acks=["2026-11-25T17:02:00Z"]),
    ]
    alerts = {
        "IA": [_alert("A1", "IA", "2026-11-25T12:00:00Z", rule="HighErrorRate"),
               _alert("A2", "IA", "2026-11-25T12:05:00Z", rule="HighErrorRate")],
        "IB": [_alert("B1", "IB", "2026-11-25T13:00:00Z", event_class="DiskAlmostFull"),
               _alert("B2", "IB", "2026-11-25T13:02:00Z", event_class="DiskAlmostFull")],
        "IC": [_alert("C1", "IC", "2026-11-25T14:00:00Z", summary="[FIRING:3] PodRestarts", service="market-data")],
        "ID": [_alert("D1", "ID", "2026-11-25T15:00:00Z", event_class="DiskAlmostFull")],
        "IE": [_alert("E1", "IE", "2026-11-25T16:00:00Z", rule="HighErrorRate")],
        "IF": [_alert("F2", "IF", "2026-11-25T17:00:00Z", rule="HighErrorRate"),  # same instant: F1 opens it
               _alert("F1", "IF", "2026-11-25T17:00:00Z", rule="HighErrorRate")],
    }
    logs = {
        "IA": [_resolve("LA3", "IA", "2026-11-25T12:40:00Z", True),
               log_entry("LA2", "IA", "acknowledge_log_entry", "2026-11-25T12:03:00Z")],
        "IB": [_resolve("LB1", "IB", "2026-11-25T13:04:00Z", False)],  # auto-resolved after 4 min
        "IC": [_resolve("LC1", "IC", "2026-11-25T14:05:00Z", True)],  # a person resolved it, no ack
        "ID": [_resolve("LD1", "ID", "2026-11-25T15:30:00Z", False)],  # auto-resolved after 30 min
    }
    return incs, alerts, {}, logs


@pytest.fixture
def loaded(engine, tmp_path):
    write_pagerduty_demo(tmp_path, tuning_data())
    res = pagerduty.extract(DAY, engine, "r1", pagerduty.demo_transport(tmp_path), as_of=AS_OF)
    assert {r.source: r.quarantined for r in res} == {"incidents": 0, "alerts": 0, "log_entries": 0}
    return engine


MONTH = Period.of("month", date(2026, 11, 1))


def classes(engine, minutes=10.0) -> dict[str, str]:
    scope = periods.scope_of(MONTH, AS_OF)
    with engine.connect() as c:
        return {a.alert_id: a.klass for a in tuning.classify(c, scope.start, scope.end, minutes)}


def test_parse_keeps_rule_and_resolve_agent(loaded):
    with loaded.connect() as c:
        rules = dict(c.execute(sa.text("select alert_id, alert_rule from raw_alerts")).all())
        agents = dict(c.execute(sa.text("select log_entry_id, agent_type from raw_incident_log_entries")).all())
    assert rules == {"A1": "HighErrorRate", "A2": "HighErrorRate", "B1": "DiskAlmostFull", "B2": "DiskAlmostFull",
                     "C1": "PodRestarts", "D1": "DiskAlmostFull", "E1": "HighErrorRate", "F1": "HighErrorRate",
                     "F2": "HighErrorRate"}
    assert agents["LB1"] == "events_api_v2_inbound_integration_reference" and agents["LC1"] == "user_reference"


@pytest.mark.parametrize(("body", "summary", "rule"), [
    ({"details": {"alertname": " HighLatency "}}, "x", "HighLatency"),
    ({"details": {"firing": "..."}, "cef_details": {"event_class": "cpu load"}}, "x", "cpu load"),
    ({}, "[FIRING:2] TradingApiDown (trading-api prod)", "TradingApiDown (trading-api prod)"),
    ({}, "[RESOLVED] TradingApiDown", "TradingApiDown"),
    (None, "", None),
])
def test_alert_rule(body, summary, rule):
    assert pagerduty.alert_rule({"body": body, "summary": summary}) == rule


def test_classes_by_hand(loaded):
    assert classes(loaded) == {
        "A1": "led", "F1": "led",  # opened an incident a responder acknowledged (F1: same instant, smaller id)
        "B1": "noisy", "B2": "noisy",  # auto-resolved 4 and 2 minutes after firing, never acknowledged
        "A2": "duplicate", "F2": "duplicate",  # grouped into an incident another alert opened
        "C1": "unacknowledged",  # a person resolved it without acknowledging: not auto-resolved
        "D1": "unacknowledged",  # auto-resolved, but after 30 minutes
        "E1": "unacknowledged",  # still open, nobody acknowledged
    }
    # N is a setting: at 40 minutes D1 is noisy too
    assert classes(loaded, 40.0)["D1"] == "noisy"


def test_section_by_hand(loaded, monkeypatch):
    monkeypatch.delenv("KAIZEN_NOISY_ALERT_MINUTES", raising=False)
    s = tuning.build_alert_tuning(loaded, MONTH, AS_OF)
    assert s.available and s.alerts == 9 and s.minutes == 10.0
    assert s.counts == {"led": 2, "noisy": 2, "duplicate": 2, "unacknowledged": 3}
    assert s.led_share_text == "22.2 %"  # 2 of 9
    # the month to Fri 27 Nov 16:00 IST: 26 days 16 hours
    assert s.days == pytest.approx(26 + 16 / 24) and s.per_day_text == "0.3/day" and s.mark == "✅"
    assert [(x.service, x.rule, x.alerts, x.noisy, x.duplicate, x.unacked) for x in s.rules] == [
        ("trading-api", "HighErrorRate", 5, 0, 2, 1), ("trading-api", "DiskAlmostFull", 3, 2, 0, 1),
        ("market-data", "PodRestarts", 1, 0, 0, 1)]
    # rank rule: noisy alerts first, then alerts that led to no incident, then alerts
    assert [(c.rule, c.not_led, c.mostly) for c in s.candidates] == [
        ("DiskAlmostFull", 3, "noisy"), ("HighErrorRate", 3, "duplicate"), ("PodRestarts", 1, "unacknowledged")]
    assert [(t.label, t.alerts) for t in s.trend] == [
        ("Jun 2026", 0), ("Jul 2026", 0), ("Aug 2026", 0), ("Sep 2026", 0), ("Oct 2026", 0), ("Nov 2026", 9)]
    assert [(x.service, x.alerts, x.led_text) for x in s.services] == [("trading-api", 8, "25 %"),
                                                                      ("market-data", 1, "0 %")]


def test_per_day_equals_the_alerts_per_day_kpi(loaded):
    periods.compute_rollups(loaded, ["month"], date(2026, 11, 1), date(2026, 11, 1), "r", as_of=AS_OF)
    with loaded.connect() as c:
        kpi = c.execute(sa.text("select value, numerator from kpi_values where kpi_id = 'alerts_per_day' "
                                "and grain = 'month' and period_start = '2026-11-01'")).one()
    s = tuning.build_alert_tuning(loaded, MONTH, AS_OF)
    assert (s.per_day, s.alerts) == (pytest.approx(kpi.value, rel=1e-12), kpi.numerator)
    assert s.trend[-1].per_day == pytest.approx(kpi.value, rel=1e-12)


def test_candidate_ties_and_a_clean_rule():
    line = tuning.RuleLine
    rules = [line("svc", "b", 4, {"duplicate": 2, "led": 2}, 1.0), line("svc", "a", 4, {"duplicate": 2, "led": 2}, 1.0),
             line("svc", "clean", 9, {"led": 9}, 1.0), line("svc", "big", 6, {"duplicate": 2, "led": 4}, 1.0)]
    assert [r.rule for r in tuning.candidates(rules)] == ["big", "a", "b"]  # no "clean": every alert led


def test_bad_setting_is_said_in_the_section(loaded, monkeypatch):
    monkeypatch.setenv("KAIZEN_NOISY_ALERT_MINUTES", "ten")
    s = tuning.build_alert_tuning(loaded, MONTH, AS_OF)
    assert not s.available and "KAIZEN_NOISY_ALERT_MINUTES='ten' is not a positive number of minutes" in s.note
    monkeypatch.setenv("KAIZEN_NOISY_ALERT_MINUTES", "25")
    assert tuning.noisy_minutes() == 25.0


def test_no_alert_in_the_month(loaded):
    s = tuning.build_alert_tuning(loaded, Period.of("month", date(2026, 10, 1)), AS_OF)
    assert s.available and s.alerts == 0 and s.note == "No alert fired in the month: nothing to tune."


def test_no_pagerduty_data_is_not_a_quiet_month(engine):
    s = tuning.build_alert_tuning(engine, MONTH, AS_OF)
    assert not s.available and s.note.startswith("No PagerDuty data in the warehouse")


def test_v_alerts_view(loaded):
    with loaded.connect() as c:
        got = {r.alert_id: (r.alert_rule, r.resolved_by, bool(r.is_opening_alert)) for r in c.execute(sa.text(
            "select alert_id, alert_rule, resolved_by, is_opening_alert from v_alerts"))}
    assert got["F1"] == ("HighErrorRate", None, True) and got["F2"][2] is False
    assert got["B1"] == ("DiskAlmostFull", "events_api_v2_inbound_integration_reference", True)
    assert got["C1"] == ("PodRestarts", "user_reference", True)


def test_an_older_warehouse_gets_the_new_columns(engine, tmp_path):
    """A warehouse created before alert_rule / agent_type: apply_ddl adds them."""
    from kaizen import warehouse

    with engine.begin() as c:
        c.exec_driver_sql("drop view if exists v_alerts")
        c.exec_driver_sql("alter table raw_alerts drop column alert_rule")
        c.exec_driver_sql("alter table raw_incident_log_entries drop column agent_type")
        c.exec_driver_sql("delete from kaizen_schema")
    warehouse.apply_ddl(engine)
    cols = {t: {c["name"] for c in sa.inspect(engine).get_columns(t)} for t in ("raw_alerts",
                                                                                 "raw_incident_log_entries")}
    assert "alert_rule" in cols["raw_alerts"] and "agent_type" in cols["raw_incident_log_entries"]
    write_pagerduty_demo(tmp_path, tuning_data())
    pagerduty.extract(DAY, engine, "r1", pagerduty.demo_transport(tmp_path), as_of=AS_OF)
    assert classes(engine)["B1"] == "noisy"
