"""Operational alerts: a task's final failure (Airflow calls ``on_failure_callback`` only
once retries are exhausted, or at once for a permanent error; retries go to
``on_retry_callback``, which Kaizen leaves silent) and the daily review's delivery
deadline.

Both go through :class:`KaizenAlertNotifier`, an Airflow notifier, to every channel
Kaizen has, each tried on its own:

- the **outbox** ``<out_dir>/alerts/<time>_<name>.json``, always (written first, and
  rewritten at the end with what became of the other channels);
- the Slack **ops channel**, when the ``kaizen_slack`` connection is configured;
- **e-mail** through the ``kaizen_smtp`` connection to ``KAIZEN_ALERT_EMAIL`` (or the
  connection extra ``"to"``), when that connection is configured.

A channel that fails is logged with its reason and the others still go: a revoked Slack
token (the failure being reported, often) cannot silence the alert. Nothing is ever
raised: an alert must not mask the failure it reports.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from airflow.sdk.bases.notifier import BaseNotifier

from kaizen import config
from kaizen.calendar import IST

log = logging.getLogger(__name__)

OUTBOX_FOLDER = "alerts"
SMTP_DEFAULT_TIMEOUT = 30  # seconds, like the SMTP provider's connection form
DEFAULT_SENDER = "kaizen-alerts@localhost"


@dataclass(frozen=True)
class Alert:
    """One alert, independent of the channel: a one-line ``title`` (plain text), the
    ``detail`` (the exception, plain text), a ``link`` and the facts it is about."""

    name: str  # file-name tag: task_failure, deadline
    title: str
    detail: str = ""
    link: str | None = None
    link_label: str = "task log"
    icon: str = ":rotating_light:"
    facts: dict = field(default_factory=dict)
    subject: str = ""  # the e-mail's subject after "[Kaizen] " (default: the title)

    def slack_payload(self) -> dict:
        text = f"{self.icon} {self.title}"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)}}]
        if self.detail:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": "```" + _escape(self.detail)[:2800] + "```"}}
            )
        if self.link:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{self.link}|{self.link_label}>"}]})
        return {"text": text, "blocks": blocks}

    def email_text(self, outcomes: dict[str, str] | None = None) -> str:
        lines = [self.title, ""]
        lines += [f"{k.replace('_', ' ').capitalize() + ':':<12}{v}" for k, v in self.facts.items() if v is not None]
        if self.detail:
            lines += ["", self.detail]
        if self.link:
            lines += ["", f"{self.link_label.capitalize() + ':':<12}{self.link}"]
        if outcomes:
            lines += ["", "This alert's other channels:"] + [f"- {k}: {v}" for k, v in outcomes.items()]
        return "\n".join(lines) + "\n"

    def email(self, sender: str, recipients: list[str], outcomes: dict[str, str] | None = None):
        """The e-mail (an :class:`email.message.EmailMessage`, plain text and HTML)."""
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        msg = EmailMessage()
        # plain ASCII where it is only punctuation: encoded words in a folded subject
        # come back with stray spaces in some readers (Python's own parser among them)
        msg["Subject"] = f"[Kaizen] {self.subject or self.title}".translate(_ASCII_PUNCTUATION)
        msg["From"] = sender
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="kaizen.alerts")
        text = self.email_text(outcomes)
        msg.set_content(text)
        link = f'<p><a href="{html.escape(self.link)}">{html.escape(self.link_label)}</a></p>' if self.link else ""
        msg.add_alternative(f"<html><body><pre>{html.escape(text)}</pre>{link}</body></html>", subtype="html")
        return msg


_ASCII_PUNCTUATION = str.maketrans({"—": "-", "–": "-", "…": "...", "→": "->", "’": "'"})


def _escape(s: str) -> str:
    """Slack mrkdwn: escape exactly ``&``, ``<`` and ``>``."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _period(context) -> str:
    params = context.get("params") or {}
    for key in ("day", "start"):
        if params.get(key):
            return f"{key} {params[key]}" + (f" … {params['end']}" if key == "start" and params.get("end") else "")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start and end:
        return f"{start.astimezone(IST):%Y-%m-%d %H:%M} → {end.astimezone(IST):%Y-%m-%d %H:%M} IST"
    return "no data interval (manual run)"


def _describe(exc) -> str:
    if exc is None:
        return "no exception recorded"
    if isinstance(exc, str):
        return exc
    return f"{type(exc).__name__}: {exc}"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _api_base_url() -> str | None:
    """``[api] base_url`` of this Airflow, with the fallback ``ti.log_url`` uses."""
    try:
        from airflow.sdk.configuration import conf

        return conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:  # pragma: no cover - outside Airflow
        return None


def failure_alert(context) -> Alert:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    try_number = getattr(ti, "try_number", "?")
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # the property needs Airflow's configuration
        log_url = None
    period = _period(context)
    detail = _describe(context.get("exception"))
    return Alert(
        name="task_failure",
        title=f"Kaizen task failed: {dag_id}.{task_id} — period {period} — try {try_number}",
        detail=detail,
        link=log_url or None,
        facts={"dag": dag_id, "task": task_id, "run": run_id, "period": period, "try": try_number},
        subject=f"{dag_id}.{task_id} failed (try {try_number}): {_one_line(detail, 200)}",
    )


def failure_message(context) -> dict:
    """The failure alert's Slack payload (what the ops channel and the outbox get)."""
    return failure_alert(context).slack_payload()


def _run_field(dag_run, key):
    return dag_run.get(key) if isinstance(dag_run, dict) else getattr(dag_run, key, None)


def deadline_alert(context) -> Alert | None:
    """The deadline alert, or None for a run that must not raise one."""
    dag_run = context.get("dag_run") or {}
    run_id = _run_field(dag_run, "run_id")
    run_type = str(_run_field(dag_run, "run_type") or "").lower()
    if run_type and "scheduled" not in run_type:
        # the 16:30 promise is the scheduled review's: a backfill or a manual re-run of
        # an old day is late by design, and a long backfill would flood the channel
        log.info("deadline missed by %s run %s: no alert (only scheduled runs alert)", run_type, run_id)
        return None
    dag_id = _run_field(dag_run, "dag_id") or "daily_review"
    from urllib.parse import quote

    base = _api_base_url()
    link = f"{base.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}" if base and run_id else None
    return Alert(
        name="deadline",
        title=f"The daily review has not been delivered by 16:30 IST (run {run_id or '?'})",
        detail="Check the daily_review run in Airflow.",
        link=link,
        link_label="dag run",
        icon=":alarm_clock:",
        facts={"dag": dag_id, "run": run_id},
    )


# ---------------------------------------------------------------- channels
class NotConfigured(Exception):
    """The channel is not set up: skipped, not failed."""


def _write_outbox(path, alert: Alert, outcomes: dict[str, str]) -> None:
    doc = alert.slack_payload()
    doc["alert"] = {"name": alert.name, "title": alert.title, "link": alert.link,
                    "facts": {k: v for k, v in alert.facts.items() if v is not None}}
    doc["channels"] = outcomes
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def send_slack(alert: Alert) -> str:
    """``chat.postMessage`` to the ops channel; raises a clear error."""
    from kaizen.delivery import slack

    conn = slack.get_slack_connection()
    if conn is None:
        raise NotConfigured(f"connection {config.SLACK_CONN_ID!r} is not configured")
    channel = slack.resolve_channel(conn, "ops")
    try:
        slack.post_message(slack.make_client(conn), channel, alert.slack_payload())
    except Exception as exc:
        raise slack.explain(exc, method="chat.postMessage", channel=channel, kind="ops") from exc
    return f"posted to {channel}"


def _flag(extra: dict, key: str) -> bool:
    value = extra.get(key, False)
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


def send_email(alert: Alert, outcomes: dict[str, str] | None = None) -> str:
    """Mail through the ``kaizen_smtp`` connection: host, port, login and password; the
    extras of Airflow's SMTP connection form with its defaults (SSL unless
    ``disable_ssl``, STARTTLS unless ``disable_tls``, ``timeout``, ``from_email``,
    ``ssl_context`` ``"none"`` to skip certificate checks) and ``"to"``."""
    import smtplib
    import ssl

    conn = config.get_connection(config.SMTP_CONN_ID)
    if conn is None:
        raise NotConfigured(f"connection {config.SMTP_CONN_ID!r} is not configured")
    extra = conn.extra or {}
    recipients = config.alert_email_recipients(extra)
    if not recipients:
        raise RuntimeError(
            f"connection {config.SMTP_CONN_ID!r} is configured but no recipient is: set "
            f"{config.ENV_ALERT_EMAIL} or the connection extra \"to\""
        )
    if not conn.host:
        raise RuntimeError(f"connection {config.SMTP_CONN_ID!r} has no host")
    sender = extra.get("from_email") or (conn.login if conn.login and "@" in conn.login else DEFAULT_SENDER)
    timeout = float(extra.get("timeout") or SMTP_DEFAULT_TIMEOUT)
    context = ssl.create_default_context()
    if extra.get("ssl_context") == "none":  # asked for by the connection (a lab server's own certificate)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    where = f"{conn.host}:{conn.port or 'default port'}"
    if _flag(extra, "disable_ssl"):
        client = smtplib.SMTP(conn.host, conn.port or 0, timeout=timeout)
    else:
        client = smtplib.SMTP_SSL(conn.host, conn.port or 0, timeout=timeout, context=context)
    with client:
        if _flag(extra, "disable_ssl") and not _flag(extra, "disable_tls"):
            client.starttls(context=context)
            client.ehlo()
        if conn.login and conn.password:
            client.login(conn.login, conn.password)
        refused = client.send_message(alert.email(sender, recipients, outcomes))
    if refused:
        raise RuntimeError(f"SMTP server {where} refused {', '.join(sorted(refused))}")
    return f"mailed to {', '.join(recipients)} via {where}"


def deliver(alert: Alert) -> dict[str, str]:
    """Send ``alert`` to every channel, each on its own. Returns ``{channel: outcome}``
    (outcome: where it went, ``failed: <reason>`` or ``not configured: …``); never raises."""
    outcomes: dict[str, str] = {}
    path = config.out_dir() / OUTBOX_FOLDER / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}_{alert.name}.json"
    try:
        _write_outbox(path, alert, {})
        outcomes["outbox"] = f"written to {path}"
    except Exception as exc:
        outcomes["outbox"] = f"failed: {_describe(exc)}"
        log.error("alert %s: outbox file %s could not be written: %s", alert.name, path, _describe(exc))
    for channel, send in (("slack", send_slack), ("email", lambda a: send_email(a, dict(outcomes)))):
        try:
            outcomes[channel] = send(alert)
        except NotConfigured as exc:
            outcomes[channel] = f"not configured: {exc}"
        except Exception as exc:  # each channel on its own: log the reason, go on
            outcomes[channel] = f"failed: {_describe(exc)}"
            log.error("alert %s: the %s channel failed: %s", alert.name, channel, _describe(exc))
    if not outcomes["outbox"].startswith("failed"):
        try:
            _write_outbox(path, alert, outcomes)
        except Exception as exc:
            log.error("alert %s: outbox file %s could not be updated: %s", alert.name, path, _describe(exc))
    reached = [c for c, o in outcomes.items() if not o.startswith(("failed", "not configured"))]
    if reached == ["outbox"] or not reached:
        log.warning("alert %s reached no one directly (only %s): %s", alert.name, reached or "nothing",
                    alert.title)
    log.info("alert %s: %s", alert.name, "; ".join(f"{c}: {o}" for c, o in outcomes.items()))
    return outcomes


# ---------------------------------------------------------------- the notifier
class KaizenAlertNotifier(BaseNotifier):
    """Airflow notifier for Kaizen's alerts (``kind``: ``task_failure`` for
    ``on_failure_callback``, ``deadline`` for the deadline callback). Sync in the task
    runner (``notify``), async in the triggerer (``async_notify``). Never raises."""

    def __init__(self, kind: str = "task_failure", context=None):
        if kind not in ("task_failure", "deadline"):
            raise ValueError(f"kind must be 'task_failure' or 'deadline', got {kind!r}")
        super().__init__(context=context)
        self.kind = kind
        self.outcomes: dict[str, str] | None = None

    def build(self, context) -> Alert | None:
        return failure_alert(context) if self.kind == "task_failure" else deadline_alert(context)

    def notify(self, context) -> None:
        try:
            alert = self.build(context)
        except Exception as exc:  # a context the message cannot read still alerts
            log.exception("alert %s: could not read the context", self.kind)
            alert = Alert(name=self.kind, title=f"Kaizen {self.kind} alert (context unreadable)",
                          detail=_describe(exc), facts={"context_keys": ", ".join(sorted(map(str, context)))})
        if alert is None:
            return
        try:
            self.outcomes = deliver(alert)
        except Exception:  # pragma: no cover - deliver catches per channel
            log.exception("alert %s could not be sent", self.kind)

    async def async_notify(self, context) -> None:
        await asyncio.to_thread(self.notify, context)

    def __call__(self, *args) -> None:
        try:
            super().__call__(*args)
        except Exception:  # template rendering; notify itself never raises
            log.exception("alert %s: the notifier failed", self.kind)


def notify_task_failure(context) -> dict[str, str] | None:
    """``on_failure_callback``: the task has failed for good. Returns the channels' outcomes."""
    notifier = KaizenAlertNotifier("task_failure")
    notifier(context)
    return notifier.outcomes


def daily_review_deadline_missed(**kwargs) -> dict[str, str] | None:
    """Deadline callback: the daily review was not delivered by 16:30 IST (only a
    scheduled run alerts)."""
    notifier = KaizenAlertNotifier("deadline")
    notifier(kwargs.get("context") or {})
    return notifier.outcomes


async def daily_review_deadline_alert(**kwargs) -> None:
    """The triggerer runs deadline callbacks as coroutines (``AsyncCallback``) with the
    run in ``context``: the notifier is awaited, as Airflow awaits one."""
    await KaizenAlertNotifier("deadline", context=kwargs.get("context") or {})
