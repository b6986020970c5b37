"""Delivery: send rendered artefacts to their sink exactly once per content, and keep
the ledger (``report_deliveries``) true. Takes rendered artefacts only; never renders.

``deliver`` chooses Slack when the ``kaizen_slack`` connection exists, else the outbox.
Ledger semantics per (report, period, sink, target):

- same content hash, last attempt delivered → nothing is sent (``unchanged``);
- a message exists (``message_ts``) and the content changed → ``chat.update`` of that
  message plus one thread reply "Revised: …" (``updated``), version + 1;
- otherwise → ``chat.postMessage`` (``posted``), the ts recorded, version 1.

The ledger row is written before ``deliver`` returns. A failed send is recorded as
status ``failed`` with the error and re-raised; a send that succeeded but whose ledger
write failed raises too (naming the message, so nobody re-posts blindly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from kaizen.delivery import ledger, outbox
from kaizen.delivery import slack as slack_sink
from kaizen.reports.render import content_hash as payload_hash

SINK_SLACK = "slack"
SINK_OUTBOX = "outbox"


class LedgerWriteError(RuntimeError):
    """The sink has the report but the ledger does not know it."""


@dataclass(frozen=True)
class DeliveryResult:
    report: str
    period_key: str
    sink: str  # slack or outbox
    target: str  # channel id, or the outbox folder relative to the out dir
    action: str  # posted, updated, unchanged, written
    version: int
    content_hash: str
    channel_id: str | None = None
    message_ts: str | None = None
    path: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def revision_note(version: int) -> str:
    return (
        f"Revised: this review was re-run and its figures changed (version {version}). "
        "The message above now shows the current review."
    )


def deliver(
    report: str,
    period_key: str,
    payload: dict,
    markdown: str,
    engine: sa.Engine,
    *,
    channel_kind: str = "daily",
    sink: str | None = None,
) -> DeliveryResult:
    """Deliver one rendered report for one period; see the module docstring.

    ``sink`` forces ``"outbox"`` (e.g. a backfill that must not post) or ``"slack"``
    (fails when no Slack connection exists); by default Slack when configured."""
    if sink not in (None, SINK_SLACK, SINK_OUTBOX):
        raise ValueError(f"sink: {sink!r} is not slack or outbox")
    digest = payload_hash(payload)
    conn = None if sink == SINK_OUTBOX else slack_sink.get_slack_connection()
    if conn is None and sink == SINK_SLACK:
        raise LookupError("sink: slack was asked for but connection 'kaizen_slack' is not configured")
    if conn is None:
        return _deliver_outbox(report, period_key, payload, markdown, engine, digest)
    return _deliver_slack(report, period_key, payload, engine, digest, conn, channel_kind)


def _deliver_outbox(report, period_key, payload, markdown, engine, digest) -> DeliveryResult:
    target = outbox.target(report, period_key)
    row = ledger.get(engine, report, period_key, SINK_OUTBOX, target)
    path = str(outbox.folder(report, period_key))
    if (
        row
        and row.status == ledger.DELIVERED
        and row.content_hash == digest
        and outbox.exists(report, period_key)
    ):
        return DeliveryResult(
            report, period_key, SINK_OUTBOX, target, "unchanged", row.version, digest, path=path
        )
    version = 1 if row is None else (row.version + 1 if row.content_hash != digest else row.version)
    common = dict(report=report, period_key=period_key, sink=SINK_OUTBOX, target=target)
    try:
        outbox.write(report, period_key, payload, markdown)
    except Exception as exc:
        ledger.write_failure(engine, row, digest, f"{type(exc).__name__}: {exc}", **common)
        raise
    ledger.write(
        engine,
        **common,
        content_hash=digest,
        version=version,
        status=ledger.DELIVERED,
        first_delivered_at=row.first_delivered_at if row else None,
    )
    return DeliveryResult(report, period_key, SINK_OUTBOX, target, "written", version, digest, path=path)


def _deliver_slack(report, period_key, payload, engine, digest, conn, kind) -> DeliveryResult:
    channel = slack_sink.resolve_channel(conn, kind)
    row = ledger.get(engine, report, period_key, SINK_SLACK, channel)
    if row and row.status == ledger.DELIVERED and row.content_hash == digest:
        return DeliveryResult(
            report,
            period_key,
            SINK_SLACK,
            channel,
            "unchanged",
            row.version,
            digest,
            row.channel_id,
            row.message_ts,
        )
    common = dict(report=report, period_key=period_key, sink=SINK_SLACK, target=channel)
    client = slack_sink.make_client(conn)
    existing_ts = row.message_ts if row else None
    method = "chat.update" if existing_ts else "chat.postMessage"
    try:
        if existing_ts:
            # The changed-content path (or a retry of a failed update): same message,
            # plus one note in its thread so readers see it moved.
            version = row.version + 1 if row.content_hash != digest else row.version
            posted = slack_sink.update_message(client, channel, existing_ts, payload)
            method = "chat.postMessage (thread reply)"
            slack_sink.thread_reply(client, channel, existing_ts, revision_note(version))
            action = "updated"
        else:
            version = 1
            posted = slack_sink.post_message(client, channel, payload)
            action = "posted"
    except Exception as exc:
        error = slack_sink.explain(exc, method=method, channel=channel, kind=kind)
        try:
            ledger.write_failure(
                engine,
                row,
                digest,
                str(error),
                **common,
                channel_id=row.channel_id if row else channel,
                message_ts=existing_ts,
            )
        except Exception as ledger_exc:
            raise LedgerWriteError(
                f"{error} — and recording that failure in report_deliveries failed too: {ledger_exc}"
            ) from exc
        raise error from exc
    try:
        ledger.write(
            engine,
            **common,
            content_hash=digest,
            version=version,
            status=ledger.DELIVERED,
            channel_id=posted.channel_id,
            message_ts=posted.ts,
            first_delivered_at=row.first_delivered_at if row else None,
        )
    except Exception as exc:
        raise LedgerWriteError(
            f"{report} {period_key} was {action} in Slack channel {posted.channel_id} (ts {posted.ts}) but the "
            f"ledger write failed: {exc}. Insert that ts into report_deliveries before re-running, "
            "or the next run posts a second message."
        ) from exc
    return DeliveryResult(
        report, period_key, SINK_SLACK, channel, action, version, digest, posted.channel_id, posted.ts
    )
