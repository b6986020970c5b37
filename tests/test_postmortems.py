"""Post-mortem drafts (kaizen.reports.postmortem): the exact draft of a hand-built P1
incident (log-entry timeline in IST, probe downtime, trades in the incident window,
linked action items, 48 h due time), file naming, which incidents get a draft,
idempotent re-runs, and a human-edited draft never overwritten — SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from kaizen import warehouse
from kaizen.reports import postmortem
from kaizen.warehouse import facts

LOADED = datetime(2026, 3, 20, tzinfo=UTC)
D = date(2026, 3, 11)


def utc(d, h, mi=0):
    return datetime(2026, 3, d, h, mi, tzinfo=UTC)


def insert(engine, table, rows):
    with engine.begin() as conn:
        warehouse.replace_slice(
            conn, table, "1 = 0", {}, [{**r, "run_id": "seed", "loaded_at": LOADED} for r in rows]
        )
        facts.rebuild(conn)  # as the loader writes them with the rows


def incident(iid, number, prio, title, trig, res, impact=None, caused=None):
    return {
        "incident_id": iid,
        "incident_number": number,
        "title": title,
        "service": "trading-api",
        "priority": prio,
        "urgency": "high",
        "status": "resolved",
        "triggered_at": trig,
        "acknowledged_at": trig + timedelta(minutes=2),
        "resolved_at": res,
        "impact_start_at": impact,
        "caused_by_deployment_id": caused,
    }


def trade(tid, entry, exit_, pnl):
    return {
        "trade_id": tid,
        "trading_day": D,
        "symbol": "INFY",
        "side": "BUY",
        "quantity": 10,
        "entry_time": entry,
        "exit_time": exit_,
        "entry_price_inr": 1500.0,
        "exit_price_inr": 1500.0,
        "fees_inr": 20.0,
        "net_pnl_inr": float(pnl),
        "strategy": "orb",
        "ab_arm": None,
    }


def item(num, title, prio, owner, created, closed=None, kind="action_item", incident_id="PABC123"):
    sla = {"P0": 7, "P1": 30, "P2": 90}.get(prio or "")
    return {
        "issue_number": num,
        "kind": kind,
        "title": title,
        "priority": prio,
        "incident_id": incident_id,
        "owner": owner,
        "state": "closed" if closed else "open",
        "state_reason": None,
        "created_at": created,
        "updated_at": closed or created,
        "closed_at": closed,
        "due_at": created + timedelta(days=sla) if sla and kind == "action_item" else None,
        "html_url": None,
    }


TITLE = "Order router <down> & *fail* | #1"


def seed(engine):
    # P1 incident: impact 10:00 IST (04:30Z), triggered 10:03, resolved 10:23 IST (04:53Z)
    insert(
        engine,
        "raw_incidents",
        [
            incident("PABC123", 42, "P1", TITLE, utc(11, 4, 33), utc(11, 4, 53), utc(11, 4, 30), "D2"),
            incident("PLOW001", 43, "P2", "Noisy alert", utc(11, 5), utc(11, 5, 30)),  # P2: no draft
            incident("POLD001", 40, "P0", "Old outage", utc(9, 5), utc(9, 6)),  # resolved before the range
        ],
    )
    insert(
        engine,
        "raw_incident_log_entries",
        [
            {
                "log_entry_id": "L1",
                "incident_id": "PABC123",
                "type": "trigger_log_entry",
                "created_at": utc(11, 4, 33),
                "summary": "Triggered through the API.",
            },
            {
                "log_entry_id": "L2",
                "incident_id": "PABC123",
                "type": "notify_log_entry",
                "created_at": utc(11, 4, 34),
                "summary": "Notified Asha Rao by push.",
            },
            {
                "log_entry_id": "L3",
                "incident_id": "PABC123",
                "type": "acknowledge_log_entry",
                "created_at": utc(11, 4, 35),
                "summary": "Acknowledged by Asha Rao.",
            },
            {
                "log_entry_id": "L4",
                "incident_id": "PABC123",
                "type": "annotate_log_entry",
                "created_at": utc(11, 4, 36),
                "summary": "Note added: Failover <started> @channel",
            },
            {
                "log_entry_id": "L5",
                "incident_id": "PABC123",
                "type": "resolve_log_entry",
                "created_at": utc(11, 4, 53),
                "summary": "Resolved by Dev Kapoor.",
            },
        ],
    )
    # Probes 04:20Z–05:10Z, two instances. Down samples: 04:30 (covers 04:29–04:30, before
    # impact: not counted), 04:31 and 04:40 (both instances), 04:53 (only b: the minute is
    # down), 04:54 (covers 04:53–04:54, after the resolution minute: not counted) → 3 minutes.
    down_a = {utc(11, 4, 30), utc(11, 4, 31), utc(11, 4, 40), utc(11, 4, 54)}
    down_b = down_a | {utc(11, 4, 53)}
    probes, t = [], utc(11, 4, 20)
    while t <= utc(11, 5, 10):
        probes.append({"instance": "a", "ts": t, "is_up": 0 if t in down_a else 1})
        probes.append({"instance": "b", "ts": t, "is_up": 0 if t in down_b else 1})
        t += timedelta(minutes=1)
    insert(engine, "raw_probe_minutes", probes)
    # Trades: T1 exits inside the window (+1,500), T2 enters inside (−2,500); T3 before,
    # T4 spans the window without entry or exit inside → 2 trades, −₹1,000.
    insert(
        engine,
        "raw_trades",
        [
            trade("T1", utc(11, 4), utc(11, 4, 40), 1500),
            trade("T2", utc(11, 4, 45), utc(11, 5, 30), -2500),
            trade("T3", utc(11, 3, 50), utc(11, 4, 20), 999),
            trade("T4", utc(11, 4, 20), utc(11, 5, 10), 100),
        ],
    )
    insert(
        engine,
        "raw_action_items",
        [
            item(9, "Document failover", "P3", None, utc(11, 6)),
            item(8, "Restart runbook", "P1", "arjun", utc(11, 7)),  # due 10 Apr 07:00Z
            item(7, "Fix pool | leak", "P0", "priya_iyer", utc(11, 6), utc(12, 6)),  # due 18 Mar 06:00Z
            item(10, "Post-mortem: order router", None, "asha", utc(12, 6), kind="postmortem"),
            item(11, "Other incident's item", "P0", "asha", utc(11, 6), incident_id="PLOW001"),
        ],
    )


EXPECTED_BODY = """\
# Post-Mortem: Order router &lt;down&gt; &amp; \\*fail\\* \\| \\#1

**Date:** 2026-03-11
**Incident ID:** INC-2026-042
**Severity:** P1
**Duration:** 20 minutes
**Facilitator:** [Name]
**Due:** within 48 h of resolution → 2026-03-13 10:23 IST

## Executive Summary
PagerDuty incident #42 (PABC123) on trading-api: triggered 2026-03-11 10:03 IST, resolved 2026-03-11 10:23 IST; linked to GitHub deployment D2.
[2-3 sentences describing what happened and impact]

## Impact
- **Downtime:** 3 minutes (probe minutes down, 2026-03-11 10:00 – 10:23 IST)
- **Users Affected:** [XXX]
- **Trades Affected:** 2 (entered or exited 2026-03-11 10:00 – 10:23 IST)
- **Revenue Impact:** −₹1,000 (net P&L of those trades)
- **Data Loss:** [Yes/No - details]

## Timeline
| Time (IST) | Event |
|------------|-------|
| 10:00 | Customer impact began |
| 10:03 | Alert fired — Triggered through the API. |
| 10:05 | Acknowledged — Acknowledged by Asha Rao. |
| 10:06 | Note — Note added: Failover &lt;started&gt; @channel |
| 10:23 | Resolved — Resolved by Dev Kapoor. |

## Root Cause
[Detailed technical analysis of what caused the incident]

### Contributing Factors
1. [Factor 1]
2. [Factor 2]
3. [Factor 3]

## What Went Well ✅
1. [Something that worked well]
2. [Good decision made]
3. [Effective communication]

## What Went Wrong ❌
1. [Something that didn't work]
2. [Delayed response]
3. [Communication gap]

## Lessons Learned 📚
1. [Key lesson 1]
2. [Key lesson 2]
3. [Key lesson 3]

## Action Items
| Action | Owner | Due Date | Priority | Status |
|--------|-------|----------|----------|--------|
| Fix pool \\| leak (#7) | @priya\\_iyer | 2026-03-18 | P0 | Completed |
| Restart runbook (#8) | @arjun | 2026-04-10 | P1 | Open |
| Document failover (#9) | [Name] | best effort | P3 | Open |

## Prevention
How will we prevent this from happening again?

1. **Immediate (this week):**
   - [Action 1]
   - [Action 2]

2. **Short-term (this month):**
   - [Action 1]
   - [Action 2]

3. **Long-term (this quarter):**
   - [Action 1]
   - [Action 2]

## Follow-up
- **Review Date:** 2026-04-11 (1 month from incident)
- **Success Criteria:** [How we'll know prevention worked]
"""


def test_draft_exact_content_and_name(engine, tmp_path):
    seed(engine)
    out = postmortem.draft_postmortems(engine, D, D, tmp_path)
    path = tmp_path / "post-mortems" / "20260311_order_router_down_fail_1.md"
    assert out == [
        {"incident_id": "PABC123", "path": str(path), "due_at": "2026-03-13T04:53:00Z", "status": "written"}
    ]
    text = path.read_text(encoding="utf-8")
    first, _, body = text.partition("\n")
    assert body == EXPECTED_BODY
    assert first == postmortem.marker_line("PABC123", EXPECTED_BODY)
    assert first.startswith("<!-- kaizen:draft incident=PABC123 sha256=")
    assert sorted(p.name for p in (tmp_path / "post-mortems").iterdir()) == [path.name]


def test_range_is_ist_days_of_resolution(engine, tmp_path):
    seed(engine)
    assert postmortem.draft_postmortems(engine, date(2026, 3, 12), date(2026, 3, 13), tmp_path) == []
    got = postmortem.draft_postmortems(engine, date(2026, 3, 9), date(2026, 3, 11), tmp_path)
    assert [r["incident_id"] for r in got] == ["POLD001", "PABC123"]  # by resolution time; never the P2
    assert (tmp_path / "post-mortems" / "20260309_old_outage.md").exists()


def test_rerun_is_idempotent_and_untouched_drafts_follow_the_data(engine, tmp_path):
    seed(engine)
    (first,) = postmortem.draft_postmortems(engine, D, D, tmp_path)
    path = tmp_path / "post-mortems" / "20260311_order_router_down_fail_1.md"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    (again,) = postmortem.draft_postmortems(engine, D, D, tmp_path)
    assert again["status"] == "unchanged"
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    # new data (an action item closed) → the untouched draft is regenerated
    with engine.begin() as conn:
        conn.execute(sa.text("update raw_action_items set state = 'closed' where issue_number = 8"))
    (third,) = postmortem.draft_postmortems(engine, D, D, tmp_path)
    assert third["status"] == "written"
    assert "| Restart runbook (#8) | @arjun | 2026-04-10 | P1 | Completed |" in path.read_text(
        encoding="utf-8"
    )
    assert postmortem.is_untouched_draft(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("edit", ["body", "marker_removed"])
def test_human_edited_draft_is_never_overwritten(engine, tmp_path, edit):
    seed(engine)
    postmortem.draft_postmortems(engine, D, D, tmp_path)
    path = tmp_path / "post-mortems" / "20260311_order_router_down_fail_1.md"
    text = path.read_text(encoding="utf-8")
    if edit == "body":
        text = text.replace(
            "[Detailed technical analysis of what caused the incident]",
            "Connection pool exhausted by a retry storm.",
        )
    else:
        text = text.partition("\n")[2]
    path.write_text(text, encoding="utf-8")
    with engine.begin() as conn:  # even when the data changed since
        conn.execute(sa.text("update raw_action_items set state = 'closed' where issue_number = 8"))
    (res,) = postmortem.draft_postmortems(engine, D, D, tmp_path)
    assert res["status"] == "skipped" and "edited by hand" in res["reason"]
    assert path.read_text(encoding="utf-8") == text


def test_same_date_same_title_gets_the_incident_number(engine, tmp_path):
    seed(engine)
    insert(
        engine,
        "raw_incidents",
        [
            incident("PABC999", 57, "P0", TITLE, utc(11, 8), utc(11, 8, 30)),
        ],
    )
    got = {r["incident_id"]: r["path"] for r in postmortem.draft_postmortems(engine, D, D, tmp_path)}
    assert got["PABC123"].endswith("/20260311_order_router_down_fail_1.md")
    assert got["PABC999"].endswith("/20260311_order_router_down_fail_1_57.md")
    # without log entries the timeline falls back to the incident's own times
    text = (tmp_path / "post-mortems" / "20260311_order_router_down_fail_1_57.md").read_text(encoding="utf-8")
    assert "| 13:30 | Alert fired |\n| 13:32 | Acknowledged |\n| 14:00 | Resolved |\n" in text
    # no probe samples in its window (the seeded probes end at 05:10Z): said so, never "0 minutes"
    assert "- **Downtime:** [no probe data for 2026-03-11 13:30 – 14:00 IST]\n" in text
    assert "| Fix root cause | [Name] | [Date] | P0 | Open |" in text  # no items yet: the template's rows


@pytest.mark.parametrize(
    "title, slug",
    [
        (
            "trading-api blackbox probe failing: probe_success == 0 (P1)",
            "trading_api_blackbox_probe_failing_probe_success_0_p1",
        ),
        ("Ünïcödé — 注文 outage!!", "unicode_outage"),
        ("注文", "incident"),
        ("x" * 80, "x" * 60),
        ("a " * 40, ("a_" * 30).rstrip("_")),
    ],
)
def test_slugify(title, slug):
    assert postmortem.slugify(title) == slug
    assert len(slug) <= 60 and slug.isascii()


def test_incident_ref_and_review_date():
    assert postmortem.incident_ref(7, datetime(2025, 12, 31, 19, 0, tzinfo=UTC)) == "INC-2026-007"  # IST year
    assert postmortem.incident_ref(4123, datetime(2026, 3, 1, tzinfo=UTC)) == "INC-2026-4123"
    assert postmortem.add_month(date(2026, 1, 31)) == date(2026, 2, 28)
    assert postmortem.add_month(date(2026, 12, 15)) == date(2027, 1, 15)
