"""
### Kaizen backfill (manual only)

Repairs any range from the Airflow UI: extracts every NSE trading day in
[`start`, `end`], reloads the landing tables, recomputes the requested KPI grains
(`day`, `week`, `month`, `quarter`) in one set of passes over the range, and — if
asked — re-delivers the daily reviews of the range to the outbox or Slack (the
delivery ledger makes that a no-op for reviews whose content did not change).

**Form.** `start`, `end` (YYYY-MM-DD, IST trading dates, not in the future, at most
`KAIZEN_BACKFILL_MAX_DAYS` days, end not before start), `grains`, `deliver_to`
(`none` / `outbox` / `sheets` / `slack`), `reextract` (off: recompute the KPIs from
what the warehouse holds, fetch nothing — after a catalog change, or for days past a
source's retention), `dry_run` (validate and show the plan, write nothing). A wrong form is refused by the API with HTTP 400 naming the field
before a run exists; the first task checks it again before any write.

**Writes.** `raw_*`, `quarantine`, `kpi_values` for the range; with delivery,
`report_deliveries` and the outbox or Slack. Re-running a range changes nothing that
was right and never posts twice.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from kaizen.dag_defaults import DEFAULT_ARGS, SLACK_POOL, deliver_queue, task


@dag(
    dag_id="kaizen_backfill",
    description="Repair a date range: re-extract, recompute the chosen KPI grains, re-deliver if asked; "
    "a dry run lists the periods.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["kaizen", "backfill", "ops"],
    doc_md=__doc__,
    params={
        "start": Param(
            type="string", format="date", description="First trading day to rebuild (YYYY-MM-DD, IST)."
        ),
        "end": Param(type="string", format="date", description="Last trading day to rebuild (YYYY-MM-DD, IST)."),
        # a multi-select in the trigger form: the UI's FlexibleForm renders an array
        # Param with `examples` as one (FieldSelector.tsx, isFieldMultiSelect); `items`
        # keeps the JSON-schema check of each value
        "grains": Param(
            ["day", "week", "month", "quarter"],
            type="array",
            items={"type": "string", "enum": ["day", "week", "month", "quarter"]},
            examples=["day", "week", "month", "quarter"],
            values_display={"day": "day (trading days)", "week": "week (ISO)", "month": "month", "quarter": "quarter"},
            minItems=1,
            uniqueItems=True,
            description="KPI grains to recompute.",
        ),
        "deliver_to": Param(
            "none",
            enum=["none", "outbox", "sheets", "slack"],
            description="Re-deliver the range's reports: none, the outbox, Google Sheets or Slack.",
        ),
        "reextract": Param(
            True,
            type="boolean",
            description="Re-extract the sources first. Off: recompute only, from what the warehouse holds.",
        ),
        "dry_run": Param(False, type="boolean", description="Validate and plan only; write nothing."),
    },
)
def kaizen_backfill():
    @task
    def validate_form(params=None, data_interval_end=None, dag_run=None) -> dict:
        """Refuse a wrong form before any write; the message names the field."""
        from datetime import datetime

        from kaizen import calendar as cal
        from kaizen.backfill import validate

        # "the future" is judged against when the run was asked for, not when it runs;
        # a wrong form is a permanent error: the task fails without retrying
        asked = getattr(dag_run, "run_after", None) or datetime.now(cal.UTC)
        return validate(dict(params or {}), today=asked.astimezone(cal.IST).date()).as_dict()

    @task
    def rebuild_range(request: dict, run_id=None) -> dict:
        """Extract, load and compute the whole range in one task."""
        from kaizen.pipeline import plan_backfill, rebuild_backfill

        if request["dry_run"]:
            return plan_backfill(request)
        return rebuild_backfill(request, run_id)

    @task(pool=SLACK_POOL, **deliver_queue())
    def deliver_range(request: dict, rebuilt: dict, run_id=None) -> dict:
        """Re-deliver the range's reports where asked (ledger: no double posts)."""
        from kaizen.pipeline import deliver_backfill

        if request["dry_run"] or request["deliver_to"] == "none":
            return {"delivered": 0, "reason": "dry run" if request["dry_run"] else "deliver_to=none"}
        return deliver_backfill(request, run_id)

    request = validate_form()
    deliver_range(request, rebuild_range(request))


kaizen_backfill()
