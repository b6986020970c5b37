"""The demo world's goals, in their real formats:

* ``sheets/okrs.json`` — the "OKRs" tab as the Sheets API's ``values.get`` answers it
  (``{"range", "majorDimension": "ROWS", "values"}``, every cell the string a person
  typed: ``55%``, ``₹10,000``, ``Q4 2026``): the demo period's quarter (KPI-linked,
  manual by value, manual by score, a planned manual KR and one refused row — a KPI id
  the catalog does not know), the quarter before when the period reaches into it, and
  next quarter's OKRs;
* ``github/improvements.json`` — ``GET /repos/{owner}/{repo}/issues?labels=improvement&state=all``
  (the REST ``issue`` schema, newest first), with 👍 votes in ``reactions["+1"]``: the
  source document's example backlog, two improvements closed as completed with a
  ``Target KPIs:`` line (one early enough that its after window ends in the demo), one
  closed as not planned, one malformed issue (an unknown KPI id: quarantined) and a
  pull request labelled ``improvement`` (the source skips it).

Deterministic: no random draws at all — the dates are fixed fractions of the demo
period, so the other demo files are unchanged by this module.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from kaizen.demo import github as gh
from kaizen.demo.issues import _Issue
from kaizen.demo.scenario import Period, dump_json, iso_z

LABEL = {"improvement": (6120020, "0e8a16", "An idea for the improvement backlog (vote with 👍)"),
         "priority: high": (6120021, "b60205", "Improvement priority: high"),
         "priority: medium": (6120022, "fbca04", "Improvement priority: medium"),
         "priority: low": (6120023, "c5def5", "Improvement priority: low")}

# (title, priority, votes, state: open / done / not_planned, target KPIs, created, closed) — times as
# fractions of the demo's coverage span; the source document's "Current Backlog (Example)" first
BACKLOG = (
    ("Implement canary deployments", "high", 7, "open", "change_failure_rate_pct", 0.05, None),
    ("Add ML-based anomaly detection", "high", 5, "open", None, 0.10, None),
    ("Reduce Docker image size by 50%", "medium", 5, "open", None, 0.15, None),
    ("Implement blue-green deployments", "medium", 3, "open", None, 0.20, None),
    ("Improve test coverage to 85%", "low", 2, "open", None, 0.25, None),
    ("Tune the noisy alert rules (alert fatigue)", "high", 9, "done", "alerts_per_day, mttr_minutes", 0.22, 0.40),
    ("Cache the instrument master between sessions", "medium", 4, "done",
     "avg_execution_ms, p95_execution_ms", 0.45, 0.62),
    ("Move CI to self-hosted runners", "low", 1, "not_planned", None, 0.30, 0.55),
    ("Faster backtests on the research cluster", "medium", 2, "open", "backtest_minutes", 0.50, None),
)


def _label(name: str) -> dict:
    lid, colour, desc = LABEL[name]
    return {"id": lid, "node_id": f"LA_kwDOKz{lid}", "url": f"{gh.API}/repos/{gh.REPO}/labels/{name}",
            "name": name, "color": colour, "default": False, "description": desc}


def _body(title: str, kpis: str | None) -> str:
    body = f"**Idea:** {title}.\n\n**Why:** raised in the weekly review; vote with 👍.\n"
    if kpis:
        body += f"\nTarget KPIs: {kpis}\n"
    return body


def _numbers(out: Path, created: list[int]) -> list[int]:
    """Issue numbers for issues created at ``created``: the first free number after
    the number of the repository's issue created just before (github/issues.json)."""
    path = out / "github" / "issues.json"
    existing = json.loads(path.read_text()) if path.exists() else []
    known = sorted((i.get("created_at") or "", i["number"]) for i in existing if isinstance(i.get("number"), int))
    used = {n for _, n in known}
    nums = []
    for t in created:
        before = [n for iso, n in known if iso <= iso_z(t)]
        n = (max(before) if before else 1990) + 1
        while n in used:
            n += 1
        used.add(n)
        nums.append(n)
    return nums


def improvements(period: Period, out: Path) -> list[dict]:
    span = period.cov_end - period.cov_start
    at = [period.cov_start + int(f * span) for f in (row[5] for row in BACKLOG)]
    plans = []
    for (title, prio, votes, state, kpis, _c, closed_f), created in zip(BACKLOG, at, strict=True):
        closed = period.cov_start + int(closed_f * span) if closed_f is not None else None
        plans.append((created, title, prio, votes, state, kpis, closed))
    plans.sort()
    pr_at = period.cov_start + int(0.35 * span)
    numbers = _numbers(out, [p[0] for p in plans] + [pr_at])
    issues = []
    for k, ((created, title, prio, votes, state, kpis, closed), n) in enumerate(zip(plans, numbers, strict=False)):
        dev = gh.DEVELOPERS[k % len(gh.DEVELOPERS)]
        owner = gh.DEVELOPERS[(k + 2) % len(gh.DEVELOPERS)] if k % 4 != 3 else None
        it = _Issue(n, title, _body(title, kpis), [], dev, owner[:2] if owner else None, created, closed)
        body = it.json()
        body["labels"] = [_label("improvement"), _label(f"priority: {prio}")]
        body["reactions"] = {**body["reactions"], "+1": votes, "total_count": votes + (k % 3 == 0)}
        if k % 3 == 0:
            body["reactions"]["heart"] = 1
        body["comments"] = votes // 2
        body["state_reason"] = {"open": None, "done": "completed", "not_planned": "not_planned"}[state]
        issues.append(body)
    pr = _Issue(numbers[-1], "Build the backtest image from a slim base", "Part of the Docker image work.\n",
                [], gh.DEVELOPERS[1], None, pr_at, None, pr=True).json()
    pr["labels"] = [_label("improvement")]
    issues.append(pr)
    issues.sort(key=lambda i: (i["created_at"], i["number"]), reverse=True)  # newest first
    return issues


def _quarter(d: date) -> tuple[int, int]:
    return d.year, (d.month - 1) // 3 + 1


def _key(y: int, q: int, style: int = 0) -> str:
    return (f"{y}-Q{q}", f"Q{q} {y}", f"{y} Q{q}")[style % 3]


def okr_rows(period: Period) -> list[list[str]]:
    y, q = _quarter(period.end)
    ny, nq = (y + 1, 1) if q == 4 else (y, q + 1)
    header = ["Quarter", "Objective", "Key result", "Owner", "KPI id", "Baseline", "Target", "Value", "Score",
              "Notes"]
    cur = [
        [_key(y, q), "Trade profitably and consistently", "Win rate of 58 % over the quarter", "Priya Iyer",
         "win_rate_pct", "55%", "58%", "", "", ""],
        [_key(y, q, 1), "Trade profitably and consistently", "Average daily P&L of ₹10,000", "Arjun Mehta",
         "avg_daily_pnl_inr", "", "₹10,000", "", "", "met / not met: no baseline"],
        [_key(y, q), "Trade profitably and consistently", "Order execution success of 99.5 %", "Rohan Kulkarni",
         "execution_success_pct", "99%", "99.5%", "", "", ""],
        [_key(y, q), "Run a calm, reliable platform", "MTTR under 15 minutes", "Sneha Reddy", "mttr_minutes",
         "25", "15", "", "", ""],
        [_key(y, q, 2), "Run a calm, reliable platform", "Alert fatigue down to 5 alerts a day", "Vikram Nair",
         "alerts_per_day", "8", "5", "", "", ""],
        [_key(y, q), "Run a calm, reliable platform", "A runbook for each of the 10 services", "Kavya Sharma",
         "", "0", "10", "7", "", "counted by hand"],
        [_key(y, q), "Grow the team's practice", "Two tech talks every month", "Kavya Sharma", "", "", "", "",
         "60%", "graded by the team"],
        [_key(y, q), "Grow the team's practice", "Documentation coverage of 95 %", "Sneha Reddy",
         "documentation_coverage", "87%", "95%", "", "", "typo in the KPI id: refused"],
    ]
    prev = []
    if _quarter(period.start) != (y, q):
        py, pq = _quarter(period.start)
        prev = [
            [_key(py, pq), "Trade profitably and consistently", "Win rate of 57 % over the quarter", "Priya Iyer",
             "win_rate_pct", "55%", "57%", "", "", ""],
            [_key(py, pq), "Run a calm, reliable platform", "Uptime of 99.95 %", "Sneha Reddy", "uptime_pct",
             "99.9%", "99.95%", "", "", ""],
        ]
    nxt = [
        [_key(ny, nq), "Ship safer changes", "Change failure rate below 10 %", "Arjun Mehta",
         "change_failure_rate_pct", "15%", "10%", "", "", ""],
        [_key(ny, nq), "Ship safer changes", "Canary deployments for trading-api and order-router",
         "Vikram Nair", "", "0", "2", "", "", "services moved to canary"],
        [_key(ny, nq), "Trade profitably and consistently", "Win rate of 58.5 % over the quarter", "Priya Iyer",
         "win_rate_pct", "57%", "58.5%", "", "", ""],
    ]
    return [header, *prev, *cur, [], *nxt]


def write(period: Period, out: Path) -> dict:
    out = Path(out)
    issues = improvements(period, out)
    dump_json(out / "github" / "improvements.json", issues)
    rows = okr_rows(period)
    width = max(len(r) for r in rows)
    last_col = chr(ord("A") + width - 1)
    body = {"range": f"OKRs!A1:{last_col}{len(rows)}", "majorDimension": "ROWS",
            "values": [list(r) for r in rows]}
    # the API drops trailing empty cells of a row, and an empty row is []
    body["values"] = [r[: max((i + 1 for i, c in enumerate(r) if c != ""), default=0)] for r in body["values"]]
    dump_json(out / "sheets" / "okrs.json", body)
    return {"improvements": sum(1 for i in issues if "pull_request" not in i), "okr_rows": len(rows) - 1}
