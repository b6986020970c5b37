"""Operational alerts to the ops channel: a task's final failure (Airflow calls
``on_failure_callback`` only once retries are exhausted; retries go to
``on_retry_callback``, which Kaizen leaves silent) and the daily review's delivery
deadline. Without a Slack connection the alert is written to ``out/alerts/``.
An alert that cannot be sent is logged, never raised: it must not mask the failure
it reports."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from kaizen import config
from kaizen.calendar import IST

log = logging.getLogger(__name__)


def _period(context) -> str:
    params = context.get("params") or {}
    for key in ("day", "start"):
        if params.get(key):
            return f"{key} {params[key]}" + (f" … {params['end']}" if key == "start" and params.get("end") else "")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start and end:
        return f"{start.astimezone(IST):%Y-%m-%d %H:%M} → {end.astimezone(IST):%Y-%m-%d %H:%M} IST"
    return "no data interval (manual run)"


def failure_message(context) -> dict:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    try_number = getattr(ti, "try_number", "?")
    log_url = getattr(ti, "log_url", None) or "(no log URL)"
    exc = context.get("exception")
    text = (
        f":rotating_light: Kaizen task failed after its retries: {dag_id}.{task_id}"
        f" — period {_period(context)} — try {try_number}"
    )
    detail = f"{type(exc).__name__}: {exc}" if exc else "no exception recorded"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "```" + _escape(detail)[:2800] + "```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{log_url}|task log>"}]},
        ],
    }


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send(payload: dict, name: str) -> str:
    """Post to the ops channel, or write the outbox. Returns where it went."""
    from kaizen.delivery import slack

    conn = slack.get_slack_connection()
    if conn is not None:
        channel = slack.resolve_channel(conn, "ops")
        slack.post_message(slack.make_client(conn), channel, payload)
        return f"slack:{channel}"
    folder = config.out_dir() / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}_{name}.json"
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    return str(path)


def notify_task_failure(context) -> None:
    """``on_failure_callback``: the task has failed for good."""
    try:
        where = send(failure_message(context), "task_failure")
        log.info("failure alert sent to %s", where)
    except Exception:  # the alert must not mask the failure itself
        log.exception("could not send the failure alert")


def daily_review_deadline_missed(**kwargs) -> None:
    """Deadline callback: the daily review was not delivered by 16:30 IST."""
    context = kwargs.get("context") or {}
    dag_run = context.get("dag_run") or {}
    run_id = dag_run.get("run_id") if isinstance(dag_run, dict) else getattr(dag_run, "run_id", None)
    run_type = str((dag_run.get("run_type") if isinstance(dag_run, dict) else getattr(dag_run, "run_type", None))
                   or "").lower()
    if run_type and "scheduled" not in run_type:
        # the 16:30 promise is the scheduled review's: a backfill or a manual re-run of
        # an old day is late by design, and a long backfill would flood the channel
        log.info("deadline missed by %s run %s: no alert (only scheduled runs alert)", run_type, run_id)
        return None
    text = (
        ":alarm_clock: The daily review has not been delivered by 16:30 IST"
        f" (run {run_id or '?'}). Check the daily_review run in Airflow."
    )
    try:
        send({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)}}]},
             "deadline")
    except Exception:
        log.exception("could not send the deadline alert")


async def daily_review_deadline_alert(**kwargs) -> None:
    """The triggerer runs deadline callbacks as coroutines."""
    import asyncio

    await asyncio.to_thread(daily_review_deadline_missed, **kwargs)
