"""Small hand-made fixtures in the real wire formats of the four sources, shared by the
source tests: trading DB rows, Prometheus query_range series, GitHub deployments /
statuses / compare bodies, PagerDuty incidents / alerts / custom fields / log entries,
and writers for the demo directory layout of docs/contracts.md.

Trading day D = 2026-11-26 (Thu); its review window is [2026-11-25 10:30Z,
2026-11-26 10:30Z). 2026-11-24 is an NSE holiday, so D-1 = 2026-11-25 has a two-day
window [2026-11-23 10:30Z, 2026-11-25 10:30Z)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAY = date(2026, 11, 26)
PREV_DAY = date(2026, 11, 25)
REPO = "desk/trading-api"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------ trading

TRADE_COLS = (
    "trade_id",
    "symbol",
    "side",
    "quantity",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "fees",
    "net_pnl",
    "strategy",
    "ab_arm",
)
ORDER_COLS = (
    "order_id",
    "trade_id",
    "symbol",
    "side",
    "quantity",
    "status",
    "submitted_at",
    "filled_at",
    "fill_price",
)


def trade(
    tid,
    side="BUY",
    qty=10,
    entry="2026-11-26T04:00:00Z",
    exit="2026-11-26T05:00:00Z",
    ep=100.0,
    xp=110.0,
    fees=20.0,
    net="auto",
    symbol="RELIANCE",
    strategy="orb",
    ab_arm=None,
):
    if net == "auto":
        net = (xp - ep) * qty * (1 if side == "BUY" else -1) - fees
    return dict(
        zip(
            TRADE_COLS,
            (tid, symbol, side, qty, entry, exit, ep, xp, fees, net, strategy, ab_arm),
            strict=True,
        )
    )


def order(
    oid,
    status="FILLED",
    submitted="2026-11-26T04:00:00Z",
    filled="2026-11-26T04:00:00.250Z",
    trade_id="T1",
    side="BUY",
    qty=10,
    price=100.0,
    symbol="RELIANCE",
):
    return dict(
        zip(ORDER_COLS, (oid, trade_id, symbol, side, qty, status, submitted, filled, price), strict=True)
    )


TRADES = [
    trade("T1"),  # long: (110-100)*10-20 = 80
    trade("T2", side="SELL", qty=5, ep=200.0, xp=190.0, fees=10.0),  # short: (190-200)*5*-1-10 = 40
    trade("T1", fees=20.0),  # duplicate id (second copy)
    trade("T3", net=None),  # NULL net P&L
    trade("T4", entry="2026-11-26T06:00:00Z", exit="2026-11-26T05:00:00Z", net=80.0),  # exit before entry
    trade("T5", entry="2026-11-26T03:00:00Z"),  # 08:30 IST: before the session
    trade("T6", net=500.0),  # P&L mismatch (computed 80)
    trade("T7", side="LONG", net=80.0),  # unknown side
    trade("T8", qty=0, net=-20.0),  # non-positive quantity
    trade("T9", entry="2026-11-25T04:00:00Z", exit="2026-11-25T05:00:00Z"),  # closed on D-1: not D's
]
ORDERS = [
    order("O1"),  # filled, 250 ms
    order("O2", status="REJECTED", submitted="2026-11-25T19:00:00Z", filled=None),  # 00:30 IST on D
    order("O3", filled=None),  # FILLED without filled_at
    order("O4", submitted="2026-11-26T04:00:01Z", filled="2026-11-26T04:00:00Z"),  # negative latency
    order("O5", status="PARTIAL", filled=None),  # unknown status
    order("O6", submitted="2026-11-25T05:00:00Z", filled="2026-11-25T05:00:00.1Z"),  # D-1
]
TRADE_REASONS = {
    "T3": "net_pnl is NULL",
    "T4": "exit_time 2026-11-26T05:00:00+00:00 before entry_time",
    "T5": "entry_time 2026-11-26 08:30:00 IST outside the NSE session",
    "T6": "net P&L mismatch: reported 500.00",
    "T7": "unknown side 'LONG'",
    "T8": "non-positive quantity 0",
    "T1": "duplicate trade_id T1: the first valid copy was loaded",
}
ORDER_REASONS = {
    "O3": "status FILLED but filled_at is NULL",
    "O4": "filled_at before submitted_at (negative execution latency -1000 ms)",
    "O5": "unknown status 'PARTIAL'",
}


def write_trading_db(path: Path, trades=TRADES, orders=ORDERS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute(
        "create table trades (trade_id text, symbol text, side text, quantity integer, entry_time text,"
        " exit_time text, entry_price real, exit_price real, fees real, net_pnl real, strategy text,"
        " ab_arm text)"
    )
    con.execute(
        "create table orders (order_id text, trade_id text, symbol text, side text, quantity integer,"
        " status text, submitted_at text, filled_at text, fill_price real)"
    )
    con.executemany(
        f"insert into trades values ({', '.join('?' * len(TRADE_COLS))})",
        [tuple(t[c] for c in TRADE_COLS) for t in trades],
    )
    con.executemany(
        f"insert into orders values ({', '.join('?' * len(ORDER_COLS))})",
        [tuple(o[c] for c in ORDER_COLS) for o in orders],
    )
    con.commit()
    con.close()
    return path


def create_pg_trading_tables(conn) -> None:
    """The live trading DB's tables on PostgreSQL (timestamptz columns), empty."""
    conn.exec_driver_sql("drop table if exists trades; drop table if exists orders")
    conn.exec_driver_sql(
        "create table trades (trade_id text, symbol text, side text, quantity integer,"
        " entry_time timestamptz, exit_time timestamptz, entry_price double precision,"
        " exit_price double precision, fees double precision, net_pnl double precision,"
        " strategy text, ab_arm text)"
    )
    conn.exec_driver_sql(
        "create table orders (order_id text, trade_id text, symbol text, side text,"
        " quantity integer, status text, submitted_at timestamptz, filled_at timestamptz,"
        " fill_price double precision)"
    )


class Counted:
    """A transport that records its calls."""

    def __init__(self, transport):
        self.transport, self.calls = transport, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.transport(*args)


# ------------------------------------------------------------------ prometheus

PROM_FROM = ts("2026-11-23T00:00:00Z")  # series cover [Nov 23, Nov 27) UTC
PROM_TO = ts("2026-11-27T00:00:00Z")
PROBE_OVERRIDES = {
    "2026-11-25T12:00:00Z": "0",
    "2026-11-25T12:01:00Z": "0",
    "2026-11-25T13:00:00Z": "2",
    "2026-11-25T14:00:00Z": "NaN",
}
LE = ("0.25", "0.5", "+Inf")


def prom_series() -> dict[str, list[dict]]:
    """query name → matrix result series (values [[unix_ts, "v"], ...])."""
    minutes = []
    t = PROM_FROM
    while t < PROM_TO:
        minutes.append(t)
        t += timedelta(minutes=1)

    def z(t):
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    probe = [[int(t.timestamp()), PROBE_OVERRIDES.get(z(t), "1")] for t in minutes]
    buckets = []
    for le, v in zip(LE, ("10", "12", "13"), strict=True):
        vals = [
            [int(t.timestamp()), "-3" if (le == "0.5" and z(t) == "2026-11-25T15:00:00Z") else v]
            for t in minutes
        ]
        buckets.append({"metric": {"le": le}, "values": vals})
    errors = [[int(t.timestamp()), "4" if z(t) == "2026-11-25T16:00:00Z" else "0"] for t in minutes]
    return {
        "probe_success": [{"metric": {"instance": "trading-api", "job": "blackbox"}, "values": probe}],
        "latency_buckets": buckets,
        "errors": [{"metric": {}, "values": errors}],
    }


def write_prometheus_demo(root: Path, series=None) -> None:
    series = series or prom_series()
    for name, result in series.items():
        d = PROM_FROM.date()
        while d < PROM_TO.date():
            lo = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
            hi = lo + 86400
            body = {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": s["metric"], "values": [v for v in s["values"] if lo <= v[0] < hi]}
                        for s in result
                    ],
                },
            }
            path = root / "prometheus" / name / f"{d.isoformat()}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body))
            d += timedelta(days=1)


# ------------------------------------------------------------------ github


def _user():
    return {"login": "deploy-bot", "id": 1, "type": "Bot"}


def deployment(did, sha, created, payload=None, task="deploy", ref="main"):
    return {
        "url": f"https://api.github.com/repos/{REPO}/deployments/{did}",
        "id": did,
        "node_id": f"DE_{did}",
        "sha": sha,
        "ref": ref,
        "task": task,
        "payload": payload if payload is not None else {},
        "original_environment": "production",
        "environment": "production",
        "description": None,
        "creator": _user(),
        "created_at": created,
        "updated_at": created,
        "statuses_url": f"https://api.github.com/repos/{REPO}/deployments/{did}/statuses",
        "repository_url": f"https://api.github.com/repos/{REPO}",
        "transient_environment": False,
        "production_environment": True,
    }


def status(sid, did, state, created):
    return {
        "url": f"https://api.github.com/repos/{REPO}/deployments/{did}/statuses/{sid}",
        "id": sid,
        "node_id": f"DES_{sid}",
        "state": state,
        "creator": _user(),
        "description": "",
        "environment": "production",
        "target_url": "",
        "log_url": "",
        "environment_url": "",
        "created_at": created,
        "updated_at": created,
        "deployment_url": f"https://api.github.com/repos/{REPO}/deployments/{did}",
        "repository_url": f"https://api.github.com/repos/{REPO}",
    }


def commit(sha, author_date, message):
    person = {"name": "Dev", "email": "dev@example.com", "date": author_date}
    return {
        "sha": sha,
        "node_id": f"C_{sha}",
        "commit": {"author": person, "committer": person, "message": message, "comment_count": 0},
        "url": f"https://api.github.com/repos/{REPO}/commits/{sha}",
        "parents": [],
    }


def compare(commits, status="ahead"):
    return {
        "url": "",
        "html_url": "",
        "status": status,
        "ahead_by": len(commits),
        "behind_by": 0,
        "total_commits": len(commits),
        "commits": commits,
        "files": [],
    }


def github_data():
    """(deployments newest first, statuses, compares)."""
    older = [deployment(90 + i, f"s0{i}", f"2026-11-2{0 + i // 5}T0{i % 5}:00:00Z") for i in range(8)]
    deps = [
        deployment(100, "s100", "2026-11-24T09:00:00Z"),  # D-1's window: base
        deployment(101, "s101", "2026-11-25T11:00:00Z"),
        deployment(102, "", "2026-11-25T14:00:00Z"),  # missing sha
        deployment(103, "s103", "2026-11-25T16:00:00Z"),  # status before creation
        deployment(104, "s100", "2026-11-26T05:00:00Z", {"rollback_of": 101}, "deploy:rollback"),
        deployment(105, "s105", "2026-11-26T06:00:00Z"),  # unknown state
        deployment(107, "s100", "2026-11-26T07:00:00Z", {"rollback_of": 100}, "deploy:rollback"),
        deployment(106, "s106", "2026-11-26T12:00:00Z"),  # after the window
    ]
    deps = sorted(older + deps, key=lambda d: d["created_at"], reverse=True)
    statuses = {
        "100": [status(1000, 100, "success", "2026-11-24T09:04:00Z")],
        "101": [
            status(1012, 101, "success", "2026-11-25T11:05:00Z"),
            status(1011, 101, "in_progress", "2026-11-25T11:01:00Z"),
            status(1010, 101, "queued", "2026-11-25T11:00:30Z"),
        ],
        "103": [status(1030, 103, "success", "2026-11-25T15:00:00Z")],
        "104": [
            status(1041, 104, "success", "2026-11-26T05:03:00Z"),
            status(1040, 104, "in_progress", "2026-11-26T05:01:00Z"),
        ],
        "105": [status(1050, 105, "exploded", "2026-11-26T06:01:00Z")],
        "107": [
            status(1071, 107, "failure", "2026-11-26T07:09:00Z"),
            status(1070, 107, "inactive", "2026-11-26T07:10:00Z"),
        ],
    }
    compares = {
        "s100...s101": compare(
            [
                commit(
                    "c1", "2026-11-24T20:00:00Z", "Merge pull request #40 from desk/feature-x\n\nFeature x"
                ),
                commit("c2", "2026-11-25T08:00:00Z", "Tighten order throttle (#41)"),
                commit("c3", "2026-11-25T09:00:00Z", "Fix typo"),
            ]
        ),
        "s103...s100": compare([], status="behind"),
        "s105...s100": compare([], status="behind"),
    }
    return deps, statuses, compares


def write_github_demo(root: Path, data=None) -> None:
    deps, statuses, compares = data or github_data()
    g = root / "github"
    (g / "statuses").mkdir(parents=True, exist_ok=True)
    (g / "compare").mkdir(parents=True, exist_ok=True)
    (g / "deployments.json").write_text(json.dumps(deps))
    for did, sts in statuses.items():
        (g / "statuses" / f"{did}.json").write_text(json.dumps(sts))
    for spec, body in compares.items():
        (g / "compare" / f"{spec}.json").write_text(json.dumps(body))


# ------------------------------------------------------------------ pagerduty


def _ref(kind, rid, summary):
    return {
        "id": rid,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"https://api.pagerduty.com/{kind}s/{rid}",
        "html_url": f"https://desk.pagerduty.com/{kind}s/{rid}",
    }


def incident(
    iid,
    number,
    created,
    status="resolved",
    priority="P1",
    acks=(),
    resolved_at=None,
    last_change=None,
    service="trading-api",
    urgency="high",
):
    inc = {
        "id": iid,
        "type": "incident",
        "summary": f"[#{number}] Trading API degraded",
        "self": f"https://api.pagerduty.com/incidents/{iid}",
        "html_url": f"https://desk.pagerduty.com/incidents/{iid}",
        "incident_number": number,
        "title": "Trading API degraded",
        "created_at": created,
        "updated_at": last_change or created,
        "status": status,
        "incident_key": f"key-{iid}",
        "service": _ref("service", "PSVC1", service) if service else None,
        "assignments": [],
        "assigned_via": "escalation_policy",
        "last_status_change_at": last_change or created,
        "first_trigger_log_entry": _ref("log_entry", f"L{iid}", "Triggered"),
        "alert_counts": {"all": 1, "triggered": 0, "resolved": 1},
        "is_mergeable": True,
        "escalation_policy": _ref("escalation_policy", "PEP1", "Trading on-call"),
        "teams": [],
        "pending_actions": [],
        "acknowledgements": [{"at": a, "acknowledger": _ref("user", "PU1", "Asha")} for a in acks],
        "basic_alert_grouping": None,
        "alert_grouping": None,
        "last_status_change_by": _ref("user", "PU1", "Asha"),
        "priority": (
            {
                "id": f"PRI{priority}",
                "type": "priority",
                "summary": priority,
                "name": priority,
                "self": f"https://api.pagerduty.com/priorities/PRI{priority}",
                "html_url": None,
            }
            if priority
            else None
        ),
        "resolve_reason": None,
        "conference_bridge": None,
        "incidents_responders": [],
        "responder_requests": [],
        "urgency": urgency,
    }
    if resolved_at:
        inc["resolved_at"] = resolved_at
    return inc


def alert(aid, iid, created, severity="critical", summary="probe failed"):
    return {
        "id": aid,
        "type": "alert",
        "summary": summary,
        "self": f"https://api.pagerduty.com/alerts/{aid}",
        "html_url": f"https://desk.pagerduty.com/alerts/{aid}",
        "created_at": created,
        "status": "resolved",
        "alert_key": f"ak-{aid}",
        "service": _ref("service", "PSVC1", "trading-api"),
        "first_trigger_log_entry": _ref("log_entry", f"LA{aid}", "Triggered"),
        "incident": {"id": iid, "type": "incident_reference"},
        "suppressed": False,
        "severity": severity,
        "integration": _ref("inbound_integration", "PINT1", "Prometheus"),
        "body": {"type": "alert_body", "contexts": [], "details": {"firing": summary}},
    }


def log_entry(lid, iid, kind, created):
    return {
        "id": lid,
        "type": kind,
        "summary": kind.replace("_log_entry", "d"),
        "self": f"https://api.pagerduty.com/log_entries/{lid}",
        "html_url": None,
        "created_at": created,
        "agent": _ref("user", "PU1", "Asha"),
        "channel": {"type": "web_ui"},
        "service": _ref("service", "PSVC1", "trading-api"),
        "incident": _ref("incident", iid, ""),
        "teams": [],
        "contexts": [],
        "event_details": {},
    }


def field_value(name, value, data_type):
    return {
        "id": f"F_{name}",
        "type": "field_value",
        "name": name,
        "display_name": name.replace("_", " ").title(),
        "description": None,
        "data_type": data_type,
        "field_type": "single_value",
        "value": value,
    }


def pagerduty_data():
    """(incidents, alerts, custom_fields, log_entries) for D's window."""
    incs = [
        incident("PI01", 101, "2026-11-25T12:00:00Z", last_change="2026-11-25T12:40:00Z"),
        incident(
            "PI02",
            102,
            "2026-11-26T04:00:00Z",
            status="acknowledged",
            priority="P0",
            acks=["2026-11-26T04:02:00Z"],
        ),
        incident(
            "PI03",
            103,
            "2026-11-26T05:00:00Z",
            resolved_at="2026-11-26T03:00:00Z",
            last_change="2026-11-26T03:00:00Z",
        ),  # resolved before triggered
        incident("PI04", 104, "2026-11-26T06:00:00Z", status="acknowledged", acks=["2026-11-26T05:59:00Z"]),
        incident("PI05", 105, "2026-11-26T07:00:00Z", status="triggered", priority="SEV1"),
        incident("PI06", 106, "2026-11-26T08:00:00Z", status="triggered", priority=None, urgency="low"),
        incident("PI07", 107, "2026-11-26T09:00:00Z", resolved_at="2026-11-26T09:30:00Z"),
        incident("PI08", 108, "2026-11-26T11:00:00Z", status="triggered"),  # after the window
    ]
    alerts = {
        "PI01": [
            alert("PA1", "PI01", "2026-11-25T12:00:00Z"),
            alert("PA2", "PI01", "2026-11-25T12:10:00Z", severity="warning", summary="latency high"),
        ],
        "PI02": [alert("PA3", "PI02", "2026-11-26T04:00:00Z")],
        "PI03": [alert("PA4", "PI03", "2026-11-26T05:00:00Z")],
        "PI05": [alert("PA5", "PI05", None)],  # alert without created_at
        "PI07": [alert("PA7", "PI07", "2026-11-26T10:45:00Z", severity="error")],  # grouped after the window
        "PI08": [alert("PA8", "PI08", "2026-11-26T11:00:00Z")],
    }
    fields = {
        "PI01": [
            field_value("impact_start", "2026-11-25T11:58:00Z", "datetime"),
            field_value("caused_by_deployment", "101", "string"),
        ],
        "PI07": [
            field_value("impact_start", "2026-11-26T09:05:00Z", "datetime"),
            field_value("caused_by_deployment", None, "string"),
        ],
    }
    logs = {
        "PI01": [
            log_entry("LE3", "PI01", "resolve_log_entry", "2026-11-25T12:40:00Z"),
            log_entry("LE2", "PI01", "acknowledge_log_entry", "2026-11-25T12:04:00Z"),
            log_entry("LE1", "PI01", "trigger_log_entry", "2026-11-25T12:00:00Z"),
        ],
    }
    return incs, alerts, fields, logs


INCIDENT_REASONS = {
    "PI03": "resolved 2026-11-26T03:00:00+00:00 before triggered 2026-11-26T05:00:00+00:00",
    "PI04": "acknowledged 2026-11-26T05:59:00+00:00 before triggered 2026-11-26T06:00:00+00:00",
}


def write_pagerduty_demo(root: Path, data=None) -> None:
    incs, alerts, fields, logs = data or pagerduty_data()
    p = root / "pagerduty"
    for sub in ("alerts", "custom_fields", "log_entries"):
        (p / sub).mkdir(parents=True, exist_ok=True)
    (p / "incidents.json").write_text(json.dumps(incs))
    for iid, items in alerts.items():
        (p / "alerts" / f"{iid}.json").write_text(json.dumps(items))
    for iid, items in fields.items():
        (p / "custom_fields" / f"{iid}.json").write_text(json.dumps(items))
    for iid, items in logs.items():
        (p / "log_entries" / f"{iid}.json").write_text(json.dumps(items))


# ------------------------------------------------------------------ github issues


def issue(number, labels, created, updated=None, closed=None, body="Incident: PI01\n", assignee="asha",
          pr=False, title=None, state=None):
    """A GitHub REST ``issue`` object (labels as label objects)."""
    out = {
        "url": f"https://api.github.com/repos/{REPO}/issues/{number}",
        "html_url": f"https://github.com/{REPO}/issues/{number}",
        "id": 900000 + number,
        "node_id": f"I_{number}",
        "number": number,
        "title": title or f"Action {number}",
        "user": {"login": "deploy-bot", "id": 1, "type": "Bot"},
        "labels": [{"id": i, "name": n, "color": "ededed", "default": False, "description": None}
                   for i, n in enumerate(labels)],
        "state": state or ("closed" if closed else "open"),
        "locked": False,
        "assignee": {"login": assignee, "id": 7} if assignee else None,
        "assignees": [{"login": assignee, "id": 7}] if assignee else [],
        "milestone": None,
        "comments": 0,
        "created_at": created,
        "updated_at": updated or closed or created,
        "closed_at": closed,
        "author_association": "MEMBER",
        "body": body,
        "state_reason": "completed" if closed else None,
    }
    if pr:
        out["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}", "merged_at": None}
    return out


ACTION = "postmortem-action"


def issues_data():
    """Issues newest first. D's window is [2026-11-25 10:30Z, 2026-11-26 10:30Z)."""
    items = [
        issue(11, [ACTION, "P0"], "2026-11-25T12:00:00Z", closed="2026-11-26T09:00:00Z"),
        issue(12, [ACTION, "P1"], "2026-11-25T13:00:00Z", assignee=None),
        issue(13, [ACTION, "P2"], "2026-11-20T08:00:00Z", updated="2026-11-26T01:00:00Z"),
        issue(14, [ACTION, "P3"], "2026-11-25T14:00:00Z", body="**Incident:** PI07\nsome text"),
        issue(15, ["postmortem"], "2026-11-25T15:00:00Z", body="Post-mortem\n\nIncident: PI01\n",
              title="Post-mortem: Trading API degraded"),
        issue(16, [ACTION], "2026-11-25T16:00:00Z"),  # no priority label
        issue(17, [ACTION, "P1"], "2026-11-25T17:00:00Z", closed="2026-11-25T16:00:00Z",
              updated="2026-11-25T17:30:00Z"),  # closed before created
        issue(18, [ACTION, "P1"], "2026-11-25T18:00:00Z", body="Incident: INC-2026-101\n"),  # not a PD id
        issue(19, [ACTION], "2026-11-25T19:00:00Z", pr=True),  # a pull request
        issue(20, [ACTION, "P1"], "2026-11-25T20:00:00Z", updated="2026-11-26T12:00:00Z"),  # later window
        issue(21, [ACTION, "P1"], "2026-11-19T20:00:00Z"),  # not updated since the window start
        issue(22, ["bug"], "2026-11-25T21:00:00Z"),  # another label: never listed
    ]
    return sorted(items, key=lambda i: i["created_at"], reverse=True)


ISSUE_REASONS = {
    "16": "missing priority label (one of P0, P1, P2, P3)",
    "17": "closed 2026-11-25T16:00:00+00:00 before created 2026-11-25T17:00:00+00:00",
    "18": "incident reference 'INC-2026-101' is not a PagerDuty incident id (e.g. 'Incident: P1A2B3C')",
}


def write_issues_demo(root: Path, items=None) -> None:
    g = root / "github"
    g.mkdir(parents=True, exist_ok=True)
    (g / "issues.json").write_text(json.dumps(issues_data() if items is None else items))


def write_demo_dir(root: Path) -> Path:
    write_trading_db(root / "trading.db")
    write_prometheus_demo(root)
    write_github_demo(root)
    write_pagerduty_demo(root)
    write_issues_demo(root)
    return root


# ------------------------------------------------------------------ warehouse snapshots

RAW_TABLES = (
    "raw_trades",
    "raw_orders",
    "raw_probe_minutes",
    "raw_latency_buckets",
    "raw_error_minutes",
    "raw_deployments",
    "raw_incidents",
    "raw_alerts",
    "raw_incident_log_entries",
    "raw_action_items",
    "quarantine",
)
STAMP_COLS = {"loaded_at", "quarantined_at"}  # wall-clock stamps of the write itself


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every landing table, without the write-time stamps, sorted."""
    import sqlalchemy as sa

    out = {}
    with engine.connect() as c:
        for t in RAW_TABLES:
            res = c.execute(sa.text(f"select * from {t}"))
            cols = [k for k in res.keys() if k not in STAMP_COLS]
            out[t] = sorted((tuple(str(r._mapping[k]) for k in cols) for r in res), key=repr)
    return out


def rows(engine, sql: str, **params) -> list[dict]:
    import sqlalchemy as sa

    from kaizen.warehouse import bind_value

    with engine.connect() as c:
        return [
            dict(r._mapping) for r in c.execute(sa.text(sql), {k: bind_value(v) for k, v in params.items()})
        ]


def quarantine(engine, source: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows(engine, "select * from quarantine where source = :s order by record_key, reason", s=source):
        out.setdefault(r["record_key"], []).append(r)
    return out
