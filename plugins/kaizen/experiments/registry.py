"""The experiment registry: the A/B experiments the desk runs, as the people running
them write them down, validated row by row.

Where it is read from (the first that applies):

1. the **"Experiments" tab** of the Google Sheet of connection ``kaizen_gsheets``, when
   the connection is configured *and* the spreadsheet has that tab (the Sheet wins);
2. a **YAML file**: the setting ``KAIZEN_EXPERIMENTS_FILE``; else, with
   ``KAIZEN_SOURCES=demo``, ``<demo dir>/experiments.yaml`` when it exists; else
   ``include/experiments.yaml`` in the repository.

A missing YAML file is an empty registry (experiments are optional), except a file
named by ``KAIZEN_EXPERIMENTS_FILE``: a setting that points nowhere is a typo that would
hide every experiment, so it fails. A YAML file that does not parse, or a Sheet that
cannot be read (a refused key, a wrong spreadsheet id, the quota), raises — never an
empty registry in disguise.

Each row (a Sheet row, or an item of the YAML ``experiments:`` list) has the columns of
:data:`COLUMNS`. A bad row is refused — a :class:`RefusedRow` naming the row and the
field, one per problem — and the other rows are still read. A later row repeating an
id, or taking an ``ab_arm`` value that an experiment with overlapping planned dates
already uses, is refused too. Unknown columns are logged and ignored.

The decision rule is a sentence with a strict grammar (:func:`parse_rule`)::

    roll out if <primary metric> better [and <metric> not worse]...

and :func:`suggest` turns the per-metric outcomes of a readout into a *suggestion* for
the experiment's owner — never a decision made.

Light imports only (yaml; gspread lazily, when the Sheet is configured).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kaizen import config
from kaizen.calendar import IST, shown_path
from kaizen.errors import PermanentError

log = logging.getLogger(__name__)

# Settings (documented in the README, "Experiments: the registry").
ENV_EXPERIMENTS_FILE = "KAIZEN_EXPERIMENTS_FILE"
EXPERIMENTS_TAB = "Experiments"
REGISTRY_FILE_NAME = "experiments.yaml"
DEFAULT_FILE = config.REPO_ROOT / "include" / REGISTRY_FILE_NAME

# The metrics a readout compares, in report order, and their names in sentences.
WIN_RATE, AVG_PROFIT, MAX_DRAWDOWN = "win_rate", "avg_profit", "max_drawdown"
METRICS = (WIN_RATE, AVG_PROFIT, MAX_DRAWDOWN)
METRIC_NAMES = {WIN_RATE: "win rate", AVG_PROFIT: "average profit per trade", MAX_DRAWDOWN: "max drawdown"}

DEFAULT_PRIMARY = WIN_RATE
DEFAULT_MIN_SAMPLE = 100  # trades per arm (the source document's "at least 100 trades per group")
DEFAULT_ALPHA = 0.05

COLUMNS = (
    "id",
    "hypothesis",
    "scope",
    "control_arm",
    "test_arm",
    "metrics",
    "primary_metric",
    "min_sample_per_arm",
    "planned_start",
    "planned_end",
    "decision_rule",
    "owner",
    "alpha",
)
REQUIRED = ("id", "hypothesis", "scope", "control_arm", "test_arm", "planned_start", "planned_end", "owner")

SOURCES = ("sheet", "yaml")
PLANNED, RUNNING, ENDED = "planned", "running", "ended"

# Per-metric outcomes of a readout, and the suggestions drawn from them.
BETTER, WORSE, NO_DIFFERENCE, INSUFFICIENT = "better", "worse", "no_difference", "insufficient"
OUTCOMES = (BETTER, WORSE, NO_DIFFERENCE, INSUFFICIENT)
ROLL_OUT, ROLL_BACK, ITERATE = "roll out", "roll back", "iterate"

# Sheets locales that write a date month first (10/31/2027); every other writes it day
# first (31/10/2027, as en_IN does) or year first (2027/10/31).
MONTH_FIRST_LOCALES = frozenset({"en_US", "es_US", "en_PH", "fil_PH"})

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_GRAMMAR = 'write "roll out if <metric> better", optionally followed by "and <metric> not worse" (repeated)'


class RegistryError(PermanentError, ValueError):
    """The registry file cannot be read at all; the message names the file."""


class RuleError(ValueError):
    """A decision rule sentence that does not follow the grammar."""


# ---------------------------------------------------------------------------- the decision rule


@dataclass(frozen=True)
class DecisionRule:
    """``roll out if <primary> better`` and, for each guardrail, ``and <metric> not worse``."""

    primary: str
    guardrails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "guardrails", tuple(self.guardrails))
        for metric in self.metrics:
            if metric not in METRICS:
                raise RuleError(f"unknown metric {metric!r} (one of {', '.join(METRICS)})")
        if self.primary in self.guardrails:
            raise RuleError(f"{self.primary} is both the primary metric and a guardrail")
        if len(set(self.guardrails)) != len(self.guardrails):
            raise RuleError(f"a guardrail is named twice: {', '.join(self.guardrails)}")

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.primary, *self.guardrails)

    def __str__(self) -> str:
        return " and ".join([f"roll out if {self.primary} better", *(f"{g} not worse" for g in self.guardrails)])


def _metric_id(words: str) -> str:
    """``win_rate``, ``Win rate`` or ``win  rate`` → ``win_rate``."""
    return "_".join(words.lower().split())


def parse_rule(text: str) -> DecisionRule:
    """The rule a sentence states. Case and spacing are free, a final full stop is
    allowed and a metric may be written with spaces (``win rate``); anything else
    outside the grammar raises :class:`RuleError`."""
    sentence = " ".join(str(text or "").lower().split()).removesuffix(".").strip()

    def fail(problem: str) -> RuleError:
        return RuleError(f"{str(text).strip()!r} is not a decision rule: {problem}; {_GRAMMAR}")

    if not sentence:
        raise fail("it is empty")
    head = "roll out if "
    if not sentence.startswith(head):
        raise fail('it must start with "roll out if"')
    clauses = sentence[len(head) :].split(" and ")
    first, rest = clauses[0], clauses[1:]
    if not first.endswith(" better"):
        raise fail(f'expected "<metric> better" after "roll out if", got {first!r}')
    primary = _metric_id(first.removesuffix(" better"))
    guardrails = []
    for clause in rest:
        if not clause.endswith(" not worse"):
            raise fail(f'expected "<metric> not worse" after "and", got {clause!r}')
        guardrails.append(_metric_id(clause.removesuffix(" not worse")))
    try:
        return DecisionRule(primary, tuple(guardrails))
    except RuleError as exc:
        raise fail(str(exc)) from None


@dataclass(frozen=True)
class Suggestion:
    """What the registered rule suggests to the experiment's owner, with the reason in
    words. ``action`` is None when the sample is too small to suggest anything."""

    action: str | None  # ROLL_OUT, ROLL_BACK, ITERATE, or None (insufficient sample)
    reason: str
    owner: str | None = None

    @property
    def label(self) -> str:
        return self.action or "insufficient sample"

    @property
    def text(self) -> str:
        who = self.owner or "the experiment's owner"
        if self.action is None:
            return f"No suggestion for {who} yet: {self.reason}."
        return f"Suggestion for {who}: {self.action} — {self.reason}."

    def __str__(self) -> str:
        return self.text


def _phrase(metric: str, outcome: str, guardrail: bool) -> str:
    name = METRIC_NAMES[metric]
    if outcome == BETTER:
        return f"{name} significantly better"
    if outcome == WORSE:
        return f"{name} significantly worse"
    return f"{name} not significantly worse" if guardrail else f"no significant difference in {name}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def suggest(rule: DecisionRule, outcomes: Mapping[str, str], *, owner: str | None = None) -> Suggestion:
    """The suggestion of ``rule`` given ``outcomes`` (metric → ``better``, ``worse``,
    ``no_difference`` or ``insufficient``, the test arm against the control, "better"
    in the metric's own direction: a *smaller* drawdown is better).

    - any metric of the rule with an insufficient sample: no suggestion;
    - the primary better and no guardrail worse: roll out;
    - the primary worse, or any guardrail worse: roll back;
    - otherwise (no significant difference in the primary): iterate.

    Metrics outside the rule are ignored."""
    for metric in rule.metrics:
        if metric not in outcomes:
            raise ValueError(f"no outcome for {metric}, which the rule {str(rule)!r} needs")
        if outcomes[metric] not in OUTCOMES:
            raise ValueError(f"outcome {outcomes[metric]!r} for {metric} is not one of {', '.join(OUTCOMES)}")
    short = [METRIC_NAMES[m] for m in rule.metrics if outcomes[m] == INSUFFICIENT]
    if short:
        return Suggestion(None, f"insufficient sample for {_and(short)}", owner)
    primary = outcomes[rule.primary]
    guard_worse = any(outcomes[g] == WORSE for g in rule.guardrails)
    reason = "; ".join(
        [_phrase(rule.primary, primary, False), *(_phrase(g, outcomes[g], True) for g in rule.guardrails)]
    )
    if primary == BETTER and not guard_worse:
        action = ROLL_OUT
    elif primary == WORSE or guard_worse:
        action = ROLL_BACK
    else:
        action = ITERATE
    return Suggestion(action, reason, owner)


# ---------------------------------------------------------------------------- one experiment


class _Bad(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(name: str, value: Any, required: bool = True) -> str:
    if isinstance(value, bool):
        raise _Bad(name, f"{name} {value} is a yes/no value, not text (quote it)")
    if isinstance(value, int | float):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise _Bad(name, f"{name} must be text, got a {type(value).__name__}")
    text = " ".join((value or "").split())
    if required and not text:
        raise _Bad(name, f"{name} is missing")
    return text


def _slug(value: Any) -> str:
    text = _text("id", value)
    if not _SLUG.fullmatch(text):
        raise _Bad("id", f"id {text!r} is not a slug (lowercase letters, digits, '-' and '_')")
    return text


def _metrics(value: Any) -> tuple[str, ...]:
    if _blank(value) or value == [] or value == ():
        return METRICS
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = [_text("metrics", v) for v in value]
    else:
        raise _Bad("metrics", f"metrics must be a list or comma-separated text, got {value!r}")
    seen: list[str] = []
    for item in items:
        metric = _metric_id(item)
        if metric not in METRICS:
            raise _Bad("metrics", f"metrics: {item.strip()!r} is not one of {', '.join(METRICS)}")
        if metric in seen:
            raise _Bad("metrics", f"metrics names {metric} twice")
        seen.append(metric)
    return tuple(m for m in METRICS if m in seen)


def _primary(value: Any, metrics: tuple[str, ...] | None) -> str:
    metric = DEFAULT_PRIMARY if _blank(value) else _metric_id(_text("primary_metric", value))
    if metric not in METRICS:
        raise _Bad("primary_metric", f"primary_metric {value!r} is not one of {', '.join(METRICS)}")
    if metrics is not None and metric not in metrics:
        default = " (the default)" if _blank(value) else ""
        raise _Bad(
            "primary_metric", f"primary_metric {metric}{default} is not among metrics ({', '.join(metrics)})"
        )
    return metric


def _whole(name: str, value: Any, default: int) -> int:
    if _blank(value):
        return default
    number = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        digits = value.strip().replace(",", "").replace("_", "").replace(" ", "")  # 1,00,000
        if re.fullmatch(r"\d+(\.0*)?", digits):
            number = int(float(digits))
    if number is None or number < 1:
        raise _Bad(name, f"{name} {value} is not a whole number ≥ 1")
    return number


def _alpha(value: Any) -> float:
    if _blank(value):
        return DEFAULT_ALPHA
    alpha = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        alpha = float(value)
    elif isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            alpha = float(text.removesuffix("%").strip())
        except ValueError:
            alpha = None
        if alpha is not None and percent:
            alpha /= 100
    if alpha is None or not math.isfinite(alpha):
        raise _Bad("alpha", f"alpha {value} is not a number (e.g. 0.05)")
    if not 0 < alpha < 0.5:
        raise _Bad("alpha", f"alpha {value} must be above 0 and below 0.5 (e.g. 0.05)")
    return alpha


def _date(name: str, value: Any, day_first: bool | None) -> date:
    """A date from ``YYYY-MM-DD`` (or a date object); from the Sheet also as its
    locale writes one (``day_first``: 31/10/2027, else 10/31/2027; 2027/10/31 either way)."""
    if isinstance(value, datetime):
        raise _Bad(name, f"{name} {value} is a date and time; give the date alone (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    text = _text(name, value)
    parts = None
    if m := _YMD.fullmatch(text):
        parts = (int(m[1]), int(m[2]), int(m[3]))
    elif day_first is not None and (m := _DMY.fullmatch(text)):
        first, second = int(m[1]), int(m[2])
        parts = (int(m[3]), second, first) if day_first else (int(m[3]), first, second)
    try:
        if parts is None:
            raise ValueError(text)
        return date(*parts)
    except ValueError:
        pass
    written = " or DD/MM/YYYY" if day_first else " or MM/DD/YYYY" if day_first is False else ""
    raise _Bad(name, f"{name} {text} is not a date (YYYY-MM-DD{written})")


def _rule(value: Any, primary: str | None, metrics: tuple[str, ...] | None) -> DecisionRule | None:
    if isinstance(value, DecisionRule):
        rule, text = value, str(value)
    elif _blank(value):
        return None if primary is None else DecisionRule(primary)
    else:
        text = _text("decision_rule", value)
        try:
            rule = parse_rule(text)
        except RuleError as exc:
            raise _Bad("decision_rule", f"decision_rule {exc}") from None
    if primary is not None and rule.primary != primary:
        raise _Bad(
            "decision_rule",
            f"decision_rule {text!r} tests {rule.primary}, but primary_metric is {primary}: "
            f'the rule must say "roll out if {primary} better"',
        )
    if metrics is not None:
        outside = [g for g in rule.guardrails if g not in metrics]
        if outside:
            raise _Bad(
                "decision_rule",
                f"decision_rule {text!r}: guardrail {', '.join(outside)} is not among metrics ({', '.join(metrics)})",
            )
    return rule


def _coerce(raw: Mapping[str, Any], day_first: bool | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """Typed values of one row, and its problems as (field, message), every field
    checked so that one pass shows all of a row's problems."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []

    def take(name: str, fn, *args) -> None:
        try:
            values[name] = fn(*args)
        except _Bad as bad:
            problems.append((bad.field, bad.message))

    get = raw.get
    take("id", _slug, get("id"))
    for name in ("hypothesis", "scope", "control_arm", "test_arm", "owner"):
        take(name, _text, name, get(name))
    if values.get("control_arm") and values.get("control_arm") == values.get("test_arm"):
        problems.append(("test_arm", f"test_arm {values['test_arm']!r} is the same as control_arm"))
    take("metrics", _metrics, get("metrics"))
    take("primary_metric", _primary, get("primary_metric"), values.get("metrics"))
    take("min_sample_per_arm", _whole, "min_sample_per_arm", get("min_sample_per_arm"), DEFAULT_MIN_SAMPLE)
    take("planned_start", _date, "planned_start", get("planned_start"), day_first)
    take("planned_end", _date, "planned_end", get("planned_end"), day_first)
    start, end = values.get("planned_start"), values.get("planned_end")
    if start and end and end < start:
        problems.append(("planned_end", f"planned_end {end} is before planned_start {start}"))
    if "primary_metric" in values and "metrics" in values:
        take("decision_rule", _rule, get("decision_rule"), values["primary_metric"], values["metrics"])
    take("alpha", _alpha, get("alpha"))
    return values, problems


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One registered experiment. Constructing one validates it (ValueError naming
    every bad field); text dates, a metrics list and a rule sentence are accepted and
    stored typed."""

    id: str  # slug: lowercase letters, digits, '-', '_'
    hypothesis: str
    scope: str  # the strategy whose trades the experiment covers (trades.strategy)
    control_arm: str  # trades.ab_arm of the control group
    test_arm: str  # trades.ab_arm of the test group
    metrics: tuple[str, ...] = METRICS  # a subset of METRICS, in METRICS order
    primary_metric: str = DEFAULT_PRIMARY
    min_sample_per_arm: int = DEFAULT_MIN_SAMPLE  # trades each arm needs before any verdict
    planned_start: date  # IST dates, both included
    planned_end: date
    decision_rule: DecisionRule | None = None  # None: "roll out if <primary_metric> better"
    owner: str
    alpha: float = DEFAULT_ALPHA  # significance level; CIs are (1 − alpha)
    source: str = "yaml"  # "sheet" or "yaml"
    row: int = 0  # the Sheet row, or the position in the YAML list (1-based); 0: built in code

    def __post_init__(self) -> None:
        values, problems = _coerce({name: getattr(self, name) for name in COLUMNS})
        if self.source not in SOURCES:
            problems.append(("source", f"source {self.source!r} is not one of {', '.join(SOURCES)}"))
        if isinstance(self.row, bool) or not isinstance(self.row, int) or self.row < 0:
            problems.append(("row", f"row {self.row!r} is not a row number"))
        if problems:
            raise ValueError(f"experiment {self.id!r}: " + "; ".join(m for _, m in problems))
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def arms(self) -> tuple[str, str]:
        return self.control_arm, self.test_arm

    def status(self, today: date | datetime) -> str:
        return status(self, today)

    def suggest(self, outcomes: Mapping[str, str]) -> Suggestion:
        return suggest(self.decision_rule, outcomes, owner=self.owner)


def ist_day(when: date | datetime | None = None) -> date:
    """The IST date of ``when`` (an aware datetime, or a date taken as IST); now when None."""
    if when is None:
        return datetime.now(IST).date()
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError(f"{when} has no time zone: pass a date, or an aware datetime")
        return when.astimezone(IST).date()
    return when


def status(experiment: Experiment, today: date | datetime) -> str:
    """``planned`` before ``planned_start``, ``running`` through ``planned_end``
    (both IST dates, included), ``ended`` from the day after."""
    day = ist_day(today)
    if day < experiment.planned_start:
        return PLANNED
    return RUNNING if day <= experiment.planned_end else ENDED


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class RefusedRow:
    source: str  # "sheet" or "yaml"
    row: int  # the Sheet row (1 = the header), or the position in the YAML list (1-based)
    experiment_id: str | None  # the id as written, when the row has one
    field: str | None  # the column at fault ("header": the whole tab); None: the row itself
    message: str  # the full sentence: where, which field, what is wrong

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Registry:
    experiments: list[Experiment] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    source: str = "none"  # "sheet", "yaml", or "none" (no registry anywhere)
    location: str = ""  # the tab or file read, or the file looked for
    today: date = field(default_factory=ist_day)  # the IST date statuses are taken on

    def get(self, experiment_id: str) -> Experiment | None:
        return next((e for e in self.experiments if e.id == experiment_id), None)

    def status(self, experiment: Experiment) -> str:
        return status(experiment, self.today)

    def with_status(self, *statuses: str) -> list[Experiment]:
        return [e for e in self.experiments if status(e, self.today) in statuses]


def _column(name: Any) -> str:
    """A header or key as a field name: case, outer spaces and inner spaces free."""
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def _read_rows(
    rows: list[tuple[int, Any]], source: str, where, day_first: bool | None
) -> tuple[list[Experiment], list[RefusedRow]]:
    """Validate ``rows`` ((row number, mapping)): the experiments, and every refusal.
    ``where(row, label)`` is how a message names the row."""
    experiments: list[Experiment] = []
    refused: list[RefusedRow] = []
    first_row: dict[str, int] = {}
    for row, raw in rows:
        if not isinstance(raw, Mapping):
            refused.append(
                RefusedRow(
                    source, row, None, None,
                    f"{where(row, None)}: expected a mapping of {', '.join(REQUIRED)}, …, got {raw!r}",
                )
            )
            continue
        label = " ".join(str(raw.get("id") or "").split()) or None
        values, problems = _coerce(raw, day_first)
        exp_id = values.get("id")
        if exp_id in first_row:
            problems.insert(0, ("id", f"id {exp_id} is already used by {where(first_row[exp_id], None)}"))
        elif exp_id:
            first_row[exp_id] = row
        if not problems:
            problems += _arm_clashes(values, experiments, where)
        if problems:
            refused += [RefusedRow(source, row, label, f, f"{where(row, label)}: {m}") for f, m in problems]
            continue
        experiments.append(Experiment(**values, source=source, row=row))
    for r in refused:
        log.warning("experiment registry: refused: %s", r.message)
    return experiments, refused


def _arm_clashes(values: dict, accepted: list[Experiment], where) -> list[tuple[str, str]]:
    """An ``ab_arm`` value belongs to one experiment at a time: a row whose arm is an
    arm of an accepted experiment with overlapping planned dates is refused."""
    out = []
    start, end = values["planned_start"], values["planned_end"]
    for name in ("control_arm", "test_arm"):
        arm = values[name]
        for other in accepted:
            if arm in other.arms and start <= other.planned_end and other.planned_start <= end:
                out.append(
                    (
                        name,
                        f"{name} {arm!r} is already an arm of experiment {other.id} ({where(other.row, None)}), "
                        f"whose planned dates overlap ({other.planned_start} – {other.planned_end}): "
                        "give this experiment its own arm values",
                    )
                )
                break
    return out


def _warn_unknown(names, where: str) -> None:
    unknown = sorted({str(n).strip() for n in names if str(n).strip() and _column(n) not in COLUMNS})
    if unknown:
        log.warning(
            "experiment registry: %s: unknown column(s) %s ignored (the columns: %s)",
            where, ", ".join(unknown), ", ".join(COLUMNS),
        )


# ---------------------------------------------------------------------------- the Sheet


def _from_sheet(conn: config.Conn, today: date) -> Registry | None:
    """The registry on the connection's spreadsheet, or None when it has no
    "Experiments" tab. A failure raises the sink's Sheets errors, saying it was the
    registry being read."""
    from kaizen.delivery import sheets

    got = sheets.read_tabs(conn, [EXPERIMENTS_TAB], "the experiment registry", any_case=True)
    if EXPERIMENTS_TAB not in got.values:
        log.info(
            "experiment registry: spreadsheet %s (connection %r) has no %r tab; reading the YAML registry",
            got.spreadsheet_id, conn.conn_id, EXPERIMENTS_TAB,
        )
        return None
    day_first = got.properties.get("locale", "") not in MONTH_FIRST_LOCALES
    title = got.titles[EXPERIMENTS_TAB]
    experiments, refused = _parse_sheet(got.values[EXPERIMENTS_TAB], title, day_first)
    return Registry(experiments, refused, "sheet", got.location(EXPERIMENTS_TAB), today)


def _parse_sheet(values: list[list], title: str, day_first: bool) -> tuple[list[Experiment], list[RefusedRow]]:
    header = [_column(h) for h in (values[0] if values else [])]
    where_tab = f"{title}!row 1"
    missing = [c for c in REQUIRED if c not in header]
    twice = sorted({c for c in header if c in COLUMNS and header.count(c) > 1})
    if missing or twice:
        problem = (
            f"missing column(s) {', '.join(missing)}" if missing else f"column(s) {', '.join(twice)} appear twice"
        )
        refusal = RefusedRow(
            "sheet", 1, None, "header",
            f"{where_tab}: {problem}; the tab is not read. Row 1 holds the column names "
            f"({', '.join(COLUMNS)}; {', '.join(c for c in COLUMNS if c not in REQUIRED)} may be left out)",
        )
        log.warning("experiment registry: refused: %s", refusal.message)
        return [], [refusal]
    _warn_unknown(values[0], f"tab {title!r}")
    index = {name: i for i, name in enumerate(header) if name in COLUMNS}
    rows = []
    for number, cells in enumerate(values[1:], start=2):
        if all(_blank(c) for c in cells):
            continue
        rows.append((number, {name: cells[i] if i < len(cells) else "" for name, i in index.items()}))

    def where(row: int, label: str | None) -> str:
        return f"{title}!row {row}" + (f" ({label})" if label else "")

    return _read_rows(rows, "sheet", where, day_first)


# ---------------------------------------------------------------------------- the YAML file


def registry_file() -> tuple[Path, bool]:
    """The YAML registry's path, and whether a setting named it explicitly."""
    named = os.environ.get(ENV_EXPERIMENTS_FILE, "").strip()
    if named:
        return Path(named), True
    if config.sources_mode() == "demo":
        demo = config.demo_dir() / REGISTRY_FILE_NAME
        if demo.exists():
            return demo, False
    return DEFAULT_FILE, False


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader without implicit timestamps: a date stays text until the registry
        parses it, so one impossible date (2026-13-01) refuses its row, not the file."""

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def _from_yaml(path: Path, today: date) -> Registry:
    import yaml

    shown = shown_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"experiment registry {shown} cannot be read: {exc}") from None
    try:
        doc = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        raise RegistryError(f"experiment registry {shown} is not valid YAML: {exc}") from None
    if doc is None:
        doc = {"experiments": []}
    if not isinstance(doc, dict) or "experiments" not in doc:
        raise RegistryError(f"experiment registry {shown}: expected a mapping with an 'experiments:' list")
    others = [k for k in doc if k != "experiments"]
    if others:
        log.warning("experiment registry: %s: top-level key(s) %s ignored", shown, ", ".join(map(str, others)))
    entries = doc["experiments"] or []
    if not isinstance(entries, list):
        raise RegistryError(
            f"experiment registry {shown}: 'experiments' must be a list of experiments, got {type(entries).__name__}"
        )
    rows: list[tuple[int, Any]] = []
    for number, item in enumerate(entries, start=1):
        if isinstance(item, dict):
            _warn_unknown(item, f"{shown} experiment {number}")
            item = {_column(k): v for k, v in item.items()}
        rows.append((number, item))

    def where(row: int, label: str | None) -> str:
        return f"{shown} experiment {row}" + (f" ({label})" if label else "")

    experiments, refused = _read_rows(rows, "yaml", where, None)
    return Registry(experiments, refused, "yaml", shown, today)


# ---------------------------------------------------------------------------- load


def load(*, today: date | datetime | None = None) -> Registry:
    """The experiment registry (see the module docstring for where it is read from).
    ``today`` (IST; default now) is the day the registry's statuses are taken on."""
    day = ist_day(today)
    conn = config.get_connection(config.GSHEETS_CONN_ID)
    registry = _from_sheet(conn, day) if conn is not None else None
    if registry is None:
        path, named = registry_file()
        if path.exists():
            registry = _from_yaml(path, day)
        elif named:
            raise RegistryError(
                f"{ENV_EXPERIMENTS_FILE}={path}: no such file. Point the setting at the registry YAML "
                f"(see README, 'Experiments: the registry'), or unset it to use {shown_path(DEFAULT_FILE)}."
            )
        else:
            log.info("experiment registry: no %s and no %r tab: no experiments", shown_path(path), EXPERIMENTS_TAB)
            return Registry([], [], "none", shown_path(path), day)
    log.info(
        "experiment registry: %d experiment(s) from %s (%d running), %d refusal(s)",
        len(registry.experiments), registry.location, len(registry.with_status(RUNNING)), len(registry.refused),
    )
    return registry
