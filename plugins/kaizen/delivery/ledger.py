"""The delivery ledger ``report_deliveries``: one row per report × period × sink ×
target, holding the content hash of what the sink shows, the Slack message it lives
in, a version (1 for the first delivery, +1 for every changed content) and the last
attempt's status (``delivered`` / ``failed`` with its error)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from kaizen import warehouse
from kaizen.calendar import UTC

TABLE = "report_deliveries"
KEY = ("report", "period_key", "sink", "target")
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True)
class LedgerRow:
    report: str
    period_key: str
    sink: str
    target: str
    content_hash: str
    channel_id: str | None
    message_ts: str | None
    sheet_range: str | None
    version: int
    status: str
    error: str | None
    first_delivered_at: datetime | str | None
    updated_at: datetime | str | None
    # review reports (kaizen.delivery.reviews) only; None on rows other sinks write
    thread_state: str | None = None
    summary: str | None = None


def get(engine: sa.Engine, report: str, period_key: str, sink: str, target: str) -> LedgerRow | None:
    q = sa.text(
        f"select * from {TABLE} where report = :report and period_key = :period_key "
        "and sink = :sink and target = :target"
    )
    with engine.connect() as conn:
        r = conn.execute(q, dict(report=report, period_key=period_key, sink=sink, target=target)).first()
    if r is None:
        return None
    m = dict(r._mapping)
    return LedgerRow(**{k: m.get(k) for k in LedgerRow.__dataclass_fields__})


def write(
    engine: sa.Engine,
    *,
    report: str,
    period_key: str,
    sink: str,
    target: str,
    content_hash: str,
    version: int,
    status: str,
    channel_id: str | None = None,
    message_ts: str | None = None,
    sheet_range: str | None = None,
    error: str | None = None,
    first_delivered_at: datetime | str | None = None,
    now: datetime | None = None,
    thread_state: str | None = None,
    summary: str | None = None,
) -> None:
    """Upsert the row in its own transaction. Pass the previous row's
    ``first_delivered_at`` to keep it; it is set on the first successful delivery.
    ``thread_state`` and ``summary`` (review reports) are written only when given, so
    the other sinks' writes neither need nor clear them."""
    if status not in (DELIVERED, FAILED):
        raise ValueError(f"ledger status must be {DELIVERED!r} or {FAILED!r}, got {status!r}")
    now = now or datetime.now(UTC)
    row = dict(
        report=report,
        period_key=period_key,
        sink=sink,
        target=target,
        content_hash=content_hash,
        channel_id=channel_id,
        message_ts=message_ts,
        sheet_range=sheet_range,
        version=version,
        status=status,
        error=None if error is None else str(error)[:2000],
        first_delivered_at=first_delivered_at or (now if status == DELIVERED else None),
        updated_at=now,
    )
    for column, value in (("thread_state", thread_state), ("summary", summary)):
        if value is not None:
            row[column] = value
    with engine.begin() as conn:
        warehouse.upsert(conn, TABLE, [row], KEY)


# Columns added after the first release of the table; ``create table if not exists``
# does not add them to a warehouse created earlier, so :func:`ensure_columns` does.
ADDED_COLUMNS = {"thread_state": "text", "summary": "text"}


def ensure_columns(engine: sa.Engine) -> list[str]:
    """Add :data:`ADDED_COLUMNS` missing from an existing ``report_deliveries``
    (idempotent; returns the columns added)."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(TABLE)}
    missing = [c for c in ADDED_COLUMNS if c not in present]
    if missing:
        with engine.begin() as conn:
            for column in missing:
                guard = "if not exists " if engine.dialect.name == "postgresql" else ""
                conn.exec_driver_sql(f"alter table {TABLE} add column {guard}{column} {ADDED_COLUMNS[column]}")
    return missing


def write_failure(engine: sa.Engine, row, attempted_hash: str, error: str, **key_and_extra) -> None:
    """Record a failed attempt while keeping what the sink last showed: the previous
    row's hash, version and first delivery (a never-delivered report keeps the
    attempted hash at version 1), so the next run retries instead of skipping."""
    write(
        engine,
        content_hash=row.content_hash if row else attempted_hash,
        version=row.version if row else 1,
        status=FAILED,
        error=error,
        first_delivered_at=row.first_delivered_at if row else None,
        **key_and_extra,
    )
