"""The A/B readout report: one :class:`~kaizen.experiments.readout.Readout` rendered to
the ``RenderedReview`` of docs/contracts.md ("Review reports"), so it travels through
:func:`kaizen.delivery.reviews.deliver_review` like the period reviews — Slack headline
and thread exactly once through the ledger ``report_deliveries`` (revised in place when
a late trade changes it), the document, and the Sheet rows.

- ``report`` is ``experiment_readout`` and ``period_key`` the experiment's id: one ledger
  row per experiment, so a re-run of a final readout posts nothing and a changed one
  revises its message.
- **Headline**: "🧪 A/B readout — <id>: <verdict>", the hypothesis, owner, planned
  dates, trades per arm against the minimum, and the registered rule's *suggestion for
  the owner* (never a decision) — or what the sample still lacks.
- **Thread**: the source document's table (``Metric | Control | Test | Improvement``
  with ✅/❌, as monospace lines: Slack has no tables), then per metric the difference,
  its CI, the p-value, the method and the verdict; the interim warning while running.
- **Document** (Markdown and HTML): the same, with the table as a Markdown table.
- **Sheet**: tab :data:`RESULTS_TAB` ("Experiment results" — the registry's own tab is
  "Experiments", which people edit), one row per experiment × metric, keyed by both.

The formatting helpers (:func:`value_text`, :func:`improvement_text`, :func:`mark`,
:func:`table_cells`) are shared with the reviews' "Experiments" section
(:mod:`kaizen.reports.review`). Everything hashed is free of run ids, so the same
readout always hashes the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from kaizen.experiments.readout import MetricResult, Readout
from kaizen.experiments.registry import AVG_PROFIT, INSUFFICIENT, MAX_DRAWDOWN, METRIC_NAMES, WIN_RATE
from kaizen.period import range_text
from kaizen.reports import render as rr
from kaizen.reports.model import sheet_number

log = logging.getLogger(__name__)

REPORT = "experiment_readout"
RESULTS_TAB = "Experiment results"  # not "Experiments": that tab is the registry people edit
SLACK_TEMPLATE = "experiment_readout.slack.json.j2"
MARKDOWN_TEMPLATE = "experiment_readout.md.j2"
HTML_TEMPLATE = "experiment_readout.html.j2"
TABLE_HEADER = ("Metric", "Control", "Test", "Improvement")
UNITS = {WIN_RATE: "pct", AVG_PROFIT: "inr", MAX_DRAWDOWN: "pct"}
SHEET_HEADER = [
    "experiment_id",
    "metric",
    "status",
    "as_of",
    "control",
    "test",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "improvement",
    "verdict",
    "unit",
]
SHEET_FORMATS = {
    "experiment_id": "text",
    "metric": "text",
    "status": "text",
    "as_of": "text",
    "control": "float",
    "test": "float",
    "difference": "float",
    "ci_low": "float",
    "ci_high": "float",
    "improvement": "float",
    "verdict": "text",
    "unit": "text",
}
TABLE_LEGEND = (
    "✅ the test arm moved the metric in its better direction, ❌ it did not (significant or not: "
    "see the verdicts). Improvement: win rate and max drawdown in percentage points (a lower drawdown "
    "is better), average profit relative to the control's."
)


# ---------------------------------------------------------------- formatting (shared with the reviews)
def day_text(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _signed_pct(v: float, decimals: int = 1, suffix: str = " %") -> str:
    """'+2.9 %', '−1.8 %', '0.0 %' (a value that rounds to 0 has no sign)."""
    q = round(float(v), decimals)
    return rr.signed(q, f"{abs(q):.{decimals}f}{suffix}", plus=True)


def value_text(metric: str, value: float | None) -> str:
    """An arm's value as the table shows it: '58.3 %', '₹245', '12.3 %'; 'n/a' for none."""
    if value is None:
        return "n/a"
    if metric == AVG_PROFIT:
        return rr.inr(value)
    return rr.pct(value, 1)


def diff_text(metric: str, value: float | None) -> str:
    """A difference (test − control) or CI bound: '+2.90 pp', '−₹12', '+0.35 pp'."""
    if value is None:
        return "n/a"
    if metric == AVG_PROFIT:
        return rr.inr(value, plus=True)
    return _signed_pct(value, 2, " pp")


def improvement_text(m: MetricResult) -> str:
    """The document's Improvement column: '+2.9 %' (win rate, drawdown: points, signed so
    better is positive), '+26.5 %' (average profit: relative to the control)."""
    return "n/a" if m.improvement is None else _signed_pct(m.improvement)


def mark(m: MetricResult) -> str:
    """✅ when the test arm moved the metric in its better direction, ❌ when not, ➖ when
    there is nothing to compare (fewer than 2 trades in an arm)."""
    if m.comparison is None:
        return "➖"
    return "✅" if m.comparison.improved else "❌"


def table_cells(r: Readout, m: MetricResult) -> list[str]:
    """One row of the document's table: [Metric, Control, Test, Improvement ✅/❌]."""
    return [
        m.label,
        value_text(m.metric, getattr(r.control, m.metric)),
        value_text(m.metric, getattr(r.test, m.metric)),
        f"{improvement_text(m)} {mark(m)}",
    ]


def p_text(p: float | None) -> str:
    if p is None:
        return "no p-value"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def ci_label(alpha: float) -> str:
    return f"{rr.number(100 * (1 - alpha), 1)} % CI"


def short_verdict(r: Readout) -> str:
    """The verdict for a title: the primary metric's, or 'insufficient sample'."""
    return r.verdict if r.shortfall.reached else "insufficient sample"


def status_text(r: Readout) -> str:
    e = r.experiment
    if r.final:
        return f"ended {day_text(e.planned_end)}"
    return f"running to {day_text(e.planned_end)}"


def _monospace(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


# ---------------------------------------------------------------- the view the templates print
@dataclass(frozen=True)
class MetricView:
    metric: str
    label: str
    primary: bool
    cells: list[str]  # Metric, Control, Test, Improvement ✅/❌
    detail: str  # difference, CI, p-value, method (plain text, no user text)
    verdict: str
    note: str | None  # the drawdown's equity path, the two CIs of the average profit


@dataclass(frozen=True)
class ReadoutView:
    r: Readout
    title: str
    status: str
    planned: str
    ci: str
    arms: list[dict]  # role, name, trades, wins, win_rate, avg_profit, net_pnl, max_drawdown, missing
    metrics: list[MetricView]
    table_lines: list[str]  # monospace, header first
    verdict: str  # the full one line (with what the sample lacks); user text (arm names)
    suggestion: str | None  # the rule's suggestion text, final readouts only
    warning: str | None  # interim
    rule: str


def _detail(r: Readout, m: MetricResult) -> tuple[str, str | None]:
    c, ci = m.comparison, ci_label(r.experiment.alpha)
    if c is None:
        return "no comparison: an arm has fewer than 2 trades", None
    unit_ci = f"{ci} {diff_text(m.metric, c.ci_low)} to {diff_text(m.metric, c.ci_high)}"
    if m.metric == AVG_PROFIT:
        if c.ci_low is None:
            text = f"difference {diff_text(m.metric, c.diff)}; {c.method}"
        else:
            text = (f"difference {diff_text(m.metric, c.diff)}, {unit_ci} ({c.ci_method}), "
                    f"{p_text(c.p_value)}; {c.method}")
        boot = (f"{c.boot_method}: {ci} {diff_text(m.metric, c.boot_ci_low)} to "
                f"{diff_text(m.metric, c.boot_ci_high)}")
        note = f"Beside Welch's, the {boot} (P&L is heavy-tailed)."
        if c.ci_low is not None and c.boot_ci_low is not None:
            welch_zero = c.ci_low <= 0 <= c.ci_high
            boot_zero = c.boot_ci_low <= 0 <= c.boot_ci_high
            if welch_zero != boot_zero:
                note += (" The two intervals disagree about zero: the verdict follows Welch's p-value; "
                         "read it with care.")
        return text, note
    if m.metric == MAX_DRAWDOWN:
        text = (f"difference {diff_text(m.metric, c.diff)}, {unit_ci}, no p-value (significant when the CI "
                f"excludes 0); {c.method}")
        note = ("Drawdown is measured on each arm's own equity path: the capital base plus that arm's "
                "trades only, in exit order. Lower is better.")
        return text, note
    return (f"difference {diff_text(m.metric, c.diff)}, {unit_ci} ({c.ci_method}), {p_text(c.p_value)}; "
            f"{c.method}"), None


def _verdict(r: Readout, m: MetricResult) -> str:
    if m.comparison is None:
        return "no verdict (fewer than 2 trades in an arm)"
    if m.outcome == INSUFFICIENT:
        return "no verdict: insufficient sample"
    return m.verdict if r.final else f"interim: {m.verdict}"


def view(r: Readout) -> ReadoutView:
    e = r.experiment
    metrics = []
    for m in r.metrics:
        detail, note = _detail(r, m)
        metrics.append(MetricView(m.metric, m.label, m.metric == e.primary_metric, table_cells(r, m), detail,
                                  _verdict(r, m), note))
    arms = []
    for arm, missing in ((r.control, r.shortfall.control), (r.test, r.shortfall.test)):
        arms.append({
            "role": arm.role, "name": arm.name, "trades": rr.count(arm.trades), "wins": rr.count(arm.wins),
            "win_rate": value_text(WIN_RATE, arm.win_rate), "avg_profit": value_text(AVG_PROFIT, arm.avg_profit),
            "net_pnl": rr.inr(arm.net_pnl), "max_drawdown": value_text(MAX_DRAWDOWN, arm.max_drawdown),
            "missing": missing,
        })
    title = f"🧪 A/B readout — {e.id}: {short_verdict(r)}" + ("" if r.final else " (interim)")
    return ReadoutView(
        r=r,
        title=title,
        status=status_text(r),
        planned=range_text(e.planned_start, e.planned_end),
        ci=ci_label(e.alpha),
        arms=arms,
        metrics=metrics,
        table_lines=_monospace([list(TABLE_HEADER), *(m.cells for m in metrics)]),
        verdict=r.verdict,
        suggestion=r.suggestion.text if r.suggestion is not None else None,
        warning=r.warning,
        rule=str(e.decision_rule),
    )


# ---------------------------------------------------------------- sheet rows, summary, hash
def sheet_rows(r: Readout) -> dict:
    """Tab "Experiment results": one row per experiment × metric, keyed by both (the first
    two columns), so a re-sync (a later day, the final readout, a late trade) replaces
    the row. Values unrounded; units in ``unit`` (pct: 0–100, differences in points)."""
    rows = []
    for m in r.metrics:
        c = m.comparison
        rows.append([
            r.experiment.id,
            m.metric,
            r.status,
            r.as_of.isoformat(),
            sheet_number(getattr(r.control, m.metric)),
            sheet_number(getattr(r.test, m.metric)),
            sheet_number(c.diff if c else None),
            sheet_number(c.ci_low if c else None),
            sheet_number(c.ci_high if c else None),
            sheet_number(c.p_value if c else None),
            sheet_number(m.improvement),
            m.verdict,
            UNITS[m.metric],
        ])
    return {RESULTS_TAB: {"header": list(SHEET_HEADER), "rows": rows, "key_columns": 2,
                          "number_formats": dict(SHEET_FORMATS)}}


def summary_line(r: Readout) -> str:
    """The readout in one line of ``;``-separated items, so a revision note names only
    what changed ("win rate: control 50.0 %, test 65.0 % → 64.8 %")."""
    items = [f"verdict {short_verdict(r)}", f"trades: control {r.control.trades}, test {r.test.trades}"]
    for m in r.metrics:
        cells = table_cells(r, m)
        items.append(f"{METRIC_NAMES[m.metric]}: control {cells[1]}, test {cells[2]}")
    if r.suggestion is not None:
        items.append(f"suggestion {r.suggestion.label}")
    return "; ".join(items)


def content_hash(headline: dict, thread: list[dict], markdown: str, rows: dict) -> str:
    """sha256 over the Slack payloads (their metadata blocks left out, see
    :func:`kaizen.reports.render.content_hash`), the Markdown and the sheet rows."""
    canonical = json.dumps(
        {"headline": rr.content_hash(headline), "thread": [rr.content_hash(p) for p in thread],
         "markdown": markdown, "sheet_rows": rows},
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _html(title: str, markdown: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return rr.render_text(HTML_TEMPLATE, title=title, body=body)


# ---------------------------------------------------------------- render and deliver
def render(readout: Readout, run_id: str) -> dict:
    """The ``RenderedReview`` of ``readout`` (report ``experiment_readout``, period key
    the experiment id). Every Slack payload is checked against Block Kit's limits here,
    before anything is sent."""
    v = view(readout)
    context = {"v": v, "r": readout, "e": readout.experiment, "run_id": run_id or "manual",
               "legend": TABLE_LEGEND, "report": REPORT}
    headline, thread = rr.render_thread(SLACK_TEMPLATE, f"{REPORT} {readout.experiment.id}", **context)
    markdown = rr.render_text(MARKDOWN_TEMPLATE, **context)
    rows = sheet_rows(readout)
    return {
        "report": REPORT,
        "period_key": readout.experiment.id,
        "headline": headline,
        "thread": thread,
        "markdown": markdown,
        "html": _html(v.title, markdown),
        "charts": {},
        "sheet_rows": rows,
        "content_hash": content_hash(headline, thread, markdown, rows),
        "summary": summary_line(readout),
    }


def deliver(engine: sa.Engine, readouts: list[Readout], run_id: str, *, post_to_slack: bool = True,
            sync_sheets: bool = True) -> list[dict]:
    """The readout of each **final** (ended) experiment through
    :func:`kaizen.delivery.reviews.deliver_review` (channel ``reviews``): posted once,
    nothing on a re-run, revised in place when its content changed. Running experiments
    are not posted (the weekly and monthly reviews show them). Every readout is
    attempted; the first failure is then raised, the others attached as notes."""
    from kaizen.delivery.reviews import deliver_review

    results, failures = [], []
    for r in readouts:
        if not r.final:
            log.info("experiment %s is %s: no readout posted before its planned end (%s)",
                     r.experiment.id, r.status, r.experiment.planned_end)
            continue
        try:
            results.append(deliver_review(render(r, run_id), engine, channel_kind="reviews",
                                          post_to_slack=post_to_slack, sync_sheets=sync_sheets))
        except Exception as exc:
            log.error("experiment %s: the readout was not delivered: %s", r.experiment.id, exc)
            failures.append(exc)
    if failures:
        first = failures[0]
        for other in failures[1:]:
            first.add_note(f"also failed: {type(other).__name__}: {other}")
        raise first
    return results
