"""
### Daily trading review

Posts the desk's **daily review** (the framework's post-market Slack update) at
16:00 IST on every NSE trading day: trades, win rate, P&L, largest win and loss;
uptime, latency, errors and alerts by priority since the previous review; open
incidents — each figure beside its target with a status mark.

**Period.** A scheduled run reports on trading day D = the IST date of its data
interval's end; the interval is [previous trading day 16:00 IST, D 16:00 IST) (the
cut-off is later after a late special session), so
weekends and holidays are reported by the next trading day. A manual run takes the
`day` param, or else the latest trading day whose review time has passed.

**Writes.** `raw_*` landing tables and `quarantine` (the day's slice, replaced),
`source_outages` (a source that could not deliver the window: the review still goes
out on time with that source's sections marked "unavailable: <source> (<reason>)", and
`check_sources` fails the run; clearing the failed extraction once the source is back
revises the posted review in place, and so does the next day's run, which lands what
the source missed in the last 7 days),
`experiment_results` (the registered A/B experiments read out as of the day; an
ended experiment's readout is posted once to the reviews channel),
`kpi_values` (grain `day`, and the week, month and quarter containing the day,
recomputed to date), `report_deliveries`; a week, month or quarter review already
delivered whose figures this run's data changed is revised in place; posts to Slack (connection
`kaizen_slack`) or, without it, writes `out/daily_review/<day>/`. Re-running a day
changes nothing that was right and never posts twice.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, Param, TriggerRule, dag

from kaizen.dag_defaults import DEFAULT_ARGS, SLACK_POOL, deliver_param, deliver_queue, task
from kaizen.pipeline import SOURCES
from kaizen.timetables import NSETradingDayTimetable


@dag(
    dag_id="daily_review",
    description="Daily trading review: the trading day's KPIs against targets, posted at 16:00 IST on NSE trading days.",
    schedule=NSETradingDayTimetable(),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    # a scheduled run is queued at 16:00 IST: not delivered by 16:30 → alert the ops channel
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=30),
        callback=AsyncCallback("kaizen.alerts.daily_review_deadline_alert"),
    ),
    tags=["kaizen", "review", "daily"],
    doc_md=__doc__,
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Trading day to report on (YYYY-MM-DD). Empty: the run's own day.",
        ),
        "deliver": deliver_param(),
    },
)
def daily_review():
    @task
    def resolve_period(params=None, data_interval_end=None, dag_run=None) -> dict:
        """The trading day this run reports on, as a Period dict; fails loudly on a
        non-trading day or a date before the calendar."""
        from kaizen.period import Period
        from kaizen.pipeline import resolve_trading_day

        return Period.day(resolve_trading_day(
            param_day=(params or {}).get("day"),
            data_interval_end=data_interval_end,
            run_after=getattr(dag_run, "run_after", None),
        )).as_dict()

    @task
    def prepare_warehouse() -> dict:
        """Apply the DDL and reload the KPI catalog."""
        from kaizen.pipeline import prepare_warehouse

        return prepare_warehouse()

    @task(max_active_tis_per_dagrun=2)
    def extract_source(source: str, period: dict, run_id=None) -> list[dict]:
        """Extract one source's records for the day into raw_* and quarantine."""
        from kaizen.pipeline import extract_source, trading_day

        return extract_source(source, trading_day(period), run_id)

    @task
    def compute_day_kpis(period: dict, run_id=None) -> dict:
        """Day-grain KPIs into kpi_values."""
        from kaizen.pipeline import compute_day_kpis, trading_day

        return compute_day_kpis(trading_day(period), run_id)

    @task
    def compute_rollups(period: dict, run_id=None) -> dict:
        """Week, month and quarter containing the day, recomputed to the day's review time."""
        from kaizen.pipeline import compute_rollups_to_date, trading_day

        return compute_rollups_to_date(trading_day(period), run_id)

    @task(pool=SLACK_POOL, **deliver_queue())
    def revise_reviews(rollups: dict, params=None, dag_run=None, run_id=None) -> list[dict]:
        """Reviews already delivered for ended periods this run changed (late data), revised in place when their content changed."""
        from kaizen.pipeline import revise_reviews

        return revise_reviews(
            rollups["changed"],
            run_id,
            mode=(params or {}).get("deliver", "auto"),
            run_type=str(getattr(dag_run, "run_type", "") or ""),
        )

    @task(pool=SLACK_POOL, **deliver_queue())
    def revise_recovered(period: dict, params=None, dag_run=None, run_id=None) -> list[dict]:
        """Earlier days whose missing source this run landed: their KPIs recomputed and their delivered reviews revised in place."""
        from kaizen.pipeline import revise_recovered, trading_day

        return revise_recovered(
            trading_day(period),
            run_id,
            mode=(params or {}).get("deliver", "auto"),
            run_type=str(getattr(dag_run, "run_type", "") or ""),
        )

    # opens GitHub pull requests when KAIZEN_POSTMORTEM_REPO is set: a delivering task
    @task(**deliver_queue())
    def draft_postmortems(period: dict, run_id=None) -> list[dict]:
        """Post-mortem drafts for P0/P1 incidents resolved in the last week, each opened as one GitHub PR when configured (a human-edited draft is never overwritten)."""
        from kaizen.pipeline import draft_postmortems, trading_day

        return draft_postmortems(trading_day(period), run_id=run_id)

    @task
    def render_daily_review(period: dict, run_id=None) -> dict:
        """Render the Block Kit payload and the Markdown (pure; sends nothing)."""
        from kaizen.pipeline import render_daily_review, trading_day

        return render_daily_review(trading_day(period), run_id)

    # first in the Slack pool's queue: the 16:00 post before the readouts and revisions
    @task(pool=SLACK_POOL, priority_weight=10, **deliver_queue())
    def post_daily_review(period: dict, rendered: dict, params=None, dag_run=None) -> dict:
        """Send the rendered review (Slack or outbox, by the deliver param and run type); the ledger prevents double posts."""
        from kaizen.pipeline import deliver_daily_review, trading_day

        return deliver_daily_review(
            trading_day(period),
            rendered,
            mode=(params or {}).get("deliver", "auto"),
            run_type=str(getattr(dag_run, "run_type", "") or ""),
        )

    @task(pool=SLACK_POOL, **deliver_queue())
    def read_out_experiments(period: dict, params=None, dag_run=None, run_id=None) -> dict:
        """A/B experiments of the registry read out as of the day; an ended experiment's readout posted once (revised in place on late trades)."""
        from kaizen.pipeline import read_out_experiments, trading_day

        return read_out_experiments(
            trading_day(period),
            run_id,
            mode=(params or {}).get("deliver", "auto"),
            run_type=str(getattr(dag_run, "run_type", "") or ""),
        )

    # the extraction failure has alerted already: this leaf only keeps the run from
    # showing green while a source is missing
    @task(on_failure_callback=None)
    def check_sources(period: dict) -> dict:
        """Fail the run (without retrying) when a source could not deliver the day's window; the review went out with its sections marked unavailable."""
        from kaizen.pipeline import check_sources, trading_day

        return check_sources(trading_day(period))

    period = resolve_period()
    ready = prepare_warehouse()
    extracted = extract_source.partial(period=period).expand(source=list(SOURCES))
    ready >> extracted
    # done when every extraction is, failed ones included: a source whose retries are
    # spent does not hold back the others (its sections show "unavailable"), while a
    # failed resolve_period or prepare_warehouse still stops everything after it
    extraction_done = EmptyOperator(task_id="extraction_done", trigger_rule=TriggerRule.ALL_DONE)
    extracted >> extraction_done
    kpis = compute_day_kpis(period)
    [ready, extraction_done] >> kpis
    rendered = render_daily_review(period)
    kpis >> rendered
    rollups = compute_rollups(period)
    kpis >> rollups
    kpis >> read_out_experiments(period)
    revise_reviews(rollups) >> revise_recovered(period)
    extraction_done >> draft_postmortems(period)
    post_daily_review(period, rendered)
    extraction_done >> check_sources(period)


daily_review()
