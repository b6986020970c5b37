"""The analyst surface: scorecard and wide views on both dialects, generated files
current, every table and column documented (PostgreSQL COMMENT ON), the read-only
analyst role, and the rollup CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config, warehouse
from kaizen.kpis import catalog, periods
from kaizen.period import GRAINS, review_window_utc
from kaizen.warehouse import docs, facts, views

LOADED = datetime(2026, 11, 28, tzinfo=UTC)


def _trades(engine, days):
    rows = []
    for i, d in enumerate(days):
        at = datetime.combine(d, time(11), tzinfo=cal.IST).astimezone(UTC)
        rows.append(
            {
                "trade_id": f"T{i}", "trading_day": d, "symbol": "TCS", "side": "BUY", "quantity": 1,
                "entry_time": at, "exit_time": at, "entry_price_inr": 1.0, "exit_price_inr": 1.0 + i,
                "fees_inr": 0.0, "net_pnl_inr": float(i), "strategy": "s", "ab_arm": None,
                "run_id": "t", "loaded_at": LOADED,
            }
        )
    with engine.begin() as c:
        warehouse.replace_slice(c, "raw_trades", "1 = 0", {}, rows)
        facts.rebuild(c)


def test_scorecard_one_row_per_kpi_and_grain(engine):
    from kaizen.kpis import day as day_kpis

    catalog.load_definitions(engine)
    days = cal.trading_days(date(2026, 11, 16), date(2026, 11, 27))
    _trades(engine, days)
    for d in days[-3:]:
        day_kpis.compute_day(engine, d, "r")
    periods.compute_rollups(engine, periods.ROLLUP_GRAINS, days[0], days[-1], "r", as_of=review_window_utc(days[-1])[1])
    sc = warehouse.read_frame(engine, "select * from v_scorecard", date_cols=("period_start",))
    cat = catalog.load_catalog()
    for grain in GRAINS:
        part = sc[sc["grain"] == grain]
        assert sorted(part["kpi_id"]) == sorted(k.id for k in cat.active(grain)), grain
        assert part["period_start"].nunique() == 1
    latest = {g: p for g, p in zip(sc["grain"], sc["period_start"], strict=True)}
    assert latest == {"day": date(2026, 11, 27), "week": date(2026, 11, 23), "month": date(2026, 11, 1),
                      "quarter": date(2026, 10, 1)}
    wide = warehouse.read_frame(engine, "select * from v_kpi_week order by period_start", date_cols=("period_start",))
    assert list(wide["period_start"]) == [date(2026, 11, 16), date(2026, 11, 23)]
    assert list(wide["trades_count"]) == [5.0, 4.0]  # 24 Nov is a holiday


def test_generated_views_and_schema_doc_are_current():
    cat = catalog.load_catalog()
    for grain in GRAINS:
        text = (config.SQL_DIR / f"v_kpi_{grain}.sql").read_text()
        assert text == views.wide_view_sql(grain, [k.id for k in cat.active(grain)]), f"run `python -m kaizen views` ({grain})"
    doc = (config.REPO_ROOT / "docs" / "warehouse.md").read_text()
    assert docs.schema_markdown() in doc, "run `python -m kaizen views` (docs/warehouse.md)"


def test_every_column_is_documented():
    for t in docs.tables():
        assert t.doc, t.name
        for col, _typ, comment in t.columns:
            assert comment, f"{t.name}.{col} has no documentation"


def test_postgres_comments_and_read_only_analyst_role(pg_url):
    eng = sa.create_engine(pg_url)
    warehouse.apply_ddl(eng)
    with eng.connect() as c:
        missing = c.execute(
            sa.text(
                "select c.table_name, c.column_name from information_schema.columns as c "
                "join pg_class as k on k.relname = c.table_name and k.relkind = 'r' "
                "where c.table_schema = 'public' "
                "and col_description(k.oid, c.ordinal_position) is null"
            )
        ).all()
        assert missing == []
        assert c.execute(sa.text("select obj_description('kpi_values'::regclass)")).scalar().startswith("one row per KPI")
    script = (config.SQL_DIR / "analyst_role.pg.sql").read_text()
    user = f"analyst_{uuid.uuid4().hex[:6]}"
    raw = eng.raw_connection()  # as psql runs it: one script, no parameter parsing
    try:
        for _ in range(2):  # idempotent
            raw.cursor().execute(script)
        raw.cursor().execute(f"create role {user} login in role kaizen_analyst")
        raw.commit()
    finally:
        raw.close()
    try:
        analyst = sa.create_engine(sa.engine.make_url(pg_url).set(username=user))
        with analyst.connect() as c:
            assert c.execute(sa.text("select count(*) from kpi_values")).scalar() >= 0
            assert c.execute(sa.text("select count(*) from v_scorecard")).scalar() >= 0
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), analyst.begin() as c:
            c.execute(sa.text("delete from kpi_values"))
        analyst.dispose()
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f"drop role {user}")
    eng.dispose()


def test_rollup_cli_is_idempotent(tmp_path):
    db = tmp_path / "w.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    warehouse.apply_ddl(eng)
    _trades(eng, cal.trading_days(date(2026, 11, 2), date(2026, 11, 27)))
    eng.dispose()
    env = {"AIRFLOW_CONN_KAIZEN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
           "PYTHONPATH": str(config.REPO_ROOT / "plugins"), "PATH": "/usr/bin:/bin"}
    args = [sys.executable, "-m", "kaizen", "rollup", "--grain", "all", "--from", "2026-11-01", "--to", "2026-11-30",
            "--as-of", "2026-11-27T16:00:00+05:30"]

    def snapshot():
        e = sa.create_engine(f"sqlite:///{db}")
        with e.connect() as c:
            rows = c.execute(sa.text("select * from kpi_values order by kpi_id, grain, period_start")).all()
        e.dispose()
        return rows

    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert "week, month, quarter" in out.stdout
    first = snapshot()
    assert {r.grain for r in first} == {"week", "month", "quarter"}
    subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert snapshot() == first
    bad = subprocess.run([*args[:5], "year", *args[6:]], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'year'" in bad.stderr
