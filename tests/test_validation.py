"""Issue 14, point 5 — validation: every bad source record ends in ``quarantine`` with
its reason, the valid records of the same extract load, and extracted = loaded +
quarantined, counted against what the source offered. One row per case and source,
through the code paths the DAG uses: trading from a trading DB (SQLite as the demo and
the existing tests build it; PostgreSQL timestamptz for the NULL day fields), GitHub
deployments and PagerDuty incidents as their APIs return them (the local fakes) — into
SQLite and PostgreSQL warehouses. Then the daily review built on such records prints
no absurd value (issue 14: "Order Execution (avg): 7,02,20,868 ms" from a fill in 2031,
an incident resolved in 2031 shown as open).

The extraction runs as of 2026-11-26 10:40 UTC (KAIZEN_DEMO_NOW: 16:10 IST, ten minutes
after D's 16:00 IST cut-off) unless a row says otherwise; the tolerance is 5 minutes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from fakes._json_api import q1
from fakes.github import FakeGitHub
from fakes.pagerduty import FakePagerDuty
from kaizen.sources import base, github, pagerduty, trading
from source_wire import (
    DAY,
    REPO,
    alert,
    commit,
    compare,
    create_pg_trading_tables,
    deployment,
    field_value,
    incident,
    log_entry,
    order,
    rows,
    status,
    trade,
    write_demo_dir,
    write_github_demo,
    write_pagerduty_demo,
    write_trading_db,
)

AS_OF = "2026-11-26T10:40:00Z"  # D's cut-off is 10:30Z (16:00 IST)
EARLY = "2026-11-26T08:00:00Z"  # a run before the cut-off (13:30 IST): its window reaches past it
TOKEN = "tok_validation"
LATER = "(the extraction's clock, 5 min tolerance)"
NO_DAY = ": on no trading day (each day's extract quarantines it)"


@dataclass(frozen=True)
class Case:
    id: str
    source: str                      # the quarantine source of the bad record
    key: str                         # its record_key
    reason: str                      # the exact reason
    mutate: Callable                 # adds the bad record to the source's valid feed
    now: str = AS_OF                 # the extraction's clock
    loaded: dict = field(default_factory=dict)  # table -> keys loaded besides the valid feed's


def quarantined(engine) -> list[tuple[str, str, str]]:
    return sorted((r["source"], r["record_key"], r["reason"])
                  for r in rows(engine, "select source, record_key, reason from quarantine"))


def keys(engine, table: str, key: str) -> list[str]:
    return sorted(str(r["k"]) for r in rows(engine, f"select {key} as k from {table}"))


def count(engine, table: str, where: str = "1 = 1", **params) -> int:
    return rows(engine, f"select count(*) as n from {table} where {where}", **params)[0]["n"]


def check(engine, case: Case, results, offered: dict[str, int], tables: dict[str, tuple[str, str, set]]):
    """The bad record is quarantined with its reason (and nothing else is), the valid
    records are loaded, and for each source extracted = loaded + quarantined = what the
    source offered, the counts being rows in raw_* and in quarantine."""
    assert quarantined(engine) == [(case.source, case.key, case.reason)]
    for source, (table, key, valid) in tables.items():
        assert keys(engine, table, key) == sorted(valid | case.loaded.get(table, set())), source
    got = {r.source: r for r in results}
    assert set(got) == set(offered)
    for source, n in offered.items():
        r = got[source]
        table = tables[source][0]
        assert r.extracted == r.loaded + r.quarantined == n, (source, r, n)
        assert (r.loaded, r.quarantined) == (count(engine, table),
                                             count(engine, "quarantine", "source = :s", s=source)), source


# ------------------------------------------------------------------ trading


def trading_feed():
    """Valid trades T1, T2 and orders O1, O2 of D (26 Nov)."""
    return ([trade("T1"), trade("T2", side="SELL", qty=5, ep=200.0, xp=190.0, fees=10.0)],
            [order("O1"), order("O2", status="REJECTED", submitted="2026-11-25T19:00:00Z", filled=None)])


def add_trade(tid="TX", **kw):
    return lambda t, o: t.append(trade(tid, **kw))


def add_order(oid="OX", **kw):
    return lambda t, o: o.append(order(oid, **kw))


TRADING_CASES = [
    # unparseable and missing times, in each timestamp field
    Case("trade entry_time unparseable", "trades", "TX", "unparseable entry_time 'garbage'",
         add_trade(entry="garbage")),
    Case("trade entry_time NULL", "trades", "TX", "missing entry_time", add_trade(entry=None)),
    Case("trade exit_time unparseable, dated text", "trades", "TX",
         "unparseable exit_time '2026-11-26T25:00:00Z'", add_trade(exit="2026-11-26T25:00:00Z")),
    Case("trade exit_time unparseable, no date", "trades", "TX",
         "unparseable exit_time 'closed at noon'" + NO_DAY, add_trade(exit="closed at noon")),
    Case("trade exit_time NULL", "trades", "TX", "missing exit_time" + NO_DAY, add_trade(exit=None)),
    Case("order submitted_at unparseable, dated text", "orders", "OX",
         "unparseable submitted_at '2026-11-26T09:99:00Z'", add_order(submitted="2026-11-26T09:99:00Z")),
    Case("order submitted_at unparseable, no date", "orders", "OX",
         "unparseable submitted_at 'yesterday'" + NO_DAY, add_order(submitted="yesterday")),
    Case("order submitted_at NULL", "orders", "OX", "missing submitted_at" + NO_DAY, add_order(submitted=None)),
    Case("order filled_at unparseable", "orders", "OX",
         "unparseable timestamp (Invalid isoformat string: 'garbage')", add_order(filled="garbage")),
    # after the as-of, and fills in the future
    Case("trade closed after the as-of", "trades", "TX",
         f"exit_time 2026-11-26T10:50:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a trade closed in the "
         "future", add_trade(exit="2026-11-26T10:50:00Z")),
    Case("order submitted after the as-of", "orders", "OX",
         f"submitted_at 2026-11-26T12:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: an order submitted "
         "in the future", add_order(submitted="2026-11-26T12:00:00Z", filled="2026-11-26T12:00:00.200Z")),
    Case("order filled after the as-of", "orders", "OX",
         f"filled_at 2026-11-26T10:50:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a fill in the future",
         add_order(submitted="2026-11-26T09:59:00Z", filled="2026-11-26T10:50:00Z")),
    Case("order filled in 2031", "orders", "OX",
         "filled_at 2031-01-01T04:00:00Z is after the end of the extracted days (2026-11-26T18:30:00Z): a fill "
         "in the future", add_order(filled="2031-01-01T04:00:00Z")),
    # a fill before the order, an exit before the entry
    Case("order filled before it was submitted", "orders", "OX",
         "filled_at before submitted_at (negative execution latency -1000 ms)",
         add_order(submitted="2026-11-26T04:00:01Z", filled="2026-11-26T04:00:00Z")),
    Case("trade exit before entry", "trades", "TX",
         "exit_time 2026-11-26T05:00:00+00:00 before entry_time 2026-11-26T06:00:00+00:00",
         add_trade(entry="2026-11-26T06:00:00Z", net=80.0)),
    # the other checks of the trading source
    Case("trade outside the session", "trades", "TX",
         "entry_time 2026-11-26 08:30:00 IST outside the NSE session (09:15–15:30 IST that day)",
         add_trade(entry="2026-11-26T03:00:00Z")),
    Case("trade missing symbol", "trades", "TX", "missing symbol", add_trade(symbol="")),
    Case("trade unknown side", "trades", "TX", "unknown side 'LONG' (expected BUY or SELL)",
         add_trade(side="LONG", net=80.0)),
    Case("trade fractional quantity", "trades", "TX", "quantity 2.5 is not an integer", add_trade(qty=2.5, net=5.0)),
    Case("trade non-positive quantity", "trades", "TX", "non-positive quantity 0", add_trade(qty=0, net=-20.0)),
    Case("trade NULL net P&L", "trades", "TX", "net_pnl is NULL", add_trade(net=None)),
    Case("trade fees not a number", "trades", "TX", "fees 'abc' is not a number", add_trade(fees="abc", net=80.0)),
    Case("trade P&L mismatch", "trades", "TX",
         "net P&L mismatch: reported 500.00, (exit − entry) × qty × direction − fees = 80.00 (off by more than ₹1)",
         add_trade(net=500.0)),
    Case("trade duplicate id", "trades", "T1", "duplicate trade_id T1: the first valid copy was loaded, this copy "
         "quarantined", add_trade(tid="T1", fees=20.5, net=79.5)),
    Case("order missing symbol", "orders", "OX", "missing symbol", add_order(symbol="")),
    Case("order unknown side", "orders", "OX", "unknown side 'HOLD' (expected BUY or SELL)", add_order(side="HOLD")),
    Case("order fractional quantity", "orders", "OX", "quantity 2.5 is not an integer", add_order(qty=2.5)),
    Case("order unknown status", "orders", "OX",
         "unknown status 'PARTIAL' (expected FILLED, REJECTED, ERRORED, CANCELLED, OPEN)",
         add_order(status="PARTIAL", filled=None)),
    Case("order FILLED without filled_at", "orders", "OX", "status FILLED but filled_at is NULL",
         add_order(filled=None)),
    Case("order filled_at but not FILLED", "orders", "OX", "filled_at set but status is REJECTED",
         add_order(status="REJECTED")),
    Case("order duplicate id", "orders", "O1", "duplicate order_id O1: the first valid copy was loaded, this copy "
         "quarantined", add_order(oid="O1", filled="2026-11-26T04:00:00.300Z")),
]


@pytest.mark.parametrize("case", TRADING_CASES, ids=lambda c: c.id)
def test_trading(engine, tmp_path, monkeypatch, case):
    monkeypatch.setenv("KAIZEN_DEMO_NOW", case.now)
    trades, orders = trading_feed()
    case.mutate(trades, orders)
    db = write_trading_db(tmp_path / "demo" / "trading.db", trades, orders)
    results = trading.extract(DAY, engine, "run-v", trading.demo_transport(db.parent))
    check(engine, case, results, {"trades": len(trades), "orders": len(orders)},
          {"trades": ("raw_trades", "trade_id", {"T1", "T2"}), "orders": ("raw_orders", "order_id", {"O1", "O2"})})
    (q,) = rows(engine, "select payload, extract_day from quarantine")
    assert str(q["extract_day"])[:10] == str(DAY)
    bad = json.loads(q["payload"])  # the record as the trading DB returned it
    assert bad in [json.loads(base.payload_json(r)) for r in trades + orders]


def test_trading_live_postgres_null_day_fields_and_future_fills(engine, request, monkeypatch):
    """The live trading DB (timestamptz columns): a trade with a NULL exit_time and an
    order with a NULL submitted_at are quarantined (fetched apart from the day bounds),
    a fill after the as-of and one in 2031 too; the valid records load."""
    monkeypatch.setenv("KAIZEN_DEMO_NOW", AS_OF)
    pg_url = request.getfixturevalue("pg_url")
    trades, orders = trading_feed()
    trades.append(trade("TX", exit=None))
    orders += [order("OX", submitted=None), order("OY", submitted="2026-11-26T09:59:00Z", filled="2026-11-26T10:50:00Z"),
               order("OZ", filled="2031-01-01T04:00:00Z")]
    src = sa.create_engine(pg_url)
    with src.begin() as c:
        create_pg_trading_tables(c)
        c.execute(sa.text("insert into trades values (:trade_id, :symbol, :side, :quantity, :entry_time,"
                          " :exit_time, :entry_price, :exit_price, :fees, :net_pnl, :strategy, :ab_arm)"), trades)
        c.execute(sa.text("insert into orders values (:order_id, :trade_id, :symbol, :side, :quantity, :status,"
                          " :submitted_at, :filled_at, :fill_price)"), orders)
    try:
        results = {r.source: r for r in trading.extract(DAY, engine, "run-pg", trading.sql_transport(src))}
    finally:
        with src.begin() as c:
            c.exec_driver_sql("drop table trades; drop table orders")
        src.dispose()
    assert quarantined(engine) == [
        ("orders", "OX", "missing submitted_at" + NO_DAY),
        ("orders", "OY", f"filled_at 2026-11-26T10:50:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: "
                         "a fill in the future"),
        ("orders", "OZ", "filled_at 2031-01-01T04:00:00Z is after the end of the extracted days "
                         "(2026-11-26T18:30:00Z): a fill in the future"),
        ("trades", "TX", "missing exit_time" + NO_DAY),
    ]
    assert keys(engine, "raw_trades", "trade_id") == ["T1", "T2"] and keys(engine, "raw_orders", "order_id") == ["O1", "O2"]
    assert [(r.extracted, r.loaded, r.quarantined) for r in (results["trades"], results["orders"])] == [(3, 2, 1),
                                                                                                       (5, 2, 3)]


def test_a_record_on_no_day_is_quarantined_by_every_day_of_a_range(engine, tmp_path, monkeypatch):
    """A trade without exit_time belongs to no trading day: each day's extract meets it,
    and a range extract leaves what its days one at a time leave."""
    monkeypatch.setenv("KAIZEN_DEMO_NOW", AS_OF)
    trades, orders = trading_feed()
    trades.append(trade("TX", exit="soon"))
    db = write_trading_db(tmp_path / "demo" / "trading.db", trades, orders)
    days = [date(2026, 11, 25), DAY]  # 24 Nov is a holiday
    for d in days:
        trading.extract(d, engine, "day", trading.demo_transport(db.parent))
    per_day = rows(engine, "select record_key, extract_day, reason from quarantine order by extract_day")
    with engine.begin() as c:
        for t in ("raw_trades", "raw_orders", "quarantine"):
            c.execute(sa.text(f"delete from {t}"))
    res = {r.source: r for r in trading.extract_range(days[0], days[-1], engine, "range", trading.demo_transport(db.parent))}
    ranged = rows(engine, "select record_key, extract_day, reason from quarantine order by extract_day")
    assert [(r["record_key"], str(r["extract_day"])[:10]) for r in ranged] == [("TX", "2026-11-25"), ("TX", "2026-11-26")]
    assert ranged == per_day
    assert {r["reason"] for r in ranged} == {"unparseable exit_time 'soon'" + NO_DAY}
    assert (res["trades"].extracted, res["trades"].loaded, res["trades"].quarantined) == (4, 2, 2)


def test_tolerance_of_the_as_of(monkeypatch):
    """A fill up to 5 minutes after the extraction's clock is clock skew and loads; later
    it is in the future. The as-of is explicit: the clock, or the caller's."""
    monkeypatch.setenv("KAIZEN_DEMO_NOW", AS_OF)
    edge = order("OE", submitted="2026-11-26T09:59:00Z", filled="2026-11-26T10:45:00Z")
    over = order("OO", submitted="2026-11-26T09:59:00Z", filled="2026-11-26T10:45:00.001Z")
    n, frame, rejects = trading.parse_orders(DAY, DAY, [edge, over])
    assert (n, frame["order_id"].tolist(), [r.record_key for r in rejects]) == (2, ["OE"], ["OO"])
    assert base.extraction_clock() == datetime.fromisoformat("2026-11-26T10:40:00+00:00")
    n, frame, rejects = trading.parse_orders(DAY, DAY, [edge, over], as_of=datetime.fromisoformat(
        "2026-11-26T18:00:00+00:00"))
    assert (n, len(frame), rejects) == (2, 2, [])


# ------------------------------------------------------------------ GitHub deployments


def github_feed():
    """Deployments 201 (25 Nov) and 202 (26 Nov) of D's window, each with a success status;
    202 carries one commit."""
    deps = [deployment(202, "s202", "2026-11-26T05:00:00Z"), deployment(201, "s201", "2026-11-25T12:00:00Z")]
    statuses = {"201": [status(2010, 201, "success", "2026-11-25T12:05:00Z")],
                "202": [status(2020, 202, "success", "2026-11-26T05:04:00Z")]}
    compares = {"s201...s202": compare([commit("c1", "2026-11-26T01:00:00Z", "Tighten the throttle (#7)")])}
    return deps, statuses, compares


def add_deployment(created="2026-11-26T06:00:00Z", sha="s299", status_at="2026-11-26T06:03:00Z", state="success",
                   commit_date="2026-11-26T05:30:00Z", did=299, **kw):
    def mutate(deps, statuses, compares):
        d = deployment(did, sha, created)
        d.update(kw)
        deps.insert(0, d)  # the newest (the API lists newest first)
        statuses[str(did)] = [status(2990, did, state, status_at)]
        compares[f"s202...{sha}"] = compare([commit("c9", commit_date, "Deploy it")])
    return mutate


def twice(deps, statuses, compares):
    deps.insert(0, copy.deepcopy(deps[0]))


GITHUB_CASES = [
    Case("created_at unparseable", "deployments", "299", "unparseable created_at 'garbage'",
         add_deployment(created="garbage")),
    Case("created_at NULL", "deployments", "299", "missing created_at", add_deployment(created=None)),
    Case("status created_at unparseable", "deployments", "299",
         "status 2990 has no valid created_at (unparseable created_at 'soon')", add_deployment(status_at="soon")),
    Case("status created_at NULL", "deployments", "299", "status 2990 has no valid created_at",
         add_deployment(status_at=None)),
    Case("commit date unparseable", "deployments", "299", "commit c9: unparseable commit.author.date 'last week'",
         add_deployment(commit_date="last week")),
    Case("created after the as-of", "deployments", "299",
         f"created_at 2026-11-26T09:00:00Z is after the as-of 2026-11-26T08:00:00Z {LATER}: a deployment created "
         "in the future", add_deployment(created="2026-11-26T09:00:00Z", status_at="2026-11-26T09:03:00Z"),
         now=EARLY),
    Case("finished after the as-of", "deployments", "299",
         f"finished_at 2026-11-26T11:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a final status "
         "(success) in the future", add_deployment(status_at="2026-11-26T11:00:00Z")),
    Case("first commit in 2031", "deployments", "299",
         f"first commit date 2031-01-01T00:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a commit in "
         "the future", add_deployment(commit_date="2031-01-01T00:00:00Z")),
    Case("status before the deployment", "deployments", "299",
         "status 2990 (success) dated 2026-11-26T05:30:00+00:00 before the deployment was created "
         "2026-11-26T06:00:00+00:00", add_deployment(status_at="2026-11-26T05:30:00Z")),
    Case("missing sha", "deployments", "299", "missing sha", add_deployment(sha="")),
    Case("unknown status state", "deployments", "299", "unknown status state 'exploded' (status 2990)",
         add_deployment(state="exploded")),
    Case("missing id", "deployments", "None", "missing deployment id", add_deployment(id=None)),
    Case("duplicate id", "deployments", "202", "duplicate deployment id 202", twice),
]


@pytest.mark.parametrize("case", GITHUB_CASES, ids=lambda c: c.id)
def test_github(engine, waits, monkeypatch, case):
    monkeypatch.setenv("KAIZEN_DEMO_NOW", case.now)
    deps, statuses, compares = github_feed()
    case.mutate(deps, statuses, compares)
    with FakeGitHub(REPO, deps, statuses, compares, token=TOKEN) as f:
        results = github.extract(DAY, engine, "run-v", github.http_transport(f.url, TOKEN, REPO, per_page=2))
    check(engine, case, results, {"deployments": len(deps)},
          {"deployments": ("raw_deployments", "deployment_id", {"201", "202"})})
    d = {r["deployment_id"]: r for r in rows(engine, "select * from raw_deployments")}["202"]
    assert d["status"] == "success" and str(d["finished_at"])[:19] == "2026-11-26 05:04:00"
    if case.mutate is not twice:  # (two copies of 202 leave it no previous deployment to compare with)
        assert (d["commit_count"], str(d["first_commit_at"])[:19]) == (1, "2026-11-26 01:00:00")


# ------------------------------------------------------------------ PagerDuty incidents


class ListingPagerDuty(FakePagerDuty):
    """The fake PagerDuty, except that an incident whose created_at it cannot read is in
    every listing (nothing to filter it by), as a feed holding such a record would be."""

    def route(self, method, path, query, headers):
        if path.strip("/") != "incidents" or headers.get("authorization") != f"Token token={self.token}":
            return super().route(method, path, query, headers)
        since, until = q1(query, "since"), q1(query, "until")
        items = []
        for i in self.incidents:
            try:
                at = base.parse_ts(i.get("created_at"))
            except ValueError:
                at = None
            if at is None or base.parse_ts(since) <= at < base.parse_ts(until):
                items.append(i)
        return self._page("incidents", query, items)


def pagerduty_feed():
    """PI01 (25 Nov, resolved by its log entry LE2) and PI02 (26 Nov, acknowledged), one
    alert each; PX (26 Nov 06:00Z, resolved 06:30Z) added by the rows that need it."""
    incs = [incident("PI01", 101, "2026-11-25T12:00:00Z", last_change="2026-11-25T12:40:00Z"),
            incident("PI02", 102, "2026-11-26T04:00:00Z", status="acknowledged", acks=["2026-11-26T04:02:00Z"])]
    alerts = {"PI01": [alert("PA1", "PI01", "2026-11-25T12:00:00Z")], "PI02": [alert("PA2", "PI02", "2026-11-26T04:00:00Z")]}
    logs = {"PI01": [log_entry("LE2", "PI01", "resolve_log_entry", "2026-11-25T12:40:00Z"),
                     log_entry("LE1", "PI01", "trigger_log_entry", "2026-11-25T12:00:00Z")]}
    return incs, alerts, {}, logs


def add_incident(created="2026-11-26T06:00:00Z", impact=None, alerts=(), logs=(), **kw):
    def mutate(incs, all_alerts, fields, all_logs):
        inc = incident("PX", 999, created, **{"resolved_at": "2026-11-26T06:30:00Z", **kw})
        incs.append(inc)
        if impact is not None:
            fields["PX"] = [field_value("impact_start", impact, "datetime")]
        if alerts:
            all_alerts["PX"] = [alert(aid, "PX", at) for aid, at in alerts]
        if logs:
            all_logs["PX"] = [log_entry(lid, "PX", kind, at) for lid, kind, at in logs]
    return mutate


def with_incident(**changes):
    """Add PX and change its fields (a value None deletes the field)."""
    def mutate(incs, alerts, fields, logs):
        add_incident()(incs, alerts, fields, logs)
        for k, v in changes.items():
            if v is None:
                incs[-1].pop(k, None)
            else:
                incs[-1][k] = v
    return mutate


def twice_pd(incs, alerts, fields, logs):
    incs.append(copy.deepcopy(incs[1]))


PX_LOADED = {"raw_incidents": {"PX"}}
PAGERDUTY_CASES = [
    # unparseable and missing times
    Case("created_at unparseable", "incidents", "PX", "unparseable created_at 'garbage'",
         add_incident(created="garbage")),
    Case("created_at NULL", "incidents", "PX", "missing created_at", add_incident(created=None)),
    Case("acknowledgement time unparseable", "incidents", "PX", "unparseable acknowledgements[].at 'soon'",
         add_incident(status="acknowledged", acks=["soon"], resolved_at=None)),
    Case("resolved_at unparseable", "incidents", "PX", "unparseable resolved_at 'later'",
         add_incident(resolved_at="later")),
    Case("last_status_change_at unparseable (the resolution)", "incidents", "PX",
         "unparseable last_status_change_at 'garbage'",
         with_incident(resolved_at=None, last_status_change_at="garbage")),
    Case("impact_start unparseable", "incidents", "PX", "unparseable custom field impact_start 'yesterday-ish'",
         add_incident(impact="yesterday-ish")),
    Case("alert created_at unparseable", "alerts", "AX", "unparseable created_at 'garbage'",
         add_incident(alerts=[("AX", "garbage")]), loaded=PX_LOADED),
    Case("alert created_at NULL", "alerts", "AX", "missing created_at", add_incident(alerts=[("AX", None)]),
         loaded=PX_LOADED),
    Case("log entry created_at unparseable", "log_entries", "LX", "unparseable created_at 'garbage'",
         add_incident(logs=[("LX", "annotate_log_entry", "garbage")]), loaded=PX_LOADED),
    # after the as-of: resolutions (and the rest) in the future
    Case("resolved in 2031", "incidents", "PX",
         f"resolved_at 2031-01-01T00:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a resolution in the "
         "future", add_incident(resolved_at="2031-01-01T00:00:00Z")),
    Case("resolved after the as-of", "incidents", "PX",
         f"resolved_at 2026-11-26T10:46:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a resolution in the "
         "future", add_incident(resolved_at="2026-11-26T10:46:00Z")),
    Case("acknowledged after the as-of", "incidents", "PX",
         f"acknowledged_at 2026-11-26T11:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: an "
         "acknowledgement in the future", add_incident(status="acknowledged", acks=["2026-11-26T11:00:00Z"],
                                                       resolved_at=None)),
    Case("impact after the as-of", "incidents", "PX",
         f"custom field impact_start 2031-01-01T00:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: an impact "
         "in the future", add_incident(impact="2031-01-01T00:00:00Z")),
    Case("triggered after the as-of", "incidents", "PX",
         f"created_at 2026-11-26T09:00:00Z is after the as-of 2026-11-26T08:00:00Z {LATER}: an incident triggered "
         "in the future", add_incident(created="2026-11-26T09:00:00Z", resolved_at="2026-11-26T09:30:00Z"),
         now=EARLY),
    Case("alert after the as-of", "alerts", "AX",
         f"created_at 2026-11-26T11:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: an alert in the future",
         add_incident(alerts=[("AX", "2026-11-26T11:00:00Z")]), loaded=PX_LOADED),
    Case("log entry after the as-of", "log_entries", "LX",
         f"created_at 2031-01-01T00:00:00Z is after the as-of 2026-11-26T10:40:00Z {LATER}: a log entry in the future",
         add_incident(logs=[("LX", "annotate_log_entry", "2031-01-01T00:00:00Z")]), loaded=PX_LOADED),
    # before the trigger
    Case("resolved before triggered", "incidents", "PX",
         "resolved 2026-11-26T05:00:00+00:00 before triggered 2026-11-26T06:00:00+00:00",
         add_incident(resolved_at="2026-11-26T05:00:00Z")),
    Case("acknowledged before triggered", "incidents", "PX",
         "acknowledged 2026-11-26T05:59:00+00:00 before triggered 2026-11-26T06:00:00+00:00",
         add_incident(status="acknowledged", acks=["2026-11-26T05:59:00Z"], resolved_at=None)),
    # the other checks of the PagerDuty source
    Case("missing service", "incidents", "PX", "missing service", add_incident(service=None)),
    Case("unknown status", "incidents", "PX", "unknown status 'snoozed'", with_incident(status="snoozed")),
    Case("incident number not an integer", "incidents", "PX", "incident_number '999' is not an integer",
         with_incident(incident_number="999")),
    Case("duplicate incident id", "incidents", "PI02", "duplicate incident id PI02 (the first was loaded)", twice_pd),
    Case("alert missing id", "alerts", "None", "missing alert id",
         add_incident(alerts=[(None, "2026-11-26T06:00:00Z")]), loaded=PX_LOADED),
    Case("duplicate alert id", "alerts", "PA2", "duplicate alert id PA2 (the first was loaded)",
         add_incident(alerts=[("PA2", "2026-11-26T06:00:00Z")]), loaded=PX_LOADED),
    Case("log entry missing type", "log_entries", "LX", "missing log entry type",
         add_incident(logs=[("LX", "", "2026-11-26T06:05:00Z")]), loaded=PX_LOADED),
    Case("duplicate log entry id", "log_entries", "LE1", "duplicate log entry id LE1",
         add_incident(logs=[("LE1", "annotate_log_entry", "2026-11-26T06:05:00Z")]), loaded=PX_LOADED),
]


@pytest.mark.parametrize("case", PAGERDUTY_CASES, ids=lambda c: c.id)
def test_pagerduty(engine, waits, monkeypatch, case):
    monkeypatch.setenv("KAIZEN_DEMO_NOW", case.now)
    incs, alerts, fields, logs = pagerduty_feed()
    case.mutate(incs, alerts, fields, logs)
    with ListingPagerDuty(incs, alerts, fields, logs, token=TOKEN) as f:
        results = pagerduty.extract(DAY, engine, "run-v", pagerduty.http_transport(f.url, TOKEN, page_limit=2))
    listed = {i["id"] for i in incs}
    offered = {"incidents": len(incs),
               "alerts": sum(len(alerts.get(i, [])) for i in listed),
               "log_entries": sum(len(logs.get(i["id"], [])) for i in incs if i["status"] != "triggered")}
    check(engine, case, results, offered, {
        "incidents": ("raw_incidents", "incident_id", {"PI01", "PI02"}),
        "alerts": ("raw_alerts", "alert_id", {"PA1", "PA2"}),
        "log_entries": ("raw_incident_log_entries", "log_entry_id", {"LE1", "LE2"}),
    })
    if case.source == "incidents" and case.key == "PX" and alerts.get("PX"):
        assert "AX" in keys(engine, "raw_alerts", "alert_id")  # a quarantined incident's alerts still count


@pytest.mark.parametrize("name", ["github", "pagerduty"])
def test_a_window_record_on_no_day_is_quarantined_by_every_window(engine, tmp_path, monkeypatch, name):
    """A deployment / incident without a readable created_at is in every review window:
    each day's extract quarantines it, and a range extract leaves the same."""
    monkeypatch.setenv("KAIZEN_DEMO_NOW", AS_OF)
    if name == "github":
        feed = github_feed()
        add_deployment(created="soon")(*feed)
        write_github_demo(tmp_path, feed)
        module, transport, table = github, github.demo_transport, "raw_deployments"
    else:
        feed = pagerduty_feed()
        add_incident(created="soon")(*feed)
        write_pagerduty_demo(tmp_path, feed)
        module, transport, table = pagerduty, pagerduty.demo_transport, "raw_incidents"
    days = [date(2026, 11, 25), DAY]

    def state():
        return (keys(engine, table, "deployment_id" if name == "github" else "incident_id"),
                rows(engine, "select source, record_key, extract_day, reason from quarantine order by extract_day"))

    per_day = [r for d in days for r in module.extract(d, engine, "day", transport(tmp_path))]
    loaded, q = state()
    with engine.begin() as c:
        for t in (table, "raw_alerts", "raw_incident_log_entries", "quarantine"):
            c.execute(sa.text(f"delete from {t}"))
    ranged = module.extract_range(days[0], days[-1], engine, "day", transport(tmp_path))
    assert [(r["record_key"], str(r["extract_day"])[:10], r["reason"]) for r in q] == [
        (("299" if name == "github" else "PX"), str(d), "unparseable created_at 'soon'") for d in days]
    assert state() == (loaded, q) and loaded == (["201", "202"] if name == "github" else ["PI01", "PI02"])
    assert {r.source: (r.extracted, r.loaded, r.quarantined) for r in ranged if r.table == table} == {
        r.source: (sum(x.extracted for x in per_day if x.source == r.source),
                   sum(x.loaded for x in per_day if x.source == r.source),
                   sum(x.quarantined for x in per_day if x.source == r.source))
        for r in ranged if r.table == table}


# ------------------------------------------------------------------ the daily review


def test_the_daily_review_prints_no_value_from_a_future_record(engine, tmp_path, monkeypatch):
    """Issue 14: an order filled in 2031 made the review print "Order Execution (avg):
    7,02,20,868 ms", and an incident resolved in 2031 was shown as open. Both are
    quarantined now: the review shows the valid orders' 250 ms and no such incident."""
    from kaizen import sources
    from kaizen.kpis import catalog
    from kaizen.kpis import day as day_kpis
    from kaizen.reports import daily
    from source_wire import ORDERS, TRADES, pagerduty_data

    root = write_demo_dir(tmp_path / "demo")
    write_trading_db(root / "trading.db.new", TRADES, [*ORDERS, order("O9", filled="2031-01-01T04:00:00Z")])
    (root / "trading.db.new").replace(root / "trading.db")
    incs, alerts, fields, logs = pagerduty_data()
    pi07 = next(i for i in incs if i["id"] == "PI07")
    pi07["resolved_at"] = pi07["last_status_change_at"] = "2031-01-01T00:00:00Z"
    write_pagerduty_demo(root, (incs, alerts, fields, logs))
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(root))
    monkeypatch.setenv("KAIZEN_DEMO_NOW", AS_OF)

    results = sources.extract_range(DAY, DAY, engine, "run-review")
    assert all(r.extracted == r.loaded + r.quarantined for r in results)
    q = {(r["source"], r["record_key"]): r["reason"]
         for r in rows(engine, "select source, record_key, reason from quarantine")}
    assert q[("orders", "O9")].startswith("filled_at 2031-01-01T04:00:00Z is after the end of the extracted days")
    assert q[("incidents", "PI07")].startswith("resolved_at 2031-01-01T00:00:00Z is after the as-of")
    assert "PI07" not in keys(engine, "raw_incidents", "incident_id")
    assert "PA7" in keys(engine, "raw_alerts", "alert_id")  # its alert fired: it still counts

    catalog.load_definitions(engine)
    day_kpis.compute_day(engine, DAY, "run-review")
    (avg,) = rows(engine, "select value from kpi_values where kpi_id = 'avg_execution_ms' and grain = 'day'")
    assert avg["value"] == pytest.approx(250.0)  # O1's 250 ms, the one valid fill
    report = daily.build_daily(engine, DAY)
    markdown = daily.render_daily(report)["markdown"]
    (line,) = [ln for ln in markdown.splitlines() if "Order Execution (avg)" in ln]
    assert "**250 ms**" in line, line
    assert "PI07" not in {i.incident_id for i in report.incidents}
    assert [(i.incident_id, i.state) for i in report.incidents if i.state != "Resolved"] == [
        ("PI02", "Acknowledged"), ("PI05", "Open"), ("PI06", "Open")]
