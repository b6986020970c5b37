"""The OKRs tab: the quarter's objectives and key results as the team writes them down,
read row by row and validated.

Where it is read from:

1. the **"OKRs" tab** of the Google Sheet of connection ``kaizen_gsheets`` (formatted
   values, as people see them), when the connection is configured and the tab exists;
2. with ``KAIZEN_SOURCES=demo``, ``<demo dir>/sheets/okrs.json``: the same tab in the
   shape the Sheets API's ``values.get`` answers (``{"range", "majorDimension": "ROWS",
   "values": [[header…], [row…], …]}``, every cell a string).

Live sources without the connection, or a Sheet without the tab (and no demo file),
raise :class:`OkrsUnavailable`: the review says so and still goes out.

Columns (row 1; case and spaces free, any order, unknown columns ignored):

============ =========================================================================
quarter      ``2026-Q4`` (also ``2026 Q4``, ``Q4 2026``): calendar quarters
objective    the objective's text; rows with the same quarter and objective form it
key_result   the key result's text
owner        who owns the key result
kpi_id       a KPI of the catalog (active, with a quarter grain): the KR is scored
             from ``kpi_values``; leave empty for a manual KR
baseline     optional: the value the KR starts from (partial credit, see scoring)
target       the value to reach (KPI-linked KRs, and manual KRs entered by value)
value        manual KRs: the current value, entered by hand (needs target and baseline)
score        manual KRs: the grade itself, 0.0–1.0 (or 0–100 %); a manual KR with a
             target but neither value nor score is planned, not graded yet
============ =========================================================================

Numbers may be written as people type them: ``1,00,000``, ``₹12,500``, ``99.95%``
(a ``_pct`` KPI's value is a percentage 0–100, so ``%`` is only a unit sign). A bad row
is refused — a :class:`RefusedRow` naming the row and the column at fault, one per
problem — and the other rows are still read; a header without a required column
refuses the tab. The scoring rule is :mod:`kaizen.goals.scoring`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kaizen import config
from kaizen.errors import KaizenError

log = logging.getLogger(__name__)

OKRS_TAB = "OKRs"
DEMO_FILE = Path("sheets") / "okrs.json"
COLUMNS = ("quarter", "objective", "key_result", "owner", "kpi_id", "baseline", "target", "value", "score")
REQUIRED_COLUMNS = ("quarter", "objective", "key_result", "owner", "kpi_id", "target")
KPI, MANUAL = "kpi", "manual"

_QUARTER = (
    re.compile(r"(\d{4})\s*[-/ ]?\s*q([1-4])", re.IGNORECASE),
    re.compile(r"q([1-4])\s*[-/ ]?\s*(\d{4})", re.IGNORECASE),
)


class OkrsUnavailable(KaizenError, RuntimeError):
    """The OKRs tab cannot be read at all; the message says why and what to do."""


# ---------------------------------------------------------------------------- quarters


def quarter_key(d: date) -> str:
    """``2026-Q4`` for any date of October–December 2026."""
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def quarter_start(key: str) -> date:
    year, q = key.split("-Q")
    return date(int(year), 3 * int(q) - 2, 1)


def next_quarter(key: str) -> str:
    year, q = (int(x) for x in key.split("-Q"))
    return f"{year + 1}-Q1" if q == 4 else f"{year}-Q{q + 1}"


def parse_quarter(text: str) -> str | None:
    """``2026-Q4`` from ``2026-Q4``, ``2026 q4``, ``Q4 2026``, ``Q4-2026``; None otherwise."""
    t = " ".join(str(text).split())
    if m := _QUARTER[0].fullmatch(t):
        return f"{m[1]}-Q{m[2]}"
    if m := _QUARTER[1].fullmatch(t):
        return f"{m[2]}-Q{m[1]}"
    return None


# ---------------------------------------------------------------------------- one row


@dataclass(frozen=True)
class KeyResult:
    row: int  # the Sheet row (1 = the header)
    quarter: str  # 2026-Q4
    objective: str  # untrusted text
    key_result: str  # untrusted text
    owner: str  # untrusted text
    kpi_id: str | None  # KPI-linked; None: manual
    baseline: float | None
    target: float | None
    value: float | None  # manual value
    score: float | None  # manual score, 0.0–1.0

    @property
    def kind(self) -> str:
        return KPI if self.kpi_id else MANUAL

    @property
    def quarter_start(self) -> date:
        return quarter_start(self.quarter)


@dataclass(frozen=True)
class RefusedRow:
    row: int  # the Sheet row (1: the header, the whole tab)
    column: str | None  # the column at fault ("header": the whole tab)
    message: str  # where, which column, what is wrong, what to do

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class OkrTab:
    key_results: list[KeyResult] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    location: str = ""  # the tab or file read
    extracted: int = 0  # non-blank rows under the header


def _column(name: Any) -> str:
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def _text(value: Any) -> str:
    return " ".join(str(value if value is not None else "").split())


def number(value: Any) -> float | None:
    """A cell as a number: ``1,00,000``, ``₹12,500``, ``−3.5``, ``99.95%`` (the % sign
    is dropped: a percentage KPI is 0–100); None when blank. Raises ValueError."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"{value} is a yes/no value")
        return None
    if isinstance(value, int | float):
        f = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        t = text.replace("₹", "").replace("Rs.", "").replace("Rs", "").replace(",", "").replace("_", "")
        t = t.replace("−", "-").replace(" ", "").removesuffix("%")
        try:
            f = float(t)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(f):
        raise ValueError(f"{value!r} is not a finite number")
    return f


def score_value(value: Any) -> float | None:
    """A manual score: ``0.7`` or ``70%`` → 0.7; must be within 0.0–1.0."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    f = number(text)
    if text.endswith("%"):
        f /= 100.0
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{text!r} is not a score between 0.0 and 1.0 (or 0–100 %)")
    return f


def _check_row(cells: dict[str, Any], cat) -> tuple[dict | None, list[tuple[str, str]]]:
    """The row's values, or the problems: (column, message) pairs."""
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    quarter_text = _text(cells.get("quarter"))
    q = parse_quarter(quarter_text) if quarter_text else None
    if not quarter_text:
        problems.append(("quarter", "quarter is missing (write e.g. 2026-Q4)"))
    elif q is None:
        problems.append(("quarter", f"quarter {quarter_text!r} is not a quarter (write e.g. 2026-Q4)"))
    out["quarter"] = q
    for name in ("objective", "key_result", "owner"):
        out[name] = _text(cells.get(name))
        if not out[name]:
            problems.append((name, f"{name} is missing"))
    for name in ("baseline", "target", "value"):
        try:
            out[name] = number(cells.get(name))
        except ValueError as exc:
            problems.append((name, f"{name} {exc}"))
            out[name] = None
    try:
        out["score"] = score_value(cells.get("score"))
    except ValueError as exc:
        problems.append(("score", f"score {exc}"))
        out["score"] = None
    kpi_id = _text(cells.get("kpi_id")).strip("`").lower() or None
    out["kpi_id"] = kpi_id
    bad_numbers = {c for c, _ in problems}
    if kpi_id is not None:
        kpi = cat.kpis.get(kpi_id)
        if kpi is None:
            problems.append(("kpi_id", f"kpi_id {kpi_id!r} is not a KPI of the catalog "
                                       "(plugins/kaizen/kpis/catalog.yaml; e.g. win_rate_pct, uptime_pct)"))
        elif not kpi.active:
            problems.append(("kpi_id", f"kpi_id {kpi_id} is planned, not computed yet: enter the KR by hand "
                                       "(value or score) or pick an active KPI"))
        elif "quarter" not in kpi.grains:
            problems.append(("kpi_id", f"kpi_id {kpi_id} has no quarter value (grains: {', '.join(kpi.grains)})"))
        for name in ("value", "score"):
            if out[name] is not None:
                problems.append((name, f"{name} is for manual KRs: a KR with kpi_id {kpi_id} is scored from "
                                       f"kpi_values; clear the {name} cell"))
        if out["target"] is None and "target" not in bad_numbers:
            problems.append(("target", f"target is missing (the value of {kpi_id} to reach)"))
        if kpi is not None and out["target"] is not None and out["baseline"] is not None:
            t, b = out["target"], out["baseline"]
            if kpi.better == "higher" and t <= b:
                problems.append(("target", f"target {t:g} is not above baseline {b:g}: {kpi_id} is better "
                                           "higher"))
            elif kpi.better == "lower" and t >= b:
                problems.append(("target", f"target {t:g} is not below baseline {b:g}: {kpi_id} is better "
                                           "lower"))
    elif out["score"] is not None:
        for name in ("value", "target", "baseline"):
            if out[name] is not None:
                problems.append((name, f"{name} and score are both given: a manual KR is graded either by its "
                                       "score or by value, target and baseline; clear one"))
    elif out["value"] is not None:
        if out["target"] is None and "target" not in bad_numbers:
            problems.append(("target", "target is missing (a manual value is scored against its target)"))
        if out["baseline"] is None and "baseline" not in bad_numbers:
            problems.append(("baseline", "baseline is missing: a manual value needs a baseline to tell which "
                                         "way is better (e.g. 0), or enter the score instead"))
        elif out["target"] is not None and out["baseline"] == out["target"]:
            problems.append(("target", f"target {out['target']:g} equals the baseline: nothing to progress"))
    elif out["target"] is None and not bad_numbers & {"value", "score", "target"}:
        problems.append(("kpi_id", "neither kpi_id nor a manual value, score or target: give a KPI id and "
                                   "target, or the current value (with target and baseline), or the score"))
    elif out["target"] is not None and out["baseline"] == out["target"]:
        problems.append(("target", f"target {out['target']:g} equals the baseline: nothing to progress"))
    return (None if problems else out), problems


def parse_values(values: list[list], title: str, location: str, cat=None) -> OkrTab:
    """The key results of a tab's ``values`` (row 1: the header), every problem refused
    by row and column. ``cat``: the KPI catalog (default: the repository's)."""
    if cat is None:
        from kaizen.kpis.catalog import load_catalog

        cat = load_catalog()
    header = [_column(h) for h in (values[0] if values else [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    twice = sorted({c for c in header if c in COLUMNS and header.count(c) > 1})
    if missing or twice:
        problem = f"missing column(s) {', '.join(missing)}" if missing else f"column(s) {', '.join(twice)} twice"
        refused = RefusedRow(1, "header", f"{title}!row 1: {problem}; the tab is not read. Row 1 holds the column "
                                          f"names ({', '.join(COLUMNS)}; baseline, value and score may be left out)")
        log.warning("OKRs: refused: %s", refused.message)
        return OkrTab([], [refused], location, max(0, len(values) - 1))
    unknown = sorted({str(h).strip() for h, c in zip(values[0], header, strict=True) if c and c not in COLUMNS})
    if unknown:
        log.info("OKRs: %s: column(s) %s ignored", title, ", ".join(unknown))
    index = {name: i for i, name in enumerate(header) if name in COLUMNS}
    krs: list[KeyResult] = []
    refused: list[RefusedRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    extracted = 0
    for number_, cells in enumerate(values[1:], start=2):
        if all(not _text(c) for c in cells):
            continue
        extracted += 1
        row = {name: cells[i] if i < len(cells) else "" for name, i in index.items()}
        label = _text(row.get("key_result"))[:60]
        where = f"{title}!row {number_}" + (f" ({label})" if label else "")
        out, problems = _check_row(row, cat)
        if out is not None:
            key = (out["quarter"], out["objective"].casefold(), out["key_result"].casefold())
            if key in seen:
                problems = [("key_result", f"the same key result of the same objective and quarter is in row "
                                           f"{seen[key]}; keep one")]
            else:
                seen[key] = number_
        if problems:
            refused += [RefusedRow(number_, col, f"{where}: {msg}") for col, msg in problems]
            continue
        krs.append(KeyResult(row=number_, **out))
    for r in refused:
        log.warning("OKRs: refused: %s", r.message)
    return OkrTab(krs, refused, location, extracted)


# ---------------------------------------------------------------------------- reading


def _from_sheet(conn: config.Conn) -> tuple[list[list], str, str] | None:
    """(values, tab title, location) of the OKRs tab, or None when the spreadsheet has
    no such tab. A failure raises the Sheets sink's errors, naming the OKRs tab."""
    from kaizen.delivery import sheets

    got = sheets.read_tabs(conn, [OKRS_TAB], "the OKRs", any_case=True)
    if OKRS_TAB not in got.values:
        return None
    return got.values[OKRS_TAB], got.titles[OKRS_TAB], got.location(OKRS_TAB)


def demo_file(demo_dir: Path | None = None) -> Path:
    return Path(demo_dir or config.demo_dir()) / DEMO_FILE


def _from_file(path: Path) -> tuple[list[list], str, str]:
    from kaizen.calendar import shown_path

    shown = shown_path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OkrsUnavailable(f"OKRs demo file {shown} cannot be read: {exc}") from None
    values = body.get("values") if isinstance(body, dict) else None
    if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
        raise OkrsUnavailable(f"OKRs demo file {shown}: expected a values.get answer "
                              '{"range": …, "majorDimension": "ROWS", "values": [[…], …]}')
    title = str(body.get("range", OKRS_TAB)).split("!")[0].strip("'") or OKRS_TAB
    return values, title, f"the demo's {DEMO_FILE.as_posix()}" if path == demo_file() else shown


def read(cat=None) -> OkrTab:
    """The OKRs tab (see the module docstring for where it is read from), validated."""
    conn = config.get_connection(config.GSHEETS_CONN_ID)
    got = _from_sheet(conn) if conn is not None else None
    demo = config.sources_mode() == "demo"
    if got is None and demo and demo_file().exists():
        got = _from_file(demo_file())
    if got is None:
        if conn is not None:
            raise OkrsUnavailable(f"the spreadsheet of connection {config.GSHEETS_CONN_ID!r} has no {OKRS_TAB!r} "
                                  f"tab: add it (columns {', '.join(COLUMNS)}; see README, 'OKRs')")
        if demo:
            raise OkrsUnavailable(f"no OKRs: demo file {demo_file()} is missing (run `python -m kaizen demo-data`)")
        raise OkrsUnavailable(f"no OKRs: connection {config.GSHEETS_CONN_ID!r} (Google Sheets) is not configured; "
                              f"the OKRs are read from its {OKRS_TAB!r} tab")
    values, title, location = got
    tab = parse_values(values, title, location, cat)
    log.info("OKRs: %d key result(s) from %s, %d refusal(s)", len(tab.key_results), location, len(tab.refused))
    return tab
