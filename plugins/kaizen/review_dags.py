"""The one shape shared by the weekly, monthly and quarterly review DAGs (each DAG
file calls :func:`review_dag` with its timetable and documentation). Light imports:
this module is read at parse time."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from kaizen.dag_defaults import DEFAULT_ARGS, SLACK_POOL, deliver_param, deliver_queue, task


def review_dag(kind: str, timetable, doc_md: str, *, description: str):
    @dag(
        dag_id=f"{kind}_review",
        description=description,
        schedule=timetable,
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["kaizen", "review", kind],
        doc_md=doc_md,
        params={
            "period_start": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Any date inside the period to review (YYYY-MM-DD). Empty: the run's own period.",
            ),
            "deliver": deliver_param(),
        },
    )
    def review():
        @task
        def resolve_period(params=None, data_interval_start=None, data_interval_end=None, dag_run=None) -> dict:
            """The period this run reviews, from the param or the timetable's data interval."""
            from kaizen.pipeline import resolve_review_period

            return resolve_review_period(
                kind,
                param_period_start=(params or {}).get("period_start"),
                data_interval_start=data_interval_start,
                data_interval_end=data_interval_end,
                run_after=getattr(dag_run, "run_after", None),
            )

        @task
        def compute_rollups(period: dict, run_id=None) -> dict:
            """The period's KPIs recomputed to the review's as-of time."""
            from kaizen.pipeline import compute_review_rollups

            return compute_review_rollups(period, run_id)

        @task
        def render_review(period: dict, run_id=None) -> dict:
            """Headline, thread, document, charts and Sheet rows (pure; sends nothing)."""
            from kaizen.pipeline import render_review

            return render_review(period, run_id)

        @task(pool=SLACK_POOL, **deliver_queue())
        def deliver_review(rendered: dict, params=None, dag_run=None) -> dict:
            """Slack thread (or outbox) and Sheets; the ledger updates in place and never posts twice."""
            from kaizen.pipeline import deliver_review

            return deliver_review(
                rendered,
                mode=(params or {}).get("deliver", "auto"),
                run_type=str(getattr(dag_run, "run_type", "") or ""),
            )

        @task(on_failure_callback=None)  # alerting is its own failure; it says what is missing
        def check_sources(rollups: dict, period: dict) -> dict:
            """Fail the run (without retrying) when a source could not land the review's data; the review went out showing the gap."""
            from kaizen.pipeline import check_review_sources

            return check_review_sources(rollups, period["key"])

        period = resolve_period()
        rollups = compute_rollups(period)
        rendered = render_review(period)
        rollups >> rendered
        deliver_review(rendered) >> check_sources(rollups, period)

    return review()
