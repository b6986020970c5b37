"""PagerDuty source: incidents, alerts, custom fields and log entries against a fake
PagerDuty (classic limit/offset pagination, 429/500 retries, 401), the demo files,
every validation rule and decision, idempotent re-extraction — SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from fakes.pagerduty import FakePagerDuty
from kaizen.sources import SourceError, pagerduty
from source_wire import (
    DAY,
    INCIDENT_REASONS,
    alert,
    incident,
    pagerduty_data,
    quarantine,
    rows,
    snapshot,
    write_pagerduty_demo,
)

TOKEN = "pd_secret_token"


@pytest.fixture
def fake():
    incs, alerts, fields, logs = pagerduty_data()
    with FakePagerDuty(incs, alerts, fields, logs, token=TOKEN) as f:
        yield f


def transport(fake, limit=2):
    return pagerduty.http_transport(fake.url, TOKEN, page_limit=limit)


def counts(results):
    return {r.source: (r.extracted, r.loaded, r.quarantined) for r in results}


EXPECTED = {"incidents": (7, 5, 2), "alerts": (6, 5, 1), "log_entries": (3, 3, 0)}


def table(engine, name, key):
    return {r[key]: r for r in rows(engine, f"select * from {name}")}


def test_http_extract_rows(engine, fake, waits):
    res = pagerduty.extract(DAY, engine, "r1", transport(fake))
    assert counts(res) == EXPECTED
    inc = table(engine, "raw_incidents", "incident_id")
    assert set(inc) == {"PI01", "PI02", "PI05", "PI06", "PI07"}
    p1 = inc["PI01"]
    assert (p1["incident_number"], p1["priority"], p1["status"], p1["service"], p1["urgency"]) == (
        101,
        "P1",
        "resolved",
        "trading-api",
        "high",
    )
    # resolved incident: acknowledgements are empty, times come from the log entries
    assert str(p1["acknowledged_at"])[:19] == "2026-11-25 12:04:00"
    assert str(p1["resolved_at"])[:19] == "2026-11-25 12:40:00"
    assert str(p1["impact_start_at"])[:19] == "2026-11-25 11:58:00"
    assert p1["caused_by_deployment_id"] == "101"
    # PI01's log entries land for post-mortem timelines
    logs = table(engine, "raw_incident_log_entries", "log_entry_id")
    assert {k: (v["incident_id"], v["type"], str(v["created_at"])[:19]) for k, v in logs.items()} == {
        "LE1": ("PI01", "trigger_log_entry", "2026-11-25 12:00:00"),
        "LE2": ("PI01", "acknowledge_log_entry", "2026-11-25 12:04:00"),
        "LE3": ("PI01", "resolve_log_entry", "2026-11-25 12:40:00"),
    }
    p2 = inc["PI02"]
    assert (p2["priority"], p2["status"], str(p2["acknowledged_at"])[:19], p2["resolved_at"]) == (
        "P0",
        "acknowledged",
        "2026-11-26 04:02:00",
        None,
    )
    assert inc["PI05"]["priority"] is None  # 'SEV1' is not P0..P3: loaded, priority NULL
    assert inc["PI06"]["priority"] is None  # no priority set
    assert str(inc["PI07"]["resolved_at"])[:19] == "2026-11-26 09:30:00"  # the incident's resolved_at
    assert str(inc["PI07"]["impact_start_at"])[:19] == "2026-11-26 09:05:00"  # after trigger: kept
    al = table(engine, "raw_alerts", "alert_id")
    assert set(al) == {"PA1", "PA2", "PA3", "PA4", "PA7"}
    assert (al["PA2"]["priority"], al["PA2"]["severity"], al["PA2"]["incident_id"]) == (
        "P1",
        "warning",
        "PI01",
    )
    assert al["PA4"]["incident_id"] == "PI03"  # alerts of a quarantined incident still count
    assert str(al["PA7"]["created_at"])[:19] == "2026-11-26 10:45:00"  # grouped after the window: D's
    first = fake.requests[0]
    assert first["headers"]["authorization"] == f"Token token={TOKEN}"
    assert first["headers"]["accept"] == "application/json"
    assert first["query"]["since"] == ["2026-11-25T10:30:00Z"]
    assert first["query"]["until"] == ["2026-11-26T10:30:00Z"]
    assert first["query"]["time_zone"] == ["UTC"]
    assert first["query"]["statuses[]"] == ["triggered", "acknowledged", "resolved"]
    assert first["query"]["include[]"] == ["priorities"]


def test_offset_pagination(engine, fake, waits):
    pagerduty.extract(DAY, engine, "r1", transport(fake))
    pages = [r for r in fake.requests if r["path"] == "/incidents"]
    assert [(p["query"]["limit"][0], p["query"]["offset"][0]) for p in pages] == [
        ("2", "0"),
        ("2", "2"),
        ("2", "4"),
        ("2", "6"),
    ]  # 7 incidents: more=true ×3, then false
    alerts = [r for r in fake.requests if r["path"] == "/incidents/PI01/alerts"]
    assert len(alerts) == 1  # 2 alerts, limit 2: more=false on the first page


def test_validation_reasons_and_payloads(engine, fake, waits):
    pagerduty.extract(DAY, engine, "r1", transport(fake))
    q = quarantine(engine, "incidents")
    assert {k: v[0]["reason"] for k, v in q.items()} == INCIDENT_REASONS
    assert json.loads(q["PI03"][0]["payload"])["incident_number"] == 103
    (a,) = quarantine(engine, "alerts")["PA5"]
    assert a["reason"] == "missing created_at"
    assert json.loads(a["payload"])["id"] == "PA5"


def test_bad_impact_start_and_missing_service_are_quarantined(engine, waits):
    incs = [
        incident("PX1", 1, "2026-11-26T04:00:00Z", status="triggered"),
        incident("PX2", 2, "2026-11-26T04:10:00Z", status="triggered", service=None),
    ]
    fields = {
        "PX1": [
            {
                "id": "F1",
                "type": "field_value",
                "name": "impact_start",
                "data_type": "datetime",
                "field_type": "single_value",
                "value": "yesterday-ish",
            }
        ]
    }
    with FakePagerDuty(
        incs, {"PX1": [alert("AX1", "PX1", "2026-11-26T04:00:00Z")]}, fields, {}, token=TOKEN
    ) as f:
        res = pagerduty.extract(DAY, engine, "r1", transport(f))
    assert counts(res) == {"incidents": (2, 0, 2), "alerts": (1, 1, 0), "log_entries": (0, 0, 0)}
    q = {k: v[0]["reason"] for k, v in quarantine(engine, "incidents").items()}
    assert q == {"PX1": "unparseable custom field impact_start 'yesterday-ish'", "PX2": "missing service"}


@pytest.mark.parametrize("fault", ["429", "500"])
def test_transient_faults_are_retried(engine, fake, waits, fault):
    fake.faults = [fault]
    assert counts(pagerduty.extract(DAY, engine, "r1", transport(fake))) == EXPECTED
    assert len(waits) == 1
    if fault == "429":
        assert waits == [1.0]


def test_401_names_the_connection(engine, fake, waits, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_PAGERDUTY",
        json.dumps({"conn_type": "http", "host": fake.url, "password": "pd_wrong"}),
    )
    with pytest.raises(SourceError) as exc:
        pagerduty.extract(DAY, engine, "r1")
    msg = str(exc.value)
    assert "PagerDuty GET /incidents failed with HTTP 401: Authentication failed" in msg
    assert "check the token in connection 'kaizen_pagerduty'" in msg
    assert "pd_wrong" not in msg and "since=" not in msg
    assert waits == []


def test_connection_refused_is_retried_then_named(engine, waits):
    with pytest.raises(
        SourceError, match="PagerDuty GET /incidents still failing after 5 attempts.*kaizen_pagerduty"
    ):
        pagerduty.extract(DAY, engine, "r1", pagerduty.http_transport("http://127.0.0.1:1", TOKEN))
    assert len(waits) == 4


def test_demo_transport_equals_http(engine, fake, waits, tmp_path):
    write_pagerduty_demo(tmp_path)
    demo = pagerduty.extract(DAY, engine, "r1", pagerduty.demo_transport(tmp_path))
    first = snapshot(engine)
    live = pagerduty.extract(DAY, engine, "r1", transport(fake))
    assert demo == live
    assert snapshot(engine) == first


def test_demo_files_may_hold_whole_response_bodies(engine, tmp_path):
    incs, alerts, fields, logs = pagerduty_data()
    write_pagerduty_demo(tmp_path)
    p = tmp_path / "pagerduty"
    (p / "incidents.json").write_text(
        json.dumps({"incidents": incs, "limit": 100, "offset": 0, "more": False, "total": None})
    )
    (p / "custom_fields" / "PI01.json").write_text(json.dumps({"custom_fields": fields["PI01"]}))
    assert counts(pagerduty.extract(DAY, engine, "r1", pagerduty.demo_transport(tmp_path))) == EXPECTED


def test_reextract_identical(engine, fake, waits):
    pagerduty.extract(DAY, engine, "r1", transport(fake))
    first = snapshot(engine)
    pagerduty.extract(DAY, engine, "r1", transport(fake))
    assert snapshot(engine) == first
