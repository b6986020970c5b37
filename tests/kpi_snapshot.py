"""Snapshots of ``kpi_values``: every column but ``computed_at`` and ``run_id``, one
canonical text line per row (floats by ``repr``, so equality is exact), sorted by the
primary key, gzip-compressed under ``tests/data/``.

A refactor of the KPI code must leave these unchanged; a semantic change updates the
snapshot in the same commit and names the change.

    python tests/kpi_snapshot.py build --end 2026-11-27 --months 3 --seed 42 \\
        --out tests/data/kpi_values_demo.csv.gz [--trades-per-day N] [--url URL] [--check]

builds demo sources in a temporary folder, rebuilds the range into a fresh warehouse
(SQLite unless ``--url``) and writes the snapshot."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
COLUMNS = ("kpi_id", "grain", "period_start", "period_end", "value", "numerator", "denominator",
           "sample_size", "target", "status", "trend", "is_complete")


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return str(v)[:10] if hasattr(v, "isoformat") else str(v)


def dump(engine) -> list[tuple[str, ...]]:
    """The canonical rows of ``kpi_values`` (as text, sorted by the primary key)."""
    import sqlalchemy as sa

    with engine.connect() as c:
        rows = c.execute(sa.text(f"select {', '.join(COLUMNS)} from kpi_values")).all()
    out = []
    for r in rows:
        vals = list(r)
        # numbers as floats whatever the driver returns (SQLite may give 5 for 5.0)
        for i in (4, 5, 6, 8):
            if vals[i] is not None:
                vals[i] = float(vals[i])
        vals[7] = None if vals[7] is None else int(vals[7])
        vals[11] = None if vals[11] is None else bool(vals[11])
        out.append(tuple(_text(v) for v in vals))
    return sorted(out, key=lambda t: (t[0], t[1], t[2]))


def write(path: Path, rows: list[tuple[str, ...]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same rows give the same bytes
        f.write(buf.getvalue().encode())


def read(path: Path) -> list[tuple[str, ...]]:
    with gzip.open(path, "rt", newline="") as f:
        r = csv.reader(f)
        assert tuple(next(r)) == COLUMNS
        return [tuple(row) for row in r]


def diff(expected: list[tuple], actual: list[tuple], limit: int = 10) -> list[str]:
    """Human-readable differences, keyed by (kpi_id, grain, period_start)."""
    e = {t[:3]: t for t in expected}
    a = {t[:3]: t for t in actual}
    out = [f"missing {k}" for k in sorted(e.keys() - a.keys())]
    out += [f"extra {k}" for k in sorted(a.keys() - e.keys())]
    for k in sorted(e.keys() & a.keys()):
        if e[k] != a[k]:
            cols = [f"{c}: {x!r} → {y!r}" for c, x, y in zip(COLUMNS, e[k], a[k], strict=True) if x != y]
            out.append(f"changed {k}: {'; '.join(cols)}")
    return out[:limit] + ([f"… {len(out) - limit} more"] if len(out) > limit else [])


def build(end: date, months: int, seed: int, trades_per_day: int | None, url: str | None) -> list[tuple]:
    """Demo sources → a rebuild of their whole range → the snapshot rows."""
    import sqlalchemy as sa

    sys.path.insert(0, str(REPO / "plugins"))
    from kaizen import warehouse
    from kaizen.demo import generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = generate(end=end, months=months, seed=seed, out_dir=tmp / "demo", trades_per_day=trades_per_day)
        os.environ.update(KAIZEN_SOURCES="demo", KAIZEN_DEMO_DIR=str(tmp / "demo"), KAIZEN_DATA_DIR=str(tmp),
                          KAIZEN_OUT_DIR=str(tmp / "out"))
        if url:
            u = sa.engine.make_url(url)
            os.environ["AIRFLOW_CONN_KAIZEN_WAREHOUSE"] = (
                f'{{"conn_type": "postgres", "host": "{u.host}", "port": {u.port or 5432}, '
                f'"login": "{u.username}", "schema": "{u.database}"}}')
        else:
            os.environ.pop("AIRFLOW_CONN_KAIZEN_WAREHOUSE", None)
        from kaizen.pipeline import rebuild

        rebuild(date.fromisoformat(manifest["first_trading_day"]), end, "snapshot", progress=lambda *a, **k: None)
        rows = dump(warehouse.get_engine())
        warehouse.get_engine().dispose()
        return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--end", type=date.fromisoformat, required=True)
    b.add_argument("--months", type=int, required=True)
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--trades-per-day", type=int, default=None)
    b.add_argument("--url", default=None, help="a PostgreSQL database URL (default: a SQLite file)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    b.add_argument("--fresh-database", action="store_true",
                   help="create a new database beside --url's for the run and drop it after")
    args = p.parse_args(argv)
    if args.fresh_database and args.url:
        import uuid

        import sqlalchemy as sa

        admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
        name = f"kaizen_snap_{uuid.uuid4().hex[:10]}"
        with admin.connect() as c:
            c.exec_driver_sql(f'create database "{name}"')
        try:
            rows = build(args.end, args.months, args.seed, args.trades_per_day, args.url.rsplit("/", 1)[0] + "/" + name)
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    else:
        rows = build(args.end, args.months, args.seed, args.trades_per_day, args.url)
    if args.check:
        problems = diff(read(args.out), rows)
        print("\n".join(problems) or f"{len(rows)} rows identical to {args.out}")
        return 1 if problems else 0
    write(args.out, rows)
    print(f"{len(rows)} rows written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
