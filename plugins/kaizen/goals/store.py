"""Land a review's goals: the OKRs tab and the improvement backlog read once, when the
review runs, and kept under the review's period key (``2026-11``, ``2026-Q4``).

For each source, in its own transaction:

- **okrs**: the tab's rows into ``raw_okrs`` (the review's slice replaced), refused rows
  into ``quarantine`` (source ``okrs``, one record per row with every problem, the
  record key ``<review key> row <n>``), and the scores of the key results of every
  quarter started by the review's as-of into ``okr_scores`` (:mod:`kaizen.goals.scoring`:
  KPI-linked ones from the quarter's ``kpi_values`` row as it stands when the review
  runs — quarter to date; manual ones from the tab);
- **improvements**: the issues into ``raw_improvements``, malformed ones into
  ``quarantine`` (source ``improvements``, key ``<review key> #<number>``), and the
  before/after impact of every closed improvement that names target KPIs into
  ``improvement_impacts`` (:mod:`kaizen.goals.impact`, after windows ended by the
  review's as-of).

``review_snapshots`` records each read: when it succeeded, or why it failed. A failed
read leaves the review's previous snapshot (a re-run's) as it was and is raised to
nobody: the result says ``unavailable`` and the review's section says why; the
review's ``check_sources`` task then fails the run. Re-running the same review
replaces its slices: idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.goals import backlog, impact, okrs, scoring
from kaizen.sources.base import payload_json

log = logging.getLogger(__name__)

OKRS, IMPROVEMENTS = "okrs", "improvements"
REVIEW_KINDS = ("monthly", "quarterly")  # the reviews with goals sections


@dataclass(frozen=True)
class Review:
    kind: str  # monthly, quarterly
    key: str  # period key: 2026-11, 2026-Q4
    start: date  # first IST day of the period
    end: date  # last IST day of the period
    as_of: datetime  # aware: the review covers the period up to here

    @property
    def last_day(self) -> date:
        """The last IST day the review covers."""
        return min(self.end, cal.ist_date(self.as_of - timedelta(microseconds=1)))

    @property
    def quarter(self) -> str:
        """The quarter whose goals the review shows (the month's, or itself)."""
        return okrs.quarter_key(self.start)

    @classmethod
    def of(cls, period: dict) -> Review:
        """From the dict of :func:`kaizen.pipeline.resolve_review_period`."""
        from kaizen.period import Period

        p = Period.of(period["grain"], date.fromisoformat(period["period_start"]))
        as_of = datetime.fromisoformat(period["as_of"])
        return cls(period["kind"], period["key"], p.start, p.end, min(as_of, p.closes_utc))


def _failure_text(exc: BaseException) -> str:
    from kaizen.warehouse.outages import reason_of

    return reason_of(exc)


def _record_read(conn, review: Review, source: str, run_id: str, now: datetime, *, location=None,
                 counts: tuple[int, int, int] | None = None, failure: str | None = None) -> None:
    if failure is None:
        row = {"review_key": review.key, "source": source, "location": location, "read_at": now,
               "extracted": counts[0], "loaded": counts[1], "quarantined": counts[2], "failed_at": None,
               "failure": None, "run_id": run_id}
        warehouse.upsert(conn, "review_snapshots", [row], key=("review_key", "source"))
        return
    conn.execute(sa.text(
        "insert into review_snapshots (review_key, source, location, failed_at, failure, run_id) "
        "values (:review_key, :source, :location, :at, :failure, :run_id) on conflict (review_key, source) "
        "do update set failed_at = excluded.failed_at, failure = excluded.failure, run_id = excluded.run_id"),
        {"review_key": review.key, "source": source, "location": location, "at": warehouse.bind_value(now),
         "failure": failure, "run_id": run_id})


def _replace_quarantine(conn, source: str, review: Review, rows: list[dict]) -> None:
    warehouse.replace_slice(conn, "quarantine", "source = :source and record_key like :prefix",
                            {"source": source, "prefix": f"{review.key} %"}, rows)


def _quarantine_row(source: str, review: Review, key: str, reason: str, payload, run_id: str, now: datetime):
    return {"source": source, "extract_day": review.last_day, "record_key": f"{review.key} {key}",
            "reason": reason, "payload": payload_json(payload), "run_id": run_id, "quarantined_at": now}


# ---------------------------------------------------------------- OKRs


def _kpi_rows(conn, krs: list[okrs.KeyResult]) -> dict[tuple[str, date], dict]:
    wanted = sorted({(k.kpi_id, k.quarter_start) for k in krs if k.kpi_id})
    if not wanted:
        return {}
    q = sa.text("select kpi_id, period_start, value, status, is_complete from kpi_values "
                "where grain = 'quarter' and kpi_id in :ids and period_start in :starts"
                ).bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("starts", expanding=True))
    got = conn.execute(q, {"ids": sorted({k for k, _ in wanted}),
                           "starts": sorted({s.isoformat() for _, s in wanted})}).mappings()
    return {(r["kpi_id"], warehouse.as_date(r["period_start"])): dict(r) for r in got}


def score_rows(conn, review: Review, krs: list[okrs.KeyResult], cat, run_id: str, now: datetime) -> list[dict]:
    """The ``okr_scores`` rows of the key results whose quarter has started by the
    review's last day (reads ``kpi_values``)."""
    started = [k for k in krs if k.quarter_start <= review.last_day]
    rows_of = _kpi_rows(conn, started)
    out = []
    for k in started:
        better = value = status = is_complete = score = None
        if k.kpi_id:
            better = cat[k.kpi_id].better
            row = rows_of.get((k.kpi_id, k.quarter_start))
            status = row["status"] if row else "missing"
            is_complete = bool(row["is_complete"]) if row else False
            value = None if row is None or row["value"] is None else float(row["value"])
        elif k.score is not None:
            status, score = "manual", k.score
        else:  # by value, or planned (no value yet: not scored)
            status, value = "manual", k.value
            if k.baseline is not None and k.target is not None:
                better = scoring.manual_better(k.target, k.baseline)
        if value is not None and score is None:
            score = scoring.progress(value, k.target, k.baseline, better)
        out.append({"review_key": review.key, "sheet_row": k.row, "quarter": k.quarter, "objective": k.objective,
                    "key_result": k.key_result, "owner": k.owner, "kind": k.kind, "kpi_id": k.kpi_id,
                    "better": better, "baseline": k.baseline, "target": k.target, "value": value,
                    "value_status": status, "is_complete": is_complete, "score": score, "computed_at": now,
                    "run_id": run_id})
    return out


def land_okrs(engine: sa.Engine, review: Review, run_id: str, *, read=None, cat=None,
              now: datetime | None = None) -> dict:
    """Read the OKRs tab (``read``: :func:`kaizen.goals.okrs.read`) and land it for ``review``."""
    from kaizen.kpis.catalog import load_catalog

    now = now or datetime.now(UTC)
    cat = cat or load_catalog()
    try:
        tab = (read or okrs.read)(cat)
    except Exception as exc:
        reason = _failure_text(exc)
        log.warning("review %s: the OKRs could not be read: %s", review.key, reason)
        with warehouse.writing(engine) as conn:
            _record_read(conn, review, OKRS, run_id, now, failure=reason)
        return {"source": OKRS, "unavailable": reason}
    per_row: dict[int, list[str]] = {}
    for r in tab.refused:
        per_row.setdefault(r.row, []).append(r.message)
    rows = [{"review_key": review.key, "sheet_row": k.row, "quarter": k.quarter, "quarter_start": k.quarter_start,
             "objective": k.objective, "key_result": k.key_result, "owner": k.owner, "kpi_id": k.kpi_id,
             "baseline": k.baseline, "target": k.target, "manual_value": k.value, "manual_score": k.score,
             "location": tab.location, "read_at": now, "run_id": run_id, "loaded_at": now}
            for k in tab.key_results]
    q_rows = [_quarantine_row(OKRS, review, f"row {n}", "; ".join(msgs), {"row": n, "problems": msgs}, run_id, now)
              for n, msgs in sorted(per_row.items())]
    with warehouse.writing(engine) as conn:
        warehouse.replace_slice(conn, "raw_okrs", "review_key = :key", {"key": review.key}, rows)
        _replace_quarantine(conn, OKRS, review, q_rows)
        scores = score_rows(conn, review, tab.key_results, cat, run_id, now)
        warehouse.replace_slice(conn, "okr_scores", "review_key = :key", {"key": review.key}, scores)
        _record_read(conn, review, OKRS, run_id, now, location=tab.location,
                     counts=(tab.extracted, len(rows), len(q_rows)))
    return {"source": OKRS, "location": tab.location, "extracted": tab.extracted, "loaded": len(rows),
            "quarantined": len(q_rows), "scored": len(scores)}


# ---------------------------------------------------------------- improvements


def land_improvements(engine: sa.Engine, review: Review, run_id: str, *, transport=None, cat=None,
                      now: datetime | None = None, location: str | None = None) -> dict:
    """List the improvement issues (``transport``: :func:`kaizen.goals.backlog.default_transport`,
    whose ``location`` the review names) and land them for ``review``, with the impacts
    of the closed ones."""
    from kaizen.kpis.catalog import load_catalog

    now = now or datetime.now(UTC)
    cat = cat or load_catalog()
    if transport is not None and location is None:
        location = f"GitHub issues labelled {backlog.LABEL!r}"
    try:
        if transport is None:
            location = _repo_location()
            transport = backlog.default_transport()
        issues = transport()
    except Exception as exc:
        reason = _failure_text(exc)
        log.warning("review %s: the improvement backlog could not be read: %s", review.key, reason)
        with warehouse.writing(engine) as conn:
            _record_read(conn, review, IMPROVEMENTS, run_id, now, location=location, failure=reason)
        return {"source": IMPROVEMENTS, "unavailable": reason}
    n, items, rejects = backlog.parse(issues, set(cat.kpis))
    rows = [{"review_key": review.key, "issue_number": i.issue_number, "title": i.title, "priority": i.priority,
             "owner": i.owner, "state": i.state, "state_reason": i.state_reason, "votes": i.votes,
             "created_at": i.created_at, "updated_at": i.updated_at, "closed_at": i.closed_at,
             "target_kpis": ", ".join(i.target_kpis) or None, "html_url": i.html_url, "read_at": now,
             "run_id": run_id, "loaded_at": now} for i in items]
    q_rows = [_quarantine_row(IMPROVEMENTS, review, f"#{r.record_key}", r.reason, r.payload, run_id, now)
              for r in rejects]
    if n != len(rows) + len(q_rows):  # the same check as every source's load
        raise RuntimeError(f"improvements for {review.key}: read {n} issues but loaded {len(rows)} and "
                           f"quarantined {len(q_rows)} (a bug in kaizen.goals.backlog)")
    days = impact.window_days()
    with warehouse.writing(engine) as conn:
        warehouse.replace_slice(conn, "raw_improvements", "review_key = :key", {"key": review.key}, rows)
        _replace_quarantine(conn, IMPROVEMENTS, review, q_rows)
        impacts = impact.measure_impacts(conn, items, review.as_of, days, cat)
        warehouse.replace_slice(conn, "improvement_impacts", "review_key = :key", {"key": review.key},
                                [{**m.as_row(), "review_key": review.key, "computed_at": now, "run_id": run_id}
                                 for m in impacts])
        _record_read(conn, review, IMPROVEMENTS, run_id, now, location=location, counts=(n, len(rows), len(q_rows)))
    if q_rows:
        log.warning("review %s: %d improvement issue(s) quarantined", review.key, len(q_rows))
    return {"source": IMPROVEMENTS, "location": location, "extracted": n, "loaded": len(rows),
            "quarantined": len(q_rows), "impacts": len(impacts)}


def _repo_location() -> str:
    from kaizen import config

    if config.sources_mode() == "demo":
        return f"the demo's {backlog.DEMO_FILE.as_posix()}"
    from kaizen.sources import github

    _host, _token, repo = github.connection_settings()
    return f"GitHub {repo}, issues labelled {backlog.LABEL!r}"


# ---------------------------------------------------------------- both


def land(engine: sa.Engine, review: Review, run_id: str, **kw) -> list[dict]:
    """Both sources for ``review`` (monthly and quarterly reviews; others: nothing)."""
    if review.kind not in REVIEW_KINDS:
        return []
    read, transport, now = kw.get("read"), kw.get("transport"), kw.get("now")
    return [land_okrs(engine, review, run_id, read=read, now=now),
            land_improvements(engine, review, run_id, transport=transport, now=now)]


def land_for_review(period: dict, run_id: str) -> list[dict]:
    """The review compute step's share: :func:`land` for the review ``period`` (the dict
    of :func:`kaizen.pipeline.resolve_review_period`), in the configured warehouse."""
    if period.get("kind") not in REVIEW_KINDS:
        return []
    return land(warehouse.get_engine(), Review.of(period), run_id)
