"""The set-based range rebuild (kaizen.pipeline.rebuild): one extract per source and
month, the KPIs from what was just loaded — and the same warehouse as running the
daily pipeline day by day."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from conftest import use_demo
from kaizen import calendar as cal
from kaizen import pipeline, warehouse

# across a quarter boundary, so the rebuild works in two months and the week of
# 28 Sep – 4 Oct straddles them
FIRST, LAST = date(2026, 9, 21), date(2026, 10, 9)
STAMPS = {"run_id", "loaded_at", "quarantined_at", "computed_at"}
RAW = (
    "raw_trades", "raw_orders", "raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes",
    "raw_deployments", "raw_incidents", "raw_alerts", "raw_incident_log_entries", "raw_action_items",
)


def _table(engine, table: str, drop=STAMPS) -> list[tuple]:
    with engine.connect() as c:
        result = c.execute(sa.text(f"select * from {table}"))
        keep = [i for i, k in enumerate(result.keys()) if k not in drop]
        return sorted((tuple(str(r[i]) for i in keep) for r in result.tuples()), key=repr)


def _kpis(engine, where: str = "1 = 1") -> dict:
    with engine.connect() as c:
        return {
            (r.kpi_id, r.grain, str(r.period_start)[:10]): r._asdict()
            for r in c.execute(sa.text(f"select * from kpi_values where {where}"))
        }


def test_range_rebuild_equals_the_daily_pipeline_day_by_day(range_demo, tmp_path, monkeypatch):
    ranged = use_demo(monkeypatch, range_demo, {"conn_type": "sqlite", "host": str(tmp_path / "range.db")})
    result = pipeline.rebuild(FIRST, LAST, "range")
    days = cal.trading_days(FIRST, LAST)
    assert result["trading_days"] == len(days) == 14  # 2 Oct (Gandhi Jayanti) is an NSE holiday
    assert result["extracted"] == result["loaded"] + result["quarantined"] > 0

    daily = use_demo(monkeypatch, range_demo, {"conn_type": "sqlite", "host": str(tmp_path / "daily.db")})
    pipeline.prepare_warehouse()
    for d in days:
        for source in pipeline.SOURCES:
            pipeline.extract_source(source, d, "daily")
        pipeline.compute_day_kpis(d, "daily")
        pipeline.compute_rollups_to_date(d, "daily")

    for table in (*RAW, "quarantine"):
        assert _table(ranged, table) == _table(daily, table), table
    # day KPIs, and the rollups of the periods holding the last day, agree to the bit.
    # Earlier periods differ only as they should: day by day, a week was last computed
    # at its Friday's cut-off, the range rebuild computes it to its end — so the
    # trend of the last periods, which compares with them, is left out.
    where = "grain = 'day' or period_start in ('2026-10-05', '2026-10-01')"
    a, b = _kpis(ranged, where), _kpis(daily, where)
    assert a.keys() == b.keys() and len(a) > 14 * 30
    for k in a:
        skip = STAMPS if k[1] == "day" else STAMPS | {"trend"}
        assert {c: v for c, v in a[k].items() if c not in skip} == {
            c: v for c, v in b[k].items() if c not in skip
        }, k


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_rerunning_days_and_the_range_changes_nothing(dialect, range_demo, tmp_path, monkeypatch, request):
    if dialect == "sqlite":
        conn = {"conn_type": "sqlite", "host": str(tmp_path / "w.db")}
    else:
        u = sa.engine.make_url(request.getfixturevalue("pg_url"))
        conn = {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username, "schema": u.database}
    engine = use_demo(monkeypatch, range_demo, conn)
    pipeline.prepare_warehouse()
    with engine.begin() as c:  # the session's PostgreSQL database: start from empty tables
        for table in (*RAW, "quarantine", "kpi_values"):
            c.exec_driver_sql(f"delete from {table}")
    pipeline.rebuild(FIRST, LAST, "range")
    before = _kpis(engine)
    assert {g for _k, g, _p in before} == {"day", "week", "month", "quarter"}
    # the batch computation and the one-scope computation give the same rows
    for d in cal.trading_days(FIRST, LAST):
        pipeline.compute_day_kpis(d, "again")
    pipeline.compute_rollups_to_date(LAST, "again")
    pipeline.rebuild(FIRST, LAST, "again")
    after = _kpis(engine)
    assert after == before  # computed_at and run_id included: nothing was rewritten
    assert not [k for k, r in after.items() if r["run_id"] == "again"]


def test_an_old_per_bucket_latency_table_is_regrouped_per_minute(engine):
    """Warehouses from before the per-minute shape are migrated by apply_ddl."""
    with engine.begin() as c:
        c.exec_driver_sql("drop table kaizen_schema")  # a warehouse of an older release
        c.exec_driver_sql("drop table raw_latency_buckets")
        c.exec_driver_sql(
            "create table raw_latency_buckets (ts timestamptz not null, le text not null, "
            "le_seconds double precision, request_count double precision not null, run_id text, "
            "loaded_at timestamptz not null, primary key (ts, le))"
        )
        c.exec_driver_sql(
            "insert into raw_latency_buckets values "
            "('2026-11-02 04:01:00+00:00', '+Inf', null, 7, 'old', '2026-11-02 11:00:00+00:00'), "
            "('2026-11-02 04:01:00+00:00', '0.25', 0.25, 5, 'old', '2026-11-02 11:00:00+00:00'), "
            "('2026-11-02 04:01:00+00:00', '0.1', 0.1, 2.5, 'old', '2026-11-02 11:00:00+00:00'), "
            "('2026-11-02 04:02:00+00:00', '0.1', 0.1, 0, 'old', '2026-11-02 11:00:00+00:00')"
        )
    warehouse.apply_ddl(engine)
    warehouse.apply_ddl(engine)  # and once more: nothing left to migrate
    with engine.connect() as c:
        got = [tuple(r) for r in c.execute(sa.text(
            "select bounds, counts, request_count, run_id from raw_latency_buckets order by ts"
        ))]
    assert got == [
        ('["0.1","0.25","+Inf"]', "[2.5,5.0,7.0]", 7.0, "old"),
        ('["0.1"]', "[0.0]", None, "old"),
    ]
