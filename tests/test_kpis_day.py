"""Day-grain KPIs from a hand-built landing fixture, on SQLite and PostgreSQL.

Trading day D = Wed 2026-03-11; previous trading day Tue 2026-03-10, so the review
window is [Tue 16:00 IST, Wed 16:00 IST) = [2026-03-10 10:30Z, 2026-03-11 10:30Z),
1,440 minutes = 1 calendar day, 1 business day (Wed). Every expected value below is
worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.kpis import day as day_kpis
from kaizen.period import Period
from kaizen.warehouse import facts

D = date(2026, 3, 11)
PREV = date(2026, 3, 10)
W_START = datetime(2026, 3, 10, 10, 30, tzinfo=UTC)  # Tue 16:00 IST
W_END = datetime(2026, 3, 11, 10, 30, tzinfo=UTC)  # Wed 16:00 IST
LOADED = datetime(2026, 3, 11, 10, 35, tzinfo=UTC)
CAPITAL = 10_000_000.0


def ist(y, mo, d, h, mi, s=0, ms=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=cal.IST).astimezone(UTC)


@pytest.fixture(autouse=True)
def _capital(monkeypatch):
    monkeypatch.delenv("KAIZEN_CAPITAL_BASE_INR", raising=False)


def _meta(rows):
    return [{**r, "run_id": "seed", "loaded_at": LOADED} for r in rows]


def trade(tid, day, pnl):
    exit_t = ist(day.year, day.month, day.day, 11, 0)
    return {
        "trade_id": tid,
        "trading_day": day,
        "symbol": "NIFTY",
        "side": "BUY",
        "quantity": 50,
        "entry_time": exit_t - timedelta(minutes=30),
        "exit_time": exit_t,
        "entry_price_inr": 22000.0,
        "exit_price_inr": 22000.0,
        "fees_inr": 40.0,
        "net_pnl_inr": float(pnl),
        "strategy": "s1",
        "ab_arm": None,
    }


def order(oid, status, exec_ms):
    sub = ist(2026, 3, 11, 10, 0) + timedelta(minutes=int(oid[-1]))
    return {
        "order_id": oid,
        "trading_day": D,
        "trade_id": None,
        "symbol": "NIFTY",
        "side": "BUY",
        "quantity": 50,
        "status": status,
        "submitted_at": sub,
        "filled_at": sub + timedelta(milliseconds=exec_ms) if exec_ms is not None else None,
    }


def utc(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def minutes(start: datetime, end: datetime):
    t = start
    while t < end:
        yield t
        t += timedelta(minutes=1)


def insert(engine, table, rows):
    with engine.begin() as conn:
        warehouse.replace_slice(conn, table, "1 = 1", {}, _meta(rows))
        facts.rebuild(conn)  # as the loader writes them with the rows


# ------------------------------------------------------------------ the fixture
DOWN_BOTH = ist(2026, 3, 11, 10, 0)  # Wed 10:00 IST: instance a AND b down (in session)
DOWN_B = ist(2026, 3, 10, 20, 0)  # Tue 20:00 IST: only b down (outside session)
LAT_M1 = ist(2026, 3, 11, 11, 0)
LAT_M2 = ist(2026, 3, 11, 11, 1)


def seed(engine, *, probes=True):
    # Trades. D: +5,000, −2,000, 0 (break-even), +3,000, −1,000, +7,000.
    # History: D−2 (Mon 9 Mar) +20,000; D−1 (Tue 10 Mar) −50,000. After D: +99,999 (ignored).
    trades = [
        trade("T1", D, 5000),
        trade("T2", D, -2000),
        trade("T3", D, 0),
        trade("T4", D, 3000),
        trade("T5", D, -1000),
        trade("T6", D, 7000),
        trade("H1", date(2026, 3, 9), 20000),
        trade("H2", PREV, -50000),
        trade("F1", date(2026, 3, 12), 99999),
    ]
    insert(engine, "raw_trades", trades)
    # Orders on D: four filled (120, 250, 310, 900 ms), one rejected.
    insert(
        engine,
        "raw_orders",
        [
            order("O1", "filled", 120),
            order("O2", "filled", 250),
            order("O3", "rejected", None),
            order("O4", "filled", 310),
            order("O5", "filled", 900),
        ],
    )
    if probes:
        rows = []
        for t in minutes(W_START, W_END):
            rows.append({"instance": "a", "ts": t, "is_up": 0 if t == DOWN_BOTH else 1})
            rows.append({"instance": "b", "ts": t, "is_up": 0 if t in (DOWN_BOTH, DOWN_B) else 1})
        insert(engine, "raw_probe_minutes", rows)
    # Latency: every minute of the window has its four buckets (full coverage), all
    # zero except two minutes. One row per minute; cumulative counts per minute
    # (le 0.1 / 0.25 / 0.5 / +Inf):
    #   M1: 50 / 80 / 98 / 100     M2: 30 / 60 / 96 / 100
    lat = []
    m1 = {"0.1": 50, "0.25": 80, "0.5": 98, "+Inf": 100}
    m2 = {"0.1": 30, "0.25": 60, "0.5": 96, "+Inf": 100}
    for t in minutes(W_START, W_END):
        counts = m1 if t == LAT_M1 else m2 if t == LAT_M2 else dict.fromkeys(m1, 0)
        lat.append(
            {
                "ts": t,
                "bounds": json.dumps(list(counts), separators=(",", ":")),
                "counts": json.dumps([float(c) for c in counts.values()], separators=(",", ":")),
                "request_count": float(counts["+Inf"]),
            }
        )
    insert(engine, "raw_latency_buckets", lat)
    # Errors: full coverage, increases 2 + 1.5 + 3 = 6.5 in three minutes.
    err_at = {ist(2026, 3, 11, 9, 30): 2.0, ist(2026, 3, 11, 9, 31): 1.5, ist(2026, 3, 10, 22, 0): 3.0}
    insert(
        engine,
        "raw_error_minutes",
        [{"ts": t, "error_count": err_at.get(t, 0.0)} for t in minutes(W_START, W_END)],
    )

    # Deployments (production):
    #   D1 success, finished Tue 18:00 IST, first commit Tue 12:00 IST → lead 6 h
    #   D2 success, finished Tue 19:00 IST, first commit Mon 19:00 IST → lead 24 h; caused INC1 and INC2
    #   D3 success, finished Wed 11:00 IST, first commit Wed 09:00 IST → lead 2 h; rolled back
    #   D4 the rollback of D3 (is_rollback) → not a deployment for DORA
    #   D5 final status failure → not a successful deployment
    #   D0 success but finished Tue 15:00 IST, before the window → ignored
    def dep(did, status, created, finished, first_commit, *, is_rollback=False, rolled_back=False):
        return {
            "deployment_id": did,
            "environment": "production",
            "sha": "sha" + did,
            "ref": "main",
            "created_at": created,
            "finished_at": finished,
            "status": status,
            "is_rollback": is_rollback,
            "rolled_back": rolled_back,
            "first_commit_at": first_commit,
            "commit_count": 1,
            "pull_requests": None,
        }

    insert(
        engine,
        "raw_deployments",
        [
            dep("D0", "success", ist(2026, 3, 10, 14, 50), ist(2026, 3, 10, 15, 0), ist(2026, 3, 10, 9, 0)),
            dep("D1", "success", ist(2026, 3, 10, 17, 50), ist(2026, 3, 10, 18, 0), ist(2026, 3, 10, 12, 0)),
            dep("D2", "success", ist(2026, 3, 10, 18, 50), ist(2026, 3, 10, 19, 0), ist(2026, 3, 9, 19, 0)),
            dep(
                "D3",
                "success",
                ist(2026, 3, 11, 10, 50),
                ist(2026, 3, 11, 11, 0),
                ist(2026, 3, 11, 9, 0),
                rolled_back=True,
            ),
            dep(
                "D4",
                "success",
                ist(2026, 3, 11, 11, 20),
                ist(2026, 3, 11, 11, 30),
                ist(2026, 3, 11, 9, 0),
                is_rollback=True,
            ),
            dep("D5", "failure", ist(2026, 3, 11, 11, 50), ist(2026, 3, 11, 12, 0), ist(2026, 3, 11, 8, 0)),
        ],
    )

    # Incidents:
    #   INC1 P1: impact Wed 10:00, triggered 10:03, resolved 10:23 IST → TTD 3, TTR 20; caused by D2
    #   INC2 P2: impact Tue 19:58, triggered 20:00, resolved 20:40 IST → TTD 2, TTR 40; caused by D2
    #   OLD  P0: triggered 100 days before the window's end → outside MTBF's 90 days
    def inc(iid, num, prio, impact, trig, res, caused):
        return {
            "incident_id": iid,
            "incident_number": num,
            "title": iid,
            "service": "trading-api",
            "priority": prio,
            "urgency": "high",
            "status": "resolved",
            "triggered_at": trig,
            "acknowledged_at": trig + timedelta(minutes=1),
            "resolved_at": res,
            "impact_start_at": impact,
            "caused_by_deployment_id": caused,
        }

    old = W_END - timedelta(days=100)
    insert(
        engine,
        "raw_incidents",
        [
            inc(
                "INC1",
                1,
                "P1",
                ist(2026, 3, 11, 10, 0),
                ist(2026, 3, 11, 10, 3),
                ist(2026, 3, 11, 10, 23),
                "D2",
            ),
            inc(
                "INC2",
                2,
                "P2",
                ist(2026, 3, 10, 19, 58),
                ist(2026, 3, 10, 20, 0),
                ist(2026, 3, 10, 20, 40),
                "D2",
            ),
            inc("OLD", 0, "P0", None, old, old + timedelta(minutes=10), None),
            # Post-mortem deadlines (resolved + 48 h) inside the window; triggered and
            # resolved before it (no effect on MTTR/MTTA/MTTD; P0/P1 count for MTBF):
            #   PM1 P0 resolved Sun 8 Mar 12:00Z → due Tue 10 Mar 12:00Z
            #   PM2 P1 resolved Mon 9 Mar 08:00Z → due Wed 11 Mar 08:00Z
            #   PM3 P1 resolved Mon 9 Mar 09:00Z → due Wed 11 Mar 09:00Z
            #   PM4 P2 (not a P0/P1: no post-mortem required)
            inc("PM1", 11, "P0", None, utc(2026, 3, 8, 11), utc(2026, 3, 8, 12), None),
            inc("PM2", 12, "P1", None, utc(2026, 3, 9, 7), utc(2026, 3, 9, 8), None),
            inc("PM3", 13, "P1", None, utc(2026, 3, 9, 8, 30), utc(2026, 3, 9, 9), None),
            inc("PM4", 14, "P2", None, utc(2026, 3, 9, 8), utc(2026, 3, 9, 9), None),
        ],
    )

    # Action items (SLA due P0 +7 d, P1 +30 d, P2 +90 d; P3 none) and post-mortems.
    #   A1 P0 created Tue 3 Mar 11:00Z → due Tue 10 Mar 11:00Z, closed 9 Mar → on time
    #   A2 P1 created Sun 8 Feb 12:00Z → due Tue 10 Mar 12:00Z, closed 10 Mar 13:00Z → late
    #   A3 P2 created Thu 11 Dec 2025 06:00Z → due Wed 11 Mar 06:00Z, closed exactly then → on time
    #   A4 P1 created Mon 9 Feb 05:00Z → due Wed 11 Mar 05:00Z, still open → not on time
    #   A5 P3 (best effort, no due date) and A6 P0 due Wed 11 Mar 11:00Z (after the window) → not counted
    #   post-mortems: PM1 at 10 Mar 11:00Z (47 h, on time; a second copy later), PM2 at 11 Mar 09:00Z
    #   (49 h, late); PM3 none
    def item(num, prio, created, closed, incident="INC1", kind="action_item"):
        sla = {"P0": 7, "P1": 30, "P2": 90}.get(prio)
        return {
            "issue_number": num,
            "kind": kind,
            "title": f"item {num}",
            "priority": prio,
            "incident_id": incident,
            "owner": "dev",
            "state": "closed" if closed else "open",
            "state_reason": "completed" if closed else None,
            "created_at": created,
            "updated_at": closed or created,
            "closed_at": closed,
            "due_at": created + timedelta(days=sla) if (sla and kind == "action_item") else None,
            "html_url": None,
        }

    insert(
        engine,
        "raw_action_items",
        [
            item(1, "P0", utc(2026, 3, 3, 11), utc(2026, 3, 9, 10)),
            item(2, "P1", utc(2026, 2, 8, 12), utc(2026, 3, 10, 13)),
            item(3, "P2", utc(2025, 12, 11, 6), utc(2026, 3, 11, 6)),
            item(4, "P1", utc(2026, 2, 9, 5), None),
            item(5, "P3", utc(2026, 3, 1, 5), None),
            item(6, "P0", utc(2026, 3, 4, 11), utc(2026, 3, 5, 11)),
            item(7, None, utc(2026, 3, 10, 11), None, "PM1", "postmortem"),
            item(8, None, utc(2026, 3, 10, 14), None, "PM1", "postmortem"),
            item(9, None, utc(2026, 3, 11, 9), None, "PM2", "postmortem"),
        ],
    )

    # Alerts: three in the window (P1, P2, P2); one at exactly Wed 16:00 IST (window end, excluded).
    def alert(aid, prio, at):
        return {
            "alert_id": aid,
            "incident_id": None,
            "priority": prio,
            "severity": "critical",
            "service": "trading-api",
            "summary": aid,
            "created_at": at,
        }

    insert(
        engine,
        "raw_alerts",
        [
            alert("A1", "P1", ist(2026, 3, 11, 10, 3)),
            alert("A2", "P2", ist(2026, 3, 10, 20, 0)),
            alert("A3", "P2", ist(2026, 3, 11, 10, 5)),
            alert("A4", "P0", W_END),
        ],
    )


# (value, numerator, denominator, sample_size, status), hand-computed.
EXPECTED = {
    # 6 trades closed on D (H1, H2, F1 are other days)
    "trades_count": (6, None, None, 6, "on_target"),
    # wins: 5,000, 3,000, 7,000 = 3 (break-even 0 is not a win) ÷ 6 = 50 % (target > 55)
    "win_rate_pct": (50.0, 3, 6, 6, "off_target"),
    # 5,000 − 2,000 + 0 + 3,000 − 1,000 + 7,000 = 12,000
    "net_pnl_inr": (12000.0, None, None, 6, "on_target"),
    # 12,000 ÷ 1 session ≥ 10,000
    "avg_daily_pnl_inr": (12000.0, 12000.0, 1.0, 1, "on_target"),
    "largest_win_inr": (7000.0, None, None, 3, "on_target"),
    "largest_loss_inr": (-2000.0, None, None, 2, "on_target"),
    # gross profit 15,000 ÷ |gross loss| 3,000 = 5
    "profit_factor": (5.0, 15000.0, 3000.0, 6, "on_target"),
    # sessions since the history start (Mon 9 Mar): 9, 10, 11 Mar = 3 < 20 → NULL
    "sharpe_ratio": (None, "any", "any", 3, "insufficient_data"),
    # equity: 1 cr → 9 Mar 1,00,20,000 (peak) → 10 Mar 99,70,000 → 11 Mar 99,82,000
    # fall 38,000 ÷ peak 1,00,20,000 = 0.37924… % (< 15)
    "max_drawdown_pct": (100 * 38000 / 10_020_000, 38000.0, 10_020_000.0, 3, "on_target"),
    # 4 filled ÷ 5 submitted = 80 % (> 99 fails)
    "execution_success_pct": (80.0, 4, 5, 5, "off_target"),
    # (120 + 250 + 310 + 900) = 1,580 ms ÷ 4 = 395 ms (< 500)
    "avg_execution_ms": (395.0, 1580.0, 4, 4, "on_target"),
    # numpy linear: sorted [120, 250, 310, 900], rank 0.95 × 3 = 2.85 → 310 + 0.85 × 590 = 811.5
    "p95_execution_ms": (811.5, None, None, 4, "on_target"),
    # 1,440 probed minutes; down: Wed 10:00 (both instances, counted once) and Tue 20:00
    # (only b: a minute is up only if every instance was up) → 1,438 good
    "uptime_pct": (100 * 1438 / 1440, 1438, 1440, 1440, "off_target"),
    # session 09:15–15:30 IST = 375 minutes, one down (Wed 10:00) → 374 ÷ 375
    "session_uptime_pct": (100 * 374 / 375, 374, 375, 375, "off_target"),
    "downtime_minutes": (2.0, None, None, 1440, "on_target"),
    # budget 0.001 × 1,440 = 1.44 min; remaining 1.44 − 2 = −0.56 → −38.8 %
    "error_budget_remaining_pct": (100 * (1.44 - 2) / 1.44, 1.44 - 2, 1.44, 1440, "off_target"),
    # budget family: 1.44 min budget; used = downtime 2; burn = 2 ÷ (1,440 probed × 0.001) =
    # 1.3889 (> 1 → off); run-out = 1.44 ÷ (2 ÷ 1,440 per minute) = 1,036.8 min = 0.72 days
    "error_budget_minutes": (1.44, None, None, 1440, "on_target"),
    "error_budget_used_minutes": (2.0, 2.0, 1.44, 1440, "on_target"),
    "error_budget_burn_rate": (2 / 1.44, 2.0, 1.44, 1440, "off_target"),
    "error_budget_runout_days": (0.72, None, None, 1440, "on_target"),
    # summed buckets 0.1: 80, 0.25: 140, 0.5: 194, +Inf: 200; rank 0.95 × 200 = 190 → bucket
    # (0.25, 0.5]: 0.25 + 0.25 × (190 − 140) ÷ (194 − 140) = 0.25 + 0.25 × 50/54 = 0.48148 s
    "sli_p95_latency_ms": (1000 * (0.25 + 0.25 * 50 / 54), None, None, 200, "on_target"),
    # 2 + 1.5 + 3 over 1,440 covered minutes
    "errors_count": (6.5, None, None, 1440, "on_target"),
    # 3 alerts (A4 at the window's end is excluded) ÷ 1 day; P0 0, P1 1, P2 2
    "alerts_per_day": (3.0, 3, 1.0, 3, "on_target"),
    "alerts_per_day_p0": (0.0, 0, 1.0, 0, "on_target"),
    "alerts_per_day_p1": (1.0, 1, 1.0, 1, "on_target"),
    "alerts_per_day_p2": (2.0, 2, 1.0, 2, "on_target"),
    # resolved in window: INC1 20 min, INC2 40 min → mean 30 (target < 30 → off), p50 30
    "mttr_minutes": (30.0, 60.0, 2, 2, "off_target"),
    "mttr_p50_minutes": (30.0, None, None, 2, "on_target"),
    # INC1 and INC2 triggered in the window, each acknowledged 1 min later → mean 1, p50 1
    "mtta_minutes": (1.0, 2.0, 2, 2, "on_target"),
    "mtta_p50_minutes": (1.0, None, None, 2, "on_target"),
    # TTD 3 and 2 → 2.5 (< 5)
    "mttd_minutes": (2.5, 5.0, 2, 2, "on_target"),
    # the observed window only: the history begins with this day's window (Tue 16:00 IST),
    # so of MTBF's 90 days one is observed; P0/P1 triggered in it = INC1 (PM1–PM3 and OLD
    # before it); downtime 2 min → (1,440 − 2) ÷ 1,440 = 0.99861 up days ÷ 1 failure
    "mtbf_days": ((1440 - 2) / 1440, (1440 - 2) / 1440, 1, 1, "off_target"),
    # D1, D2, D3 (D0 before the window, D4 a rollback, D5 failed) ÷ 1 business day (Wed)
    "deployments_per_day": (3.0, 3, 1, 3, "on_target"),
    # leads 6, 24, 2 h → median 6 (< 24); p90 numpy linear: [2, 6, 24] rank 1.8 → 6 + 0.8 × 18 = 20.4
    "lead_time_hours": (6.0, None, None, 3, "on_target"),
    "lead_time_p90_hours": (20.4, None, None, 3, "on_target"),
    # distinct failed deployments: D2 (two incidents, counted once) and D3 (rolled back) = 2 ÷ 3
    "change_failure_rate_pct": (100 * 2 / 3, 2, 3, 3, "off_target"),
    # resolved − D2 finished (Tue 19:00 IST): INC2 20:40 → 100 min; INC1 Wed 10:23 → 923 min;
    # median (100 + 923) ÷ 2 = 511.5
    "recovery_time_minutes": (511.5, None, None, 2, "on_target"),
    # due in the window: A1 (on time), A2 (late), A3 (closed exactly at due: on time), A4 (open)
    # → 2 ÷ 4 = 50 % (target > 90 → off); A5 (P3) and A6 (due after the window) not counted
    "action_items_on_time_pct": (50.0, 2, 4, 4, "off_target"),
    # deadlines in the window: PM1 (published 47 h after: on time), PM2 (49 h: late), PM3 (none)
    # → 1 ÷ 3; no target → on_target
    "postmortems_on_time_pct": (100 / 3, 1, 3, 3, "on_target"),
}


def _read(engine):
    df = warehouse.read_frame(
        engine,
        "select * from kpi_values where grain = 'day' order by kpi_id, period_start",
        date_cols=("period_start",),
    )
    return {r["kpi_id"]: r for r in df.to_dict("records") if r["period_start"] == D}


def _approx(a, b):
    if b is None:
        return a is None or (isinstance(a, float) and math.isnan(a))
    return a is not None and a == pytest.approx(b, rel=1e-12, abs=1e-9)


def test_every_day_kpi_by_hand(engine):
    seed(engine)
    rows = day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)
    assert {r["kpi_id"] for r in rows} == set(EXPECTED)
    stored = _read(engine)
    assert set(stored) == set(EXPECTED)
    for kpi_id, (value, num, den, n, status) in EXPECTED.items():
        r = stored[kpi_id]
        assert _approx(r["value"], value), (kpi_id, "value", r["value"], value)
        if num != "any":
            assert _approx(r["numerator"], num), (kpi_id, "numerator", r["numerator"], num)
            assert _approx(r["denominator"], den), (kpi_id, "denominator", r["denominator"], den)
        assert r["sample_size"] == n, (kpi_id, "sample_size", r["sample_size"], n)
        assert r["status"] == status, (kpi_id, "status", r["status"], status)
        assert r["trend"] == "n/a", kpi_id  # no history yet
        assert bool(r["is_complete"]) is True
        assert r["run_id"] == "run-1"
    assert stored["win_rate_pct"]["target"] == 55
    assert stored["trades_count"]["target"] is None or math.isnan(stored["trades_count"]["target"])


def test_recompute_leaves_kpi_values_identical(engine):
    seed(engine)
    day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)
    with engine.connect() as c:
        first = c.execute(sa.text("select * from kpi_values order by kpi_id")).fetchall()
    # A second run (other run id, later clock) changes nothing: unchanged rows are not rewritten.
    rows = day_kpis.compute_day(engine, D, "run-2")
    with engine.connect() as c:
        second = c.execute(sa.text("select * from kpi_values order by kpi_id")).fetchall()
    assert first == second
    assert {r["run_id"] for r in rows} == {"run-1"}
    # A changed source row rewrites only the KPIs it touches.
    with engine.begin() as conn:  # a hand edit of a landing table, then its facts recomputed
        conn.execute(sa.text("update raw_trades set net_pnl_inr = 8000 where trade_id = 'T6'"))
        facts.rebuild(conn, D, D)
    rows = {r["kpi_id"]: r for r in day_kpis.compute_day(engine, D, "run-3", computed_at=W_END)}
    assert rows["net_pnl_inr"]["value"] == 13000 and rows["net_pnl_inr"]["run_id"] == "run-3"
    assert rows["uptime_pct"]["run_id"] == "run-1"


def test_trend_against_previous_four_days(engine):
    seed(engine)
    prev4 = day_kpis.previous_days(D)
    assert prev4 == [date(2026, 3, 10), date(2026, 3, 9), date(2026, 3, 6), date(2026, 3, 5)]
    history = {
        # mean 45; 50 is +11 % → improving (higher is better)
        "win_rate_pct": [40, 45, 50, 45],
        # mean 99.9; 99.8611 is −0.04 % → stable
        "uptime_pct": [99.9, 99.9, 99.9, 99.9],
        # mean 20; 30 is +50 % and lower is better → declining
        "mttr_minutes": [20, 20, 20, 20],
        # only two earlier values (10, 12), mean 11; 6 → −45 %, higher better → declining
        "trades_count": [10, None, 12, None],
    }
    rows = []
    for kpi_id, values in history.items():
        for d, v in zip(prev4, values, strict=True):
            if v is None:
                continue
            rows.append(
                {
                    "kpi_id": kpi_id,
                    "grain": "day",
                    "period_start": d,
                    "period_end": d,
                    "value": float(v),
                    "numerator": None,
                    "denominator": None,
                    "sample_size": 1,
                    "target": None,
                    "status": "on_target",
                    "trend": "n/a",
                    "is_complete": True,
                    "computed_at": LOADED,
                    "run_id": "old",
                }
            )
    # A fifth, older row must not count: 2026-03-04 value 1000.
    rows.append(
        {**rows[0], "period_start": date(2026, 3, 4), "period_end": date(2026, 3, 4), "value": 1000.0}
    )
    with engine.begin() as conn:
        warehouse.upsert(conn, "kpi_values", rows, key=("kpi_id", "grain", "period_start"))
    out = {r["kpi_id"]: r for r in day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)}
    assert out["win_rate_pct"]["trend"] == "improving"
    assert out["uptime_pct"]["trend"] == "stable"
    assert out["mttr_minutes"]["trend"] == "declining"
    assert out["trades_count"]["trend"] == "declining"
    assert out["net_pnl_inr"]["trend"] == "n/a"


def test_empty_day_is_stale_or_no_events_never_zero(engine):
    # Nothing landed at all for D.
    rows = {r["kpi_id"]: r for r in day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)}
    for k in (
        "trades_count",
        "win_rate_pct",
        "net_pnl_inr",
        "avg_daily_pnl_inr",
        "largest_win_inr",
        "largest_loss_inr",
        "profit_factor",
        "execution_success_pct",
        "avg_execution_ms",
        "p95_execution_ms",
        "uptime_pct",
        "session_uptime_pct",
        "downtime_minutes",
        "error_budget_remaining_pct",
        "sli_p95_latency_ms",
        "errors_count",
    ):
        assert rows[k]["status"] == "stale", k
        assert rows[k]["value"] is None, k
    for k in (
        "mttr_minutes",
        "mttr_p50_minutes",
        "mttd_minutes",
        "mtbf_days",
        "lead_time_hours",
        "lead_time_p90_hours",
        "change_failure_rate_pct",
        "recovery_time_minutes",
        "action_items_on_time_pct",
        "postmortems_on_time_pct",
    ):
        assert rows[k]["status"] == "no_events", k
        assert rows[k]["value"] is None, k
    # Zero alerts and zero deployments are real counts from PagerDuty / GitHub.
    assert rows["alerts_per_day"]["value"] == 0 and rows["alerts_per_day"]["status"] == "on_target"
    assert rows["deployments_per_day"]["value"] == 0 and rows["deployments_per_day"]["status"] == "off_target"


def test_mtbf_takes_its_full_90_days_where_the_history_reaches_back(engine):
    """The same day measured by a scope that does not stop at the history's start (as
    if it reached back 90 days): 90 days ending Wed 16:00 IST, P0/P1 triggered = INC1,
    PM1, PM2, PM3 (OLD is 100 days back, PM4 a P2); downtime 2 min →
    (129,600 − 2) ÷ 1,440 = 89.99861 up days ÷ 4 failures."""
    seed(engine)
    with engine.connect() as c:
        m = day_kpis.measure_day(c, D)["mtbf_days"]
    assert (m.value, m.numerator, m.denominator) == (
        pytest.approx((129600 - 2) / 1440 / 4, rel=1e-12), pytest.approx((129600 - 2) / 1440, rel=1e-12), 4)


def test_mtbf_no_events_without_p0_p1(engine):
    seed(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("update raw_incidents set priority = 'P2' where priority in ('P0', 'P1')"))
    r = {x["kpi_id"]: x for x in day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)}["mtbf_days"]
    assert r["value"] is None
    assert r["status"] == "no_events"
    assert r["denominator"] == 0 and r["sample_size"] == 0


def test_probe_coverage_below_99_pct_is_stale(engine):
    seed(engine, probes=False)
    # 1,400 of 1,440 minutes probed (97.2 % < 99 %), all up.
    rows = [{"instance": "a", "ts": t, "is_up": 1} for t in list(minutes(W_START, W_END))[:1400]]
    insert(engine, "raw_probe_minutes", rows)
    out = {x["kpi_id"]: x for x in day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)}
    assert out["uptime_pct"]["status"] == "stale"
    assert out["uptime_pct"]["value"] == 100.0  # shown, but marked stale
    assert out["uptime_pct"]["denominator"] == 1400
    # The session is 03:45Z–10:00Z of D; the 1,400 probed minutes end at 09:50Z, so
    # 365 of its 375 minutes are probed (97.3 % < 99 %).
    assert out["session_uptime_pct"]["status"] == "stale"
    assert out["session_uptime_pct"]["denominator"] == 365
    # downtime / error budget follow the probes: stale too
    assert out["downtime_minutes"]["status"] == "stale" and out["downtime_minutes"]["value"] == 0


def test_sharpe_needs_20_sessions(engine):
    # 20 sessions 11 Feb … 11 Mar 2026 (3 Mar is an NSE holiday). A +20,000 trade on
    # sessions 1, 3, 5, …, 19 and on session 20 (= D): 11 returns of 0.002, 9 sessions
    # without trades (return 0). mean = 11 × 0.002 ÷ 20 = 0.0011;
    # Σ(r − mean)² = 11 × 0.0009² + 9 × 0.0011² = 8.91e-6 + 1.089e-5 = 1.98e-5;
    # std (ddof 1) = √(1.98e-5 ÷ 19); Sharpe = 0.0011 ÷ std × √252 ≈ 17.1055.
    sessions = cal.trading_days(date(2026, 2, 1), D)[-20:]
    assert sessions[0] == date(2026, 2, 11) and len(sessions) == 20
    traded = [d for i, d in enumerate(sessions) if i % 2 == 0 or d == D]
    insert(engine, "raw_trades", [trade(f"S{i}", d, 20000) for i, d in enumerate(traded)])
    out = {x["kpi_id"]: x for x in day_kpis.compute_day(engine, D, "run-1", computed_at=LOADED)}
    expected = 0.0011 / math.sqrt(1.98e-5 / 19) * math.sqrt(252)
    assert out["sharpe_ratio"]["value"] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(17.1055, abs=1e-4)
    assert out["sharpe_ratio"]["sample_size"] == 20
    assert out["sharpe_ratio"]["status"] == "on_target"
    # One session earlier (19 sessions of history) → insufficient_data, no value.
    out19 = {x["kpi_id"]: x for x in day_kpis.compute_day(engine, sessions[-2], "run-1", computed_at=LOADED)}
    assert out19["sharpe_ratio"]["sample_size"] == 19
    assert out19["sharpe_ratio"]["status"] == "insufficient_data"
    assert out19["sharpe_ratio"]["value"] is None


def test_not_a_trading_day_is_refused(engine):
    with pytest.raises(ValueError, match="not an NSE trading day"):
        day_kpis.compute_day(engine, date(2026, 3, 3), "run-1")  # Holi


# ------------------------------------------------------------------ pure helpers
@pytest.mark.parametrize(
    "day, expected",
    [
        (date(2026, 3, 11), 1),  # Wed after Tue
        (date(2026, 3, 9), 1),  # Mon after Fri: Sat, Sun are not business days
        (date(2026, 3, 4), 2),  # Wed after the Holi holiday (Tue 3 Mar): Tue + Wed
    ],
)
def test_business_days(day, expected):
    assert Period.day(day).business_days() == expected


# histogram_quantile, sharpe and drawdown_at: tests/test_maths.py
