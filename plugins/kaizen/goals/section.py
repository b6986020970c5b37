"""The review sections of the goals, built from what :mod:`kaizen.goals.store` landed
for the review (reads only; nothing here reaches a source):

- monthly review: **Progress on quarterly goals** (the OKRs of the month's quarter,
  scored quarter to date), the **Improvement backlog** (the top 3 open items by votes
  as next month's focus, improvements completed in the month, the before/after impact
  of closed ones) and the **Retrospective** (what went well, what could be better,
  what to try next month — from the month's KPI status changes and the backlog);
- quarterly review: **Goal achievement** (each key result's and objective's score) and
  **Next quarter's OKRs** (as entered in the OKRs tab for the next quarter).

Which impacts a monthly review shows: those whose after window ends inside the month
(each impact is reported once, in the month it becomes measurable), and, as pending,
those of improvements closed in the month whose after window is still running.

No text here carries a read time or a run id: the sections are part of the review's
content hash, and a re-run that reads the same goals must hash the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from kaizen import warehouse
from kaizen.calendar import IST
from kaizen.goals import backlog, impact, okrs, scoring
from kaizen.goals.store import IMPROVEMENTS, OKRS, REVIEW_KINDS
from kaizen.reports import model, render

log = logging.getLogger(__name__)

FOCUS_SIZE = 3
TIE_RULE = "most 👍 first; ties: priority high → medium → low → none, then the older issue"
RETRO_MAX = 4  # KPI lines per retrospective list (the rest are counted)
VERDICT_MARK = {impact.IMPROVED: "✅", impact.WORSENED: "❌", impact.UNCHANGED: "➖", impact.PENDING: "⏳",
                impact.NO_DATA: "⚠️"}
OKR_TAB = "OKR scores"
BACKLOG_TAB = "Backlog"
IMPACT_TAB = "Backlog impact"


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class KrLine:
    row: int
    key_result: str  # untrusted
    owner: str  # untrusted
    kind: str  # kpi, manual
    measure: str  # "Win Rate (win_rate_pct)", "manual"
    baseline_text: str
    target_text: str
    value_text: str
    score: float | None
    score_text: str
    mark: str
    grade: str
    note: str = ""  # "quarter to date", "insufficient data", …

    @property
    def progress_text(self) -> str:
        """``57.63 % vs target 58.00 % from 55.00 %``; ``graded by hand``; ``no value yet …``."""
        if self.kind == okrs.MANUAL and self.value_text == "—" and self.score is not None:
            return "graded by hand"
        text = f"{self.value_text if self.value_text != '—' else 'no value yet'} vs target {self.target_text}"
        return text + (f" from {self.baseline_text}" if self.baseline_text != "—" else "")


@dataclass(frozen=True)
class ObjectiveLine:
    objective: str  # untrusted
    krs: list[KrLine]
    score: float | None
    score_text: str
    mark: str
    grade: str
    scored: int  # key results with a score
    total: int


@dataclass(frozen=True)
class OkrSection:
    """Progress on quarterly goals (monthly) or goal achievement (quarterly)."""

    title: str
    quarter: str
    objectives: list[ObjectiveLine] = field(default_factory=list)
    score: float | None = None  # mean of the objectives' scores
    score_text: str = "n/a"
    location: str = ""  # the tab or file read (untrusted: a file path, a title)
    refused: list[str] = field(default_factory=list)  # untrusted: they quote the tab
    error: str | None = None  # the tab could not be read for this review
    warning: str | None = None  # a later re-read failed: the section shows the earlier copy

    @property
    def n_krs(self) -> int:
        return sum(o.total for o in self.objectives)


@dataclass(frozen=True)
class PlannedKr:
    key_result: str  # untrusted
    owner: str  # untrusted
    plan: str  # "Win Rate (win_rate_pct) from 55 % to 58 %", "manual: score in the tab"


@dataclass(frozen=True)
class PlannedObjective:
    objective: str
    krs: list[PlannedKr]


@dataclass(frozen=True)
class NextOkrs:
    quarter: str
    objectives: list[PlannedObjective] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class BacklogItem:
    issue_number: int
    title: str  # untrusted
    priority: str  # High, Medium, Low, —
    owner: str  # untrusted
    state: str  # open, closed, closed (not planned)
    votes: int
    html_url: str | None
    rank: int | None = None  # among open items by votes (the focus rule)
    target_kpis: str = ""


@dataclass(frozen=True)
class ImpactLine:
    issue_number: int
    title: str  # untrusted
    kpi_id: str
    kpi_label: str
    close_text: str  # "closed 28 Sep 2026"
    windows_text: str  # "28 days before vs after"
    before_text: str
    after_text: str
    change_text: str
    verdict: str
    mark: str
    note: str = ""
    before_value: float | None = None
    after_value: float | None = None
    change: float | None = None
    change_pct: float | None = None


@dataclass(frozen=True)
class BacklogSection:
    focus: list[BacklogItem] = field(default_factory=list)  # the top 3 open items by votes
    open_count: int = 0
    done: list[BacklogItem] = field(default_factory=list)  # closed as completed in the period
    impacts: list[ImpactLine] = field(default_factory=list)  # after window ended in the period
    pending: list[ImpactLine] = field(default_factory=list)  # closed in the period, window running
    items: list[BacklogItem] = field(default_factory=list)  # every item read (the Sheet tab)
    all_impacts: list[ImpactLine] = field(default_factory=list)
    window_days: int = impact.DEFAULT_WINDOW_DAYS
    tie_rule: str = TIE_RULE
    location: str = ""
    refused: list[str] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class RetroSection:
    went_well: list[str] = field(default_factory=list)  # composed text (user parts are not escaped)
    to_improve: list[str] = field(default_factory=list)
    try_next: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GoalsSection:
    kind: str
    okrs: OkrSection | None = None
    next_okrs: NextOkrs | None = None  # quarterly
    backlog: BacklogSection | None = None  # monthly
    retro: RetroSection | None = None  # monthly


# ---------------------------------------------------------------- formatting
def _unit(cat, kpi_id: str | None) -> str | None:
    return cat[kpi_id].unit if kpi_id and kpi_id in cat.kpis else None


def value_text(unit: str | None, value: float | None) -> str:
    if value is None:
        return "—"
    return model.format_value(unit, value) if unit else render.number(value)


def change_text(unit: str | None, change: float | None, change_pct: float | None) -> str:
    if change is None:
        return "n/a"
    sign = "+" if change > 0 else ""
    if unit == "pct":
        body = sign + render.number(change, 2) + " pp"
    elif unit == "inr":
        body = render.inr(change, plus=True)
    else:
        body = sign + value_text(unit, change)
    if change_pct is not None:
        body += f" ({'+' if change_pct > 0 else ''}{render.number(change_pct, 1)} %)"
    return body


def day_text(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def kpi_name(cat, kpi_id: str) -> str:
    definition = {"name": cat[kpi_id].name} if kpi_id in cat.kpis else None
    return model.kpi_label(kpi_id, "review", definition)


# ---------------------------------------------------------------- reading
def _snapshots(conn, key: str) -> dict[str, dict]:
    q = sa.text("select source, location, read_at, failed_at, failure from review_snapshots where review_key = :k")
    return {r["source"]: dict(r) for r in conn.execute(q, {"k": key}).mappings()}


def _status(snap: dict | None, what: str) -> tuple[str | None, str | None]:
    """(error, warning) of a source's snapshot for the review."""
    if snap is None:
        return f"{what} not read for this review (its compute step lands them)", None
    if snap["read_at"] is None:
        return f"{what} unavailable: {snap['failure']}", None
    if snap["failed_at"] is not None and model.as_utc(snap["failed_at"]) > model.as_utc(snap["read_at"]):
        return None, f"the last re-read failed ({snap['failure']}); this is the copy read earlier for this review"
    return None, None


def _refused(conn, source: str, key: str) -> list[str]:
    q = sa.text("select record_key, reason from quarantine where source = :s and record_key like :p "
                "order by quarantined_at, record_key")
    rows = conn.execute(q, {"s": source, "p": f"{key} %"}).all()

    def order(r):  # row 10 after row 9; #1234 by number
        tail = r.record_key[len(key) + 1:]
        digits = "".join(ch for ch in tail if ch.isdigit())
        return (tail.split(" ")[0].strip("#0123456789"), int(digits) if digits else 0)

    out = []
    for r in sorted(rows, key=order):
        tail = r.record_key[len(key) + 1:]
        out.append(r.reason if source == OKRS else f"{tail}: {r.reason}")
    return out


def _kr_line(r: dict, cat) -> KrLine:
    unit = _unit(cat, r["kpi_id"])
    score = None if r["score"] is None else float(r["score"])
    if r["kind"] == okrs.KPI:
        measure = f"{kpi_name(cat, r['kpi_id'])} (`{r['kpi_id']}`)"
        status = r["value_status"]
        note = "" if r["is_complete"] else "quarter to date"
        if r["value"] is None:
            note = model.NULL_DISPLAY.get(status, status or "no value")
        elif status in model.DOUBT_SUFFIX:
            note = (note + ", " if note else "") + status.replace("_", " ")
    else:
        measure = "manual"
        note = "score entered by hand" if r["value"] is None and score is not None else ""
    return KrLine(
        row=int(r["sheet_row"]),
        key_result=r["key_result"],
        owner=r["owner"],
        kind=r["kind"],
        measure=measure,
        baseline_text=value_text(unit, r["baseline"]),
        target_text=value_text(unit, r["target"]),
        value_text=value_text(unit, r["value"]),
        score=score,
        score_text=scoring.score_text(score),
        mark=scoring.mark(score),
        grade=scoring.grade(score),
        note=note,
    )


def read_okrs(conn, key: str, quarter: str, title: str, cat) -> OkrSection:
    snap = _snapshots(conn, key).get(OKRS)
    error, warning = _status(snap, "OKRs")
    if error:
        return OkrSection(title, quarter, error=error)
    q = sa.text("select * from okr_scores where review_key = :k and quarter = :q order by sheet_row")
    rows = [dict(r) for r in conn.execute(q, {"k": key, "q": quarter}).mappings()]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(" ".join(r["objective"].split()).casefold(), []).append(r)
    objectives = []
    for members in groups.values():
        lines = [_kr_line(r, cat) for r in members]
        score = scoring.objective_score(ln.score for ln in lines)
        objectives.append(ObjectiveLine(members[0]["objective"], lines, score, scoring.score_text(score),
                                        scoring.mark(score), scoring.grade(score),
                                        sum(ln.score is not None for ln in lines), len(lines)))
    overall = scoring.objective_score(o.score for o in objectives)
    return OkrSection(title, quarter, objectives, overall, scoring.score_text(overall), snap.get("location") or "",
                      _refused(conn, OKRS, key), None, warning)


def read_next_okrs(conn, key: str, quarter: str, cat) -> NextOkrs:
    error, _ = _status(_snapshots(conn, key).get(OKRS), "OKRs")
    if error:
        return NextOkrs(quarter, error=error)
    q = sa.text("select * from raw_okrs where review_key = :k and quarter = :q order by sheet_row")
    groups: dict[str, PlannedObjective] = {}
    for r in conn.execute(q, {"k": key, "q": quarter}).mappings():
        unit = _unit(cat, r["kpi_id"])
        if r["kpi_id"]:
            plan = f"{kpi_name(cat, r['kpi_id'])} (`{r['kpi_id']}`) to {value_text(unit, r['target'])}"
            if r["baseline"] is not None:
                plan += f" from {value_text(unit, r['baseline'])}"
        elif r["manual_score"] is not None:
            plan = "manual: graded by hand"
        else:
            plan = f"manual: from {value_text(None, r['baseline'])} to {value_text(None, r['target'])}"
        name = " ".join(r["objective"].split()).casefold()
        groups.setdefault(name, PlannedObjective(r["objective"], [])).krs.append(
            PlannedKr(r["key_result"], r["owner"], plan))
    return NextOkrs(quarter, list(groups.values()))


def _item(r: dict, rank: int | None = None) -> BacklogItem:
    state = r["state"] if r["state_reason"] != "not_planned" else "closed (not planned)"
    return BacklogItem(int(r["issue_number"]), r["title"], (r["priority"] or "—").capitalize(),
                       r["owner"] or "unassigned", state, int(r["votes"]), r["html_url"], rank,
                       r["target_kpis"] or "")


def _as_improvement(r: dict) -> backlog.Improvement:
    return backlog.Improvement(int(r["issue_number"]), r["title"], r["priority"], r["owner"], r["state"],
                               r["state_reason"], int(r["votes"]), model.as_utc(r["created_at"]), None,
                               model.as_utc(r["closed_at"]), (), r["html_url"])


def _impact_line(r: dict, titles: dict[int, str], cat) -> ImpactLine:
    unit = _unit(cat, r["kpi_id"])
    close = warehouse.as_date(r["close_day"])
    verdict = r["verdict"]
    return ImpactLine(
        issue_number=int(r["issue_number"]),
        title=titles.get(int(r["issue_number"]), ""),
        kpi_id=r["kpi_id"],
        kpi_label=kpi_name(cat, r["kpi_id"]),
        close_text=f"closed {day_text(close)}",
        windows_text=f"{r['window_days']} days before vs after",
        before_text=value_text(unit, r["before_value"]),
        after_text=value_text(unit, r["after_value"]),
        change_text=change_text(unit, r["change"], r["change_pct"]),
        verdict=verdict,
        mark=VERDICT_MARK.get(verdict, "⚠️"),
        note=r["note"] or "",
        before_value=r["before_value"],
        after_value=r["after_value"],
        change=r["change"],
        change_pct=r["change_pct"],
    )


def read_backlog(conn, key: str, start: date, end: date, cat) -> BacklogSection:
    snap = _snapshots(conn, key).get(IMPROVEMENTS)
    error, warning = _status(snap, "improvement issues")
    if error:
        return BacklogSection(error=error)
    rows = [dict(r) for r in conn.execute(
        sa.text("select * from raw_improvements where review_key = :k order by issue_number"), {"k": key}).mappings()]
    improvements = [_as_improvement(r) for r in rows]
    by_number = {r["issue_number"]: r for r in rows}
    ranked = sorted((i for i in improvements if i.state == "open"), key=backlog.rank_key)
    rank = {i.issue_number: n for n, i in enumerate(ranked, 1)}
    items = [_item(by_number[i.issue_number], rank.get(i.issue_number)) for i in
             ranked + sorted((i for i in improvements if i.state != "open"), key=lambda i: i.issue_number)]
    focus = [_item(by_number[i.issue_number], rank[i.issue_number]) for i in backlog.focus(improvements, FOCUS_SIZE)]
    done_rows = [r for r in rows if r["state"] == "closed" and r["state_reason"] != "not_planned"
                 and start <= model.as_utc(r["closed_at"]).astimezone(IST).date() <= end]
    titles = {int(r["issue_number"]): r["title"] for r in rows}
    m_rows = [dict(r) for r in conn.execute(
        sa.text("select * from improvement_impacts where review_key = :k order by close_day, issue_number, kpi_id"),
        {"k": key}).mappings()]
    lines = [(_impact_line(r, titles, cat), r) for r in m_rows]
    shown = [ln for ln, r in lines if ln.verdict != impact.PENDING
             and start <= warehouse.as_date(r["after_last"]) <= end]
    pending = [ln for ln, r in lines if ln.verdict == impact.PENDING
               and start <= warehouse.as_date(r["close_day"]) <= end]
    days = int(m_rows[0]["window_days"]) if m_rows else impact.window_days()
    return BacklogSection(
        focus=focus, open_count=len(ranked),
        done=[_item(r) for r in sorted(done_rows, key=lambda r: model.as_utc(r["closed_at"]))],
        impacts=shown, pending=pending, items=items, all_impacts=[ln for ln, _ in lines], window_days=days,
        location=(snap or {}).get("location") or "", refused=_refused(conn, IMPROVEMENTS, key), warning=warning)


# ---------------------------------------------------------------- retrospective
def _capped(items: list[str], cap: int = RETRO_MAX) -> list[str]:
    return items if len(items) <= cap else items[:cap] + [f"…and {len(items) - cap} more"]


def retrospective(lines, backlog_section: BacklogSection | None, okr_section: OkrSection | None) -> RetroSection:
    """What went well, what could be better, what to try next month — from the
    month's KPI lines (status now vs the previous month, trend) and the backlog.
    ``lines``: the review's KPI lines (``fig``, ``previous``, ``trend``, ``planned``).

    Improvements come first (their impact, those completed), then the objectives off
    track, then the KPIs: back on target / slipped off target (a change of status since
    last month), on target and improving (the trend) / still off target — at most
    :data:`RETRO_MAX` KPI lines each, the rest counted."""
    back_on, on_improving, slipped, still_off = [], [], [], []
    for ln in lines:
        if getattr(ln, "planned", False) or not ln.fig.target_text:
            continue
        now_status = ln.fig.status
        before = ln.previous.status if ln.previous is not None else None
        text = f"{ln.fig.label} {ln.fig.display} (target {ln.fig.target_text}"
        was = f"; last month {ln.previous.display})" if ln.previous is not None and ln.previous.value is not None else ")"
        if now_status == "on_target" and before == "off_target":
            back_on.append(f"Back on target: {text}{was}")
        elif now_status == "on_target" and ln.trend == "improving":
            on_improving.append(f"On target and improving (vs the previous four months): {text})")
        elif now_status == "off_target" and before == "on_target":
            slipped.append(f"Slipped off target: {text}{was}")
        elif now_status == "off_target":
            still_off.append(f"Still off target: {text}{was}")
    well, better, try_next = [], [], []
    if backlog_section is not None and backlog_section.error is None:
        for m in backlog_section.impacts:
            text = f"#{m.issue_number} {m.title}: {m.kpi_label} {m.before_text} → {m.after_text}, {m.change_text}"
            if m.verdict == impact.IMPROVED:
                well.append(f"Improvement paid off: {text}")
            elif m.verdict == impact.WORSENED:
                better.append(f"Improvement did not move its KPI the right way: {text}")
        if backlog_section.done:
            n = len(backlog_section.done)
            well.append(f"{n} improvement{'s' if n != 1 else ''} completed: "
                        + ", ".join(f"#{i.issue_number} {i.title}" for i in backlog_section.done))
        try_next = [f"#{i.issue_number} {i.title} ({i.votes} 👍, owner {i.owner})" for i in backlog_section.focus]
    if okr_section is not None and okr_section.error is None:
        off = [o for o in okr_section.objectives if o.score is not None and o.score < scoring.BEHIND]
        if off:
            better.append("Objectives off track: " + ", ".join(f"{o.objective} ({o.score_text})" for o in off))
    return RetroSection(well + _capped(back_on + on_improving), better + _capped(slipped + still_off), try_next)


# ---------------------------------------------------------------- the section
def build(engine: sa.Engine, kind: str, key: str, start: date, end: date, lines=(), cat=None) -> GoalsSection | None:
    """The goals sections of review ``kind`` (``key``, IST days [start, end]); ``lines``:
    the review's KPI lines (for the retrospective). None for weekly reviews. Never
    raises for the goals' sake: a failure becomes the sections' ``error`` (logged)."""
    from kaizen.kpis.catalog import load_catalog

    if kind not in REVIEW_KINDS:
        return None
    cat = cat or load_catalog()
    quarter = okrs.quarter_key(start)
    try:
        with engine.connect() as conn:
            if kind == "monthly":
                o = read_okrs(conn, key, quarter, f"Progress on quarterly goals ({quarter}, quarter to date)", cat)
                b = read_backlog(conn, key, start, end, cat)
                return GoalsSection(kind, okrs=o, backlog=b, retro=retrospective(lines, b, o))
            o = read_okrs(conn, key, quarter, f"Goal achievement ({quarter} OKRs)", cat)
            return GoalsSection(kind, okrs=o, next_okrs=read_next_okrs(conn, key, okrs.next_quarter(quarter), cat))
    except Exception as exc:  # the review goes out without its goals
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.exception("review %s: the goals sections could not be built", key)
        error = f"goals unavailable: {reason}"
        if kind == "monthly":
            return GoalsSection(kind, okrs=OkrSection("Progress on quarterly goals", quarter, error=error),
                                backlog=BacklogSection(error=error), retro=retrospective(lines, None, None))
        return GoalsSection(kind, okrs=OkrSection("Goal achievement", quarter, error=error),
                            next_okrs=NextOkrs(okrs.next_quarter(quarter), error=error))


# ---------------------------------------------------------------- Sheet tabs
def sheet_rows(goals: GoalsSection | None, period_key: str) -> dict:
    """The "OKR scores", "Backlog" and "Backlog impact" tabs (rows keyed by the review)."""
    if goals is None:
        return {}
    out = {}
    o = goals.okrs
    if o is not None and o.error is None:
        out[OKR_TAB] = {
            "header": ["review", "quarter", "objective", "key_result", "owner", "measure", "baseline", "target",
                       "value", "score", "grade", "objective_score", "note"],
            "rows": [[period_key, o.quarter, render.sheet_text(ob.objective), render.sheet_text(kr.key_result),
                      render.sheet_text(kr.owner), render.sheet_text(kr.measure.replace("`", "")), kr.baseline_text,
                      kr.target_text, kr.value_text, None if kr.score is None else round(kr.score, 4), kr.grade,
                      None if ob.score is None else round(ob.score, 4), kr.note]
                     for ob in o.objectives for kr in ob.krs],
            "key_columns": 4,
            "number_formats": {"review": "text", "objective": "text", "key_result": "text", "score": "float",
                               "objective_score": "float", "baseline": "text", "target": "text", "value": "text"},
        }
    b = goals.backlog
    if b is not None and b.error is None:
        out[BACKLOG_TAB] = {
            "header": ["review", "issue_number", "title", "priority", "owner", "state", "votes", "vote_rank",
                       "is_focus", "target_kpis", "url"],
            "rows": [[period_key, i.issue_number, render.sheet_text(i.title), i.priority, render.sheet_text(i.owner),
                      i.state, i.votes, i.rank, bool(i.rank is not None and i.rank <= FOCUS_SIZE), i.target_kpis,
                      render.sheet_text(i.html_url) if i.html_url else None] for i in b.items],
            "key_columns": 2,
            "number_formats": {"review": "text", "issue_number": "int", "title": "text", "owner": "text",
                               "votes": "int", "vote_rank": "int"},
        }
        out[IMPACT_TAB] = {
            "header": ["review", "issue_number", "kpi_id", "title", "closed", "window_days", "before", "after",
                       "change", "change_pct", "verdict", "note"],
            "rows": [[period_key, m.issue_number, m.kpi_id, render.sheet_text(m.title), m.close_text.removeprefix(
                "closed "), b.window_days, m.before_value, m.after_value, m.change,
                None if m.change_pct is None else round(m.change_pct, 2), m.verdict, m.note]
                for m in b.all_impacts],
            "key_columns": 3,
            "number_formats": {"review": "text", "issue_number": "int", "kpi_id": "text", "title": "text",
                               "before": "float", "after": "float", "change": "float", "change_pct": "float"},
        }
    return out
