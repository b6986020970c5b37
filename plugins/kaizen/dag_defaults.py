"""What every Kaizen DAG shares: default args (retries with exponential backoff, a
timeout on every task, the final-failure alert — :class:`kaizen.alerts.KaizenAlertNotifier`,
to the outbox, the Slack ops channel and e-mail, each on its own) and the pools that keep Slack and
Sheets calls within their rate limits during backfills. Light imports only."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param
from airflow.sdk import task as airflow_task

from kaizen.alerts import KaizenAlertNotifier
from kaizen.errors import at_task_boundary

DEFAULT_ARGS = {
    "owner": "kaizen",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": [KaizenAlertNotifier("task_failure")],
}

def task(python_callable=None, **kwargs):
    """Airflow's ``@task`` (bare or with arguments) with Kaizen's error mapping at the
    task boundary: a permanent :class:`~kaizen.errors.KaizenError` fails the task at
    once (no retries), a transient one is retried (:func:`kaizen.errors.at_task_boundary`)."""

    def decorate(fn):
        return airflow_task(**kwargs)(at_task_boundary(fn))

    return decorate(python_callable) if python_callable is not None else decorate


# Slack: ~1 message per second per channel; Sheets: 60 writes per minute per user.
# One slot each serialises the senders across all runs, backfills included. The pools
# themselves are created from plugins/kaizen/pools.json (`airflow pools import`).
SLACK_POOL = "kaizen_slack"
SHEETS_POOL = "kaizen_sheets"

# The Celery queue of the tasks that talk to Slack or Sheets; only the workers allowed to
# reach them listen on it (`airflow celery worker -q kaizen_deliver`). Read at parse time.
ENV_DELIVER_QUEUE = "KAIZEN_DELIVER_QUEUE"


def deliver_queue() -> dict:
    """``queue=`` for a task that delivers (``@task(pool=SLACK_POOL, **deliver_queue())``):
    ``KAIZEN_DELIVER_QUEUE`` when set, else nothing (Airflow's default queue)."""
    queue = os.environ.get(ENV_DELIVER_QUEUE, "").strip()
    return {"queue": queue} if queue else {}


def deliver_param() -> Param:
    """Where a review run sends its report (see kaizen.pipeline.delivery_sink)."""
    return Param(
        "auto",
        enum=["auto", "slack", "outbox", "none"],
        description="auto: Slack for scheduled and manual runs, the outbox for backfill runs.",
    )
