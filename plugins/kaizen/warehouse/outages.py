"""Sources that could not deliver a daily review window (``source_outages``).

A source whose extraction fails — unreachable, refusing the token, or answering
nothing where something must exist (a Prometheus query that matches no series) — gets
one row per trading day with the reason of its last attempt. The review is still
rendered and posted on time, with that source's sections marked
"unavailable: <source> (<reason>)" (:mod:`kaizen.reports.daily`); an unreachable source
and an empty answer end in this same state. When the source lands the window — a
re-run of the day, or a later day's run, which re-extracts the last :data:`HEAL_DAYS`
days a source missed (:func:`kaizen.pipeline.extract_source`) — the row is marked
recovered (kept as history) and the re-rendered review revises the posted message in
place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import warehouse

REASON_CHARS = 300
HEAL_DAYS = 7  # how far back a day's run re-extracts the windows a source missed


@dataclass(frozen=True)
class Outage:
    source: str
    day: date
    reason: str
    transient: bool
    attempts: int

    @property
    def text(self) -> str:
        """What a review shows for the source: ``unavailable: prometheus (<reason>)``."""
        return f"unavailable: {self.source} ({self.reason})"


def reason_of(exc: BaseException) -> str:
    """The error in one line, as short as a review can show it."""
    from kaizen.errors import KaizenError

    text = " ".join(str(exc).split())
    if not isinstance(exc, KaizenError):  # Kaizen's own errors already say what failed
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def record(engine: sa.Engine, source: str, day: date, exc: BaseException, run_id: str | None,
           at: datetime | None = None) -> Outage:
    """Record a failed attempt of ``source`` for ``day`` (its own transaction)."""
    at = at or datetime.now(UTC)
    reason = reason_of(exc)
    transient = bool(getattr(exc, "transient", True))
    with warehouse.writing(engine) as conn:
        conn.execute(sa.text(
            "insert into source_outages (source, day, reason, transient, attempts, first_failed_at, "
            "last_failed_at, run_id) values (:source, :day, :reason, :transient, 1, :at, :at, :run_id) "
            "on conflict (source, day) do update set reason = excluded.reason, transient = excluded.transient, "
            "attempts = source_outages.attempts + 1, last_failed_at = excluded.last_failed_at, "
            "run_id = excluded.run_id, recovered_at = null, recovered_run_id = null"),
            {"source": source, "day": warehouse.bind_value(day), "reason": reason, "transient": transient,
             "at": warehouse.bind_value(at), "run_id": run_id})
        attempts = conn.execute(sa.text(
            "select attempts from source_outages where source = :source and day = :day"),
            {"source": source, "day": warehouse.bind_value(day)}).scalar_one()
    return Outage(source, day, reason, transient, attempts)


def clear(engine: sa.Engine, source: str, day: date, run_id: str | None, at: datetime | None = None) -> bool:
    """The source landed ``day``'s window: its outage is over. Whether there was one."""
    key = {"source": source, "day": warehouse.bind_value(day)}
    open_one = sa.text("select 1 from source_outages where source = :source and day = :day and recovered_at is null")
    with engine.connect() as conn:
        if conn.execute(open_one, key).first() is None:
            return False
    with warehouse.writing(engine) as conn:
        conn.execute(sa.text(
            "update source_outages set recovered_at = :at, recovered_run_id = :run_id "
            "where source = :source and day = :day and recovered_at is null"),
            {**key, "at": warehouse.bind_value(at or datetime.now(UTC)), "run_id": run_id})
    return True


def of_day(conn: sa.Connection, day: date) -> dict[str, Outage]:
    """The sources still unavailable for ``day``'s review, by source."""
    rows = conn.execute(sa.text(
        "select source, reason, transient, attempts from source_outages "
        "where day = :day and recovered_at is null order by source"),
        {"day": warehouse.bind_value(day)}).all()
    return {r.source: Outage(r.source, day, r.reason, bool(r.transient), int(r.attempts)) for r in rows}


def missed(engine: sa.Engine, source: str, before: date) -> list[date]:
    """The days of the :data:`HEAL_DAYS` before ``before`` that ``source`` still owes."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select day from source_outages where source = :source and recovered_at is null "
            "and day < :before and day >= :since order by day"),
            {"source": source, "before": warehouse.bind_value(before),
             "since": warehouse.bind_value(before - timedelta(days=HEAL_DAYS))}).scalars().all()
    return [warehouse.as_date(d) for d in rows]


def recovered_by(engine: sa.Engine, run_id: str) -> list[date]:
    """The days whose missing windows run ``run_id`` landed."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select distinct day from source_outages where recovered_run_id = :run_id order by day"),
            {"run_id": run_id}).scalars().all()
    return [warehouse.as_date(d) for d in rows]
