"""Week, month and quarter rollups: recomputed from the rows (never averaged ratios),
checked against hand-computed values and independent implementations
(empyrical-reloaded for Sharpe and drawdown, numpy.percentile for the latency SLI)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config, warehouse
from kaizen.kpis import periods
from kaizen.period import review_window_utc
from kaizen.warehouse import facts

LOADED = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


def ist(d: date, h: int = 12, mi: int = 0) -> datetime:
    return datetime.combine(d, time(h, mi), tzinfo=cal.IST).astimezone(UTC)


def insert(engine, table, rows):
    """Add rows to a landing table (each test starts with empty tables)."""
    with engine.begin() as conn:
        warehouse.replace_slice(conn, table, "1 = 0", {}, [{**r, "run_id": "fixture", "loaded_at": LOADED} for r in rows])
        facts.rebuild(conn)  # as the loader writes them with the rows


def trade(tid: str, day: date, pnl: float) -> dict:
    return {
        "trade_id": tid,
        "trading_day": day,
        "symbol": "INFY",
        "side": "BUY",
        "quantity": 1,
        "entry_time": ist(day, 10),
        "exit_time": ist(day, 11),
        "entry_price_inr": 100.0,
        "exit_price_inr": 100.0 + pnl,
        "fees_inr": 0.0,
        "net_pnl_inr": pnl,
        "strategy": "s1",
        "ab_arm": None,
    }


def rollup(engine, grain, day, as_of):
    rows = periods.compute_rollups(engine, [grain], day, day, "test-run", as_of=as_of, computed_at=LOADED)
    return {r["kpi_id"]: r for r in rows}


# ------------------------------------------------------------ trading
def test_sharpe_and_drawdown_match_empyrical(engine):
    empyrical = pytest.importorskip("empyrical")
    import pandas as pd

    days = cal.trading_days(date(2026, 10, 1), date(2026, 10, 31))
    assert len(days) == 20  # 22 weekdays less Gandhi Jayanti (2 Oct) and Dussehra (20 Oct)
    rng = np.random.default_rng(3)
    pnl = rng.normal(12_500, 110_000, len(days)).round(2)
    insert(engine, "raw_trades", [trade(f"T{i}", d, float(p)) for i, (d, p) in enumerate(zip(days, pnl, strict=True))])
    got = rollup(engine, "month", date(2026, 10, 1), as_of=ist(date(2026, 11, 2), 16))

    capital = config.capital_base_inr()
    expected_sharpe = empyrical.sharpe_ratio(pd.Series(pnl / capital), risk_free=0.0, annualization=252)
    assert got["sharpe_ratio"]["value"] == pytest.approx(expected_sharpe, abs=1e-9)
    assert got["sharpe_ratio"]["sample_size"] == 20
    # the same equity curve as compounding returns: r_t = P&L_t ÷ equity_{t−1}
    equity = capital + np.concatenate([[0.0], np.cumsum(pnl)])
    returns = pd.Series(pnl / equity[:-1])
    expected_dd = -100.0 * empyrical.max_drawdown(returns)
    assert got["max_drawdown_pct"]["value"] == pytest.approx(expected_dd, abs=1e-9)
    assert got["max_drawdown_pct"]["value"] > 0


def test_weekly_sharpe_needs_20_sessions(engine):
    days = cal.trading_days(date(2026, 11, 16), date(2026, 11, 20))
    insert(engine, "raw_trades", [trade(f"T{i}", d, 1000.0 * (i + 1)) for i, d in enumerate(days)])
    got = rollup(engine, "week", days[0], as_of=ist(date(2026, 11, 23), 16))
    assert got["sharpe_ratio"]["value"] is None
    assert got["sharpe_ratio"]["status"] == "insufficient_data"


def test_weekly_win_rate_is_count_weighted(engine):
    mon, wed = date(2026, 11, 23), date(2026, 11, 25)  # Tue 24 Nov is an NSE holiday
    insert(
        engine,
        "raw_trades",
        [trade("W1", mon, 100.0), trade("L1", wed, -10.0), trade("L2", wed, -10.0), trade("L3", wed, -10.0)],
    )
    got = rollup(engine, "week", mon, as_of=ist(date(2026, 11, 30), 16))
    # daily win rates 100 % and 0 % average to 50 %; the week is 1 win of 4 trades
    assert got["win_rate_pct"]["value"] == 25.0
    assert (got["win_rate_pct"]["numerator"], got["win_rate_pct"]["denominator"]) == (1.0, 4.0)
    assert got["trades_count"]["value"] == 4
    # 70 ₹ over the week's 4 sessions (23, 25, 26, 27 Nov)
    assert got["avg_daily_pnl_inr"]["value"] == pytest.approx(70.0 / 4)
    assert got["win_rate_pct"]["is_complete"] in (True, 1)


# ------------------------------------------------------------ reliability
def test_p95_from_buckets_within_one_bucket_of_raw_samples(engine):
    rng = np.random.default_rng(11)
    start = ist(date(2026, 11, 16), 9, 30)
    samples, rows = [], []
    for m in range(120):
        lat = rng.lognormal(mean=math.log(0.12), sigma=0.7, size=int(rng.integers(50, 400)))
        samples.append(lat)
        ts = start + timedelta(minutes=m)
        counts = [float((lat <= le).sum()) for le in BUCKETS]
        bounds = ["+Inf" if math.isinf(le) else repr(le) for le in BUCKETS]
        rows.append(  # one row per minute: the bucket bounds and their cumulative counts
            {
                "ts": ts,
                "bounds": json.dumps(bounds, separators=(",", ":")),
                "counts": json.dumps(counts, separators=(",", ":")),
                "request_count": counts[-1],
            }
        )
    insert(engine, "raw_latency_buckets", rows)
    got = rollup(engine, "week", date(2026, 11, 16), as_of=ist(date(2026, 11, 23), 16))
    raw = np.concatenate(samples)
    truth_ms = float(np.percentile(raw, 95)) * 1000
    upper = next(le for le in BUCKETS if le * 1000 >= truth_ms)
    lower = BUCKETS[BUCKETS.index(upper) - 1]
    assert abs(got["sli_p95_latency_ms"]["value"] - truth_ms) <= (upper - lower) * 1000
    assert got["sli_p95_latency_ms"]["sample_size"] == len(raw)
    assert got["sli_p95_latency_ms"]["status"] == "stale"  # 120 of 10,080 minutes covered


@pytest.mark.parametrize(("month", "budget"), [(date(2026, 11, 1), 43.2), (date(2026, 10, 1), 44.64)])
def test_error_budget_minutes_of_a_month(engine, month, budget):
    got = rollup(engine, "month", month, as_of=ist(date(2026, 12, 7), 16))
    assert got["error_budget_minutes"]["value"] == pytest.approx(budget, abs=1e-9)


def test_error_budget_burn_and_runout(engine):
    # November 2026 to 10 Nov 00:00 IST = 9 days = 12,960 probed minutes, 26 of them down
    start = ist(date(2026, 11, 1), 0)
    rows = [{"instance": "trading-api", "ts": start + timedelta(minutes=i), "is_up": 0 if i < 26 else 1} for i in range(12_960)]
    insert(engine, "raw_probe_minutes", rows)
    got = rollup(engine, "month", date(2026, 11, 1), as_of=ist(date(2026, 11, 10), 0))
    assert got["downtime_minutes"]["value"] == 26
    assert got["uptime_pct"]["value"] == pytest.approx(100 * 12_934 / 12_960)
    # 43.2 − 26 = 17.2 minutes left of 43.2 → 39.81 %
    assert got["error_budget_remaining_pct"]["value"] == pytest.approx(100 * 17.2 / 43.2)
    # allowed so far 12.96 min: burn 26 ÷ 12.96 = 2.006 (over budget pace)
    assert got["error_budget_burn_rate"]["value"] == pytest.approx(26 / 12.96)
    assert got["error_budget_burn_rate"]["status"] == "off_target"
    # 43.2 min at 26 per 12,960 min → 21,533.5 min = 14.954 days after 1 Nov
    assert got["error_budget_runout_days"]["value"] == pytest.approx(43.2 / (26 / 12_960) / 1440)
    assert got["uptime_pct"]["is_complete"] in (False, 0)


def test_mtbf_no_events_without_failures(engine):
    got = rollup(engine, "month", date(2026, 10, 1), as_of=ist(date(2026, 11, 2), 16))
    assert got["mtbf_days"]["value"] is None
    assert got["mtbf_days"]["status"] == "no_events"


# ------------------------------------------------------------ delivery
def test_change_failure_rate_counts_a_deployment_once(engine):
    def dep(did, finished):
        return {
            "deployment_id": did,
            "environment": "production",
            "sha": did * 8,
            "ref": "main",
            "created_at": finished - timedelta(minutes=5),
            "finished_at": finished,
            "status": "success",
            "is_rollback": False,
            "rolled_back": False,
            "first_commit_at": finished - timedelta(hours=4),
            "commit_count": 2,
            "pull_requests": "",
        }

    def inc(iid, trig):
        return {
            "incident_id": iid,
            "incident_number": int(iid[1:]),
            "title": iid,
            "service": "trading-api",
            "priority": "P1",
            "urgency": "high",
            "status": "resolved",
            "triggered_at": trig,
            "acknowledged_at": trig + timedelta(minutes=2),
            "resolved_at": trig + timedelta(minutes=20),
            "impact_start_at": trig - timedelta(minutes=1),
            "caused_by_deployment_id": "D1",
        }

    insert(engine, "raw_deployments", [dep("D1", ist(date(2026, 11, 17), 11)), dep("D2", ist(date(2026, 11, 18), 11))])
    insert(engine, "raw_incidents", [inc("I1", ist(date(2026, 11, 17), 12)), inc("I2", ist(date(2026, 11, 17), 14))])
    got = rollup(engine, "week", date(2026, 11, 16), as_of=ist(date(2026, 11, 23), 16))
    cfr = got["change_failure_rate_pct"]
    assert (cfr["value"], cfr["numerator"], cfr["denominator"]) == (50.0, 1.0, 2.0)
    assert got["deployments_per_day"]["value"] == pytest.approx(2 / 5)
    assert got["lead_time_hours"]["value"] == pytest.approx(4.0)
    assert got["mttr_minutes"]["value"] == pytest.approx(20.0)
    assert got["mtta_minutes"]["value"] == pytest.approx(2.0)
    assert got["mtbf_days"]["denominator"] == 2.0


# ------------------------------------------------------------ to date, idempotent
def test_to_date_periods_and_recompute_changes_nothing(engine):
    days = cal.trading_days(date(2026, 11, 2), date(2026, 11, 27))
    insert(engine, "raw_trades", [trade(f"T{i}", d, 500.0 - 40 * i) for i, d in enumerate(days)])
    as_of = review_window_utc(date(2026, 11, 27))[1]
    first = periods.compute_rollups(engine, periods.ROLLUP_GRAINS, date(2026, 11, 27), date(2026, 11, 27), "r1", as_of=as_of)
    by = {(r["grain"], r["kpi_id"]): r for r in first}
    assert by[("week", "trades_count")]["period_start"] == date(2026, 11, 23)
    assert by[("week", "trades_count")]["value"] == 4  # 23, 25, 26, 27 Nov
    assert by[("month", "trades_count")]["value"] == len(days)
    assert by[("quarter", "trades_count")]["period_start"] == date(2026, 10, 1)
    assert not by[("month", "trades_count")]["is_complete"]

    def snapshot():
        df = warehouse.read_frame(engine, "select * from kpi_values order by kpi_id, grain, period_start")
        return json.loads(df.to_json(orient="records"))

    before = snapshot()
    periods.compute_rollups(engine, periods.ROLLUP_GRAINS, date(2026, 11, 27), date(2026, 11, 27), "r2", as_of=as_of)
    assert snapshot() == before  # same content: rows untouched, computed_at and run_id included
    # a late trade changes the week, month and quarter — and nothing else
    insert(engine, "raw_trades", [trade("LATE", date(2026, 11, 27), 1.0)])
    periods.compute_rollups(engine, periods.ROLLUP_GRAINS, date(2026, 11, 27), date(2026, 11, 27), "r3", as_of=as_of)
    after = {(r["kpi_id"], r["grain"]): r for r in snapshot()}
    assert after[("trades_count", "week")]["value"] == 5
    assert after[("trades_count", "week")]["run_id"] == "r3"
    assert after[("uptime_pct", "week")]["run_id"] == "r1"


def test_unknown_grain_is_refused(engine):
    with pytest.raises(ValueError, match="grain: 'year'"):
        periods.compute_rollups(engine, ["year"], date(2026, 11, 2), date(2026, 11, 2), "r", as_of=LOADED)


# ------------------------------------------------------------ dialects agree on demo data
def test_sqlite_and_postgres_compute_identical_kpis(tmp_path, pg_url, monkeypatch):
    from kaizen.demo import generate
    from kaizen.pipeline import rebuild

    end = date(2026, 11, 27)
    generate(end=end, months=1, seed=5, out_dir=tmp_path / "demo", trades_per_day=60)
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(tmp_path / "demo"))
    results = {}
    for name, conn in {
        "sqlite": {"conn_type": "sqlite", "host": str(tmp_path / "w.db")},
        "postgres": {"conn_type": "postgres", **_pg_conn(pg_url)},
    }.items():
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps(conn))
        if name == "postgres":  # the session's database: start from empty tables
            warehouse.apply_ddl(warehouse.get_engine())
            with warehouse.get_engine().begin() as c:
                tables = [r[0] for r in c.exec_driver_sql("select tablename from pg_tables where schemaname = 'public'")]
                c.exec_driver_sql("truncate " + ", ".join(tables))
        rebuild(date(2026, 11, 16), end, f"run-{name}")
        df = warehouse.read_frame(
            warehouse.get_engine(),
            "select kpi_id, grain, period_start, period_end, value, numerator, denominator, sample_size, "
            "target, status, trend, is_complete from kpi_values order by kpi_id, grain, period_start",
            date_cols=("period_start", "period_end"),
        )
        df["is_complete"] = df["is_complete"].astype(bool)
        results[name] = df
    a, b = results["sqlite"], results["postgres"]
    assert len(a) == len(b) > 0
    assert set(a["grain"]) == {"day", "week", "month", "quarter"}
    for col in a.columns:
        if col in {"value", "numerator", "denominator", "target"}:
            x, y = a[col].astype(float).to_numpy(), b[col].astype(float).to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), col
            assert np.allclose(x[~np.isnan(x)], y[~np.isnan(y)], rtol=0, atol=1e-9), col
        else:
            assert a[col].tolist() == b[col].tolist(), col


def _pg_conn(url: str) -> dict:
    u = sa.engine.make_url(url)
    return {"host": u.host, "port": u.port, "login": u.username, "schema": u.database}
