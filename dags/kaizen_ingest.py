"""
### Ingestion
Lands every source on its own schedule, **hourly, weekends and holidays included**,
whatever the reviews' times: Prometheus, PagerDuty, GitHub (deployments and issues),
the CUR bill, on-call and the Team sheets up to the top of the hour, and the trades and
orders of the latest session once it has closed. Each landing emits its Airflow Asset
(`kaizen.warehouse.<source>`): a source with nothing new to land is *skipped* and
emits nothing.

**Window.** A window source is extracted from the start of the daily review window
where its landed coverage ends (at most 7 days back; an older gap needs
`kaizen_backfill`) to the run's time, each review window whole, its slices and
quarantine rows replaced — as the daily run does, so nothing is loaded twice and no
rejected record is dropped. A review still makes sure every source has landed to its
period's end before it computes (it extracts a missing tail itself, e.g. when this DAG
is paused), so no review waits on this DAG.

**Writes.** `raw_*` landing tables, their facts, `quarantine`, `source_coverage`.
`catchup=False`: after a pause only the latest hour runs, and it fills the gap.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, dag
from airflow.sdk.exceptions import AirflowSkipException

from kaizen.dag_defaults import DEFAULT_ARGS, task
from kaizen.pipeline import INGEST_WINDOW_SOURCES


def asset(source: str) -> Asset:
    """The Asset a landing of ``source`` updates."""
    # a name without a scheme: a URI scheme makes Airflow look for its normaliser among
    # the providers at parse time (30 ms and SQLAlchemy imported)
    return Asset(f"kaizen.warehouse.{source}", group="kaizen")


@dag(
    dag_id="kaizen_ingest",
    description="Hourly ingestion: every source landed to the top of the hour, weekends and holidays included.",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC", interval=pendulum.duration(hours=1)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["kaizen", "ingest"],
    doc_md=__doc__,
)
def kaizen_ingest():
    @task
    def prepare_warehouse() -> dict:
        """Apply the DDL (one row read when it is current): a new warehouse, or one a release upgraded, may see this DAG first."""
        from kaizen.pipeline import prepare_warehouse

        return prepare_warehouse()

    def land_window(source: str):
        @task(task_id=f"land_{source}", outlets=[asset(source)])
        def land(data_interval_end=None, dag_run=None, run_id=None) -> list[dict]:
            """Land the source to the run's time (skipped, no Asset event, when it has landed already)."""
            from kaizen.pipeline import ingest_until, ingest_window_source

            until = ingest_until(data_interval_end, getattr(dag_run, "run_after", None))
            out = ingest_window_source(source, until, run_id)
            if not out:
                raise AirflowSkipException(f"{source}: landed to {until} already")
            return out

        return land()

    @task(outlets=[asset("trades"), asset("orders")])
    def land_trading(data_interval_end=None, dag_run=None, run_id=None) -> list[dict]:
        """Land the trades and orders of the latest closed session (skipped, no Asset event, when landed already)."""
        from kaizen.pipeline import ingest_trading, ingest_until

        until = ingest_until(data_interval_end, getattr(dag_run, "run_after", None))
        out = ingest_trading(until, run_id)
        if out is None:
            raise AirflowSkipException(f"the latest session closed by {until} is landed already")
        return out

    ready = prepare_warehouse()
    for source in INGEST_WINDOW_SOURCES:
        ready >> land_window(source)
    ready >> land_trading()


kaizen_ingest()
