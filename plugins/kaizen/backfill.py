"""Validation of the ``kaizen_backfill`` form. Pure and light (standard library only):
the API server's request guard (:mod:`kaizen.params_guard`) and the DAG's first task
both call :func:`validate`, so a bad form is refused before any run or write."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import date

from kaizen.errors import PermanentError
from kaizen.period import GRAINS

DELIVER_TO = ("none", "outbox", "sheets", "slack")
ENV_MAX_DAYS = "KAIZEN_BACKFILL_MAX_DAYS"
DEFAULT_MAX_DAYS = 400


class BackfillParamError(PermanentError, ValueError):
    """The form is wrong; ``str(exc)`` names every wrong field."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class BackfillRequest:
    start: date
    end: date
    grains: tuple[str, ...]
    deliver_to: str
    dry_run: bool
    reextract: bool = True  # False: recompute the KPIs from what is stored, fetch nothing

    def as_dict(self) -> dict:
        d = asdict(self)
        d["start"], d["end"], d["grains"] = self.start.isoformat(), self.end.isoformat(), list(self.grains)
        return d


def max_days() -> int:
    return int(os.environ.get(ENV_MAX_DAYS, DEFAULT_MAX_DAYS))


def _date(conf: dict, field: str, errors: list[str]) -> date | None:
    value = conf.get(field)
    if value in (None, ""):
        errors.append(f"{field}: required (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(f"{field}: {value!r} is not a date in YYYY-MM-DD form")
        return None


def validate(conf: dict, *, today: date, limit_days: int | None = None) -> BackfillRequest:
    """The request, or :class:`BackfillParamError` naming each wrong field."""
    errors: list[str] = []
    conf = conf or {}
    start, end = _date(conf, "start", errors), _date(conf, "end", errors)
    limit = max_days() if limit_days is None else limit_days
    if start and start > today:
        errors.append(f"start: {start} is in the future (today is {today} IST)")
    if end and end > today:
        errors.append(f"end: {end} is in the future (today is {today} IST)")
    if start and end and end < start:
        errors.append(f"end: {end} is before start {start}")
    if start and end and end >= start and (end - start).days + 1 > limit:
        errors.append(
            f"end: the range {start} … {end} is {(end - start).days + 1} days, over the limit of {limit}"
            f" ({ENV_MAX_DAYS}); split it into smaller backfills"
        )
    grains = conf.get("grains", list(GRAINS))
    if isinstance(grains, str):
        grains = [g.strip() for g in grains.split(",") if g.strip()]
    if not isinstance(grains, list) or not grains:
        errors.append(f"grains: give one or more of {', '.join(GRAINS)}")
        grains = []
    unknown = [g for g in grains if g not in GRAINS]
    if unknown:
        errors.append(f"grains: unknown grain(s) {', '.join(map(str, unknown))}; allowed: {', '.join(GRAINS)}")
    deliver_to = conf.get("deliver_to", "none")
    if deliver_to not in DELIVER_TO:
        errors.append(f"deliver_to: {deliver_to!r} is not one of {', '.join(DELIVER_TO)}")
    dry_run = conf.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors.append(f"dry_run: {dry_run!r} is not true or false")
    reextract = conf.get("reextract", True)
    if not isinstance(reextract, bool):
        errors.append(f"reextract: {reextract!r} is not true or false")
    if errors:
        raise BackfillParamError(errors)
    ordered = tuple(g for g in GRAINS if g in grains)
    return BackfillRequest(start, end, ordered, deliver_to, dry_run, reextract)
