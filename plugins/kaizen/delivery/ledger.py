"""The delivery ledger ``report_deliveries``: one row per report × period × sink ×
target, holding the content hash of what the sink shows, where it shows it (the Slack
message, the Sheet ranges), a version and the last attempt's status (``delivered`` /
``failed`` with its error) — and :class:`Attempt`, the one routine every sink delivers
through (daily review to Slack or the outbox, review headline + thread, Sheets and
their stand-in).

The versioning rule, the same for every sink:

- the first successful delivery is version 1;
- a later successful delivery is version + 1 when its content hash differs from the
  last successful delivery's, and keeps the version when it does not (a resumed or
  redone attempt of the same content);
- a failed or incomplete attempt records status ``failed`` and its error but keeps the
  last good delivery's hash and version, so the next run retries instead of skipping
  (a report never delivered keeps the attempted hash at version 1, the version its
  first delivery will have);
- same hash as the last good delivery (status ``delivered``) → nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kaizen import warehouse
from kaizen.calendar import UTC
from kaizen.errors import PermanentError

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


def delivered(engine: sa.Engine, report: str, period_key: str) -> bool:
    """Whether ``report`` of ``period_key`` has been delivered to any sink."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            f"select 1 from {TABLE} where report = :r and period_key = :k and status = :s"),
            {"r": report, "k": period_key, "s": DELIVERED}).first() is not None


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


# ---------------------------------------------------------------------------- the routine

# The columns saying where the delivered content lives; a sink's send returns those it
# set, and a failed attempt keeps them as the sink last had them.
WHERE = ("channel_id", "message_ts", "sheet_range", "thread_state", "summary")


class LedgerWriteError(PermanentError, RuntimeError):
    """The sink has the report but the ledger does not know it."""


@dataclass(frozen=True)
class Sent:
    """What a sink's send did: its action word (``posted``, ``updated``, ``written``,
    ``synced``, ...), the :data:`WHERE` columns it set, and anything else its caller
    reports (``detail``)."""

    action: str
    where: dict = field(default_factory=dict)
    detail: Any = None


@dataclass(frozen=True)
class Outcome:
    """The result of :meth:`Attempt.run`: ``unchanged`` or the send's action, the version
    the sink now shows, the :data:`WHERE` columns as recorded, the send's ``detail``."""

    action: str
    version: int
    where: dict
    detail: Any = None


class Attempt:
    """One delivery of content ``digest`` to (report, period_key, sink, target), ruled
    by the module's versioning rule. ``where`` gives defaults for the :data:`WHERE`
    columns the row does not have yet (the channel id, say).

    Usage: ``Attempt(...).run(send, present=..., explain=...)``; a send that makes
    several calls records each one that succeeded with :meth:`checkpoint`."""

    def __init__(
        self,
        engine: sa.Engine,
        report: str,
        period_key: str,
        sink: str,
        target: str,
        digest: str,
        *,
        where: dict | None = None,
    ):
        self.engine = engine
        self.key = dict(report=report, period_key=period_key, sink=sink, target=target)
        self.digest = digest
        self.row = get(engine, report, period_key, sink, target)
        self.where = {c: getattr(self.row, c) if self.row else None for c in WHERE}
        for column, value in (where or {}).items():
            if self.where[column] is None:
                self.where[column] = value

    # -- the rule
    @property
    def delivered_before(self) -> bool:
        row = self.row
        return row is not None and (row.status == DELIVERED or row.first_delivered_at is not None)

    @property
    def unchanged(self) -> bool:
        """The last good delivery has this content: nothing to send."""
        row = self.row
        return row is not None and row.status == DELIVERED and row.content_hash == self.digest

    @property
    def revision(self) -> bool:
        """Delivered before with other content: this delivery revises it."""
        return self.delivered_before and self.row.content_hash != self.digest

    @property
    def version(self) -> int:
        """The version this content has once delivered."""
        if not self.delivered_before:
            return 1
        return self.row.version + 1 if self.revision else self.row.version

    # -- the routine
    def run(
        self,
        send: Callable[[Attempt], Sent],
        *,
        present: Callable[[], bool] | None = None,
        explain: Callable[[Exception], Exception] | None = None,
    ) -> Outcome:
        """Skip when :attr:`unchanged` (and ``present()``, when given, says the sink still
        has it); else ``send(self)`` and record the outcome before returning. A failed
        send is recorded (its error as ``explain(exc)`` words it, default the exception
        itself) and raised (``explain``'s exception, from the original); a ledger write
        that fails raises :class:`LedgerWriteError` naming what the sink has."""
        if self.unchanged and (present is None or present()):
            return Outcome("unchanged", self.row.version, dict(self.where))
        # a send that creates messages records each intent first (:meth:`intend`)
        try:
            sent = send(self)
        except LedgerWriteError:
            raise  # a checkpoint could not be written: the ledger is down, say so as is
        except Exception as exc:
            error = explain(exc) if explain else exc
            text = str(error) if explain else f"{type(exc).__name__}: {exc}"
            try:
                self._record(FAILED, error=text)
            except Exception as ledger_exc:
                raise LedgerWriteError(
                    f"{text} — and recording that failure in report_deliveries failed too: {ledger_exc}"
                ) from exc
            if error is exc:
                raise
            raise error from exc
        try:
            self._record(DELIVERED, **sent.where)
        except Exception as exc:
            raise LedgerWriteError(
                f"{self.key['report']} {self.key['period_key']} was {sent.action} {self._placed()} but the "
                f"ledger write failed: {exc}. {self._advice()}"
            ) from exc
        return Outcome(sent.action, self.version, dict(self.where), sent.detail)

    def intend(self, what: str, **where) -> None:
        """Record, before a call that creates something in the sink, that it is about to
        be made (``where`` carries the intent: the delivery key in ``thread_state``). A
        ledger that cannot take it stops the delivery before anything is sent."""
        self.where.update(where)
        try:
            self._record(FAILED, error=f"incomplete: about to post {what} {self._placed()}; a re-run looks "
                                       "for it by its key before posting")
        except Exception as exc:
            raise LedgerWriteError(
                f"{self.key['report']} {self.key['period_key']}: could not record the intent to post {what} "
                f"in report_deliveries ({exc}); nothing was sent. Re-run once the warehouse answers."
            ) from exc

    def checkpoint(self, step: str, **where) -> None:
        """Record a call of a multi-call send that succeeded, before the next call:
        status ``failed`` with error "incomplete: …" until the send completes, so a
        failure or a crash half-way leaves what the sink has on record."""
        self.where.update(where)
        try:
            self._record(
                FAILED, error=f"incomplete: stopped after {step} {self._placed()}; a re-run resumes from there"
            )
        except Exception as exc:
            raise LedgerWriteError(
                f"{self.key['report']} {self.key['period_key']}: {step} was done {self._placed()}, but the "
                f"ledger write failed: {exc}. {self._advice()}"
            ) from exc

    def _record(self, status: str, *, error: str | None = None, **where) -> None:
        self.where.update(where)
        row = self.row
        if status == DELIVERED or not self.delivered_before:
            content_hash, version = self.digest, self.version
        else:  # what the sink last showed completely
            content_hash, version = row.content_hash, row.version
        write(
            self.engine,
            **self.key,
            content_hash=content_hash,
            version=version,
            status=status,
            error=error,
            first_delivered_at=row.first_delivered_at if row else None,
            **self.where,
        )

    def _placed(self) -> str:
        w, sink, target = self.where, self.key["sink"], self.key["target"]
        if w["message_ts"]:
            return f"in Slack channel {w['channel_id'] or target} (ts {w['message_ts']})"
        if w["sheet_range"]:
            return f"to {sink} {target} ({w['sheet_range']})"
        return f"to {sink} {target}"

    def _advice(self) -> str:
        if self.where["message_ts"]:
            return "Record that ts in report_deliveries before re-running, or the next run posts a second message."
        return "A re-run delivers it again."
