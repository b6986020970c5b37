"""``python -m kaizen …``: every step of the pipeline for any period, without Airflow
(except ``demo``, which runs the real DAG through Airflow's ``dag.test()``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from kaizen import config


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a date in YYYY-MM-DD form") from None


def _aware(s: str) -> datetime:
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an ISO date-time") from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{s!r} has no UTC offset (write e.g. 2026-11-27T16:00+05:30)")
    return dt


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


def cmd_views(args) -> int:
    from kaizen.warehouse.docs import write_schema_doc
    from kaizen.warehouse.views import write_views

    for name in write_views():
        print(f"sql/{name}")
    print(write_schema_doc())
    return 0


def cmd_calendar(args) -> int:
    """The NSE calendar of one year: sessions, holidays and where each comes from."""
    from kaizen import calendar as cal

    try:
        rep = cal.year_report(args.year)
    except (cal.CalendarNotCovered, cal.CalendarFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = ("PROVISIONAL: NSE's holiday list is not in the data; only fixed-date holidays and "
              "overrides apply" if rep["provisional"] else f"confirmed: published list from {rep['list_source']}")
    print(f"NSE calendar {rep['year']} — {status}")
    print(f"overrides file: {rep['overrides_file']}")
    special = [s for s in rep["sessions"] if s.special]
    print(f"\nsessions: {len(rep['sessions'])} ({len(special)} special)")
    for s in special:
        print(f"  {s.day} {s.day:%a}  {s.open:%H:%M}–{s.close:%H:%M} IST  {s.name}  [override]")
    print(f"\nholidays on weekdays: {len(rep['holidays'])}")
    for h in rep["holidays"]:
        print(f"  {h.day} {h.day:%a}  {h.name}  [{h.source}]")
    for d, reason in rep["removed"]:
        print(f"  {d} {d:%a}  removed: {reason}  [override]")
    if args.sessions:
        print("\nall sessions:")
        for s in rep["sessions"]:
            print(f"  {s.day} {s.day:%a}  {s.open:%H:%M}–{s.close:%H:%M} IST")
    return 0


def cmd_facts(args) -> int:
    """Recompute the facts of a range from the landing tables (after a hand edit)."""
    from kaizen import warehouse
    from kaizen.warehouse import facts

    engine = warehouse.get_engine()
    warehouse.apply_ddl(engine)
    with engine.begin() as conn:
        written = facts.rebuild(conn, args.from_, args.to_)
    print(", ".join(f"{table}: {n} rows" for table, n in written.items()))
    return 0


def cmd_run_day(args) -> int:
    from kaizen.pipeline import run_daily

    result = run_daily(args.day, _run_id(f"day_{args.day}"))
    print(json.dumps(result, indent=1, default=str))
    return 0


def cmd_rebuild(args) -> int:
    from kaizen.pipeline import rebuild

    t = time.perf_counter()
    grains = tuple(args.grains.split(","))
    result = rebuild(args.start, args.end, _run_id("rebuild"), grains)
    print(json.dumps(result), f"({time.perf_counter() - t:.1f} s)")
    return 0


def cmd_rollup(args) -> int:
    from kaizen import calendar as cal
    from kaizen import warehouse
    from kaizen.kpis import periods
    from kaizen.period import ROLLUP_GRAINS, Period

    grains = ROLLUP_GRAINS if args.grain == "all" else (args.grain,)
    engine = warehouse.get_engine()
    warehouse.apply_ddl(engine)
    # to date: the cut-off of the last trading day in the range that has passed
    last = args.to_ if cal.is_trading_day(args.to_) else cal.previous_trading_day(args.to_)
    last = min(last, latest_complete_trading_day(datetime.now(UTC)))
    as_of = args.as_of or Period.day(last).closes_utc
    rows = periods.compute_rollups(engine, grains, args.from_, args.to_, _run_id("rollup"), as_of=as_of)
    print(f"{len(rows)} kpi_values rows for {', '.join(grains)} periods overlapping {args.from_}…{args.to_}"
          f" (to {as_of.astimezone(cal.IST):%Y-%m-%d %H:%M} IST)")
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

    manifest = generate(end=day, months=args.months, seed=args.seed, out_dir=config.demo_dir())
    t1 = time.perf_counter()
    print(f"[1/3] demo sources {manifest['start']} … {day} written to {config.demo_dir()} ({t1 - t0:.1f} s)")

    from kaizen.pipeline import rebuild

    first = date.fromisoformat(manifest["first_trading_day"])
    history = rebuild(first, cal.previous_trading_day(day), _run_id("demo_history"))
    t1b = time.perf_counter()
    print(f"[2/3] history {first} … {cal.previous_trading_day(day)} extracted and computed: {history} "
          f"({t1b - t1:.1f} s)")
    t1 = t1b

    dag = dag_for_test("daily_review")
    review_at = cal.ist_datetime(day, cal.REVIEW_TIME)
    dagrun = dag.test(logical_date=review_at, run_after=review_at)
    state = str(getattr(dagrun, "state", ""))
    t2 = time.perf_counter()
    print(f"[3/3] daily_review for {day} through Airflow: {state} ({t2 - t1:.1f} s)")
    if "success" not in state:
        print("daily_review failed; see the task logs above", file=sys.stderr)
        return 1
    reviews = []
    for kind in ("weekly", "monthly", "quarterly"):
        t3 = time.perf_counter()
        # weekly and monthly: the latest meeting's period (the timetable infers it from the
        # run time); quarterly: the current quarter to date (the latest meeting may predate
        # the demo data)
        conf = {"period_start": day.isoformat()} if kind == "quarterly" else None
        run = dag_for_test(f"{kind}_review").test(logical_date=review_at, run_after=review_at, run_conf=conf)
        ok = "success" in str(getattr(run, "state", ""))
        reviews.append((kind, ok))
        print(f"[+] {kind}_review through Airflow: {'success' if ok else 'FAILED'} ({time.perf_counter() - t3:.1f} s)")
    print_summary(day)
    for kind, _ok in reviews:
        folders = sorted((config.out_dir() / f"{kind}_review").glob("*"))
        if folders:
            print(f"{kind} review: {folders[-1]}/ ({', '.join(sorted(p.name for p in folders[-1].iterdir()))})")
    sheets = config.out_dir() / "sheets"
    if sheets.exists():
        print(f"Sheets outbox: {sheets}/ ({', '.join(sorted(p.name for p in sheets.iterdir()))})")
    return 0 if all(ok for _k, ok in reviews) else 1


def cmd_ui(args) -> int:
    """The local Airflow UI over the demo until Ctrl-C (kaizen.localstack.run_ui); the
    demo is prepared first when its warehouse holds no KPIs yet."""
    import sqlalchemy as sa

    from kaizen import localstack, warehouse

    os.environ.setdefault(config.ENV_SOURCES, "demo")
    engine = warehouse.get_engine()
    ready = (config.demo_dir() / "manifest.json").exists() and sa.inspect(engine).has_table("kpi_values")
    if ready:
        with engine.connect() as c:
            ready = c.execute(sa.text("select count(*) from kpi_values")).scalar() > 0
    if not ready:
        print("the demo warehouse is empty: preparing it as `make demo` does …", flush=True)
        code = cmd_demo(argparse.Namespace(day=None, months=3, seed=42))
        if code:
            return code
    print(f"warehouse: {warehouse.warehouse_url(hide_password=True)}")
    return localstack.run_ui(Path(os.environ["AIRFLOW_HOME"]) / "ui", port=args.port)


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


def dag_for_test(dag_id: str):
    """The DAG ready for ``dag.test()``. Airflow 3.3.2's ``dag.test()`` cannot run a
    DAG that has a deadline alert: its in-process scheduler copy keeps the serialised
    alert dicts where the database path stores alert ids, and ``DagRun.update_state``
    fails looking them up ('dict' object has no attribute 'hex'). The deadline is a
    scheduler feature anyway (the live test runs it under a real scheduler), so the
    in-process run goes without it."""
    dag = load_dag(dag_id)
    dag.deadline = None
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
    print(f"warehouse: {warehouse.warehouse_url(hide_password=True)}")


def mask_logs() -> None:
    """Every log record of this process passes through Airflow's secrets masker, as in
    Airflow's own task command, whichever handlers Airflow's logging configuration
    installs later: a secret Kaizen has registered (every connection it resolves through
    Airflow, see :func:`kaizen.config.get_connection`) is written as ``***``. Until
    something is registered, the masker is not even imported (commands that need no
    connection do not pay for importing Airflow)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "kaizen_masked", False):
        return

    busy = threading.local()  # the masker makes a record of its own the first time

    def masked_record(*args, **kwargs):
        record = make_record(*args, **kwargs)
        masker = sys.modules.get("airflow.sdk._shared.secrets_masker")
        if masker is not None and not getattr(busy, "on", False):
            busy.on = True
            try:
                masker.SecretsMasker.enable_log_masking()
                masker._secrets_masker().filter(record)
                # the filter marks the record done; a caller's ``extra`` may set that mark itself
                record.__dict__.pop(masker.SecretsMasker.ALREADY_FILTERED_FLAG, None)
            finally:
                busy.on = False
        return record

    masked_record.kaizen_masked = True
    logging.setLogRecordFactory(masked_record)


def main(argv: list[str] | None = None) -> int:
    # the Makefile's Airflow settings where the environment has none (before Airflow is imported)
    config.local_airflow_defaults()
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

    s = sub.add_parser("rebuild", help="extract and compute every trading day of a range, then rollups")
    s.add_argument("--from", dest="start", type=_date, required=True)
    s.add_argument("--to", dest="end", type=_date, required=True)
    s.add_argument("--grains", default="day,week,month,quarter")
    s.set_defaults(func=cmd_rebuild)

    s = sub.add_parser("rollup", help="recompute week/month/quarter KPIs of a range (idempotent)")
    s.add_argument("--grain", choices=["week", "month", "quarter", "all"], default="all")
    s.add_argument("--from", dest="from_", type=_date, required=True)
    s.add_argument("--to", dest="to_", type=_date, required=True)
    s.add_argument("--as-of", dest="as_of", type=_aware, default=None,
                   help="compute to this time (ISO with offset); default: the last passed 16:00 IST cut-off")
    s.set_defaults(func=cmd_rollup)

    s = sub.add_parser("facts", help="recompute the fact tables of a range from the landing tables")
    s.add_argument("--from", dest="from_", type=_date, default=None, help="first trading day (default: all)")
    s.add_argument("--to", dest="to_", type=_date, default=None, help="last trading day (default: all)")
    s.set_defaults(func=cmd_facts)

    s = sub.add_parser("views", help="regenerate the wide per-grain views in sql/ from the catalog")
    s.set_defaults(func=cmd_views)

    s = sub.add_parser("calendar", help="print one year's NSE sessions and holidays with their source")
    s.add_argument("--year", type=int, required=True)
    s.add_argument("--sessions", action="store_true", help="also list every session day")
    s.set_defaults(func=cmd_calendar)

    s = sub.add_parser("ui", help="the local Airflow UI over the demo (api-server, scheduler, …) until Ctrl-C")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(func=cmd_ui)

    args = p.parse_args(argv)
    mask_logs()
    return args.func(args)


