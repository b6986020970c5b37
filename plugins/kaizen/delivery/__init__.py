"""Delivery: send rendered artefacts to their sink exactly once per content, and keep
the ledger (``report_deliveries``) true. Takes rendered artefacts only; never renders.

``deliver`` chooses Slack when the ``kaizen_slack`` connection exists, else the outbox.
Every sink goes through :class:`kaizen.delivery.ledger.Attempt` (the skip / send /
record routine and its one versioning rule). Per (report, period, sink, target):

- same content hash as the last good delivery → nothing is sent (``unchanged``);
- a message exists (``message_ts``) → ``chat.update`` of that message plus one thread
  reply "Revised: …" (``updated``);
- otherwise → ``chat.postMessage`` (``posted``), the ts recorded.

Exactly once: before each ``chat.postMessage`` the intent (the delivery's key) is in
the ledger, and the message carries the key in its ``metadata``; a try that finds an
intent without a ts — a crash, a lost answer, a ledger write that failed after the
post — looks the key up in the channel first and adopts the message it finds
(:func:`kaizen.delivery.slack.post_once`).

The ledger row is written before ``deliver`` returns. A failed send is recorded as
status ``failed`` with the error and re-raised; a send that succeeded but whose ledger
write failed raises :class:`LedgerWriteError` (naming the message, so nobody re-posts
blindly).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from kaizen.delivery import ledger, outbox
from kaizen.delivery import slack as slack_sink
from kaizen.delivery.ledger import LedgerWriteError
from kaizen.reports.render import content_hash as payload_hash

__all__ = ["DeliveryResult", "LedgerWriteError", "deliver", "revision_note"]

SINK_SLACK = "slack"
SINK_OUTBOX = "outbox"


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
    path = str(outbox.folder(report, period_key))

    def send(_attempt: ledger.Attempt) -> ledger.Sent:
        outbox.write(report, period_key, payload, markdown)
        return ledger.Sent("written")

    attempt = ledger.Attempt(engine, report, period_key, SINK_OUTBOX, target, digest)
    done = attempt.run(send, present=lambda: outbox.exists(report, period_key))
    return DeliveryResult(report, period_key, SINK_OUTBOX, target, done.action, done.version, digest, path=path)


NO_PENDING = "{}"  # thread_state once no post is in flight (the ledger keeps a column it is not given)


def pending_intent(attempt: ledger.Attempt) -> dict | None:
    """The post an earlier try recorded it was about to make (``thread_state``)."""
    try:
        state = json.loads(attempt.where["thread_state"] or "{}")
    except ValueError:
        return None
    return state.get("pending") if isinstance(state, dict) else None


def _deliver_slack(report, period_key, payload, engine, digest, conn, kind) -> DeliveryResult:
    channel = slack_sink.resolve_channel(conn, kind)
    method = ["chat.postMessage"]  # the call in flight, for the error message
    key = f"kaizen:{report}:{period_key}"

    def send(attempt: ledger.Attempt) -> ledger.Sent:
        client = slack_sink.make_client(conn)
        ts = attempt.where["message_ts"]

        def intend(what: str):
            def record(intent: dict) -> None:
                attempt.intend(what, thread_state=json.dumps({"pending": intent}))
            return record

        if ts is None:
            posted, found = slack_sink.post_once(client, channel, payload, key, pending=pending_intent(attempt),
                                                 record_intent=intend("the review"))
            if found:  # an earlier try posted it: show this content there
                attempt.checkpoint("the review (found by its key)", message_ts=posted.ts, thread_state=NO_PENDING)
                method[0] = "chat.update"
                slack_sink.update_message(client, channel, posted.ts, payload)
        else:
            # changed content (or a retry of a failed update): the same message, plus
            # one note in its thread so readers see it moved
            method[0] = "chat.update"
            posted = slack_sink.update_message(client, channel, ts, payload)
            method[0] = "chat.postMessage (thread reply)"
            slack_sink.post_once(client, channel, {"text": revision_note(attempt.version)},
                                 f"{key}:revised:{attempt.version}", pending=pending_intent(attempt),
                                 record_intent=intend("the revision note"), thread_ts=ts)
        action = "posted" if ts is None else "updated"
        return ledger.Sent(action, {"channel_id": posted.channel_id, "message_ts": posted.ts, "thread_state": NO_PENDING})

    attempt = ledger.Attempt(engine, report, period_key, SINK_SLACK, channel, digest, where={"channel_id": channel})
    done = attempt.run(
        send, explain=lambda exc: slack_sink.explain(exc, method=method[0], channel=channel, kind=kind)
    )
    return DeliveryResult(
        report,
        period_key,
        SINK_SLACK,
        channel,
        done.action,
        done.version,
        digest,
        done.where["channel_id"],
        done.where["message_ts"],
    )
