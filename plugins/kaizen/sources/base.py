"""What every source shares: the result record, the quarantine record, timestamp
parsing, and the load step (replace the day's slice of each ``raw_*`` table and of
``quarantine`` in one transaction, and check that nothing was dropped).

Timestamps of source records are read with :func:`read_ts` (a time, or the reason the
record is quarantined) and checked against the extraction's *as-of* with
:func:`future_reason`: an extraction runs as of its own clock (:func:`extraction_clock`:
now, or the demo clock ``KAIZEN_DEMO_NOW`` of a rehearsal), and a record stamped more
than :data:`FUTURE_TOLERANCE` after it has not happened yet — a bad clock or a bad
record — so it is quarantined, never loaded. Each source's docstring says which of its
times are checked."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import warehouse
from kaizen.errors import KaizenError
from kaizen.warehouse import coverage, facts

log = logging.getLogger(__name__)


class SourceError(KaizenError, RuntimeError):
    """A source could not be read; the message names the service and what to do.
    Permanent unless raised with ``transient=True`` (an outage, a timeout)."""


@dataclass(frozen=True)
class ExtractResult:
    source: str          # quarantine source name: trades, orders, probes, latency, ...
    table: str           # the raw_* table loaded
    extracted: int       # records the transport returned for the day
    loaded: int          # rows written to ``table``
    quarantined: int     # rows written to ``quarantine``
    kept: int = 0        # stored rows kept instead (a re-extract past the source's retention)
    warning: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reject:
    """A source record that failed validation; ends in ``quarantine``."""

    source: str
    record_key: str
    reason: str
    payload: object  # the raw record as received (serialised to JSON)
    day: date | None = None  # the trading day whose extract met it (None: the load's last day)


@dataclass
class TableLoad:
    """Everything the load step needs for one raw table of one day."""

    source: str
    table: str
    where_sql: str                      # the day's slice of ``table``
    where_params: Mapping
    extracted: int
    rows: list[dict] | object = field(default_factory=list)  # dicts, or a pandas DataFrame (bulk)
    rejects: list[Reject] = field(default_factory=list)
    key: str | None = None              # single-column primary key, checked against other slices
    extra_sql: Sequence[tuple[str, Mapping]] = ()  # statements run after the insert (same transaction)
    retention: timedelta | None = None  # how far back the source still answers (None: all)
    # the span of time this extract observed (None: the slice's own window, when it has one)
    covers: tuple[datetime, datetime] | None = None


# The slices the bulk sources replace: trades and orders by trading day, the
# per-minute Prometheus series by sample time; their facts are replaced with them.
DAY_SLICE = facts.DAY_SLICE
TS_SLICE = facts.TS_SLICE


def payload_json(payload) -> str:
    return json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)


def parse_ts(value) -> datetime | None:
    """ISO-8601 text (``Z`` or offset) or a datetime → aware UTC datetime.
    Naive values are UTC (the trading DB stores UTC). Raises ValueError on garbage."""
    if value is None:
        return None
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty timestamp")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        ts = datetime.fromisoformat(text)
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


# How far a source's clock may run ahead of the extraction's before a record stamped
# after the as-of counts as "in the future" (clock skew between hosts, not bad data).
FUTURE_TOLERANCE = timedelta(minutes=5)


def extraction_clock() -> datetime:
    """The instant an extraction runs as of: the demo clock (``KAIZEN_DEMO_NOW``, a
    rehearsal's, see :func:`kaizen.config.demo_now`) when set, else now (UTC)."""
    from kaizen import config

    at = config.demo_now()
    return at.astimezone(UTC) if at is not None else datetime.now(UTC)


def read_ts(value, field: str) -> tuple[datetime | None, str | None]:
    """Parse a timestamp or give a reason: ``(time, None)`` — an aware UTC datetime, or
    None for NULL — or ``(None, "unparseable <field> <value>")``."""
    try:
        return parse_ts(value), None
    except ValueError:
        return None, f"unparseable {field} {value!r}"


def future_reason(field: str, ts: datetime | None, as_of: datetime | None, what: str) -> str | None:
    """Why ``ts`` (the record's ``field``) is in the future as of ``as_of``, or None:
    later than ``as_of`` + :data:`FUTURE_TOLERANCE`. ``what`` names the event, e.g.
    "a fill". ``as_of`` None: not checked."""
    if ts is None or as_of is None or ts <= as_of + FUTURE_TOLERANCE:
        return None
    minutes = int(FUTURE_TOLERANCE.total_seconds() // 60)
    return (f"{field} {iso_z(ts)} is after the as-of {iso_z(as_of)} (the extraction's clock, "
            f"{minutes} min tolerance): {what} in the future")


def iso_z(ts: datetime) -> str:
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None, microsecond=0).isoformat() + "Z"  # isoformat: 4× strftime


def as_number(value) -> float | None:
    """A finite float, or None when the value is not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _existing_keys(conn: sa.Connection, table: str, key: str, values: list[str]) -> set[str]:
    """The ``values`` already present as ``key`` of ``table``: one query, the keys
    passed as a single JSON (SQLite) or array (PostgreSQL) parameter."""
    if conn.dialect.name == "postgresql":
        sql, param = f"select {key} from {table} where {key} = any(:keys)", list(values)
    else:
        sql, param = f"select {key} from {table} where {key} in (select value from json_each(:keys))", json.dumps(values)
    return {r[0] for r in warehouse.fetch_rows(conn, sql, {"keys": param})}


def _key_values(rows, key: str) -> list:
    return rows[key].tolist() if hasattr(rows, "columns") else [r[key] for r in rows]


def _without(rows, key: str, clash: set) -> tuple[object, list[dict]]:
    """(rows whose key is not in ``clash``, the clashing rows as dicts)."""
    if hasattr(rows, "columns"):
        hit = rows[key].isin(clash)
        return rows[~hit], rows[hit].to_dict("records")
    return [r for r in rows if r[key] not in clash], [r for r in rows if r[key] in clash]


def _slice_start(tl: TableLoad) -> datetime:
    p = tl.where_params
    if "start" in p:
        return p["start"]
    from kaizen.period import midnight_utc

    return midnight_utc(p["first"])


def _covered_span(tl: TableLoad) -> tuple[datetime, datetime] | None:
    """The span of time a load observed: its own ``covers``, else its slice's window —
    [start, end) of a time slice, or the IST days of a trading-day slice.
    None for a slice of ids (alerts and log entries follow their incidents)."""
    if tl.covers is not None:
        return tl.covers
    p = tl.where_params
    if "start" in p and "end" in p:
        return p["start"], p["end"]
    if "first" in p and "last" in p:
        return coverage.day_span(p["first"], p["last"])
    return None


def _kept_past_retention(conn, tl: TableLoad, n_rows: int, now: datetime, label: str) -> ExtractResult | None:
    """A re-extract of a window older than the source's retention that returns fewer
    rows than are stored (the source has dropped them) must not delete them: the
    stored rows, their facts and quarantine rows are kept, and the result says so."""
    if tl.retention is None or _slice_start(tl) >= now - tl.retention:
        return None
    stored = conn.execute(sa.text(f"select count(*) from {tl.table} where {tl.where_sql}"),
                          {k: warehouse.bind_value(v) for k, v in tl.where_params.items()}).scalar()
    if n_rows >= stored:
        return None
    warning = (f"{tl.source} {label}: the source returned {n_rows} row(s) for a window older than its "
               f"{tl.retention.days}-day retention, where {stored} are stored: the stored rows are kept")
    log.warning(warning)
    return ExtractResult(tl.source, tl.table, tl.extracted, 0, 0, kept=stored, warning=warning)


def load(
    engine: sa.Engine, days: date | tuple[date, date], run_id: str, loads: Sequence[TableLoad]
) -> list[ExtractResult]:
    """Replace the slice of each table and its quarantine rows, in ONE transaction.

    ``days`` is one trading day or a ``(first, last)`` range: the quarantine rows of
    each source with ``extract_day`` in it are replaced, a reject landing on its
    :attr:`Reject.day` (the last day when unset). ``TableLoad.rows`` may be dicts or a
    pandas DataFrame (bulk loads; see :func:`kaizen.warehouse.insert_rows`).

    A row whose key already exists outside this slice (e.g. the same trade id closing
    on two days) is quarantined rather than failing the whole load. Raises
    :class:`SourceError` (rolling everything back) if extracted != loaded + quarantined.
    """
    first, last = days if isinstance(days, tuple) else (days, days)
    label = str(first) if first == last else f"{first}…{last}"
    now = datetime.now(UTC)
    results: list[ExtractResult] = []
    with warehouse.writing(engine) as conn:
        for tl in loads:
            rows, rejects = tl.rows, list(tl.rejects)
            stamp = {"run_id": run_id, "loaded_at": now}
            kept = _kept_past_retention(conn, tl, len(rows), now, label)
            span = _covered_span(tl)
            if span is not None:
                coverage.record(conn, tl.source, *span, run_id, now)
            if kept is not None:
                results.append(kept)
                continue
            conn.execute(
                sa.text(f"delete from {tl.table} where {tl.where_sql}"),
                {k: warehouse.bind_value(v) for k, v in tl.where_params.items()},
            )
            try:
                # optimistic: a key loaded outside this slice is rare, so insert first
                # and look for clashes only when the primary key refuses the rows
                with conn.begin_nested():
                    loaded = warehouse.insert_rows(conn, tl.table, rows, stamp)
            except (sa.exc.IntegrityError, conn.dialect.dbapi.IntegrityError):
                if not tl.key:
                    raise
                clash = _existing_keys(conn, tl.table, tl.key, _key_values(rows, tl.key))
                rows, clashing = _without(rows, tl.key, clash)
                for r in clashing:
                    rejects.append(Reject(tl.source, str(r[tl.key]),
                                          f"{tl.key} {r[tl.key]} is already loaded in {tl.table} "
                                          "for another day; this copy was not loaded", r,
                                          day=r.get("trading_day")))
                loaded = warehouse.insert_rows(conn, tl.table, rows, stamp)
            facts.write(conn, tl.table, tl.where_sql, tl.where_params, rows)  # with its slice, always
            q_rows = [
                {
                    "source": rj.source,
                    "extract_day": rj.day or last,
                    "record_key": str(rj.record_key),
                    "reason": rj.reason,
                    "payload": payload_json(rj.payload),
                    "run_id": run_id,
                    "quarantined_at": now,
                }
                for rj in rejects
            ]
            warehouse.replace_slice(
                conn, "quarantine", "source = :source and extract_day >= :first and extract_day <= :last",
                {"source": tl.source, "first": first, "last": last}, q_rows,
            )
            for sql, params in tl.extra_sql:
                conn.execute(sa.text(sql), {k: warehouse.bind_value(v) for k, v in params.items()})
            result = ExtractResult(tl.source, tl.table, tl.extracted, loaded, len(q_rows))
            if result.extracted != result.loaded + result.quarantined:
                raise SourceError(
                    f"{tl.source} for {label}: extracted {result.extracted} records but loaded "
                    f"{result.loaded} and quarantined {result.quarantined}; nothing was written "
                    "(a record was dropped or counted twice: this is a bug in kaizen.sources)"
                )
            results.append(result)
            if q_rows:
                log.warning("%s %s: %d record(s) quarantined", tl.source, label, len(q_rows))
    return results
