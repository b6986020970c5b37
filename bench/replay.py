"""Replay of scheduled operation (issue 13's acceptance) — the operator's rehearsal tool.

    make replay                  # X = Fri 18 Sep 2026, runs to Mon 12 Oct: all four DAGs, a month
                                 # and quarter end (Wed 30 Sep), a holiday, a scrape-gap week
    make replay REPLAY_ARGS="--history-to 2026-10-16 --days 24 --months 3 --seed 42"
    .venv/bin/python bench/replay.py --help

1. Writes deterministic demo sources (``kaizen.demo.generate``) and builds the history up
   to day X (``--history-to``) with one ``kaizen.pipeline.rebuild`` into the *replay*
   warehouse.
2. Lists every scheduled run of daily_review, weekly_review, monthly_review,
   quarterly_review and the hourly kaizen_ingest (``--reviews-only``: not it) after X's cut-off up to the end of day X + ``--days`` (IST), each
   from its DAG's OWN timetable — ``next_dagrun_info_v2`` iterated with
   ``TimeRestriction(earliest, latest, catchup=True)``, as the scheduler and
   ``SerializedDAG.iter_dagrun_infos_between`` do — sorts them by ``run_after`` and runs
   them one after the other through Airflow (``dag.test(logical_date=run_after,
   run_after=run_after)``; ``dag.test`` derives the run's data interval from
   ``timetable.infer_manual_data_interval(logical_date)``, which is checked to equal the
   scheduled one before and after each run). Every run must end ``success``; a failed
   one is reported with its failed tasks and their log.
3. Rebuilds the whole range (history start … the last run) in one shot into a second
   warehouse and compares ``kpi_values``: for every period (day, week, month, quarter)
   that ended in the window (after X's cut-off, not after the last run), every row must
   be identical in its key and content columns (``kaizen.kpis.periods.CONTENT_COLS``)
   and ``is_complete`` must be true in both.
4. Checks the weekly review documents the replayed weekly_review runs wrote to the outbox
   (``$KAIZEN_OUT_DIR/weekly_review/<YYYY-Www>/review.md``): the uptime, downtime and
   error-budget figures must equal those of the same document rendered from the one-shot
   warehouse, and the week's probed minutes (the uptime denominator) must be the week's
   10,080 minutes less the demo's Prometheus scrape-gap samples that fall in it — which
   the document's error-budget table shows ("Probed: 10,080 of 10,080 min"). Lines in
   which the whole document differs from the one-shot rendering are listed, not gated:
   a document is what was known at its run.

The demo sources answer as a live API would at the replayed moment
(``KAIZEN_DEMO_NOW``: the history's cut-off for its rebuild, each run's time for the
run; unset for the one-shot rebuild, which asks "now").

Prints a summary and exits 1 on any failed run, mismatch or document problem.
Everything is written under ``--workdir`` (default: a fresh temporary folder); the
Airflow metadata database is the project's (``$AIRFLOW_HOME``, as ``make demo`` uses).
Importable: ``tests/test_replay.py`` runs :func:`replay` on a shortened window.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))
from kaizen import config  # noqa: E402

config.local_airflow_defaults()  # the Makefile's Airflow settings, so a plain `python bench/replay.py` works
from kaizen import calendar as cal  # noqa: E402
from kaizen.period import Period, midnight_utc, window_day  # noqa: E402

# Fri 18 Sep 2026 + 24 days: to Mon 12 Oct — 15 daily runs (Gandhi Jayanti, Fri 2 Oct, is a
# holiday), 4 weekly reviews, the quarterly review of Fri 25 Sep, the monthly review of Mon 5 Oct;
# September and Q3 end on Wed 30 Sep. Seed 37 puts the demo's one Prometheus scrape gap
# (8 samples, Sun 4 Oct 16:45 IST) in the week reviewed on Mon 5 Oct.
DEFAULTS = {"history_to": date(2026, 9, 18), "days": 24, "demo_end": date(2026, 11, 27), "months": 6, "seed": 37,
            "trades_per_day": 200}
REVIEW_DAGS = ("daily_review", "weekly_review", "monthly_review", "quarterly_review")
SCHEDULED_DAGS = (*REVIEW_DAGS, "kaizen_ingest")  # the hourly ingestion: 24 runs a day
KEY_COLS = ("kpi_id", "grain", "period_start")
GRAIN_ORDER = {"day": 0, "week": 1, "month": 2, "quarter": 3}


# ---------------------------------------------------------------- plain data
@dataclass(frozen=True)
class ScheduledRun:
    """One run the scheduler would create: the DAG, when, and its data interval."""

    dag_id: str
    run_after: datetime
    interval_start: datetime
    interval_end: datetime

    @property
    def when(self) -> str:
        return f"{self.run_after.astimezone(cal.IST):%a %d %b %H:%M} IST"


@dataclass
class RunResult:
    run: ScheduledRun
    state: str
    seconds: float
    run_id: str = ""
    failed_tasks: list[dict] = field(default_factory=list)  # task_id, state, log
    problems: list[str] = field(default_factory=list)  # e.g. a data interval that differs
    log_path: Path | None = None  # the run's console log

    @property
    def ok(self) -> bool:
        return self.state == "success" and not self.failed_tasks and not self.problems


@dataclass(frozen=True)
class Mismatch:
    kind: str  # "differs", "missing in replay", "missing in one-shot", "not complete"
    grain: str
    period_start: str
    kpi_id: str
    column: str | None = None
    replay: object = None
    oneshot: object = None

    def text(self) -> str:
        where = f"{self.grain} {self.period_start} {self.kpi_id}"
        if self.kind == "differs":
            return f"{where}: {self.column} replay={self.replay!r} one-shot={self.oneshot!r}"
        if self.kind == "not complete":
            return f"{where}: is_complete replay={self.replay!r} one-shot={self.oneshot!r}"
        return f"{where}: {self.kind}"


@dataclass
class Comparison:
    periods: dict[str, list[str]]  # grain → period_start of every period compared
    rows: int
    mismatches: list[Mismatch]


@dataclass
class WeeklyDocument:
    key: str
    path: Path
    figures: dict[str, str]  # what the replayed document shows
    oneshot_figures: dict[str, str]  # the same document rendered from the one-shot warehouse
    full_minutes: int  # the week's minutes
    gap_samples: int  # demo scrape-gap samples in the week
    probed_replay: float | None  # uptime_pct denominator (probed minutes), replay warehouse
    probed_oneshot: float | None
    differences: list[str]  # lines of the Markdown that differ from the one-shot rendering (diff -u style)
    problems: list[str] = field(default_factory=list)

    @property
    def expected_probed(self) -> int:
        return self.full_minutes - self.gap_samples


@dataclass
class ReplayResult:
    code: str  # the commit replayed, and whether the working tree had changes
    history: tuple[date, date]
    window: tuple[datetime, datetime]  # (history cut-off, end of the window)
    runs: list[RunResult]
    comparison: Comparison | None
    weekly_docs: list[WeeklyDocument]
    timings: dict[str, float]
    manifest: dict
    workdir: Path

    @property
    def runs_per_dag(self) -> dict[str, int]:
        counts = Counter(r.run.dag_id for r in self.runs)
        return {d: counts.get(d, 0) for d in SCHEDULED_DAGS}

    @property
    def failed_runs(self) -> list[RunResult]:
        return [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        return (
            not self.failed_runs
            and self.comparison is not None
            and not self.comparison.mismatches
            and not any(d.problems for d in self.weekly_docs)
        )


# ---------------------------------------------------------------- environment
def _apply(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextmanager
def environment(values: dict[str, str | None]):
    """Set (a str) or unset (None) environment variables, restoring them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _apply(values)
        yield
    finally:
        _apply(saved)


def run_env(workdir: Path, demo_dir: Path, warehouse_db: Path, out_dir: Path) -> dict[str, str | None]:
    """The settings of a replayed run: demo sources, a SQLite warehouse, the outbox (no
    Slack, no Sheets connection)."""
    return {
        "KAIZEN_SOURCES": "demo",
        "KAIZEN_DEMO_DIR": str(demo_dir),
        "KAIZEN_DATA_DIR": str(workdir / "data"),
        "KAIZEN_OUT_DIR": str(out_dir),
        "AIRFLOW_CONN_KAIZEN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse_db)}),
        "AIRFLOW_CONN_KAIZEN_SLACK": None,
        "AIRFLOW_CONN_KAIZEN_GSHEETS": None,
        "KAIZEN_DEMO_NOW": None,  # the demo answers as of the end of its data (a one-shot, now)
    }


# ---------------------------------------------------------------- time line
def history_cutoff(x: date) -> datetime:
    """Where a history built up to day X ends: the review cut-off of the last trading day
    on or before X (``rebuild(first, X)`` extracts the trading days' windows)."""
    last = x if cal.is_trading_day(x) else cal.previous_trading_day(x)
    return Period.day(last).closes_utc


def window_end(x: date, days: int) -> datetime:
    """The end of IST day X + ``days`` (exclusive)."""
    return midnight_utc(x + timedelta(days=days + 1))


def scheduler_timetable(dag):
    """The DAG's timetable as the scheduler holds it, through its serialised form: a DAG
    file's ``airflow.sdk`` timetable (e.g. ``CronTriggerTimetable``) is a definition; the
    scheduler's core class is what computes the runs."""
    from airflow.serialization.serialized_objects import decode_timetable, encode_timetable

    return decode_timetable(encode_timetable(dag.timetable))


def scheduled_runs(after: datetime, until: datetime, dag_ids=SCHEDULED_DAGS, dags: dict | None = None
                   ) -> list[ScheduledRun]:
    """Every run of ``dag_ids`` with ``after < run_after < until``, from each DAG's own
    timetable, sorted by run_after (ties: in ``dag_ids`` order)."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    from kaizen.cli import load_dag

    restriction = TimeRestriction(
        earliest=pendulum.instance(after) + timedelta(microseconds=1),  # earliest is inclusive
        latest=pendulum.instance(until) - timedelta(microseconds=1),  # and so is latest
        catchup=True,
    )
    runs = []
    for order, dag_id in enumerate(dag_ids):
        dag = (dags or {}).get(dag_id) or load_dag(dag_id)
        info, previous = None, None
        while True:
            info = scheduler_timetable(dag).next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
            if info is None:
                break
            if previous is not None and info.run_after <= previous:
                raise RuntimeError(f"{dag_id}: the timetable does not advance after {previous}")
            previous = info.run_after
            runs.append((info.run_after, order, ScheduledRun(
                dag_id, info.run_after, info.data_interval.start, info.data_interval.end)))
    return [r for *_, r in sorted(runs, key=lambda t: (t[0], t[1]))]


# ---------------------------------------------------------------- running through Airflow
class _Sink:
    """A stand-in for ``sys.stdout``/``sys.stderr`` while :func:`output_to` is active:
    writes go to the run's log file then, and to the real stream of the moment after —
    a log handler created during a run keeps a reference to it and must not write to a
    closed file later."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.target = None
        self.encoding = "utf-8"

    def _stream(self):
        current = getattr(sys, self.name)
        return self.target or (current if current is not self else getattr(sys, f"__{self.name}__"))

    def write(self, s: str) -> int:
        self._stream().write(s)
        return len(s)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream().fileno()


_SINKS = {"stdout": _Sink("stdout"), "stderr": _Sink("stderr")}


@contextmanager
def output_to(path: Path):
    """Send this process's output to ``path`` for the duration: file descriptors 1 and 2
    (Airflow's and the in-process tasks' console logs) and ``sys.stdout``/``sys.stderr``
    (for loggers that write to whatever they are; under pytest they are not descriptor 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    saved_objects = sys.stdout, sys.stderr
    with open(path, "ab") as f, open(path, "a", encoding="utf-8", errors="replace", buffering=1) as text:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        for sink in _SINKS.values():
            sink.target = text
        sys.stdout, sys.stderr = _SINKS["stdout"], _SINKS["stderr"]
        try:
            yield
        finally:
            text.flush()
            for sink in _SINKS.values():
                sink.target = None
            sys.stdout, sys.stderr = saved_objects
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def task_log(run_log: str, task_id: str, map_index: int) -> str:
    """The lines of one task in a ``dag.test()`` console log: from its "[DAG TEST]
    starting" line to its "end task" line; when those are missing (Airflow's own log
    handler was set up elsewhere, e.g. under pytest), every error record of the run with
    its traceback."""
    lines = run_log.splitlines()
    tag = f"task_id={task_id} map_index={map_index}"
    start = next((i for i, ln in enumerate(lines) if "[DAG TEST] starting" in ln and tag in ln), None)
    if start is not None:
        end = next((i for i in range(start, len(lines)) if "[DAG TEST] end task" in lines[i] and tag in lines[i]),
                   len(lines) - 1)
        return "\n".join(lines[start:end + 1])
    out, keep = [], False
    for ln in lines:
        if re.match(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", ln):  # a new record
            keep = "[error" in ln or "[critical" in ln or " ERROR " in ln
        if keep:
            out.append(ln)
    return "\n".join(out) or run_log


def run_through_airflow(dag, run: ScheduledRun, log_dir: Path) -> RunResult:
    """``dag.test()`` of one scheduled run, its console log kept in ``log_dir``; its
    state, and its failed tasks with their log."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    problems = []
    inferred = scheduler_timetable(dag).infer_manual_data_interval(run_after=run.run_after)
    if (inferred.start, inferred.end) != (run.interval_start, run.interval_end):
        problems.append(f"dag.test() would run the interval {inferred.start} … {inferred.end}, "
                        f"the scheduler {run.interval_start} … {run.interval_end}")
    log_path = log_dir / f"{run.dag_id}__{run.run_after.astimezone(cal.IST):%Y-%m-%dT%H%M}.log"
    log_path.unlink(missing_ok=True)
    t = time.perf_counter()
    with output_to(log_path):
        dr = dag.test(logical_date=run.run_after, run_after=run.run_after)
    seconds = time.perf_counter() - t
    state = str(getattr(dr.state, "value", dr.state))
    if (dr.data_interval_start, dr.data_interval_end) != (run.interval_start, run.interval_end):
        problems.append(f"the run's data interval {dr.data_interval_start} … {dr.data_interval_end} is not "
                        f"the scheduled {run.interval_start} … {run.interval_end}")
    failed = []
    with create_session() as session:
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dr.run_id).all()
        # skipped is an end a task chooses (an ingestion with nothing new to land)
        bad = [(ti.task_id, ti.map_index, str(getattr(ti.state, "value", ti.state))) for ti in tis
               if str(getattr(ti.state, "value", ti.state)) not in ("success", "skipped")]
    if bad:
        text = log_path.read_text(errors="replace")
        for task_id, map_index, ti_state in sorted(bad):
            failed.append({"task_id": task_id if map_index < 0 else f"{task_id}[{map_index}]", "state": ti_state,
                           "log": task_log(text, task_id, map_index) if ti_state == "failed" else ""})
    return RunResult(run, state, seconds, dr.run_id, failed, problems, log_path)


def load_dags_for_replay(dag_ids=SCHEDULED_DAGS, retries: bool = False) -> dict:
    """The DAGs as ``dag.test()`` runs them (:func:`kaizen.cli.dag_for_test`); without
    retries by default, so a failing task fails its run at once instead of waiting."""
    from kaizen.cli import dag_for_test

    dags = {}
    for dag_id in dag_ids:
        dag = dag_for_test(dag_id)
        if not retries:
            for task in dag.tasks:
                task.retries = 0
        dags[dag_id] = dag
    return dags


# ---------------------------------------------------------------- comparison
def _norm(col: str, v):
    if v is None:
        return None
    if col in ("period_start", "period_end"):
        return str(v)[:10]
    if col == "is_complete":
        return bool(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return float(v)
    return str(v)


def read_kpi_values(engine) -> dict[tuple, dict]:
    """Every kpi_values row by key, its key and content columns normalised."""
    import sqlalchemy as sa

    from kaizen.kpis.periods import CONTENT_COLS

    cols = KEY_COLS + tuple(c for c in CONTENT_COLS if c not in KEY_COLS)
    with engine.connect() as c:
        rows = c.execute(sa.text(f"select {', '.join(cols)} from kpi_values")).mappings().all()
    out = {}
    for r in rows:
        row = {col: _norm(col, r[col]) for col in cols}
        out[(row["grain"], row["period_start"], row["kpi_id"])] = row
    return out


def ended_in(grain: str, period_start: str, after: datetime, until: datetime) -> bool:
    """Whether the period ended in (after, until]."""
    closes = Period.of(grain, date.fromisoformat(period_start)).closes_utc
    return after < closes <= until


def compare_kpi_values(replay_engine, oneshot_engine, after: datetime, until: datetime) -> Comparison:
    """Every kpi_values row of a period that ended in (after, until], in both warehouses:
    identical key and content columns, ``is_complete`` true."""
    rep, one = read_kpi_values(replay_engine), read_kpi_values(oneshot_engine)
    keys = sorted({k for k in rep.keys() | one.keys() if ended_in(k[0], k[1], after, until)},
                  key=lambda k: (GRAIN_ORDER[k[0]], k[1], k[2]))
    periods: dict[str, set[str]] = {}
    mismatches = []
    for key in keys:
        grain, ps, kpi_id = key
        periods.setdefault(grain, set()).add(ps)
        a, b = rep.get(key), one.get(key)
        if a is None or b is None:
            mismatches.append(Mismatch("missing in replay" if a is None else "missing in one-shot", grain, ps, kpi_id))
            continue
        for col in a:
            if col != "is_complete" and a[col] != b[col]:
                mismatches.append(Mismatch("differs", grain, ps, kpi_id, col, a[col], b[col]))
        if not (a["is_complete"] and b["is_complete"]):
            mismatches.append(Mismatch("not complete", grain, ps, kpi_id, "is_complete",
                                       a["is_complete"], b["is_complete"]))
    return Comparison({g: sorted(p) for g, p in sorted(periods.items(), key=lambda t: GRAIN_ORDER[t[0]])},
                      len(keys), mismatches)


def mismatch_classes(mismatches: list[Mismatch]) -> dict[tuple[str, str, str], list[Mismatch]]:
    """Mismatches by (kind, grain, column)."""
    out: dict[tuple[str, str, str], list[Mismatch]] = {}
    for m in mismatches:
        out.setdefault((m.kind, m.grain, m.column or ""), []).append(m)
    return out


# ---------------------------------------------------------------- weekly documents
def doc_figures(markdown: str) -> dict[str, str]:
    """What a review document shows of the probed minutes: the Uptime, Downtime and Error
    Budget rows of the KPI table, and the error-budget table by its column names (today:
    Budget = 0.1 % of the period's minutes, Used = minutes down; no column gives the
    probed minutes themselves)."""
    figs: dict[str, str] = {}
    lines = markdown.splitlines()

    def cells(ln: str) -> list[str]:
        return [c.strip() for c in ln.strip().strip("|").split("|")]

    for ln in lines:
        row = cells(ln)
        if len(row) >= 3 and row[0] in ("**Uptime**", "**Downtime**", "**Error Budget remaining**"):
            figs[row[0].strip("*").lower()] = row[2]
    for i, ln in enumerate(lines):
        head = cells(ln)
        if ln.lstrip().startswith("|") and "Budget" in head and "Used" in head and i + 2 < len(lines):
            figs.update({f"error budget: {h.lower()}": v for h, v in zip(head, cells(lines[i + 2]), strict=False)})
            break
    return figs


def _week_row(engine, kpi_id: str, week_start: date) -> dict | None:
    import sqlalchemy as sa

    with engine.connect() as c:
        r = c.execute(sa.text("select value, numerator, denominator from kpi_values where kpi_id = :k "
                              "and grain = 'week' and period_start = :p"),
                      {"k": kpi_id, "p": week_start.isoformat()}).mappings().first()
    return dict(r) if r else None


def gap_samples_in(manifest: dict, start: datetime, end: datetime) -> int:
    """The demo's missing Prometheus samples (its one scrape gap) with t in [start, end)."""
    gap = manifest.get("scrape_gap")
    if not gap:
        return 0
    first = datetime.fromisoformat(gap["first_missing_sample"].replace("Z", "+00:00"))
    return sum(start <= first + timedelta(minutes=i) < end for i in range(int(gap["samples"])))


def _changed_lines(replayed: str, oneshot: str) -> list[str]:
    import difflib

    return [ln for ln in difflib.unified_diff(replayed.splitlines(), oneshot.splitlines(), "replay", "one-shot",
                                              n=0, lineterm="")
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def check_weekly_documents(results: list[RunResult], replay_out: Path, replay_engine, oneshot_engine,
                           oneshot_out: Path, manifest: dict) -> list[WeeklyDocument]:
    """Each replayed weekly review's document against the same week rendered from the
    one-shot warehouse, and its probed minutes against the demo's."""
    from kaizen.pipeline import resolve_review_period
    from kaizen.reports import review

    docs = []
    for res in results:
        if res.run.dag_id != "weekly_review" or res.state != "success":
            continue
        period = resolve_review_period("weekly", data_interval_start=res.run.interval_start,
                                       data_interval_end=res.run.interval_end)
        start = date.fromisoformat(period["period_start"])
        week = Period.of("week", start)
        path = replay_out / "weekly_review" / period["key"] / "review.md"
        problems = []
        markdown = path.read_text(encoding="utf-8") if path.exists() else ""
        if not markdown:
            problems.append(f"{path} was not written")
        one = review.render_review(
            review.build_review(oneshot_engine, "weekly", start, as_of=datetime.fromisoformat(period["as_of"])),
            run_id="replay-oneshot", out_dir=oneshot_out)
        # the render keeps its files in the artefact store; the one-shot copy is written here to diff by hand
        one_path = oneshot_out / "weekly_review" / period["key"] / "review.md"
        one_path.parent.mkdir(parents=True, exist_ok=True)
        one_path.write_text(one["markdown"], encoding="utf-8")
        figures, oneshot_figures = doc_figures(markdown), doc_figures(one["markdown"])
        if markdown and not figures.get("error budget: budget"):
            problems.append("the document has no error-budget table")
        if figures != oneshot_figures:
            problems.append(f"the document shows {figures}, the one-shot week {oneshot_figures}")
        rep_up, one_up = _week_row(replay_engine, "uptime_pct", start), _week_row(oneshot_engine, "uptime_pct", start)
        full = int((week.closes_utc - week.opens_utc).total_seconds() // 60)
        doc = WeeklyDocument(
            period["key"], path, figures, oneshot_figures, full,
            gap_samples_in(manifest, week.opens_utc, week.closes_utc),
            rep_up and rep_up["denominator"], one_up and one_up["denominator"],
            _changed_lines(markdown, one["markdown"]), problems,
        )
        shown = [v for k, v in figures.items() if "probed" in k]  # a column the document may gain
        if shown and f"{doc.expected_probed:,}" not in shown[0]:
            problems.append(f"the document shows {shown[0]} probed minutes, the demo's Prometheus has "
                            f"{doc.expected_probed:,}")
        if doc.probed_replay != doc.expected_probed or doc.probed_oneshot != doc.expected_probed:
            problems.append(f"probed minutes: replay {doc.probed_replay}, one-shot {doc.probed_oneshot}, "
                            f"the demo's Prometheus has {doc.expected_probed} ({full} less "
                            f"{doc.gap_samples} scrape-gap samples)")
        docs.append(doc)
    return docs


# ---------------------------------------------------------------- the replay
def replay(
    *,
    history_to: date,
    days: int,
    workdir: Path,
    demo_end: date,
    months: int = 3,
    seed: int = 42,
    trades_per_day: int | None = 200,
    retries: bool = False,
    dag_ids=SCHEDULED_DAGS,
    say=print,
) -> ReplayResult:
    """Demo data, history to ``history_to``, every scheduled run of the window through
    Airflow, a one-shot rebuild, and the comparisons (see the module docstring)."""
    from kaizen import pipeline, warehouse
    from kaizen.demo import generate

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    demo_dir, replay_db, oneshot_db = workdir / "demo", workdir / "replay.db", workdir / "oneshot.db"
    replay_out, oneshot_out = workdir / "out", workdir / "out-oneshot"
    for db in (replay_db, oneshot_db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    timings: dict[str, float] = {}
    after, until = history_cutoff(history_to), window_end(history_to, days)
    if demo_end < (until - timedelta(microseconds=1)).astimezone(cal.IST).date():
        raise ValueError(f"demo_end {demo_end} is before the window's end {until.astimezone(cal.IST):%Y-%m-%d}")

    t = time.perf_counter()
    manifest = generate(end=demo_end, months=months, seed=seed, out_dir=demo_dir, trades_per_day=trades_per_day)
    timings["demo data"] = time.perf_counter() - t
    first = date.fromisoformat(manifest["first_trading_day"])
    say(f"demo sources {manifest['start']} … {demo_end} (seed {seed}, {manifest['trades_per_day']} trades/day) "
        f"in {demo_dir} ({timings['demo data']:.1f} s)")

    with environment(run_env(workdir, demo_dir, replay_db, replay_out)):
        t = time.perf_counter()
        with environment({"KAIZEN_DEMO_NOW": after.isoformat()}):  # the demo answers as the API did then
            hist = pipeline.rebuild(first, history_to, "replay_history")
        timings["history rebuild"] = time.perf_counter() - t
        say(f"history {first} … {history_to} rebuilt into {replay_db}: {hist} ({timings['history rebuild']:.1f} s)")

        t = time.perf_counter()
        with output_to(workdir / "logs" / "load_dags.log"):
            dags = load_dags_for_replay(dag_ids, retries=retries)
        runs = scheduled_runs(after, until, dag_ids=dag_ids, dags=dags)
        timings["load DAGs and list runs"] = time.perf_counter() - t
        say(f"{len(runs)} scheduled runs after {after.astimezone(cal.IST):%a %d %b %Y %H:%M} IST up to "
            f"{until.astimezone(cal.IST):%a %d %b %Y %H:%M} IST: "
            + ", ".join(f"{d} {n}" for d, n in Counter(r.dag_id for r in runs).items()))

        results = []
        t = time.perf_counter()
        for i, run in enumerate(runs, 1):
            with environment({"KAIZEN_DEMO_NOW": run.run_after.isoformat()}):
                res = run_through_airflow(dags[run.dag_id], run, workdir / "logs")
            results.append(res)
            say(f"  [{i:>2}/{len(runs)}] {run.when:<22} {run.dag_id:<17} {res.state:<8} {res.seconds:5.1f} s"
                + ("" if res.ok else "   <-- " + "; ".join(
                    [f"{f['task_id']} {f['state']}" for f in res.failed_tasks] + res.problems)))
        timings["scheduled runs"] = time.perf_counter() - t

    last_run = max((r.run_after for r in runs), default=after)
    with environment(run_env(workdir, demo_dir, oneshot_db, oneshot_out)):
        t = time.perf_counter()
        last_day = window_day(last_run - timedelta(microseconds=1))  # the trading day whose window holds it
        one = pipeline.rebuild(first, last_day, "replay_oneshot")
        timings["one-shot rebuild"] = time.perf_counter() - t
        say(f"one-shot rebuild {first} … {last_day} into {oneshot_db}: {one} ({timings['one-shot rebuild']:.1f} s)")

        t = time.perf_counter()
        rep_engine, one_engine = warehouse.get_engine(f"sqlite:///{replay_db}"), warehouse.get_engine(
            f"sqlite:///{oneshot_db}")
        comparison = compare_kpi_values(rep_engine, one_engine, after, last_run)
        docs = check_weekly_documents(results, replay_out, rep_engine, one_engine, oneshot_out, manifest)
        timings["comparison"] = time.perf_counter() - t
    for eng in (rep_engine, one_engine):
        eng.dispose()
    return ReplayResult(code_state(), (first, history_to), (after, last_run), results, comparison, docs, timings, manifest,
                        workdir)


# ---------------------------------------------------------------- report
def code_state() -> str:
    """The commit and any uncommitted change of the code the replay ran."""
    import subprocess

    def git(*args) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  timeout=30).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown commit"
    changed = [ln[3:] for ln in git("status", "--porcelain", "--", "plugins", "dags", "sql", "include").splitlines()]
    return head + (f" + uncommitted changes in {len(changed)} file(s) ({', '.join(changed[:8])}"
                   f"{' …' if len(changed) > 8 else ''})" if changed else " (clean)")


def summary(result: ReplayResult, max_examples: int = 5) -> str:
    out = []
    (first, x), (after, last) = result.history, result.window
    out.append("")
    out.append("=" * 78)
    out.append(f"REPLAY {'OK' if result.ok else 'FAILED'} — history {first} … {x}; scheduled runs after "
               f"{after.astimezone(cal.IST):%d %b %H:%M} IST to {last.astimezone(cal.IST):%a %d %b %Y %H:%M} IST")
    out.append(f"code: {result.code}")
    out.append("runs executed through Airflow (dag.test):")
    for dag_id, n in result.runs_per_dag.items():
        mine = [r for r in result.runs if r.run.dag_id == dag_id]
        secs = [r.seconds for r in mine]
        ok = sum(r.ok for r in mine)
        timing = f"  {sum(secs):6.1f} s (mean {sum(secs) / len(secs):.1f} s, max {max(secs):.1f} s)" if secs else ""
        out.append(f"  {dag_id:<17} {n:>3} runs, {ok} success{timing}")
    out.append("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
               + f"; total {sum(result.timings.values()):.1f} s")
    for r in result.failed_runs:
        out.append(f"FAILED RUN {r.run.dag_id} {r.run.when} ({r.run_id}): state {r.state}; log {r.log_path}")
        for p in r.problems:
            out.append(f"  {p}")
        for f in r.failed_tasks:
            out.append(f"  task {f['task_id']}: {f['state']}")
            log = (f["log"] or "").splitlines()
            errors = [ln for ln in log if re.match(r"^[\w.]*(Error|Exception|Exit)\w*: ", ln)]
            if errors:
                out.append(f"    error: {errors[-1][:300]}")
            for ln in log[-30:]:
                out.append(f"    | {ln[:300]}")
    c = result.comparison
    if c is not None:
        per = ", ".join(f"{g} {len(p)}" for g, p in c.periods.items())
        out.append(f"kpi_values vs one-shot rebuild: periods ended in the window: {per}; "
                   f"{c.rows} rows compared; {len(c.mismatches)} mismatches")
        for g, p in c.periods.items():
            if g != "day":
                out.append(f"  {g}: {', '.join(Period.of(g, date.fromisoformat(s)).key for s in p)}")
        for (kind, grain, col), ms in sorted(mismatch_classes(c.mismatches).items()):
            periods = sorted({m.period_start for m in ms})
            out.append(f"  MISMATCH {kind} {grain}{' ' + col if col else ''}: {len(ms)} rows in "
                       f"{len(periods)} periods ({', '.join(periods[:6])}{' …' if len(periods) > 6 else ''})")
            for m in ms[:max_examples]:
                out.append(f"    {m.text()}")
    out.append("weekly review documents (outbox):")
    for d in result.weekly_docs:
        out.append(f"  {d.key}: {d.path}")
        out.append("    shows: " + "; ".join(f"{k} {v}" for k, v in d.figures.items()))
        out.append(f"    probed minutes (uptime denominator): replay {d.probed_replay:,.0f}, one-shot "
                   f"{d.probed_oneshot:,.0f}; the week has {d.full_minutes:,} minutes, the demo's Prometheus "
                   f"{d.expected_probed:,} ({d.gap_samples} scrape-gap samples in the week)"
                   if d.probed_replay is not None and d.probed_oneshot is not None
                   else "    probed minutes: no uptime row")
        out.append("    the whole document equals the one-shot rendering" if not d.differences else
                   f"    the document differs from the one-shot rendering in {len(d.differences) // 2 or 1} "
                   "line(s) (not gated: a document is a snapshot at its run time, "
                   "the one-shot knows all landed up to the last run):")
        for ln in d.differences[:2 * max_examples]:
            out.append(f"      {ln[:300]}")
        for p in d.problems:
            out.append(f"    PROBLEM {p}")
    out.append("=" * 78)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/replay.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--history-to", type=date.fromisoformat, default=DEFAULTS["history_to"],
                   help="day X: the history is rebuilt up to it (default %(default)s)")
    p.add_argument("--days", type=int, default=DEFAULTS["days"],
                   help="replay the scheduled runs up to the end of X + DAYS, IST (default %(default)s)")
    p.add_argument("--demo-end", type=date.fromisoformat, default=DEFAULTS["demo_end"])
    p.add_argument("--months", type=int, default=DEFAULTS["months"],
                   help="demo months before --demo-end (default %(default)s: the history starts before the "
                        "window's quarter, which is never complete otherwise)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--trades-per-day", type=int, default=DEFAULTS["trades_per_day"])
    p.add_argument("--retries", action="store_true", help="keep the DAGs' task retries (default: fail at once)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder (kept)")
    p.add_argument("--reviews-only", action="store_true",
                   help="the four review DAGs only, without the hourly kaizen_ingest runs (faster)")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kaizen-replay-"))
    started = time.perf_counter()
    result = replay(history_to=args.history_to, days=args.days, workdir=workdir, demo_end=args.demo_end,
                    months=args.months, seed=args.seed, trades_per_day=args.trades_per_day, retries=args.retries,
                    dag_ids=REVIEW_DAGS if args.reviews_only else SCHEDULED_DAGS)
    print(summary(result))
    print(f"replay wall time {time.perf_counter() - started:.1f} s (process start excluded); files in {workdir}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
