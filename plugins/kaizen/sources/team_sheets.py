"""The team's own figures from Google Sheets, into ``raw_satisfaction_responses`` and
``raw_team_months`` (the team metrics of :mod:`kaizen.team`).

Two tabs, read through connection ``kaizen_gsheets`` (live: :mod:`kaizen.team.gsheets`)
or, with ``KAIZEN_SOURCES=demo``, from the demo folder's ``sheets/`` files in the very
shape the Sheets API answers (``spreadsheets.get`` → ``spreadsheet.json``,
``values.get`` → one file per tab):

- **The satisfaction survey's response tab**, as Google Forms writes it: tab
  ``KAIZEN_FORMS_TAB`` (default "Form Responses 1") of spreadsheet
  ``KAIZEN_FORMS_SPREADSHEET_ID`` (default: the connection's own). Column ``Timestamp``
  — Forms writes it in the spreadsheet's locale (``11/28/2026 17:04:12`` for en_US,
  ``28/11/2026 17:04:12`` for day-first locales) and in the spreadsheet's time zone
  (File ▸ Settings; ``KAIZEN_FORMS_TIMEZONE`` overrides it) — and the 1–10 question's
  column, named by ``KAIZEN_SATISFACTION_QUESTION`` (default "Satisfaction (1-10)").
  Other columns (an e-mail address, comments) are not read. A response belongs to the
  review window holding its time (slice: ``submitted_at`` in the window), like any
  timed source, and is keyed by its time and its rank among responses with that time.
- **The "Team" tab** the team keeps by hand (``KAIZEN_TEAM_TAB``): one row per month,
  columns ``month``, ``team_size``, ``documentation_coverage_pct``, ``tech_talks``,
  ``innovation_day_participants``, ``notes`` (header spelling is free: case, spaces
  and ``%`` for ``pct``). Every extract replaces the whole table with the tab as it is
  (no coverage is recorded for it: a hand-kept tab is not a time line to wait for).

Quarantined (sources ``satisfaction`` and ``team_months``), with the row named: a blank
or unreadable Timestamp (in every window of the extract, as each day's extract meets
it), a Timestamp after the extraction's as-of, a blank answer, an answer that is not a
whole number from 1 to 10; a Team row whose month cannot be read or repeats an earlier
row's, a team size below 1, a coverage outside 0–100 %, a negative or fractional count,
more innovation-day participants than team members. A bad Team row is quarantined by
every day's extract (the whole tab is read each day). A tab without its required
column fails the extract (permanent), naming the tab, the column and the setting.

A spreadsheet without the tab (live) is not configured: nothing is loaded and the
KPIs say "insufficient data"; so without connection ``kaizen_gsheets``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.period import window_day, windows_utc
from kaizen.sources.base import (
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    extraction_clock,
    future_reason,
    iso_z,
    load,
)
from kaizen.sources.github import window_days

log = logging.getLogger(__name__)

ENV_FORMS_SPREADSHEET = "KAIZEN_FORMS_SPREADSHEET_ID"
ENV_FORMS_TAB = "KAIZEN_FORMS_TAB"
ENV_QUESTION = "KAIZEN_SATISFACTION_QUESTION"
ENV_FORMS_TZ = "KAIZEN_FORMS_TIMEZONE"
ENV_TEAM_TAB = "KAIZEN_TEAM_TAB"
DEFAULT_FORMS_TAB = "Form Responses 1"
DEFAULT_QUESTION = "Satisfaction (1-10)"
DEFAULT_TEAM_TAB = "Team"
TIMESTAMP = "Timestamp"
SCORE_MIN, SCORE_MAX = 1, 10

SATISFACTION, TEAM_MONTHS = "satisfaction", "team_months"  # quarantine / coverage source names
TEAM_COLUMNS = ("month", "team_size", "documentation_coverage_pct", "tech_talks", "innovation_day_participants",
                "notes")
# Sheets locales that write a date month first (as kaizen.experiments.registry reads them)
MONTH_FIRST_LOCALES = frozenset({"en_US", "es_US", "en_PH", "fil_PH"})

# A transport returns {"forms": Tab | None, "team": Tab | None}; a Tab is a dict with
# "values" (the values.get rows), "location" (text naming the tab), "locale" and "time_zone".
Transport = Callable[[], dict]


def forms_tab() -> str:
    return os.environ.get(ENV_FORMS_TAB, "").strip() or DEFAULT_FORMS_TAB


def team_tab() -> str:
    return os.environ.get(ENV_TEAM_TAB, "").strip() or DEFAULT_TEAM_TAB


def question() -> str:
    return os.environ.get(ENV_QUESTION, "").strip() or DEFAULT_QUESTION


# ---------------------------------------------------------------- transports
def demo_transport(demo_dir: Path | None = None) -> Transport:
    """``sheets/spreadsheet.json`` (a ``spreadsheets.get`` body: locale, time zone, tab
    titles) and one ``values.get`` body per tab: ``sheets/<tab>.json`` named by the tab
    title in lower case with ``_`` for spaces (``form_responses_1.json``, ``team.json``).
    A tab the spreadsheet does not list, or a folder without these files, is not there."""
    root = Path(demo_dir or config.demo_dir()) / "sheets"

    def fetch() -> dict:
        meta_path = root / "spreadsheet.json"
        if not meta_path.exists():  # a demo folder without the team's sheets: not configured
            log.info("demo folder %s has no sheets/spreadsheet.json: no survey or Team tab", root.parent)
            return {"forms": None, "team": None}
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        props = meta.get("properties") or {}
        titles = [s["properties"]["title"] for s in meta.get("sheets", [])]
        out = {}
        for kind, title in (("forms", forms_tab()), ("team", team_tab())):
            path = root / (re.sub(r"\W+", "_", title.strip().lower()).strip("_") + ".json")
            if title not in titles or not path.exists():
                out[kind] = None
                continue
            body = json.loads(path.read_text(encoding="utf-8"))
            out[kind] = {"values": body.get("values") or [], "location": f"demo {path.name}",
                         "locale": props.get("locale", ""), "time_zone": props.get("timeZone")}
        return out

    return fetch


def live_transport() -> Transport:
    def fetch() -> dict:
        from kaizen.team import gsheets

        return gsheets.read_team_tabs(forms_tab(), team_tab(), os.environ.get(ENV_FORMS_SPREADSHEET, "").strip())

    return fetch


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- cells
def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _norm_header(h) -> str:
    """``Documentation coverage %`` → ``documentation_coverage_pct``."""
    text = str(h).strip().lower().replace("%", " pct ")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def _same_question(a, b) -> bool:
    def norm(s) -> str:
        return " ".join(str(s).replace("–", "-").replace("—", "-").split()).casefold()
    return norm(a) == norm(b)


_STAMP_MDY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?")
_STAMP_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_timestamp(text: str, zone: ZoneInfo, month_first: bool) -> datetime:
    """A Forms Timestamp as the spreadsheet shows it → aware UTC. Raises ValueError."""
    s = str(text).strip()
    if m := _STAMP_MDY.fullmatch(s):
        a, b = int(m[1]), int(m[2])
        month, day = (a, b) if month_first else (b, a)
        parts = (int(m[3]), month, day)
    elif m := _STAMP_ISO.fullmatch(s):
        parts = (int(m[1]), int(m[2]), int(m[3]))
    else:
        raise ValueError(s)
    local = datetime(*parts, int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=zone)
    return local.astimezone(cal.UTC)


def _whole(text, name: str, lo: int) -> int:
    s = str(text).strip().replace(",", "")
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not f.is_integer():
        raise ValueError(f"{name} {text!r} is not a whole number")
    if f < lo:
        raise ValueError(f"{name} {text!r} is below {lo}")
    return int(f)


def _zone(tab: dict) -> ZoneInfo:
    name = os.environ.get(ENV_FORMS_TZ, "").strip() or tab.get("time_zone") or "Asia/Kolkata"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"{tab.get('location')}: time zone {name!r} is not an IANA time zone: set "
                          f"{ENV_FORMS_TZ} to the form's time zone, e.g. Asia/Kolkata") from None


# ---------------------------------------------------------------- the survey
def parse_responses(tab: dict, start: datetime, end: datetime, *, as_of: datetime | None = None
                    ) -> tuple[int, list[dict], list[Reject]]:
    """(extracted, rows, rejects) of the responses whose Timestamp is in [start, end) (a
    row without a readable Timestamp: every window of the extract)."""
    as_of = as_of or extraction_clock()
    values = tab.get("values") or []
    where = tab.get("location") or forms_tab()
    if not values:  # a form nobody has answered yet: Forms writes the header with the first response
        return 0, [], []
    header = [str(h).strip() for h in values[0]]
    t_col = next((i for i, h in enumerate(header) if h.casefold() == TIMESTAMP.casefold()), None)
    q_col = next((i for i, h in enumerate(header) if _same_question(h, question())), None)
    if t_col is None or q_col is None:
        missing = TIMESTAMP if t_col is None else repr(question())
        raise SourceError(
            f"{where}: no column {missing} in row 1 ({', '.join(repr(h) for h in header) or 'empty'}). The tab "
            f"must be the response tab Google Forms writes (a Timestamp column and one column per question); set "
            f"{ENV_QUESTION} to the satisfaction question's exact title, or {ENV_FORMS_TAB} to the tab.")
    zone = _zone(tab)
    month_first = (tab.get("locale") or "") in MONTH_FIRST_LOCALES
    every = window_days(start, end)
    rows, rejects, rank = [], [], {}
    for n, cells in enumerate(values[1:], start=2):
        cells = list(cells)
        if all(_blank(c) for c in cells):
            continue
        stamp = cells[t_col] if t_col < len(cells) else ""
        answer = cells[q_col] if q_col < len(cells) else ""
        payload = {"row": n, **{h or f"column {i + 1}": (cells[i] if i < len(cells) else "")
                                for i, h in enumerate(header) if i in (t_col, q_col)}}
        key = f"{where}!row {n}"
        reason = None
        ts = None
        if _blank(stamp):
            reason = "blank Timestamp"
        else:
            try:
                ts = parse_timestamp(stamp, zone, month_first)
            except ValueError:
                order = "M/D/YYYY" if month_first else "D/M/YYYY"
                reason = f"unparseable Timestamp {stamp!r} (Forms writes {order} H:MM:SS in this locale)"
        if ts is not None:
            k = iso_z(ts)
            rank[k] = rank.get(k, 0) + 1
            if not start <= ts < end:
                continue  # another window's response
        days = every if ts is None else [window_day(ts)]
        if reason is None:
            reason = future_reason("Timestamp", ts, as_of, "a response")
        score = None
        if reason is None:
            if _blank(answer):
                reason = f"blank answer to {question()!r}"
            else:
                try:
                    score = _whole(answer, "answer", SCORE_MIN)
                    if score > SCORE_MAX:
                        raise ValueError(f"answer {answer!r} is above {SCORE_MAX}")
                except ValueError as exc:
                    reason = f"{exc}: the score must be a whole number from {SCORE_MIN} to {SCORE_MAX}"
        if reason is not None:
            rejects += [Reject(SATISFACTION, key, reason, payload, day=d) for d in days]
            continue
        local = ts.astimezone(cal.IST)
        rows.append({"response_key": f"{iso_z(ts)}#{rank[iso_z(ts)]}", "submitted_at": ts,
                     "survey_month": f"{local:%Y-%m}", "score": score, "sheet_row": n})
    return len(rows) + len(rejects), rows, rejects


# ---------------------------------------------------------------- the Team tab
_MONTH_NAMES = {m.lower(): i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], start=1)}


def parse_month(text, month_first: bool) -> date:
    """``2026-11``, ``2026-11-01``, ``Nov 2026``, ``November 2026``, ``11/2026`` or a date
    in the locale's order (``11/1/2026`` month first, else ``1/11/2026``) → the month's
    first day. Raises ValueError."""
    s = " ".join(str(text).strip().split())
    if m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?", s):
        return date(int(m[1]), int(m[2]), 1)
    if m := re.fullmatch(r"([A-Za-z]+)\.?[ -](\d{4})", s):
        name = m[1].lower()
        month = next((i for full, i in _MONTH_NAMES.items() if full.startswith(name) and len(name) >= 3), None)
        if month is None:
            raise ValueError(s)
        return date(int(m[2]), month, 1)
    if m := re.fullmatch(r"(\d{1,2})[/.-](\d{4})", s):
        return date(int(m[2]), int(m[1]), 1)
    if m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", s):
        a, b = int(m[1]), int(m[2])
        month, day = (a, b) if month_first else (b, a)
        date(int(m[3]), month, day)  # a real date, or ValueError
        return date(int(m[3]), month, 1)
    raise ValueError(s)


def _pct(text) -> float:
    s = str(text).strip().rstrip("%").strip()
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"documentation_coverage_pct {text!r} is not a number") from None
    if not 0 <= f <= 100:
        raise ValueError(f"documentation_coverage_pct {text!r} is outside 0–100 %")
    return f


def parse_team(tab: dict) -> tuple[list[dict], list[tuple[str, str, dict]]]:
    """(rows, refusals as (record key, reason, payload)) of the Team tab."""
    values = tab.get("values") or []
    where = tab.get("location") or team_tab()
    if not values:
        log.info("%s is empty: no month entered yet", where)
        return [], []
    names = [_norm_header(h) for h in values[0]]
    if "month" not in names:
        raise SourceError(
            f"{where}: no 'month' column in row 1 ({', '.join(repr(h) for h in values[0]) or 'empty'}"
            f"). Row 1 of the Team tab names the columns: {', '.join(TEAM_COLUMNS)} (see README, 'Team metrics'); "
            f"or set {ENV_TEAM_TAB} to the tab that holds them.")
    unknown = sorted({h for h in names if h and h not in TEAM_COLUMNS})
    if unknown:
        log.info("%s: columns %s are not read (known: %s)", where, ", ".join(unknown), ", ".join(TEAM_COLUMNS))
    index = {h: i for i, h in reversed(list(enumerate(names))) if h in TEAM_COLUMNS}
    month_first = (tab.get("locale") or "") in MONTH_FIRST_LOCALES
    rows, refused, first = [], [], {}
    for n, cells in enumerate(values[1:], start=2):
        cells = list(cells)
        if all(_blank(c) for c in cells):
            continue
        raw = {h: (cells[i] if i < len(cells) else "") for h, i in index.items()}
        key = f"{where}!row {n}"
        payload = {"row": n, **raw}
        try:
            if _blank(raw.get("month")):
                raise ValueError("blank month")
            try:
                start = parse_month(raw["month"], month_first)
            except ValueError:
                raise ValueError(f"month {raw['month']!r} is not a month (write 2026-11 or Nov 2026)") from None
            month = f"{start:%Y-%m}"
            if month in first:
                raise ValueError(f"month {month} is already on row {first[month]}; this row is not loaded")
            row = {"month": month, "month_start": start, "sheet_row": n,
                   "notes": None if _blank(raw.get("notes")) else str(raw["notes"]).strip()}
            blank = {h: _blank(raw.get(h)) for h in TEAM_COLUMNS}
            row["team_size"] = None if blank["team_size"] else _whole(raw["team_size"], "team_size", 1)
            row["documentation_coverage_pct"] = (None if blank["documentation_coverage_pct"]
                                                 else _pct(raw["documentation_coverage_pct"]))
            row["tech_talks"] = None if blank["tech_talks"] else _whole(raw["tech_talks"], "tech_talks", 0)
            row["innovation_day_participants"] = (
                None if blank["innovation_day_participants"]
                else _whole(raw["innovation_day_participants"], "innovation_day_participants", 0))
            if (row["team_size"] is not None and row["innovation_day_participants"] is not None
                    and row["innovation_day_participants"] > row["team_size"]):
                raise ValueError(f"innovation_day_participants {row['innovation_day_participants']} is more than "
                                 f"team_size {row['team_size']}")
        except ValueError as exc:
            refused.append((key, str(exc), payload))
            continue
        first[month] = n
        rows.append(row)
    return rows, refused


# ---------------------------------------------------------------- loads
def prepare_window(start: datetime, end: datetime, transport: Transport | None = None, *,
                   as_of: datetime | None = None) -> list[TableLoad]:
    """The responses of [start, end) and the Team tab as it is, validated: what to load.
    A tab that is not there (not configured) loads nothing."""
    raw = (transport or default_transport())()
    loads = []
    if raw.get("forms") is not None:
        loads.append(TableLoad(SATISFACTION, "raw_satisfaction_responses",
                               "submitted_at >= :start and submitted_at < :end", {"start": start, "end": end},
                               *parse_responses(raw["forms"], start, end, as_of=as_of), key="response_key"))
    if raw.get("team") is not None:
        rows, refused = parse_team(raw["team"])
        # each day's extract reads the whole tab, and meets its bad rows
        rejects = [Reject(TEAM_MONTHS, key, reason, payload, day=d)
                   for d in window_days(start, end) for key, reason, payload in refused]
        loads.append(TableLoad(TEAM_MONTHS, "raw_team_months", "1 = 1", {}, len(rows) + len(rejects), rows,
                               rejects, key="month"))
    return loads


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None) -> list[TableLoad]:
    return prepare_window(*windows_utc(first, last), transport, as_of=as_of)


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None, *, as_of: datetime | None = None) -> list[ExtractResult]:
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)

