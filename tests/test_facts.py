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


def test_execution_day_facts_by_hand():
    t0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    rows = [
        {"trading_day": D, "status": "filled", "submitted_at": t0, "filled_at": t0 + timedelta(microseconds=120_000)},
        {"trading_day": D, "status": "FILLED", "submitted_at": t0, "filled_at": t0 + timedelta(microseconds=120_000)},
        {"trading_day": D, "status": "filled", "submitted_at": t0, "filled_at": t0 + timedelta(microseconds=250_500)},
        {"trading_day": D, "status": "filled", "submitted_at": t0, "filled_at": None},  # no fill time: not counted
        {"trading_day": D, "status": "rejected", "submitted_at": t0, "filled_at": t0},  # not filled: not counted
        {"trading_day": date(2026, 11, 27), "status": "filled", "submitted_at": t0 + timedelta(days=1),
         "filled_at": t0 + timedelta(days=1, microseconds=7)},
    ]
    assert facts.execution_day_facts(rows) == [
        {"trading_day": D, "execution_us": 120_000, "orders": 2},
        {"trading_day": D, "execution_us": 250_500, "orders": 1},
        {"trading_day": date(2026, 11, 27), "execution_us": 7, "orders": 1},
    ]
    assert facts.execution_day_facts([]) == []


# fill − submit in whole µs of raw_orders, computed by each database from the stored
# values: the independent count the execution facts are checked against
_EXECUTION_US_SQL = {
    "postgresql": "cast(extract(epoch from filled_at - submitted_at) * 1000000 as bigint)",
    "sqlite": "(cast(strftime('%s', substr(filled_at, 1, 19)) as integer) "
              "- cast(strftime('%s', substr(submitted_at, 1, 19)) as integer)) * 1000000 "
              "+ cast(substr(filled_at, 21, 6) as integer) - cast(substr(submitted_at, 21, 6) as integer)",
}


def test_execution_facts_count_every_filled_order_and_give_exact_percentiles(engine):
    """Random fill times over four days: the stored facts equal a count by the database
    itself, and the p95 over any run of days, expanded from the facts, is numpy's p95
    of the orders' own times bit for bit."""
    import numpy as np

    rng = random.Random(7)
    days = [date(2026, 11, 23) + timedelta(days=k) for k in range(4)]  # Mon–Thu
    by_day: dict[date, list] = {d: [] for d in days}
    for d in days:
        orders = []
        for n in range(300):
            at = datetime(d.year, d.month, d.day, 4, 0, tzinfo=UTC) + timedelta(seconds=n)
            us = rng.choice([rng.randrange(1, 900_000), 120_000, 250_000])  # some times repeat
            status = rng.choice(["FILLED"] * 8 + ["REJECTED", "filled"])
            fill = None if rng.random() < 0.05 else at + timedelta(microseconds=us)
            orders.append(order(f"O{d:%d}-{n}", status=status, submitted=at.isoformat().replace("+00:00", "Z"),
                                filled=fill and fill.isoformat(timespec="microseconds").replace("+00:00", "Z")))
            if status.lower() == "filled" and fill is not None:
                by_day[d].append(us / 1e6 * 1000.0)
        trading.extract_range(d, d, engine, "r1", lambda a, b, o=orders: {"trades": [], "orders": o})
    expr = _EXECUTION_US_SQL[engine.dialect.name]
    with engine.connect() as c:
        stored = [(str(r[0])[:10], int(r[1]), int(r[2])) for r in c.execute(sa.text(
            "select trading_day, execution_us, orders from fct_execution_day order by trading_day, execution_us"))]
        counted = [(str(r[0])[:10], int(r[1]), int(r[2])) for r in c.execute(sa.text(
            f"select trading_day, {expr}, count(*) from raw_orders where lower(status) = 'filled' "
            "and filled_at is not null group by trading_day, 2 order by trading_day, 2"))]
    assert stored == counted and sum(n for *_, n in stored) == sum(map(len, by_day.values()))
    assert len(stored) < sum(map(len, by_day.values()))  # repeated times share a row
    for i in range(len(days)):
        for j in range(i, len(days)):
            mine = [r for r in stored if str(days[i]) <= r[0] <= str(days[j])]
            expanded = np.repeat(facts.execution_ms(0, np.array([r[1] for r in mine])), [r[2] for r in mine])
            own = [ms for d in days[i:j + 1] for ms in by_day[d]]
            assert float(np.percentile(expanded, 95)) == float(np.percentile(own, 95))


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


def test_the_documented_p95_query_is_the_nearest_rank(engine):
    """Question 13 of the warehouse doc: 20 fills of 1…20 ms in November; the nearest
    rank of p95 is the 19th (⌈0.95 × 20⌉), 19 ms."""
    at = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    orders = [order(f"O{k}", submitted=f"2026-11-26T04:00:{k:02d}Z",
                    filled=(at + timedelta(seconds=k, milliseconds=k)).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z")) for k in range(1, 21)]
    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": [], "orders": orders})
    with engine.connect() as c:
        (row,) = c.execute(sa.text(_doc_query(13))).all()
    assert (float(row[0]), int(row[1])) == (19.0, 20)


# ---------------------------------------------------------------- per 15-minute slot
T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 09:30 IST, a slot edge


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_slots_are_quarter_hours_and_ist_cut_offs_are_edges():
    assert facts.slot_of(T0) * 900 == int(T0.timestamp())
    assert facts.slot_of(_at(14)) == facts.slot_of(T0) and facts.slot_of(_at(15)) == facts.slot_of(T0) + 1
    assert facts.slot_start(facts.slot_of(_at(7))) == T0
    from kaizen.calendar import ist_datetime

    for hh, mm in ((0, 0), (9, 15), (15, 30), (16, 0), (10, 0), (14, 0)):
        at = ist_datetime(D, datetime.min.time().replace(hour=hh, minute=mm)).astimezone(UTC)
        assert facts.slot_start(facts.slot_of(at)) == at, (hh, mm)


def test_probe_slot_facts_by_hand():
    rows = [
        # minute 0: both instances up; minute 1: one down; minute 2: one instance only, up
        {"instance": "a", "ts": _at(0), "is_up": 1}, {"instance": "b", "ts": _at(0), "is_up": 1},
        {"instance": "a", "ts": _at(1), "is_up": 1}, {"instance": "b", "ts": _at(1), "is_up": 0},
        {"instance": "a", "ts": _at(2), "is_up": 1},
        # next slot: one minute, down on both
        {"instance": "a", "ts": _at(15), "is_up": 0}, {"instance": "b", "ts": _at(15), "is_up": 0},
    ]
    s = facts.slot_of(T0)
    assert facts.probe_slot_facts(rows) == [
        {"slot": s, "slot_start": T0, "probed_minutes": 3, "up_minutes": 2, "down_minutes": 1},
        {"slot": s + 1, "slot_start": _at(15), "probed_minutes": 1, "up_minutes": 0, "down_minutes": 1},
    ]
    assert facts.probe_slot_facts([]) == []


def test_error_slot_facts_by_hand():
    rows = [{"ts": _at(m), "error_count": c} for m, c in ((0, 0.1), (1, 0.2), (14, 3.0), (29, 1.5))]
    s = facts.slot_of(T0)
    (a, b) = facts.error_slot_facts(rows)
    assert (a["slot"], a["minutes"], b["slot"], b["minutes"], b["errors"], b["errors_rest"]) == (s, 3, s + 1, 1, 1.5, 0.0)
    # 0.1 + 0.2 + 3.0 is not a double: the rest carries what the rounded sum lost
    assert a["errors"] == math.fsum([0.1, 0.2, 3.0])
    assert math.fsum([a["errors"], a["errors_rest"], -0.1, -0.2, -3.0]) == 0.0


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # one layout, two minutes in the slot: counts summed per bound, bounds in numeric order
        ([(0, '["0.1","1","+Inf"]', "[1.0,2.5,3.0]"), (1, '["0.1","1","+Inf"]', "[0.5,0.5,1.0]")],
         [("0.1", 2, 1.5), ("1", 2, 3.0), ("+Inf", 2, 4.0)]),
        # two layouts in one slot: a bound only one minute has counts once, with minutes 1
        ([(0, '["0.5","+Inf"]', "[2,4]"), (3, '["0.05","0.5","+Inf"]', "[1,1,2]")],
         [("0.05", 1, 1.0), ("0.5", 2, 3.0), ("+Inf", 2, 6.0)]),
    ],
)
def test_latency_slot_facts_by_hand(rows, expected):
    frame = [{"ts": _at(m), "bounds": b, "counts": c} for m, b, c in rows]
    out = facts.latency_slot_facts(frame)
    assert [(r["le"], r["minutes"], r["count"]) for r in out] == expected
    assert {r["slot_minutes"] for r in out} == {len(rows)} and {r["count_rest"] for r in out} == {0.0}
    assert [r["le_seconds"] for r in out] == sorted(float(le) for le, _, _ in expected)


def test_latency_counts_that_do_not_match_their_bounds_are_refused():
    with pytest.raises(ValueError, match="not 2 numbers"):
        facts.latency_slot_facts([{"ts": T0, "bounds": '["1","+Inf"]', "counts": "[1.0]"}])
    with pytest.raises(ValueError, match="not 2 numbers"):
        facts.latency_slot_facts([{"ts": T0, "bounds": '["1","+Inf"]', "counts": "[1.0,abc]"}])


def test_counts_parse_to_the_same_doubles_as_json():
    import json

    values = [0.0, 1.0, 22.667, 0.1 + 0.2, 1e-7, 123456.789, 5e-324, 1.7976931348623157e308, 2.5e-05]
    text = json.dumps(values)
    assert facts._count_matrix([text], len(values), "t").tolist() == [json.loads(text)]


def test_a_slice_off_the_slot_edges_rebuilds_its_edge_slots_from_the_table(engine):
    """A ts slice ending mid-slot shares that slot with rows outside it: the fact of the
    shared slot counts both."""
    from kaizen import warehouse
    from kaizen.sources.base import TS_SLICE, TableLoad, load

    def probes(a, b, up=1):
        return [{"instance": "a", "ts": _at(m), "is_up": up} for m in range(a, b)]

    load(engine, D, "r1", [TableLoad("probes", "raw_probe_minutes", TS_SLICE,
                                     {"start": _at(0), "end": _at(7)}, 7, probes(0, 7))])
    load(engine, D, "r2", [TableLoad("probes", "raw_probe_minutes", TS_SLICE,
                                     {"start": _at(7), "end": _at(20)}, 13, probes(7, 20, up=0))])
    with engine.connect() as c:
        got = warehouse.fetch_rows(c, "select slot, probed_minutes, up_minutes, down_minutes from fct_probe_slot "
                                      "order by slot")
    s = facts.slot_of(T0)
    assert [tuple(r) for r in got] == [(s, 15, 7, 8), (s + 1, 5, 0, 5)]


def test_the_documented_slot_query_runs_and_agrees_by_hand(engine):
    from kaizen.sources.base import TS_SLICE, TableLoad, load

    if engine.dialect.name != "postgresql":
        pytest.skip("question 8 is PostgreSQL SQL (at time zone)")
    rows = [{"instance": "a", "ts": _at(m), "is_up": int(m % 10 != 0)} for m in range(0, 60)]
    load(engine, D, "r1", [TableLoad("probes", "raw_probe_minutes", TS_SLICE,
                                     {"start": _at(0), "end": _at(60)}, 60, rows)])
    with engine.connect() as c:
        (day,) = c.execute(sa.text(_doc_query(8))).all()
    assert str(day[0]) == "2026-11-26" and tuple(map(float, day[1:])) == pytest.approx((60, 6, 90.0))


def test_an_older_warehouse_loses_its_caches_and_gains_its_facts(engine):
    """A warehouse from before the facts layer: its trade_sessions / series_months caches
    and the triggers that kept them go (a trigger left behind would fail every load),
    and the new fact tables are computed from the landing tables once."""
    from kaizen import warehouse

    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": [trade("T1"), trade("T2")], "orders": []})
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as c:
        c.exec_driver_sql("drop table kaizen_schema")  # an older release recorded no schema version
        c.exec_driver_sql("drop table fct_trading_day")
        c.exec_driver_sql("create table trade_sessions (trading_day date primary key, trades integer)")
        c.exec_driver_sql("create table series_months (kind text, month date)")
        if postgres:
            c.exec_driver_sql("create or replace function kaizen_trade_sessions_sync() returns trigger language plpgsql "
                              "as $$ begin insert into trade_sessions values (current_date, 1); return null; end $$")
            c.exec_driver_sql("create trigger trade_sessions_after_insert after insert on raw_trades "
                              "for each statement execute function kaizen_trade_sessions_sync()")
        else:
            c.exec_driver_sql("create trigger trade_sessions_after_insert after insert on raw_trades "
                              "begin insert into trade_sessions values (new.trading_day, 1); end")
    warehouse.apply_ddl(engine)
    with engine.connect() as c:
        tables = set(sa.inspect(c).get_table_names())
        assert not tables & {"trade_sessions", "series_months"}
        (n,) = c.execute(sa.text("select trades from fct_trading_day")).one()
        assert n == 2
    # loads work again (the old trigger would write to a table that is gone)
    trading.extract_range(D, D, engine, "r2", lambda a, b: {"trades": [trade("T1")], "orders": []})
    with engine.connect() as c:
        assert c.execute(sa.text("select trades from fct_trading_day")).scalar_one() == 1


def test_a_warehouse_from_before_the_execution_facts_gains_them_and_keeps_its_p95(engine):
    """A warehouse whose release had no fct_execution_day: the upgrade computes it from
    raw_orders once, and the day's p95 execution time is what it was."""
    from kaizen import warehouse
    from kaizen.kpis import catalog, periods

    orders = [order(f"O{k}", filled=f"2026-11-26T04:00:00.{k * 10:03d}Z") for k in range(1, 21)]
    orders.append(order("O21", filled="2026-11-26T04:00:00.050Z"))  # a repeated time
    trading.extract_range(D, D, engine, "r1", lambda a, b: {"trades": [trade("T1")], "orders": orders})

    def p95() -> float:
        with warehouse.writing(engine) as c:
            rows = periods.write_scope(c, periods.day_scope(D), "r", cat=catalog.load_catalog(), is_complete=True,
                                       stamp=datetime.now(UTC))
        (row,) = [r for r in rows if r["kpi_id"] == "p95_execution_ms"]
        return row["value"], row["sample_size"]

    # numpy's p95 of 10, 20, …, 200 ms and 50 ms: rank 0.95 × 20 = 19 → 190 ms
    assert p95() == (190.0, 21)
    with engine.begin() as c:
        c.exec_driver_sql("drop table kaizen_schema")  # an older release recorded no schema version
        c.exec_driver_sql("drop table fct_execution_day")
    warehouse.apply_ddl(engine)
    with engine.connect() as c:
        got = c.execute(sa.text("select execution_us, orders from fct_execution_day order by execution_us")).all()
    assert [tuple(r) for r in got] == [(k * 10_000, 2 if k == 5 else 1) for k in range(1, 21)]
    assert p95() == (190.0, 21)
