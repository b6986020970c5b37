"""Operations: the backfill form's validation (every wrong field named), the delivery
mode of backfill runs, and the final-failure alert. The API guard that refuses a bad
form before a run exists is tested in test_params_guard.py."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import pytest

from kaizen.backfill import BackfillParamError, validate
from kaizen.pipeline import ParamError, delivery_sink

TODAY = date(2026, 11, 29)
GOOD = {"start": "2026-11-02", "end": "2026-11-27", "grains": ["day", "week"], "deliver_to": "outbox", "dry_run": False}


def test_a_good_form_is_accepted_and_normalised():
    req = validate({**GOOD, "grains": ["week", "day"]}, today=TODAY)
    assert (req.start, req.end, req.grains, req.deliver_to, req.dry_run) == (
        date(2026, 11, 2), date(2026, 11, 27), ("day", "week"), "outbox", False
    )
    assert validate({"start": "2026-11-27", "end": "2026-11-27"}, today=TODAY).grains == ("day", "week", "month", "quarter")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"end": "2026-11-01"}, "end: 2026-11-01 is before start 2026-11-02"),
        ({"start": "2026-12-01", "end": "2026-12-02"}, "start: 2026-12-01 is in the future"),
        ({"end": "2026-11-30"}, "end: 2026-11-30 is in the future"),
        ({"start": "2025-01-01"}, "over the limit of 400"),
        ({"grains": ["day", "year"]}, "grains: unknown grain(s) year"),
        ({"grains": []}, "grains: give one or more"),
        ({"start": "02/11/2026"}, "start: '02/11/2026' is not a date in YYYY-MM-DD form"),
        ({"end": None}, "end: required"),
        ({"deliver_to": "email"}, "deliver_to: 'email' is not one of none, outbox, sheets, slack"),
        ({"dry_run": "yes"}, "dry_run: 'yes' is not true or false"),
    ],
)
def test_a_wrong_field_is_refused_by_name(change, message):
    with pytest.raises(BackfillParamError) as err:
        validate({**GOOD, **change}, today=TODAY)
    assert message in str(err.value)


def test_every_wrong_field_is_reported_at_once():
    with pytest.raises(BackfillParamError) as err:
        validate({"start": "x", "end": "2026-12-31", "grains": ["hour"]}, today=TODAY)
    fields = [e.split(":")[0] for e in err.value.errors]
    assert fields == ["start", "end", "grains"]


@pytest.mark.parametrize(
    ("mode", "run_type", "sink"),
    [
        ("auto", "scheduled", None),
        ("auto", "manual", None),
        ("auto", "backfill", "outbox"),
        ("auto", "DagRunType.BACKFILL_JOB", "outbox"),
        ("slack", "backfill", "slack"),
        ("none", "scheduled", "none"),
    ],
)
def test_backfill_runs_do_not_post_unless_asked(mode, run_type, sink):
    assert delivery_sink(mode, run_type) == sink


def test_unknown_delivery_mode_is_refused():
    with pytest.raises(ParamError, match="deliver: 'email'"):
        delivery_sink("email", "manual")


def test_final_failure_alert_names_dag_task_period_try_and_log(tmp_path, monkeypatch):
    from kaizen import alerts

    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    ti = SimpleNamespace(dag_id="daily_review", task_id="post_daily_review", try_number=4,
                         log_url="http://airflow/log?x=1")
    context = {"ti": ti, "params": {"day": "2026-11-27"}, "exception": RuntimeError("Slack said <!channel> & no")}
    alerts.notify_task_failure(context)
    [written] = list((tmp_path / "alerts").glob("*.json"))
    payload = json.loads(written.read_text())
    text = json.dumps(payload, ensure_ascii=False)
    for part in ("daily_review.post_daily_review", "day 2026-11-27", "try 4", "http://airflow/log?x=1"):
        assert part in text, part
    assert "&lt;!channel&gt; &amp; no" in text and "<!channel>" not in text
