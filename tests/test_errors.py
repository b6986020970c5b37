"""One error hierarchy (kaizen.errors): which errors are permanent and which transient,
and the one mapping at the task boundary — a permanent error fails the task at once
(AirflowFailException: no retries), anything else is raised as it is (retried)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import requests

from kaizen.backfill import BackfillParamError
from kaizen.calendar import CalendarFileError, CalendarNotCovered
from kaizen.delivery.ledger import LedgerWriteError
from kaizen.delivery.sheets import (
    SheetsAuthError,
    SheetsNotFoundError,
    SheetsQuotaError,
    SheetsRequestError,
    SheetsUnavailableError,
)
from kaizen.delivery.slack import SlackDeliveryError
from kaizen.errors import KaizenError, PermanentError, TransientError, at_task_boundary, is_permanent
from kaizen.kpis.catalog import CatalogError
from kaizen.pipeline import ParamError
from kaizen.sources import prometheus
from kaizen.sources.base import SourceError
from kaizen.sources.http import JsonClient


def _response(status: int, body: dict) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content = status, json.dumps(body).encode()
    r.headers["Content-Type"] = "application/json"
    return r


def _slack_error(error: str, status: int = 200, **extra) -> SlackDeliveryError:
    """What kaizen.delivery.slack.explain makes of slack_sdk's error for ``error``."""
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    from kaizen.delivery.slack import explain

    resp = SlackResponse(client=None, http_verb="POST", api_url="https://slack.com/api/chat.postMessage",
                         req_args={}, data={"ok": False, "error": error, **extra}, headers={}, status_code=status)
    return explain(SlackApiError(error, resp), method="chat.update", channel="C0DAILY01", kind="daily")


def _prometheus_error(error_type: str) -> SourceError:
    name = next(iter(prometheus.QUERIES))
    with pytest.raises(SourceError) as info:
        prometheus.check_body(name, {"status": "error", "errorType": error_type, "error": "x"})
    return info.value


@pytest.mark.parametrize(("error", "transient"), [
    (ParamError("day: 'x' is not a date"), False),
    (BackfillParamError("start: missing"), False),
    (CalendarNotCovered("2019"), False),
    (CalendarFileError("bad file"), False),
    (CatalogError("bad catalog"), False),
    (LedgerWriteError("ledger"), False),
    (SlackDeliveryError("invalid_auth", slack_error="invalid_auth", retryable=False), False),
    (SlackDeliveryError("timeout"), True),
    (SheetsAuthError("403"), False), (SheetsNotFoundError("404"), False), (SheetsRequestError("400"), False),
    (SheetsQuotaError("429"), True), (SheetsUnavailableError("503"), True),
    (SourceError("demo file missing"), False),
    (SourceError("trading DB unreachable", transient=True), True),
    (JsonClient("GitHub", "kaizen_github", "http://127.0.0.1:9")._client_error(
        "GitHub GET /x", _response(401, {"message": "Bad credentials"})),
     False),
    (JsonClient("PagerDuty", "kaizen_pagerduty", "http://127.0.0.1:9")._client_error(
        "PagerDuty GET /incidents", _response(400, {"error": {"message": "Arguments Caused Error", "code": 2002}})),
     False),
    (_slack_error("invalid_auth"), False), (_slack_error("channel_not_found"), False),
    (_slack_error("not_in_channel"), False), (_slack_error("msg_too_long"), False),
    (_slack_error("invalid_blocks", errors=["must be less than 3001 characters [json-pointer:/blocks/1/text]"]),
     False),
    (_slack_error("invalid_arguments"), False), (_slack_error("message_not_found"), False),
    (_slack_error("internal_error", 500), True), (_slack_error("ratelimited", 429), True),
    (_slack_error("some_new_error"), True),  # unknown to Kaizen: a retry may help
])
def test_each_error_says_whether_a_retry_can_help(error, transient):
    assert isinstance(error, KaizenError)
    assert error.transient is transient and is_permanent(error) is not transient
    if isinstance(error, SlackDeliveryError):
        assert error.retryable is transient


def test_slack_errors_name_the_connection_the_channel_and_slacks_own_details():
    err = _slack_error("invalid_blocks", errors=["must be less than 3001 characters [json-pointer:/blocks/1/text]"],
                       response_metadata={"messages": ["[ERROR] must be less than 3001 characters "
                                                       "[json-pointer:/blocks/1/text]"]})
    msg = str(err)
    assert msg.startswith("Slack chat.update to channel C0DAILY01 (connection 'kaizen_slack') was refused "
                          "(invalid_blocks) [Slack says — errors: must be less than 3001 characters "
                          "[json-pointer:/blocks/1/text] | response_metadata.messages: [ERROR] must be less than "
                          "3001 characters [json-pointer:/blocks/1/text]]: a block breaks Block Kit's rules")
    assert msg.endswith("Retrying cannot help: fix the message Kaizen renders (a bug in kaizen.reports, or a "
                        "setting that makes it too long) and re-run.")
    gone = str(_slack_error("message_not_found"))
    assert "delivery ledger" in gone and "fix the message Kaizen renders" not in gone and "kaizen_slack" in gone


def test_prometheus_bad_data_is_permanent_and_its_outages_are_not():
    assert not _prometheus_error("bad_data").transient and not _prometheus_error("execution").transient
    assert _prometheus_error("timeout").transient and _prometheus_error("unavailable").transient


def test_the_task_boundary_fails_permanent_errors_at_once_and_passes_the_rest():
    from airflow.sdk.exceptions import AirflowFailException

    def raising(exc):
        @at_task_boundary
        def task_body(x, run_id=None):
            """docs"""
            raise exc
        return task_body

    with pytest.raises(AirflowFailException, match=r"ParamError \(permanent, not retried\): day: bad") as info:
        raising(ParamError("day: bad"))(1)
    assert isinstance(info.value.__cause__, ParamError)
    for exc in (TransientError("down"), SlackDeliveryError("timeout"), RuntimeError("a bug"), KeyError("k")):
        with pytest.raises(type(exc)):
            raising(exc)(1)
    assert raising(PermanentError("x")).__doc__ == "docs" and raising(PermanentError("x")).__name__ == "task_body"


@pytest.mark.dag
def test_a_wrong_backfill_form_fails_without_retrying(tmp_path, monkeypatch):
    """dag.test of kaizen_backfill with a start after its end: validate_form fails on
    its first try (its retries are not used) and nothing downstream runs."""
    from kaizen.cli import dag_for_test

    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}))
    dag = dag_for_test("kaizen_backfill")
    assert dag.get_task("validate_form").retries == 3
    run = dag.test(run_conf={"start": "2026-11-20", "end": "2026-11-10", "grains": ["day"]})
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert str(tis["validate_form"].state) == "failed" and tis["validate_form"].try_number == 1
    assert str(tis["rebuild_range"].state) != "success"


@pytest.mark.dag
def test_a_non_trading_day_param_fails_the_daily_review_without_retrying(tmp_path, monkeypatch):
    """A ParamError (a Sunday asked for) used to be retried 3 times over ~7 minutes;
    now resolve_period fails on its first try."""
    from kaizen.cli import dag_for_test

    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}))
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    run = dag_for_test("daily_review").test(run_conf={"day": str(date(2026, 11, 22)), "deliver": "none"})
    ti = run.get_task_instance("resolve_period")
    assert str(ti.state) == "failed" and ti.try_number == 1
    assert str(run.state) == "failed"
