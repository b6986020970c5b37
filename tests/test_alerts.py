"""Failure alerts reach someone when Slack is what broke: the Kaizen notifier
(kaizen.alerts.KaizenAlertNotifier) sends to the outbox, the Slack ops channel and
e-mail, each on its own. E-mail goes over real SMTP to a local aiosmtpd server; Slack is
the local fake (tests/fakes/slack.py) holding a different token than the connection's,
so every call is answered ``invalid_auth`` like a revoked token."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import socket
from datetime import date
from email import message_from_bytes, policy
from types import SimpleNamespace
from urllib.parse import quote

import pendulum
import pytest

from fakes.slack import FakeSlack
from kaizen import alerts

OPS = "C0OPS0001"
DAILY = "C0DAILY01"
REVIEWS = "C0REVIEW1"
RECIPIENT = "desk-ops@kaizen.example"
SENDER = "airflow@kaizen.example"
SMTP_LOGIN, SMTP_PASSWORD = "kaizen-mailer", "smtp-S3cret-7731"
DAY = date(2026, 11, 19)  # a Thursday no other dag.test uses (runs share the metadata DB)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it is handed, with its envelope."""

    def __init__(self):
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "msg": msg,
                              "login": session.auth_data.login if session.authenticated else None})
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    ok = getattr(auth_data, "login", None) == SMTP_LOGIN.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def smtp():
    """aiosmtpd on 127.0.0.1 (a free port), plain SMTP with AUTH LOGIN/PLAIN."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator,
                            auth_require_tls=False)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


def _smtp_conn(port: int, **extra) -> str:
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": SMTP_LOGIN,
                       "password": SMTP_PASSWORD,
                       "extra": {"disable_ssl": True, "disable_tls": True, "from_email": SENDER, "timeout": 5,
                                 **extra}})


@pytest.fixture
def revoked_slack(monkeypatch, tmp_path):
    """The fake Slack and a kaizen_slack connection whose token it does not know:
    every call answers invalid_auth."""
    with FakeSlack(token="xoxb-current") as fake:
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SLACK", json.dumps(
            {"conn_type": "slack", "password": "xoxb-revoked", "extra": {"base_url": fake.base_url}}))
        monkeypatch.setenv("KAIZEN_SLACK_OPS_CHANNEL", OPS)
        monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", DAILY)
        monkeypatch.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", REVIEWS)
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
        yield fake


def _slack_invalid_auth_error(fake: FakeSlack) -> Exception:
    """The error the delivery task really raises when Slack refuses its token."""
    from kaizen.delivery import slack

    conn = slack.get_slack_connection()
    try:
        slack.post_message(slack.make_client(conn), DAILY, {"text": "review"})
    except Exception as exc:
        return slack.explain(exc, method="chat.postMessage", channel=DAILY, kind="daily")
    raise AssertionError("the fake Slack accepted a revoked token")


def _context(exception) -> dict:
    start = pendulum.datetime(2026, 11, 26, 16, 0, tz="Asia/Kolkata")
    end = pendulum.datetime(2026, 11, 27, 16, 0, tz="Asia/Kolkata")
    run_id = "scheduled__2026-11-27T10:30:00+00:00"
    ti = SimpleNamespace(
        dag_id="daily_review", task_id="post_daily_review", run_id=run_id, try_number=1, map_index=-1,
        log_url=f"http://airflow.kaizen.example/dags/daily_review/runs/{run_id}/tasks/post_daily_review?try_number=1",
    )
    return {"ti": ti, "task_instance": ti, "run_id": run_id, "params": {"day": None, "deliver": "slack"},
            "data_interval_start": start, "data_interval_end": end, "exception": exception}


def _outbox(tmp_path, name="task_failure") -> list[dict]:
    folder = tmp_path / "out" / "alerts"
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"*_{name}.json"))] if folder.exists() else []


def _bodies(msg) -> tuple[str, str]:
    """The plain-text and HTML bodies as received (SMTP's CRLF line ends made \\n)."""
    return tuple(msg.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def test_with_slack_revoked_the_alert_is_mailed_and_written_and_slack_gets_one_failed_try(
        smtp, revoked_slack, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(smtp.port))
    monkeypatch.setenv("KAIZEN_ALERT_EMAIL", RECIPIENT)
    error = _slack_invalid_auth_error(revoked_slack)
    revoked_slack.reset_calls()
    caplog.set_level(logging.INFO, logger="kaizen.alerts")

    outcomes = alerts.notify_task_failure(_context(error))  # the notifier, as on_failure_callback calls it

    # e-mail: one message, to the configured address, authenticated with the connection's login
    [mail] = smtp.messages
    assert mail["to"] == [RECIPIENT] and mail["from"] == SENDER and mail["login"] == SMTP_LOGIN.encode()
    msg = mail["msg"]
    subject = msg["Subject"]
    assert subject == ("[Kaizen] daily_review.post_daily_review failed (try 1): SlackDeliveryError: Slack rejected "
                       "the token of connection 'kaizen_slack' (invalid_auth) on chat.postMessage: set a valid bot "
                       "token (xoxb-..., scopes chat:write, files:write) as the connection's pass...")  # 200 chars of it
    text, html_body = _bodies(msg)
    for part in ("Dag:        daily_review", "Task:       post_daily_review", "Try:        1",
                 "Run:        scheduled__2026-11-27T10:30:00+00:00",
                 "SlackDeliveryError: Slack rejected the token of connection 'kaizen_slack' (invalid_auth)",
                 "tasks/post_daily_review?try_number=1"):
        assert part in text, part
    assert html.unescape(html_body).count("(invalid_auth) on chat.postMessage") == 2  # the error, the Slack outcome
    # the mail says what became of the other channels: Slack failed, the outbox holds it
    assert "- slack: failed: SlackDeliveryError: Slack rejected the token" in text
    assert f"- outbox: written to {tmp_path / 'out' / 'alerts'}" in text

    # outbox: the same alert, with every channel's outcome
    [doc] = _outbox(tmp_path)
    assert doc["alert"]["title"] == ("Kaizen task failed: daily_review.post_daily_review — period "
                                     "2026-11-26 16:00 → 2026-11-27 16:00 IST — try 1")
    assert doc["text"] == ":rotating_light: " + doc["alert"]["title"] and text.startswith(doc["alert"]["title"] + "\n")
    assert doc["alert"]["facts"] == {"dag": "daily_review", "task": "post_daily_review",
                                     "run": "scheduled__2026-11-27T10:30:00+00:00",
                                     "period": "2026-11-26 16:00 → 2026-11-27 16:00 IST", "try": 1}
    assert html.unescape(doc["blocks"][1]["text"]["text"]).strip("`") == str(error).join(
        ["SlackDeliveryError: ", ""])
    assert doc["channels"] == outcomes
    assert outcomes["email"] == f"mailed to {RECIPIENT} via 127.0.0.1:{smtp.port}"
    assert outcomes["slack"].startswith("failed: SlackDeliveryError:") and "invalid_auth" in outcomes["slack"]

    # Slack: the ops channel was tried once, refused, and nothing was posted
    assert [(c.method, c.body.get("channel"), c.response.get("error")) for c in revoked_slack.calls] == [
        ("chat.postMessage", OPS, "invalid_auth")]
    assert revoked_slack.top_level_posts() == []
    # the failing channel is logged with its reason; the password is nowhere
    [failed] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the slack channel failed" in failed.getMessage() and "invalid_auth" in failed.getMessage()
    everything = caplog.text + json.dumps(doc) + msg.as_string()
    assert SMTP_PASSWORD not in everything and "xoxb-revoked" not in everything


def test_smtp_down_still_writes_the_outbox_and_logs_why(revoked_slack, tmp_path, monkeypatch, caplog):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(port))
    monkeypatch.setenv("KAIZEN_ALERT_EMAIL", RECIPIENT)
    caplog.set_level(logging.INFO, logger="kaizen.alerts")

    outcomes = alerts.notify_task_failure(_context(RuntimeError("warehouse unreachable")))  # raises nothing

    [doc] = _outbox(tmp_path)
    assert "daily_review.post_daily_review" in doc["text"]
    assert doc["blocks"][1]["text"]["text"] == "```RuntimeError: warehouse unreachable```"
    assert outcomes["email"].startswith("failed: ConnectionRefusedError:")
    assert doc["channels"]["email"] == outcomes["email"]
    errors = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert len(errors) == 2
    assert errors[0].startswith("alert task_failure: the email channel failed: ConnectionRefusedError")
    assert errors[1].startswith("alert task_failure: the slack channel failed: SlackDeliveryError")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["alert task_failure reached no one directly (only ['outbox']): " + doc["alert"]["title"]]


def test_smtp_without_a_recipient_fails_that_channel_clearly(smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    monkeypatch.delenv("KAIZEN_ALERT_EMAIL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(smtp.port))
    outcomes = alerts.notify_task_failure(_context(RuntimeError("x")))
    assert smtp.messages == []
    assert outcomes["email"] == ("failed: RuntimeError: connection 'kaizen_smtp' is configured but no recipient "
                                 "is: set KAIZEN_ALERT_EMAIL or the connection extra \"to\"")
    assert outcomes["slack"] == "not configured: connection 'kaizen_slack' is not configured"
    assert len(_outbox(tmp_path)) == 1


def test_a_working_slack_gets_the_alert_too_and_the_extra_names_the_recipients(smtp, tmp_path, monkeypatch):
    with FakeSlack() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SLACK", json.dumps(
            {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": fake.base_url}}))
        monkeypatch.setenv("KAIZEN_SLACK_OPS_CHANNEL", OPS)
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
        monkeypatch.delenv("KAIZEN_ALERT_EMAIL", raising=False)
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(smtp.port, to="a@kaizen.example; b@kaizen.example"))
        outcomes = alerts.notify_task_failure(_context(ValueError("bad <row> & more")))
        [post] = fake.top_level_posts()
    assert post.body["channel"] == OPS and outcomes["slack"] == f"posted to {OPS}"
    assert "bad &lt;row&gt; &amp; more" in json.dumps(post.body["blocks"])
    [mail] = smtp.messages
    assert mail["to"] == ["a@kaizen.example", "b@kaizen.example"]
    assert "ValueError: bad <row> & more" in _bodies(mail["msg"])[0]
    assert len(_outbox(tmp_path)) == 1


def test_the_deadline_alert_is_mailed_from_the_triggerer_callback(smtp, revoked_slack, tmp_path, monkeypatch):
    """Through Airflow's own CallbackTrigger, as the triggerer runs the DAG's AsyncCallback;
    a backfill run's deadline stays silent."""
    from airflow.triggers.callback import CallbackTrigger

    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(smtp.port))
    monkeypatch.setenv("KAIZEN_ALERT_EMAIL", RECIPIENT)

    async def fire(run_type):
        trigger = CallbackTrigger("kaizen.alerts.daily_review_deadline_alert", {"context": {"dag_run": {
            "dag_id": "daily_review", "run_id": f"{run_type}__2026-11-27", "run_type": run_type}}})
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(fire("scheduled"))
    assert [e["state"] for e in events] == ["running", "success"]
    [mail] = smtp.messages
    assert mail["msg"]["Subject"] == ("[Kaizen] The daily review has not been delivered by 16:30 IST "
                                      "(run scheduled__2026-11-27)")
    assert "/dags/daily_review/runs/scheduled__2026-11-27" in _bodies(mail["msg"])[0]
    [doc] = _outbox(tmp_path, "deadline")
    assert doc["channels"]["slack"].startswith("failed: SlackDeliveryError") and "invalid_auth" in doc["channels"]["slack"]
    assert [c.body["channel"] for c in revoked_slack.calls_to("chat.postMessage")] == [OPS]

    assert [e["state"] for e in asyncio.run(fire("backfill"))] == ["running", "success"]
    assert len(smtp.messages) == 1 and len(_outbox(tmp_path, "deadline")) == 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("alerts_demo")
    generate(end=DAY, months=1, seed=7, out_dir=out, trades_per_day=20)
    return out


@pytest.mark.dag
def test_a_dag_run_failing_on_invalid_auth_alerts_by_mail_and_outbox(smtp, revoked_slack, demo, tmp_path,
                                                                     monkeypatch):
    """dag.test() of daily_review delivering to a Slack whose token is revoked: the post
    fails on its first try (a permanent error), Airflow's task runner calls the
    on_failure_callback (the notifier in DEFAULT_ARGS), and the alert reaches aiosmtpd
    and the outbox."""
    from kaizen import calendar as cal
    from kaizen.cli import dag_for_test

    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SMTP", _smtp_conn(smtp.port))
    monkeypatch.setenv("KAIZEN_ALERT_EMAIL", RECIPIENT)
    dag = dag_for_test("daily_review")
    assert [type(cb).__name__ for cb in dag.get_task("post_daily_review").on_failure_callback] == [
        "KaizenAlertNotifier"]
    at = cal.ist_datetime(DAY, cal.REVIEW_TIME)

    run = dag.test(logical_date=at, run_after=at, run_conf={"deliver": "slack"})

    assert str(run.state) == "failed"
    # every task that delivers to Slack fails on its first try (invalid_auth is permanent):
    # the review post, and the experiments readout when the demo's experiments have ended
    failed = {ti.task_id: ti for ti in run.get_task_instances() if str(ti.state) == "failed"}
    assert "post_daily_review" in failed and set(failed) <= {"post_daily_review", "read_out_experiments"}
    assert {t: ti.try_number for t, ti in failed.items()} == dict.fromkeys(failed, 1)
    # Slack: every call refused, nothing posted; the ops channel tried once per alert
    posts = revoked_slack.calls_to("chat.postMessage")
    assert {c.response.get("error") for c in posts} == {"invalid_auth"} and revoked_slack.top_level_posts() == []
    assert [c.body["channel"] for c in posts].count(OPS) == len(failed)
    assert [c.body["channel"] for c in posts].count(DAILY) == 1
    # one mail and one outbox file per failed task
    mails = {m["msg"]["Subject"].split(" ")[1]: m for m in smtp.messages}
    assert set(mails) == {f"daily_review.{t}" for t in failed} and len(smtp.messages) == len(failed)
    mail = mails["daily_review.post_daily_review"]
    assert mail["to"] == [RECIPIENT]
    assert mail["msg"]["Subject"].startswith("[Kaizen] daily_review.post_daily_review failed (try 1): "
                                             "AirflowFailException: SlackDeliveryError (permanent, not retried): "
                                             "Slack rejected the token of connection 'kaizen_slack' (invalid_auth)")
    text = _bodies(mail["msg"])[0]
    assert "(invalid_auth) on chat.postMessage" in text
    assert (f"Task log:   http://localhost:8080/dags/daily_review/runs/{quote(run.run_id)}"
            "/tasks/post_daily_review?try_number=1") in text
    docs = {d["alert"]["facts"]["task"]: d for d in _outbox(tmp_path)}
    assert set(docs) == set(failed)
    doc = docs["post_daily_review"]
    assert doc["alert"]["facts"]["try"] == 1 and doc["alert"]["facts"]["run"] == run.run_id
    assert doc["channels"]["email"] == f"mailed to {RECIPIENT} via 127.0.0.1:{smtp.port}"
    assert "invalid_auth" in doc["channels"]["slack"]
    assert "invalid_auth" in doc["blocks"][1]["text"]["text"]
