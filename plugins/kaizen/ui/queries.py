"""What the Kaizen page shows, read from the warehouse with SQLAlchemy (no pandas: the
API server imports this): the scorecard (``v_scorecard``: each grain's latest period,
every KPI's target, value, status and trend), the latest review of each cadence with
links to its documents (``report_deliveries``), the quarantine count per day
(``quarantine``) and what each source has landed (``source_coverage``,
``period_coverage``). Every function takes a connection and returns plain JSON-able
dicts; :mod:`kaizen.ui.app` renders them as HTML or JSON."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.period import GRAINS, Period
from kaizen.warehouse.coverage import parse_ts

# the reviews, one per cadence, by the ledger's report name (= their DAG ids)
REVIEWS = {"daily_review": "day", "weekly_review": "week", "monthly_review": "month", "quarterly_review": "quarter"}
TREND_TEXT = {"improving": "↑ improving", "declining": "↓ declining", "stable": "→ stable"}
STATUS_TEXT = {
    "on_target": "on target",
    "off_target": "off target",
    "insufficient_data": "insufficient data",
    "no_events": "no events",
    "stale": "stale",
}
QUARANTINE_DAYS = 30  # calendar days back from the latest day the warehouse knows
SLACK_CHANNEL_URL = "https://slack.com/app_redirect?channel={channel}"  # Slack's documented channel link
SHEET_URL = "https://docs.google.com/spreadsheets/d/{sheet}"


def period_text(period: Period) -> str:
    """'Fri 27 Nov 2026' for a day, '23–29 Nov 2026' for a longer period."""
    if period.grain == "day":
        return f"{period.start:%a} {period.start.day} {period.start:%b %Y}"
    return period.range_text


def ist_text(value) -> str | None:
    """A stored timestamp as '27 Nov 2026 16:00 IST' (None stays None)."""
    if value is None:
        return None
    return parse_ts(value).astimezone(cal.IST).strftime("%d %b %Y %H:%M IST")


# ---------------------------------------------------------------- scorecard
def scorecard(conn: sa.Connection) -> list[dict]:
    """One entry per grain that has KPIs, in grain order: the latest period (key, dates,
    whether complete) and its KPIs by domain and id, each with target, value, status
    and trend — raw, and as the reviews print them."""
    from kaizen.reports import model

    rows = conn.execute(sa.text(
        "select grain, period_start, period_end, domain, kpi_id, metric, unit, comparator, target,"
        " current_value, status, trend, sample_size, is_complete from v_scorecard order by domain, kpi_id"
    )).mappings().all()
    out = []
    for grain in GRAINS:
        mine = [r for r in rows if r["grain"] == grain]
        if not mine:
            continue
        period = Period.of(grain, warehouse.as_date(mine[0]["period_start"]))
        kpis = []
        for r in mine:
            fig = model.make_figure(
                r["kpi_id"],
                {"target": r["target"], "value": r["current_value"], "numerator": None, "denominator": None,
                 "status": r["status"]},
                {"name": r["metric"], "unit": r["unit"], "comparator": r["comparator"], "target": r["target"]},
                report="review",
            )
            kpis.append({
                "kpi_id": r["kpi_id"], "metric": fig.label, "domain": r["domain"], "unit": r["unit"],
                "target": fig.target, "comparator": r["comparator"], "value": fig.value, "status": r["status"],
                "trend": r["trend"], "sample_size": r["sample_size"],
                "target_text": fig.target_text, "value_text": fig.display, "mark": fig.mark,
                "status_text": STATUS_TEXT.get(r["status"], r["status"]),
                "trend_text": TREND_TEXT.get(r["trend"], "n/a"),
            })
        out.append({
            "grain": grain, "period_key": period.key, "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(), "range_text": period_text(period),
            "is_complete": all(bool(r["is_complete"]) for r in mine), "kpis": kpis,
        })
    return out


# ---------------------------------------------------------------- reports and their documents
def document_links(rows: list[dict], report: str, period_key: str, outbox_href: str) -> list[dict]:
    """Where people open a delivered review, best first, from its ledger rows: the
    published document (sink ``publish``, target its http(s) URL), the Slack channel
    the headline went to (Slack's app_redirect link: the message's permalink would need
    the workspace's address), the outbox copy (served by this app at ``outbox_href``)
    and the Google Sheet. Failed attempts give no link."""
    order = {"publish": 0, "slack": 1, "outbox": 2, "sheets": 3}
    links = []
    for r in sorted(rows, key=lambda r: (order.get(r["sink"], 9), r["target"])):
        if r["status"] != "delivered":
            continue
        sink, target = r["sink"], str(r["target"] or "")
        if sink == "publish" and target.startswith(("https://", "http://")):
            links.append({"kind": "document", "label": "Published document", "href": target, "external": True})
        elif sink == "slack" and r.get("channel_id"):
            links.append({"kind": "slack", "label": "Slack channel", "external": True,
                          "href": SLACK_CHANNEL_URL.format(channel=r["channel_id"]),
                          "title": f"message ts {r.get('message_ts')} in channel {r['channel_id']}"})
        elif sink == "outbox" and target == f"{report}/{period_key}":
            links.append({"kind": "outbox", "label": "Outbox copy", "href": outbox_href, "external": False})
        elif sink == "sheets" and target:
            links.append({"kind": "sheet", "label": "Google Sheet", "external": True,
                          "href": SHEET_URL.format(sheet=target)})
    return links


def ledger_rows(conn: sa.Connection, report: str, period_key: str) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(
        "select report, period_key, sink, target, channel_id, message_ts, version, status, error, updated_at"
        " from report_deliveries where report = :report and period_key = :key"
    ), {"report": report, "key": period_key}).mappings()]


def latest_reports(conn: sa.Connection, outbox_href) -> list[dict]:
    """Per cadence, the latest period delivered anywhere: its sinks (with the last
    attempt's status and error) and the links to its documents, best first.
    ``outbox_href(report, period_key)`` is where this app serves the outbox copy."""
    out = []
    for report, grain in REVIEWS.items():
        key = conn.execute(sa.text(
            "select max(period_key) from report_deliveries where report = :report and status = 'delivered'"
        ), {"report": report}).scalar()
        if key is None:
            out.append({"report": report, "grain": grain, "period_key": None, "links": [], "sinks": []})
            continue
        rows = ledger_rows(conn, report, key)
        period = Period.parse(key)
        out.append({
            "report": report, "grain": grain, "period_key": key, "range_text": period_text(period),
            "version": max(int(r["version"]) for r in rows),
            "updated_at": ist_text(max((r["updated_at"] for r in rows), key=parse_ts)),
            "links": document_links(rows, report, key, outbox_href(report, key)),
            "sinks": [{"sink": r["sink"], "target": r["target"], "status": r["status"], "error": r["error"],
                       "version": r["version"], "updated_at": ist_text(r["updated_at"])} for r in rows],
        })
    return out


# ---------------------------------------------------------------- quarantine
def latest_day(conn: sa.Connection) -> date | None:
    """The latest day the warehouse knows: a day KPI's trading day or an extract day."""
    days = [conn.execute(sa.text(q)).scalar() for q in (
        "select max(period_start) from kpi_values where grain = 'day'", "select max(extract_day) from quarantine")]
    days = [warehouse.as_date(d) for d in days if d is not None]
    return max(days) if days else None


def quarantine_by_day(conn: sa.Connection, days: int = QUARANTINE_DAYS) -> dict:
    """Records quarantined per extract day over the ``days`` calendar days up to the
    latest day the warehouse knows, newest first: every trading day of the span (0
    when nothing was refused) and any other day with records, each with its count by
    source."""
    last = latest_day(conn)
    if last is None:
        return {"first": None, "last": None, "total": 0, "days": []}
    first = last - timedelta(days=days - 1)
    counts: dict[date, dict[str, int]] = {d: {} for d in cal.trading_days(first, last)}
    for day, source, n in conn.execute(sa.text(
        "select extract_day, source, count(*) from quarantine where extract_day between :first and :last"
        " group by extract_day, source"
    ), {"first": warehouse.bind_value(first), "last": warehouse.bind_value(last)}):
        counts.setdefault(warehouse.as_date(day), {})[source] = int(n)
    rows = [{"day": d.isoformat(), "records": sum(by.values()), "by_source": dict(sorted(by.items()))}
            for d, by in sorted(counts.items(), reverse=True)]
    return {"first": first.isoformat(), "last": last.isoformat(), "total": sum(r["records"] for r in rows),
            "days": rows}


# ---------------------------------------------------------------- coverage
def coverage(conn: sa.Connection, periods: dict[str, str]) -> list[dict]:
    """Per source: the time it has landed (first instant, end of the last span, the
    gaps between spans) and, for each grain's period in ``periods`` ({grain: ISO start},
    the scorecard's), whether the source covers it or from when it is missing."""
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for source, a, b in conn.execute(sa.text(
            "select source, covered_from, covered_to from source_coverage order by source, covered_from")):
        spans.setdefault(source, []).append((parse_ts(a), parse_ts(b)))
    covered: dict[tuple[str, str], dict] = {}
    for grain, start in periods.items():
        for r in conn.execute(sa.text(
            "select source, is_covered, missing_from from period_coverage where grain = :grain and period_start = :start"
        ), {"grain": grain, "start": start}).mappings():
            covered[(r["source"], grain)] = {"is_covered": bool(r["is_covered"]),
                                             "missing_from": ist_text(r["missing_from"])}
    out = []
    for source in sorted(spans.keys() | {s for s, _ in covered}):
        landed = spans.get(source, [])
        gaps = [{"from": ist_text(b), "to": ist_text(a2)} for (_, b), (a2, _) in zip(landed, landed[1:], strict=False)]
        out.append({
            "source": source,
            "landed_from": ist_text(landed[0][0]) if landed else None,
            "landed_to": ist_text(landed[-1][1]) if landed else None,
            "gaps": gaps,
            "periods": {g: covered.get((source, g)) for g in periods},
        })
    return out


def page(conn: sa.Connection, outbox_href) -> dict:
    """Everything the page shows, in one read."""
    cards = scorecard(conn)
    return {
        "scorecard": cards,
        "reports": latest_reports(conn, outbox_href),
        "quarantine": quarantine_by_day(conn),
        "coverage": coverage(conn, {c["grain"]: c["period_start"] for c in cards}),
    }
