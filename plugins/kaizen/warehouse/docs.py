"""Documentation of every table and column, read from the DDL in ``sql/`` (the first
comment line of a file describes its table's grain, a trailing ``-- comment`` its
column) plus the defaults below for the bookkeeping columns. Applied as PostgreSQL
``COMMENT ON`` by :func:`kaizen.warehouse.apply_ddl` and written to the schema page
``docs/warehouse.md`` by ``python -m kaizen views``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kaizen import config

COMMON = {
    "run_id": "Airflow run (or CLI run) that last wrote the row",
    "loaded_at": "UTC time the row was loaded",
    "quarantined_at": "UTC time the record was quarantined",
    "computed_at": "UTC time the row's content last changed",
    "symbol": "NSE symbol (NIFTY 50 constituent)",
    "quantity": "shares",
    "entry_time": "UTC time of the entry fill",
    "exit_time": "UTC time of the exit fill",
    "entry_price_inr": "entry fill price (₹)",
    "exit_price_inr": "exit fill price (₹)",
    "fees_inr": "brokerage, taxes and charges of the round trip (₹)",
    "net_pnl_inr": "net P&L after fees (₹)",
    "strategy": "strategy that opened the trade",
    "order_id": "trading system's order id",
    "trade_id": "trading system's trade id",
    "submitted_at": "UTC time the order was sent",
    "alert_id": "PagerDuty alert id",
    "incident_id": "PagerDuty incident id",
    "incident_number": "PagerDuty incident number",
    "log_entry_id": "PagerDuty log entry id",
    "issue_number": "GitHub issue number (the repository's issue #)",
    "title": "incident title as written in PagerDuty (untrusted text)",
    "service": "PagerDuty service name",
    "summary": "alert summary (untrusted text)",
    "urgency": "PagerDuty urgency (high, low)",
    "deployment_id": "GitHub deployment id",
    "environment": "GitHub deployment environment",
    "sha": "commit deployed",
    "ref": "branch, tag or sha named by the deployment",
    "created_at": "UTC creation time at the source",
    "instance": "probe target instance label",
    "error_count": "increase of the error counter in the minute",
    "kpi_id": "KPI id (kpi_definitions.kpi_id)",
    "name": "human name",
    "formula": "definition in words",
    "version": "definition version; bumped when the formula changes",
    "target": "target value (null: no target)",
    "report": "report name",
    "content_hash": "sha256 of the delivered payload",
    "channel_id": "Slack channel id the message lives in",
    "message_ts": "Slack message ts (the message's id)",
    "sheet_range": "A1 range written in the spreadsheet",
    "error": "error of the last failed attempt",
    "first_delivered_at": "UTC time of the first successful delivery",
    "updated_at": "UTC time of the last attempt",
    "period_start": "first IST date of the period",
    "period_end": "last IST date of the period (inclusive)",
    "metric": "KPI name",
    "current_value": "the KPI's value for the latest period",
    "domain": "trading, reliability, delivery, team or cost",
    "commit_count": "commits carried since the previous deployment",
    "triggered_at": "UTC time PagerDuty triggered the incident (created_at)",
    "acknowledged_at": "UTC time of the first acknowledgement",
    "resolved_at": "UTC time the incident was resolved",
    "reason": "why the record was rejected",
    "neutral_band_pct": "trend: a change within ±this % of the previous four periods' mean is stable",
    "min_sample": "fewer samples → status insufficient_data and no value",
    "conventions": "conventions chosen where the definition leaves room",
    "numerator": "the count or sum on top of the ratio (win rate: winning trades)",
    "denominator": "the count or sum below it (win rate: closed trades); value = numerator ÷ denominator (× 100 for _pct)",
    "sample_size": "rows the value was computed from",
    "is_complete": "true once the period has ended and every source has landed all of it (period_coverage); false while computed to date, and always for a period that starts before the history begins",
}


@dataclass
class Table:
    name: str
    doc: str
    columns: list[tuple[str, str, str]]  # name, type, comment


_COL = re.compile(r"^\s{4}([a-z_][a-z0-9_]*)\s+([a-z ]+?)(?:\s+(?:not null|primary key|default .*))*,?\s*(?:--\s*(.*))?$")


def tables() -> list[Table]:
    from kaizen.warehouse import DDL_FILES

    out = []
    for name in DDL_FILES:
        if name.startswith("v_"):
            continue
        text = (config.SQL_DIR / name).read_text()
        doc = text.splitlines()[0].lstrip("- ").strip()
        cols = []
        in_table = False
        for line in text.splitlines():
            if line.startswith("create table"):
                in_table = True
                continue
            if in_table and line.startswith(")"):
                break
            m = _COL.match(line) if in_table else None
            if m and m.group(1) not in {"primary"}:
                col, typ, comment = m.group(1), m.group(2).strip(), (m.group(3) or "").strip()
                cols.append((col, typ, comment or COMMON.get(col, "")))
        out.append(Table(name.rsplit("/", 1)[-1].removesuffix(".sql"), doc, cols))
    return out


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def comment_statements() -> list[str]:
    stmts = []
    for t in tables():
        stmts.append(f"comment on table {t.name} is {_q(t.doc)}")
        for col, _typ, comment in t.columns:
            stmts.append(f"comment on column {t.name}.{col} is {_q(comment)}")
    return stmts


SCHEMA_BEGIN = "<!-- schema:begin (generated by `python -m kaizen views`; do not edit) -->"
SCHEMA_END = "<!-- schema:end -->"


def schema_markdown() -> str:
    parts = []
    for t in tables():
        parts.append(f"### `{t.name}`\n{t.doc[0].upper() + t.doc[1:]}.\n\n| column | type | meaning |\n|---|---|---|")
        parts += [f"| `{c}` | {typ} | {comment} |" for c, typ, comment in t.columns]
        parts.append("")
    return "\n".join(parts)


def write_schema_doc() -> str:
    path = config.REPO_ROOT / "docs" / "warehouse.md"
    text = path.read_text()
    a, b = text.index(SCHEMA_BEGIN) + len(SCHEMA_BEGIN), text.index(SCHEMA_END)
    path.write_text(text[:a] + "\n" + schema_markdown() + "\n" + text[b:])
    return str(path.relative_to(config.REPO_ROOT))
