"""Benchmark of the range rebuild (issue: backfills and operations).

    .venv/bin/python bench/rebuild.py                  # the full set (slow: see README)
    .venv/bin/python bench/rebuild.py --months 1 --runs 3 --trades-per-day 2000

Prints, per warehouse dialect: median wall time of --runs rebuilds of the whole range
(all grains) and the peak RSS of the rebuilding process and any children (sampled);
the same at --scale × the data (--scale × the months at the same rates, so every source — trades, orders,
per-minute probes and histograms, deployments, incidents — grows by the same factor);
the time of one incremental trading day (extract, day KPIs, rollups to date) on top of
3 years, of 1 month and of the quarter to date of history, and on the 3 years the weekly
review's tail and one hourly ingest run (kaizen_ingest's steps); and each DAG file's parse time. Each measured rebuild runs
in a fresh process against a fresh warehouse, so runs are independent."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO / "plugins"), "KAIZEN_SOURCES": "demo"}
PG_ADMIN = os.environ.get("KAIZEN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

CHILD = r"""
import json, resource, sys, time
from datetime import date
from kaizen.pipeline import rebuild
first, last, grains = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2]), sys.argv[3].split(",")
t = time.perf_counter()
result = rebuild(first, last, "bench", tuple(grains))
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **result}))
"""


# the weekly review's own extract of the tail after the last daily run (Fri 16:00 IST to
# the week's end) and its rollups: what Kaizen runs instead of hourly ingestion
CHILD_TAIL = r"""
import json, sys, time
from kaizen.pipeline import compute_review_rollups
t = time.perf_counter()
out = compute_review_rollups(json.loads(sys.argv[1]), "bench-tail")
print(json.dumps({"seconds": time.perf_counter() - t, "rows": out.get("rows")}))
"""


# one hourly kaizen_ingest run: every window source from where it has landed to the hour,
# and the latest closed session when it is not landed yet (the steps of its tasks)
CHILD_INGEST = r"""
import json, sys, time
from datetime import datetime
from kaizen.pipeline import INGEST_WINDOW_SOURCES, ingest_trading, ingest_window_source
until = datetime.fromisoformat(sys.argv[1])
t = time.perf_counter()
rows = sum(r["loaded"] for s in INGEST_WINDOW_SOURCES for r in ingest_window_source(s, until, "bench-ingest"))
rows += sum(r["loaded"] for r in ingest_trading(until, "bench-ingest") or [])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rows}))
"""


def generate(out: Path, end: date, months: int, trades: int) -> dict:
    code = (
        "import json,sys; from datetime import date; from pathlib import Path; from kaizen.demo import generate;"
        f"m=generate(end=date.fromisoformat('{end}'), months={months}, seed=42, out_dir=Path(r'{out}'),"
        f" trades_per_day={trades}); print(json.dumps({{'first': m['first_trading_day']}}))"
    )
    t = time.perf_counter()
    out_json = subprocess.run([PY, "-c", code], env=ENV, check=True, capture_output=True, text=True).stdout
    info = json.loads(out_json.strip().splitlines()[-1])
    info["seconds"] = time.perf_counter() - t
    return info


def warehouse_conn(dialect: str, tmp: Path) -> tuple[str, callable]:
    if dialect == "sqlite":
        path = tmp / f"w-{uuid.uuid4().hex[:6]}.db"
        return json.dumps({"conn_type": "sqlite", "host": str(path)}), lambda: path.unlink(missing_ok=True)
    import sqlalchemy as sa

    name = f"kaizen_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'create database "{name}"')
    u = sa.engine.make_url(PG_ADMIN)

    def drop():
        with admin.connect() as c:
            c.exec_driver_sql(f'drop database if exists "{name}" with (force)')

    conn = {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username, "schema": name}
    return json.dumps(conn), drop


def run_rebuild(demo: Path, dialect: str, tmp: Path, first: date, last: date, grains="day,week,month,quarter",
                keep=None) -> dict:
    conn, drop = keep or warehouse_conn(dialect, tmp)
    env = {**ENV, "KAIZEN_DEMO_DIR": str(demo), "AIRFLOW_CONN_KAIZEN_WAREHOUSE": conn, "KAIZEN_PROGRESS": "1"}
    try:
        # the peak RSS of the rebuilding process and any children together,
        # sampled from here every 0.2 s (a thread in the measured process would take
        # its GIL and slow what it measures)
        child = subprocess.Popen([PY, "-c", CHILD, str(first), str(last), grains], env=env,
                                 stdout=subprocess.PIPE, text=True)
        peak = 0
        proc = psutil.Process(child.pid)
        while child.poll() is None:
            total = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:
                pass
            peak = max(peak, total)
            time.sleep(0.2)
        out = child.stdout.read()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, "rebuild")
        return {**json.loads(out.strip().splitlines()[-1]), "tree_rss_mb": peak / 2**20}
    finally:
        if keep is None:
            drop()


def median_rebuild(demo, dialect, tmp, first, last, runs) -> tuple[float, str, dict]:
    """(median seconds, peak RSS of the rebuilding process with any children (sampled
    every 0.2 s) and by getrusage, last result)"""
    results = [run_rebuild(demo, dialect, tmp, first, last) for _ in range(runs)]
    rss = (f"{max(r['tree_rss_mb'] for r in results):.0f} MB process tree"
           f" ({max(r['peak_rss_mb'] for r in results):.0f} MB getrusage)")
    return statistics.median(r["seconds"] for r in results), rss, results[-1]


def incremental(demo: Path, dialect: str, tmp: Path, histories: dict[str, date], day: date, prev: date,
                runs: int) -> tuple[dict[str, float], float, float]:
    """Median time of one trading day's extract + day KPIs + rollups to date on top of
    each history (name → its first day, all to ``prev``), and, on the first, of the
    weekly review's tail (:func:`review_tail`) and of one hourly ingest run
    (:func:`hourly_ingest`). The day is re-run ``runs`` times on each
    (each run replaces the same slices), the histories taken in turn within each round,
    so a slow spell of a noisy machine falls on all of them alike."""
    kept = {name: warehouse_conn(dialect, tmp) for name in histories}
    try:
        for name, first in histories.items():
            run_rebuild(demo, dialect, tmp, first, prev, keep=kept[name])
            settle(dialect, kept[name][0])
        times: dict[str, list[float]] = {name: [] for name in histories}
        for _ in range(runs):
            for name in histories:
                times[name].append(run_rebuild(demo, dialect, tmp, day, day, keep=kept[name])["seconds"])
        first = kept[next(iter(histories))][0]
        ingest = hourly_ingest(demo, first, day, runs)
        tail = review_tail(demo, first, day, runs)
        return {name: statistics.median(t) for name, t in times.items()}, tail, ingest
    finally:
        for keep in kept.values():
            keep[1]()


def settle(dialect: str, conn: str) -> None:
    """A freshly bulk-loaded PostgreSQL database is vacuumed and analysed before it is
    timed, as autovacuum would do soon after a load (otherwise it may do it mid-run)."""
    if dialect != "postgresql" and dialect != "postgres":
        return
    import sqlalchemy as sa

    c = json.loads(conn)
    url = sa.engine.make_url(PG_ADMIN).set(database=c["schema"])
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.exec_driver_sql("vacuum analyze")
    engine.dispose()


# back to "landed to the review time" (argv[1]) after an ingest run, so the next one lands the same hour
RESET_COVERAGE = r"""
import sys
from datetime import datetime
import sqlalchemy as sa
from kaizen import warehouse
closes = warehouse.bind_value(datetime.fromisoformat(sys.argv[1]))
with warehouse.writing(warehouse.get_engine()) as c:
    c.execute(sa.text("update source_coverage set covered_to = :t where covered_to > :t and covered_from < :t"),
              {"t": closes})
"""


def hourly_ingest(demo: Path, conn: str, day: date, runs: int) -> float:
    """Median time of one hourly ingest run on the warehouse ``conn``, landed to ``day``'s
    review time: the first hour after it (each source from 16:00 IST to the next full
    UTC hour), then the same hour again (each run replaces the same slices)."""
    from kaizen.period import Period

    closes = Period.day(day).closes_utc
    until = closes.replace(minute=0) + timedelta(hours=1)
    env = {**ENV, "KAIZEN_DEMO_DIR": str(demo), "AIRFLOW_CONN_KAIZEN_WAREHOUSE": conn}
    times = []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", CHILD_INGEST, until.isoformat()], env=env, check=True,
                             capture_output=True, text=True).stdout
        times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
        subprocess.run([PY, "-c", RESET_COVERAGE, closes.isoformat()], env=env, check=True, capture_output=True)
    return statistics.median(times)


def review_tail(demo: Path, conn: str, day: date, runs: int) -> float:
    """Median time of the weekly review's tail extract and rollups — from ``day``'s
    16:00 IST cut-off (the last daily run) to the end of its week — on the warehouse
    ``conn``; each run replaces the same slices."""
    from kaizen.period import Period

    week = Period.of("week", day)
    period = {"kind": "weekly", "grain": "week", "period_start": week.start.isoformat(), "key": week.key,
              "as_of": week.closes_utc.isoformat()}
    env = {**ENV, "KAIZEN_DEMO_DIR": str(demo), "AIRFLOW_CONN_KAIZEN_WAREHOUSE": conn}
    times = []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", CHILD_TAIL, json.dumps(period)], env=env, check=True,
                             capture_output=True, text=True).stdout
        times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    return statistics.median(times)


def parse_times() -> dict[str, float]:
    code = (
        "import sys, time, importlib.util, airflow.sdk, json\n"
        f"sys.path.insert(0, {str(REPO / 'plugins')!r})\n"
        "import kaizen.timetables, kaizen.dag_defaults\n"
        "out = {}\n"
        f"for p in sorted(__import__('pathlib').Path({str(REPO / 'dags')!r}).glob('*.py')):\n"
        "    t = time.perf_counter()\n"
        "    s = importlib.util.spec_from_file_location(p.stem, p); m = importlib.util.module_from_spec(s)\n"
        "    s.loader.exec_module(m); out[p.name] = time.perf_counter() - t\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([PY, "-c", code], env=ENV, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    from kaizen import calendar as cal

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 27))
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--trades-per-day", type=int, default=2000)
    p.add_argument("--scale", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--scale-runs", type=int, default=1, help="runs of the ×scale rebuild (each takes minutes)")
    p.add_argument("--dialects", default="sqlite,postgres")
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--skip-incremental", action="store_true")
    p.add_argument("--skip-rebuild", action="store_true", help="skip the rebuild of the whole range")
    args = p.parse_args()
    rows = []

    def add(row) -> None:  # printed as it comes too: a long run shows its progress
        rows.append(row)
        print("  ".join(c for c in row if c), flush=True)

    with tempfile.TemporaryDirectory(prefix="kaizen-bench-") as tmpd:
        tmp = Path(tmpd)
        demo = tmp / "demo"
        gen = generate(demo, args.end, args.months, args.trades_per_day)
        first = date.fromisoformat(gen["first"])
        gen5 = None
        add(("generate demo data", f"{args.months} months × {args.trades_per_day} trades/day",
                     f"{gen['seconds']:.1f} s", ""))
        for dialect in args.dialects.split(","):
            med = None
            if not args.skip_rebuild:
                med, rss, res = median_rebuild(demo, dialect, tmp, first, args.end, args.runs)
                add((f"rebuild {dialect}", f"{res['trading_days']} days, {res['extracted']:,} records",
                     f"median {med:.1f} s of {args.runs}", f"peak RSS {rss}"))
            if not args.skip_scale and med is not None:
                big = tmp / "demo5"
                gen5 = gen5 or generate(big, args.end, args.months * args.scale, args.trades_per_day)
                big_first = date.fromisoformat(gen5["first"])
                med5, rss5, res5 = median_rebuild(big, dialect, tmp, big_first, args.end, args.scale_runs)
                add((f"rebuild {dialect} ×{args.scale}",
                             f"{res5['trading_days']} days, {res5['extracted']:,} records",
                             f"median {med5:.1f} s of {args.scale_runs}",
                             f"{med5 / med:.2f}× the time, peak RSS {rss5}"))
            if not args.skip_incremental:
                day = args.end
                prev = cal.previous_trading_day(day)
                long_demo = tmp / "demo36"
                # to the next Monday, so the week's tail after ``day`` exists: 3 years of history
                # from the demo's first day, which is a few days short of 3 × 365 before ``day``
                long_gen = generate(long_demo, day + timedelta(days=7 - day.weekday()), 36, args.trades_per_day)
                long_first = date.fromisoformat(long_gen["first"])
                # three histories: 3 years; 1 month; and the quarter to date, which holds the
                # whole quarter as 3 years do (1 month holds half its orders): what grows
                # with history alone
                from kaizen.period import Period

                t, t_tail, t_ingest = incremental(long_demo, dialect, tmp, {
                    "3y": long_first,
                    "1m": cal.next_trading_day(day - timedelta(days=30)),
                    "qtd": cal.next_trading_day(Period.of("quarter", day).start - timedelta(days=1)),
                }, day, prev, args.runs)
                t_long, t_short, t_q = t["3y"], t["1m"], t["qtd"]
                add((f"incremental day {dialect}", "3 years vs 1 month of history",
                             f"median {t_long:.2f} s vs {t_short:.2f} s", f"{t_long / t_short:.2f}×"))
                add((f"incremental day {dialect}", "3 years vs the quarter to date",
                     f"median {t_long:.2f} s vs {t_q:.2f} s", f"{t_long / t_q:.2f}×"))
                add((f"review tail {dialect}", "weekly review: the last daily run to the week's end, 3 years",
                     f"median {t_tail:.2f} s of {args.runs}", ""))
                add((f"hourly ingest {dialect}", "one kaizen_ingest run's steps, every source, 3 years",
                     f"median {t_ingest:.2f} s of {args.runs}", ""))
    for name, secs in parse_times().items():
        add((f"parse dags/{name}", "", f"{secs * 1000:.1f} ms", ""))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "plugins"))
    raise SystemExit(main())
