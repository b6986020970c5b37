"""``python -m kaizen …``: every step of the pipeline for any period, without Airflow
(except ``demo``, which runs the real DAG through Airflow's ``dag.test()``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime

from kaizen import config


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a date in YYYY-MM-DD form") from None


def _run_id(prefix: str) -> str:
    return f"cli__{prefix}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"


def cmd_demo_data(args) -> int:
    from kaizen.demo import generate

    t = time.perf_counter()
    manifest = generate(end=args.end, months=args.months, seed=args.seed, out_dir=config.demo_dir(),
                        trades_per_day=args.trades_per_day)
    print(f"demo data for {manifest.get('start', '?')} … {args.end} (seed {args.seed}) in "
          f"{config.demo_dir()} ({time.perf_counter() - t:.1f} s)")
    return 0


def cmd_calendar_data(args) -> int:
    from kaizen.calendar_data import build

    doc = build()
    print(f"{len(doc['holidays'])} NSE holidays {doc['first_year']}–{doc['last_year']} written")
    return 0


def cmd_run_day(args) -> int:
    from kaizen.pipeline import run_daily

    result = run_daily(args.day, _run_id(f"day_{args.day}"))
    print(json.dumps(result, indent=1, default=str))
    return 0


def latest_complete_trading_day(now: datetime) -> date:
    from kaizen.pipeline import resolve_trading_day

    return resolve_trading_day(run_after=now)


def cmd_demo(args) -> int:
    """Demo data ending at the latest complete trading day, then the real
    ``daily_review`` DAG run through Airflow (``dag.test()``) for that day."""
    from kaizen import calendar as cal

    os.environ[config.ENV_SOURCES] = "demo"
    # The demo is the one place where "now" decides the period: the latest complete day.
    day = args.day or latest_complete_trading_day(datetime.now(UTC))
    t0 = time.perf_counter()
    from kaizen.demo import generate

    generate(end=day, months=args.months, seed=args.seed, out_dir=config.demo_dir())
    t1 = time.perf_counter()
    print(f"[1/2] demo sources ending {day} written to {config.demo_dir()} ({t1 - t0:.1f} s)")

    dag = load_dag("daily_review")
    review_at = cal.ist_datetime(day, cal.REVIEW_TIME)
    dagrun = dag.test(logical_date=review_at, run_after=review_at)
    state = str(getattr(dagrun, "state", ""))
    t2 = time.perf_counter()
    print(f"[2/2] daily_review for {day} through Airflow: {state} ({t2 - t1:.1f} s)")
    if "success" not in state:
        print("daily_review failed; see the task logs above", file=sys.stderr)
        return 1
    print_summary(day)
    return 0


def load_dag(dag_id: str):
    """The DAG object from ``dags/``, parsed by Airflow's own DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    path = config.REPO_ROOT / "dags" / f"{dag_id}.py"
    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise RuntimeError(f"{path} failed to import: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise LookupError(f"{path} defines no DAG {dag_id!r}")
    return dag


def print_summary(day: date) -> None:
    from kaizen import warehouse

    engine = warehouse.get_engine()
    df = warehouse.read_frame(
        engine,
        "select v.kpi_id, v.value, v.target, v.status from kpi_values v "
        "where v.grain = 'day' and v.period_start = :d order by v.kpi_id",
        {"d": day},
    )
    print()
    print(f"Daily review {day}: {len(df)} KPIs")
    print(f"{'KPI':<28}{'value':>16}{'target':>12}  status")
    for r in df.itertuples():
        val = "—" if r.value is None or r.value != r.value else f"{r.value:,.2f}"
        tgt = "—" if r.target is None or r.target != r.target else f"{r.target:,.2f}"
        print(f"{r.kpi_id:<28}{val:>16}{tgt:>12}  {r.status}")
    q = warehouse.read_frame(engine, "select source, reason from quarantine where extract_day = :d", {"d": day})
    print(f"\nquarantined records for {day}: {len(q)}")
    for r in q.itertuples():
        print(f"  {r.source:<12} {r.reason}")
    out = config.out_dir() / "daily_review" / day.isoformat()
    print(f"\nreport: {out}/ (slack_payload.json, daily_review.md)")
    print(f"warehouse: {warehouse.warehouse_url()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kaizen", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("demo-data", help="write deterministic demo sources")
    s.add_argument("--end", type=_date, required=True, help="last trading day (YYYY-MM-DD)")
    s.add_argument("--months", type=int, default=3)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--trades-per-day", type=int, default=None)
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("demo", help="demo data + the daily_review DAG through Airflow")
    s.add_argument("--day", type=_date, default=None, help="default: latest complete trading day")
    s.add_argument("--months", type=int, default=3)
    s.add_argument("--seed", type=int, default=42)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("run-day", help="extract, KPIs, render and deliver one trading day (no Airflow)")
    s.add_argument("--day", type=_date, required=True)
    s.set_defaults(func=cmd_run_day)

    s = sub.add_parser("calendar-data", help="rebuild the NSE holiday data file")
    s.set_defaults(func=cmd_calendar_data)

    args = p.parse_args(argv)
    return args.func(args)


