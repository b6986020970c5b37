"""Fact tables (kaizen.warehouse.facts): built by hand from a few rows, exact float
sums that compose over any grouping, written with their landing slice in the same
transaction, and rebuilt from the landing tables after a hand edit."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from kaizen.sources import trading
from kaizen.warehouse import facts
from source_wire import order, trade

D = date(2026, 11, 26)  # Thu


@pytest.mark.parametrize("seed", range(5))
def test_exact_sums_compose_like_one_sum_over_every_value(seed):
    rng = random.Random(seed)
    values = [round(rng.uniform(-50_000, 50_000), 2) for _ in range(3000)]
    cuts = sorted(rng.sample(range(1, len(values)), 40))
    groups = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    pairs = [facts.exact_sum(g) for g in groups]
    assert facts.compose(pairs) == math.fsum(values)
    for g, (total, rest) in zip(groups, pairs, strict=True):
        assert math.fsum([total, rest, *(-v for v in g)]) == 0.0  # the pair is the exact sum
    # the plain sum of the rounded parts is what an analyst's sum() gives: close, not always equal
    assert abs(sum(p[0] for p in pairs) - math.fsum(values)) < 1e-6


def test_trading_day_facts_by_hand():
    rows = [{"trading_day": D, "net_pnl_inr": v} for v in (5000.0, -2000.0, 0.0, 3000.0, -1000.0, 7000.0)]
    rows.append({"trading_day": date(2026, 11, 27), "net_pnl_inr": -0.1})
    (d1, d2) = facts.trading_day_facts(rows)
    assert d1 == {"trading_day": D, "trades": 6, "wins": 3, "losses": 2,
                  "net_pnl_inr": 12000.0, "net_pnl_rest_inr": 0.0,
                  "gross_profit_inr": 15000.0, "gross_profit_rest_inr": 0.0,
                  "gross_loss_inr": 3000.0, "gross_loss_rest_inr": 0.0,
                  "largest_win_inr": 7000.0, "largest_loss_inr": -2000.0}
    assert (d2["trades"], d2["wins"], d2["losses"], d2["largest_win_inr"], d2["largest_loss_inr"]) == (
        1, 0, 1, None, -0.1)
    assert (d2["gross_profit_inr"], d2["gross_loss_inr"]) == (0.0, 0.1)


def test_orders_day_facts_by_hand():
    t0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    rows = [
        {"trading_day": D, "status": "filled", "submitted_at": t0, "filled_at": t0 + timedelta(milliseconds=120)},
        {"trading_day": D, "status": "FILLED", "submitted_at": t0, "filled_at": t0 + timedelta(microseconds=250_500)},
        {"trading_day": D, "status": "filled", "submitted_at": t0, "filled_at": None},  # no fill time
        {"trading_day": D, "status": "rejected", "submitted_at": t0, "filled_at": None},
    ]
    (f,) = facts.orders_day_facts(rows)
    assert f == {"trading_day": D, "submitted": 4, "filled": 3, "executions": 2,
                 "execution_ms": 370.5, "execution_rest_ms": 0.0}


def _by_sql(conn) -> list[tuple]:
    """The trading facts by an independent SQL aggregate of raw_trades."""
    return [tuple(r) for r in conn.execute(sa.text(
        "select trading_day, count(*), sum(case when net_pnl_inr > 0 then 1 else 0 end), "
        "sum(case when net_pnl_inr < 0 then 1 else 0 end), sum(net_pnl_inr), "
        "max(case when net_pnl_inr > 0 then net_pnl_inr end), min(case when net_pnl_inr < 0 then net_pnl_inr end) "
        "from raw_trades group by trading_day order by trading_day"))]


def _stored(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(
        "select trading_day, trades, wins, losses, net_pnl_inr, largest_win_inr, largest_loss_inr "
        "from fct_trading_day order by trading_day"))]


def _close(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        str(x[0])[:10] == str(y[0])[:10] and x[1:4] == y[1:4] and math.isclose(x[4], y[4], abs_tol=1e-6)
        and x[5:] == y[5:] for x, y in zip(a, b, strict=True))


def test_facts_land_with_their_slice_and_follow_a_reload(engine):
    pnl = [("T1", 110.0, 100.0), ("T2", 90.0, 100.0), ("T3", 100.0, 100.0)]  # exit, entry
    trades = [trade(t, xp=xp, ep=ep, fees=0.0) for t, xp, ep in pnl]
    orders = [order("O1"), order("O2", status="REJECTED", filled=None)]
    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": trades, "orders": orders})
    with engine.connect() as c:
        assert _close(_stored(c), _by_sql(c))
        stored = _stored(c)
        assert [r[1:4] for r in stored] == [(3, 1, 1)]
        orders_fact = c.execute(sa.text("select submitted, filled, executions, execution_ms from fct_orders_day")).one()
    assert tuple(orders_fact) == (2, 1, 1, 250.0)  # source_wire's fill is 250 ms after submission
    # the day extracted again with one trade fewer: its facts are replaced, not added to
    trading.extract_range(D, D, engine, "r2", lambda a, b: {"trades": trades[:1], "orders": orders[:1]})
    with engine.connect() as c:
        assert [r[1:4] for r in _stored(c)] == [(1, 1, 0)]
        assert _close(_stored(c), _by_sql(c))


def test_a_load_that_fails_writes_no_facts(engine, monkeypatch):
    trades = [trade("T1")]

    def broken(table, rows, extra=None):
        raise RuntimeError("disk full")

    from kaizen import warehouse

    real = warehouse.insert_rows
    monkeypatch.setattr(warehouse, "insert_rows", lambda conn, table, rows, extra=None: (
        broken(table, rows) if table == "raw_orders" else real(conn, table, rows, extra)))
    with pytest.raises(RuntimeError, match="disk full"):
        trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": trades, "orders": [order("O1")]})
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from fct_trading_day")).scalar_one() == 0
        assert c.execute(sa.text("select count(*) from raw_trades")).scalar_one() == 0


def test_a_hand_edit_is_taken_into_the_facts_by_the_cli(engine, monkeypatch, tmp_path):
    from kaizen import cli, warehouse

    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": [trade("T1")], "orders": []})
    with engine.begin() as c:
        c.execute(sa.text("update raw_trades set net_pnl_inr = -5 where trade_id = 'T1'"))
    monkeypatch.setattr(warehouse, "get_engine", lambda url=None: engine)
    assert cli.main(["facts", "--from", str(D), "--to", str(D)]) == 0
    with engine.connect() as c:
        assert _stored(c) and _close(_stored(c), _by_sql(c))
        assert _stored(c)[0][1:4] == (1, 0, 1)


def _doc_query(n: int) -> str:
    from kaizen import config

    doc = (config.REPO_ROOT / "docs" / "warehouse.md").read_text()
    at = doc.index(f"\n{n}. ")
    start = doc.index("```sql\n", at) + len("```sql\n")
    return doc[start:doc.index("```", start)]


def test_the_documented_fact_queries_run_and_agree_by_hand(engine):
    trades = [trade("T1", xp=110.0, ep=100.0, fees=0.0), trade("T2", xp=90.0, ep=100.0, fees=0.0),
              trade("T3", xp=130.0, ep=100.0, fees=0.0)]  # +100, −100, +300 (qty 10)
    orders = [order("O1"), order("O2", status="REJECTED", filled=None)]
    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": trades, "orders": orders})
    with engine.connect() as c:
        (month,) = c.execute(sa.text(_doc_query(11))).all()
        assert month[0] == "2026-11" and tuple(map(float, month[1:])) == pytest.approx((3, 300.0, 200 / 3, 4.0, 300.0, -100.0))
        if engine.dialect.name == "postgresql":
            (week,) = c.execute(sa.text(_doc_query(12))).all()
            assert str(week[0]) == "2026-11-23" and tuple(map(float, week[1:])) == pytest.approx((2, 50.0, 250.0))
