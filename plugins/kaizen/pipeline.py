"""The steps of a run, shared by the DAGs and the CLI. Each step takes plain values
(dates, run ids) and returns small JSON-able dicts, so a DAG task is one call."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from kaizen import calendar as cal
from kaizen.errors import PermanentError
from kaizen.period import GRAINS, ROLLUP_GRAINS, Period

log = logging.getLogger(__name__)


class ParamError(PermanentError, ValueError):
    """A run parameter is wrong; the message names the field."""


def parse_day_param(value, field: str = "day") -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ParamError(f"{field}: {value!r} is not a date in YYYY-MM-DD form") from None


def resolve_trading_day(
    *, param_day=None, data_interval_end: datetime | None = None, run_after: datetime | None = None
) -> date:
    """The trading day a daily run reports on: the ``day`` param when given, else the
    IST date of the data interval's end, else (manual run without interval) the latest
    trading day whose review time (16:00 IST after a regular session) is not after
    ``run_after``. Never ``now()``."""
    day = parse_day_param(param_day)
    if day is None and data_interval_end is not None:
        day = data_interval_end.astimezone(cal.IST).date()
    if day is None:
        if run_after is None:
            raise ParamError("day: no day given and the run has neither a data interval nor run_after")
        local = run_after.astimezone(cal.IST)
        day = local.date()
        if not cal.is_trading_day(day) or local.time() < cal.review_time(day):
            day = cal.previous_trading_day(day)
    if not cal.is_trading_day(day):  # raises CalendarNotCovered before the calendar's first year
        raise ParamError(f"day: {day.isoformat()} is not an NSE trading day (weekend or NSE holiday)")
    return day


def trading_day(period: dict) -> date:
    """The trading day of a day Period dict (how the daily DAG's tasks pass it on)."""
    p = Period.from_dict(period)
    if p.grain != "day":
        raise ParamError(f"period: expected a day, got the {p.grain} {p.key}")
    return p.start


def prepare_warehouse() -> dict:
    """Apply the DDL and reload the KPI catalog into kpi_definitions (idempotent)."""
    from kaizen import warehouse
    from kaizen.kpis import catalog

    engine = warehouse.get_engine()
    warehouse.apply_ddl(engine)
    n = catalog.load_definitions(engine)
    return {"warehouse": engine.dialect.name, "kpi_definitions": n}


def extract_source(source: str, day: date, run_id: str) -> list[dict]:
    """Extract one source for trading day ``day`` into its landing tables."""
    import importlib

    from kaizen import warehouse
    from kaizen.warehouse import outages

    module = importlib.import_module(f"kaizen.sources.{source}")
    engine = warehouse.get_engine()
    try:
        results = module.extract(day, engine, run_id)
    except Exception as exc:
        # the review still goes out on time, with this source's sections marked
        # unavailable (kaizen.warehouse.outages); the error itself is raised as it is
        try:
            outage = outages.record(engine, source, day, exc, run_id)
            log.warning("extract %s for %s failed (attempt %d): %s", source, day, outage.attempts, outage.reason)
        except Exception:  # the warehouse itself may be what is down: the original error matters
            log.exception("could not record the outage of %s for %s", source, day)
        raise
    if outages.clear(engine, source, day, run_id):
        log.info("extract %s: %s has landed; its outage is over", source, day)
    for past in outages.missed(engine, source, day):
        # the source is back: land what it missed on earlier days (revise_recovered
        # then revises those days' reviews); still failing, it stays owed
        try:
            results += module.extract(past, engine, run_id)
        except Exception as exc:
            outage = outages.record(engine, source, past, exc, run_id)
            log.warning("extract %s: %s still unavailable (attempt %d): %s", source, past, outage.attempts,
                        outage.reason)
        else:
            outages.clear(engine, source, past, run_id)
            log.info("extract %s: %s, missed earlier, has landed", source, past)
    out = [r.as_dict() for r in results]
    for r in out:
        log.info("extract %s: %s", source, r)
    return out


# The DAG maps one task per source at parse time, so the names live here (light) too;
# a test keeps them equal to kaizen.sources.SOURCES.
SOURCES = ("trading", "prometheus", "github", "pagerduty", "github_issues", "aws_cur", "oncall", "team_sheets")


def compute_day_kpis(day: date, run_id: str) -> dict:
    from kaizen import warehouse
    from kaizen.kpis import day as day_kpis

    engine = warehouse.get_engine()
    # the daily DAG runs this once every extraction is done, failed ones included; a
    # warehouse whose preparation failed fails here too (cheap when it is prepared)
    warehouse.apply_ddl(engine)
    rows = day_kpis.compute_day(engine, day, run_id)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"kpis": len(rows), "statuses": statuses}


def draft_postmortems(day: date, lookback_days: int = 7, run_id: str | None = None) -> list[dict]:
    """Drafts for P0/P1 incidents resolved in the week up to ``day`` (idempotent), in
    ``<out_dir>/post-mortems/``; with ``KAIZEN_POSTMORTEM_REPO`` set, each also opened as
    one pull request there (``pr``: kaizen.delivery.github_prs; a person's edit on the
    branch is never overwritten, a closed or merged PR never written to)."""

    from kaizen import config, warehouse
    from kaizen.delivery import github_prs
    from kaizen.reports import postmortem

    engine = warehouse.get_engine()
    first = day - timedelta(days=lookback_days)
    local = postmortem.draft_postmortems(engine, first, day, config.out_dir())
    target = github_prs.target_from_settings()
    if target is None:
        return local
    prs = {
        r["incident_id"]: r
        for r in github_prs.publish(engine, postmortem.drafts(engine, first, day), target, run_id=run_id)
    }
    return [{**r, "pr": prs.get(r["incident_id"])} for r in local]


def window_first_day(day: date) -> date:
    """The IST date trading day ``day``'s window opens on (the previous session's): the
    periods holding any of the data a load of ``day`` lands start from there."""
    return cal.ist_date(Period.day(day).opens_utc)


def compute_rollups_to_date(day: date, run_id: str) -> dict:
    """Recompute the weeks, months and quarters holding trading day ``day``'s window —
    from the previous session's review time, so a Monday's run also re-finalises the
    week its weekend data belongs to — to its 16:00 IST cut-off, or further when later
    days are loaded already (a re-run or a backfill of an old day): each period to its
    own end at most, never cut at ``day`` (``is_complete`` once a period has ended and
    every source has landed all of it)."""
    from kaizen import warehouse
    from kaizen.kpis import periods

    rows = periods.compute_rollups(
        warehouse.get_engine(), ROLLUP_GRAINS, window_first_day(day), day, run_id,
        as_of=Period.day(day).closes_utc, to_landed=True,
    )
    return {"rows": len(rows), "periods": sorted({f"{r['grain']}:{r['period_start']}" for r in rows}),
            "changed": sorted({f"{r['grain']}:{r['period_start']}" for r in rows if r["run_id"] == run_id})}


def revise_reviews(periods: list[str], run_id: str, *, mode: str = "auto", run_type: str | None = None,
                   now: datetime | None = None) -> list[dict]:
    """Late data re-finalised ``periods`` ("grain:YYYY-MM-DD"): the week, month and
    quarter reviews already delivered for those that have ended are rendered again and
    delivered through the same ledger — revised in place ("Revised: …" in the thread,
    the outbox's revisions.json) only when their content changed, never posted twice.
    Periods without a delivered review, and periods still running, are left alone."""
    from kaizen import warehouse
    from kaizen.delivery import ledger

    now = now or datetime.now(cal.UTC)
    engine = warehouse.get_engine()
    out = []
    for item in sorted(set(periods)):
        grain, _, start = item.partition(":")
        kind = REVIEW_OF_GRAIN.get(grain)
        if kind is None:
            continue
        period = Period.of(grain, date.fromisoformat(start[:10]))
        if not period.is_complete(now):
            continue
        if not ledger.delivered(engine, f"{kind}_review", period.key):
            continue
        request = resolve_review_period(kind, param_period_start=period.start.isoformat())
        result = deliver_review(render_review(request, run_id), mode=mode, run_type=run_type)
        log.info("%s %s after late data: %s", kind, period.key, result)
        out.append(result)
    return out


def console_progress(label: str, total: int):
    """A progress bar on stderr for long rebuilds (only when stderr is a terminal or
    KAIZEN_PROGRESS=1); returns a callback taking the number of steps done."""
    import os
    import sys
    import time

    show = sys.stderr.isatty() or os.environ.get("KAIZEN_PROGRESS") == "1"
    started = time.monotonic()

    def update(done: int) -> None:
        if not show or total <= 0 or time.monotonic() - started < 3 and done < total:
            return  # quiet for short runs
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write(f" ({time.monotonic() - started:.1f} s)\n")
        sys.stderr.flush()

    return update


def rebuild(
    first: date, last: date, run_id: str, grains=("day", "week", "month", "quarter"), *, progress=None,
    reextract: bool = True,
) -> dict:
    """Extract the trading days in [first, last] and compute the requested grains, one
    calendar month of the range at a time (memory stays bounded however long the
    range): each source is fetched and loaded once per month (one load transaction per
    source and month, its facts with it), then the day KPIs of its trading days and the
    rollups whose whole window is now loaded are computed from the facts. Rollups are
    computed to their own end, or as far as the data has landed (never cut at ``last``
    when later days are loaded). ``reextract=False`` fetches nothing and recomputes the
    KPIs from what the warehouse holds. Idempotent: re-running changes nothing that was right."""
    from concurrent.futures import ThreadPoolExecutor

    from kaizen import sources, warehouse
    from kaizen.kpis import catalog, periods
    from kaizen.sources.base import load

    bad = [g for g in grains if g not in GRAINS]
    if bad:
        raise ParamError(f"grains: {bad} not in {list(GRAINS)}")
    if last < first:
        raise ParamError(f"end: {last} is before start {first}")
    prepare_warehouse()
    engine = warehouse.get_engine()
    cat = catalog.load_catalog()
    days = cal.trading_days(first, last)
    chunks = [[d for d in days if m.start <= d <= m.end] for m in Period.between("month", first, last)]
    chunks = [c for c in chunks if c]
    per_chunk = len(sources.SOURCES) + 1
    step = progress or console_progress(f"rebuild {first}…{last}", per_chunk * len(chunks))
    rollups = []
    if days and any(g != "day" for g in grains):
        # each period to its own end when later data is loaded already: a backfill
        # never cuts the periods it touches at its last day
        with engine.connect() as conn:
            landed = periods.landed_to(conn)
        as_of = Period.day(days[-1]).closes_utc
        rollups = periods.rollup_scopes([g for g in grains if g != "day"], window_first_day(days[0]), last,
                                        as_of=as_of, landed=landed)
    totals = {"extracted": 0, "loaded": 0, "quarantined": 0, "kpi_rows": 0}
    warnings: list[str] = []  # stored rows kept past a source's retention

    def prepare(chunk: list[date]) -> list:
        if not reextract:
            return []
        return [sources.prepare_range(name, chunk[0], chunk[-1]) for name in sources.SOURCES]

    # the next month is fetched and validated in a thread while this one is written:
    # the database does its share of both without the GIL
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaizen-prefetch")
    ahead = pool.submit(prepare, chunks[0]) if chunks else None
    try:
        for n, chunk in enumerate(chunks):
            prepared = ahead.result()
            ahead = pool.submit(prepare, chunks[n + 1]) if n + 1 < len(chunks) else None
            for i, loads in enumerate(prepared, 1):
                for r in load(engine, (chunk[0], chunk[-1]), run_id, loads):
                    totals["extracted"] += r.extracted
                    totals["loaded"] += r.loaded
                    totals["quarantined"] += r.quarantined
                    if r.warning:
                        warnings.append(r.warning)
                step(n * per_chunk + i)
            _compute_chunk(engine, cat, run_id, grains, chunk, n == len(chunks) - 1, rollups, totals)
            step((n + 1) * per_chunk)
    finally:
        pool.shutdown(cancel_futures=True)
    return {"trading_days": len(days), **totals, **({"warnings": warnings} if warnings else {})}


def _compute_chunk(engine, cat, run_id: str, grains, chunk: list[date], final: bool, rollups: list,
                   totals: dict) -> None:
    """The day KPIs of a loaded month and the rollups of ``rollups`` (taken from the
    list) whose whole window is now loaded."""
    from datetime import UTC

    from kaizen import warehouse
    from kaizen.kpis import periods
    from kaizen.kpis.measures import load_data

    scopes = [(periods.day_scope(d), True) for d in chunk] if "day" in grains else []
    # a rollup is computed once the landing tables hold its whole window: the
    # chunk's last review window must reach the period's end (or the range ends)
    loaded_to = Period.day(chunk[-1]).closes_utc
    ready = [(s, c) for s, c in rollups if final or s.end <= loaded_to]
    rollups[:] = [r for r in rollups if r not in ready]
    if scopes or ready:
        with warehouse.writing(engine) as conn:
            data = load_data(conn, [s for s, _ in scopes + ready])
            totals["kpi_rows"] += len(
                periods.write_scopes(conn, scopes + ready, run_id, cat=cat, stamp=datetime.now(UTC), data=data)
            )


def plan_backfill(request: dict) -> dict:
    """What a backfill would do (dry run), reading and writing nothing: the trading days
    it would extract, and per grain the periods it would recompute, as :func:`rebuild`
    chooses them — the range's trading days for ``day``; for the rollups every week,
    month and quarter holding any of the data a load of the range lands (from the
    previous session's review time, :func:`window_first_day`), up to the last session's
    cut-off. A period that starts after that cut-off (a range ending on a holiday that
    opens a month) is recomputed only when the warehouse holds later data: not listed.

    Returns ``{"dry_run", "reextract", "trading_days": [ISO dates], "periods": {grain:
    [keys]}, "plan": [lines a person reads]}``; the lines are logged too."""
    first, last = date.fromisoformat(request["start"]), date.fromisoformat(request["end"])
    days = cal.trading_days(first, last)
    reextract = request.get("reextract", True)
    chosen: dict[str, list[Period]] = {}
    for grain in request["grains"]:
        if grain == "day" or not days:
            chosen[grain] = [Period.day(d) for d in days]
            continue
        cut_off = Period.day(days[-1]).closes_utc
        chosen[grain] = [p for p in Period.between(grain, window_first_day(days[0]), last) if p.opens_utc < cut_off]
    if not days:
        lines = [f"No NSE trading day in {first} … {last}: nothing to extract or recompute."]
    elif reextract:
        lines = [f"Extract {len(days)} trading day(s) {days[0]} … {days[-1]} from every source: "
                 + ", ".join(d.isoformat() for d in days)]
    else:
        lines = [f"Extract nothing (reextract off); recompute from what the warehouse holds for "
                 f"{len(days)} trading day(s) {days[0]} … {days[-1]}."]
    for grain, periods in chosen.items():
        if days:
            shown = ", ".join(p.key if grain == "day" else f"{p.key} ({p.range_text})" for p in periods)
            lines.append(f"Recompute {grain}: {len(periods)} period(s): {shown}")
    for line in lines:
        log.info("dry run: %s", line)
    return {"dry_run": True, "reextract": reextract, "trading_days": [d.isoformat() for d in days],
            "periods": {g: [p.key for p in ps] for g, ps in chosen.items()}, "plan": lines}


def rebuild_backfill(request: dict, run_id: str) -> dict:
    return rebuild(
        date.fromisoformat(request["start"]), date.fromisoformat(request["end"]), run_id, tuple(request["grains"]),
        reextract=request.get("reextract", True),
    )


def deliver_backfill(request: dict, run_id: str) -> dict:
    """Re-render and deliver the daily review of every trading day in the range to
    the requested sink; the ledger skips reviews whose content did not change."""
    first, last = date.fromisoformat(request["start"]), date.fromisoformat(request["end"])
    sink = request["deliver_to"]
    if sink == "sheets":
        raise ParamError("deliver_to: sheets delivery of daily reviews is not available yet; use outbox or slack")
    actions: dict[str, int] = {}
    for d in cal.trading_days(first, last):
        result = deliver_daily_review(d, render_daily_review(d, run_id), mode=sink)
        actions[result["action"]] = actions.get(result["action"], 0) + 1
    # the week, month and quarter reviews already delivered for the periods the range
    # touches: revised in place where the backfill changed their content
    touched = [f"{g}:{p.start}" for g in REVIEW_OF_GRAIN for p in Period.between(g, window_first_day(first), last)]
    revised = revise_reviews(touched, run_id, mode=sink)
    return {"delivered_to": sink, "actions": actions, "reviews": [
        {"period_key": r["period_key"], "report": r["report"],
         "action": (r.get("slack") or r.get("outbox") or {}).get("action")} for r in revised]}


def render_daily_review(day: date, run_id: str) -> dict:
    from kaizen import warehouse
    from kaizen.reports import daily

    engine = warehouse.get_engine()
    rendered = daily.render_daily(daily.build_daily(engine, day), run_id=run_id)
    rendered["sheet_rows"] = daily.daily_sheet_rows(engine, day)
    return rendered


def delivery_sink(mode: str, run_type: str | None) -> str | None:
    """Where a daily review goes: ``auto`` posts scheduled and manual runs to Slack
    (when configured) and keeps backfill runs in the outbox, so a 250-day backfill
    never floods the channel; ``slack``/``outbox`` force; ``none`` sends nothing."""
    if mode not in ("auto", "slack", "outbox", "none"):
        raise ParamError(f"deliver: {mode!r} is not one of auto, slack, outbox, none")
    if mode == "auto":
        return "outbox" if "backfill" in str(run_type or "").lower() else None
    return mode


def deliver_daily_review(day: date, rendered: dict, *, mode: str = "auto", run_type: str | None = None) -> dict:
    from kaizen import delivery, warehouse

    sink = delivery_sink(mode, run_type)
    if sink == "none":
        return {"report": "daily_review", "period_key": day.isoformat(), "action": "skipped (deliver=none)"}
    engine = warehouse.get_engine()
    result = delivery.deliver(
        "daily_review",
        day.isoformat(),
        rendered["payload"],
        rendered["markdown"],
        engine,
        channel_kind="daily",
        sink=sink,
    ).as_dict()
    if rendered.get("sheet_rows"):
        from datetime import UTC

        from kaizen.delivery import reviews

        result["sheets"] = reviews.deliver_sheets(
            "daily_review",
            day.isoformat(),
            rendered["sheet_rows"],
            engine,
            last_sync=reviews.last_sync_text(datetime.now(UTC)),
        )
    return result


def run_daily(day: date, run_id: str) -> dict:
    """The whole daily review for one trading day, without Airflow (CLI, tests)."""
    prepare_warehouse()
    extracted = {}
    for source in SOURCES:
        try:
            extracted[source] = extract_source(source, day, run_id)
        except Exception:  # recorded as an outage; the review goes out, then check_sources fails
            extracted[source] = None
    kpis = compute_day_kpis(day, run_id)
    rendered = render_daily_review(day, run_id)
    delivered = deliver_daily_review(day, rendered)
    revise_recovered(day, run_id)
    experiments = read_out_experiments(day, run_id)
    check_sources(day)
    return {"day": day.isoformat(), "extracted": extracted, "kpis": kpis, "delivered": delivered,
            "experiments": experiments}


def revise_recovered(day: date, run_id: str, *, mode: str = "auto", run_type: str | None = None) -> list[dict]:
    """Days before ``day`` whose missing sources this run landed (see
    :func:`extract_source`): their KPIs and rollups recomputed, and their daily reviews
    — and any week, month or quarter review they change — revised in place."""
    from kaizen import warehouse
    from kaizen.delivery import ledger
    from kaizen.warehouse import outages

    engine = warehouse.get_engine()
    out = []
    for past in outages.recovered_by(engine, run_id):
        if past == day:
            continue  # this run's own day goes through the usual tasks
        compute_day_kpis(past, run_id)
        rollups = compute_rollups_to_date(past, run_id)
        delivered = {"action": "not delivered before: left alone"}
        if ledger.delivered(engine, "daily_review", past.isoformat()):
            delivered = deliver_daily_review(past, render_daily_review(past, run_id), mode=mode, run_type=run_type)
        out.append({"day": past.isoformat(), "daily_review": delivered.get("action"),
                    "reviews": revise_reviews(rollups["changed"], run_id, mode=mode, run_type=run_type)})
        log.info("revised the daily review of %s: %s", past, delivered.get("action"))
    return out


def read_out_experiments(day: date, run_id: str, *, mode: str = "auto", run_type: str | None = None) -> dict:
    """The registered A/B experiments read out as of ``day`` into ``experiment_results``;
    the readout of each ended one delivered (posted once, revised in place when late
    trades change it). A registry row that is refused is logged and named in the
    reviews; the other experiments are still read out."""
    from kaizen import warehouse
    from kaizen.experiments import readout, registry, report

    engine = warehouse.get_engine()
    reg = registry.load(today=day)
    for refused in reg.refused:
        log.warning("experiment registry: %s", refused)
    readouts = readout.read_out_all(engine, reg, day)
    stored = readout.store(engine, reg, readouts, run_id)
    sink = delivery_sink(mode, run_type)
    delivered = [] if sink == "none" else report.deliver(engine, readouts, run_id, post_to_slack=sink != "outbox")
    for r in readouts:
        log.info("experiment %s (%s, as of %s): %s", r.experiment.id, r.status, r.as_of, r.verdict)
    return {"registry": reg.location, "refused": [str(r) for r in reg.refused],
            "readouts": {r.experiment.id: r.verdict for r in readouts}, "rows": stored,
            "delivered": [{"experiment": d.get("period_key"), "action": (d.get("slack") or d.get("outbox") or {})
                           .get("action")} for d in delivered]}


def check_sources(day: date) -> dict:
    """Fail (permanently: a retry of the check changes nothing) when a source could not
    deliver ``day``'s window, after the review has gone out with its sections marked,
    so the run is never shown green with data missing."""
    from kaizen import warehouse
    from kaizen.sources.base import SourceError
    from kaizen.warehouse import outages

    with warehouse.get_engine().connect() as conn:
        down = outages.of_day(conn, day)
    if down:
        raise SourceError(
            f"the review of {day} went out with {len(down)} source(s) unavailable: "
            + "; ".join(o.text for o in down.values())
            + ". When the source is back, clear its failed extract_source task with its downstream tasks "
            "(or re-run the day): the posted review is revised in place.",
            transient=False,
        )
    return {"day": day.isoformat(), "unavailable": []}


# ---------------------------------------------------------------- review meetings
REVIEW_GRAIN = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}
REVIEW_OF_GRAIN = {grain: kind for kind, grain in REVIEW_GRAIN.items()}


def resolve_review_period(
    kind: str,
    *,
    param_period_start=None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    run_after: datetime | None = None,
) -> dict:
    """The period a review run covers: the ``period_start`` param (a date inside the
    period, reviewed to the run's time at the latest), else the run's data interval
    (the timetable says which period)."""
    grain = REVIEW_GRAIN.get(kind)
    if grain is None:
        raise ParamError(f"kind: {kind!r} is not one of {', '.join(REVIEW_GRAIN)}")
    day = parse_day_param(param_period_start, "period_start")
    if day is not None:
        period = Period.of(grain, day)
        as_of = period.closes_utc.astimezone(cal.IST)
        if run_after is not None:
            as_of = min(as_of, run_after)  # to date: never past the moment the run was asked for
        if as_of <= period.opens_utc:
            raise ParamError(f"period_start: the {grain} of {day} has not started at {as_of:%Y-%m-%d %H:%M %Z}")
    elif data_interval_start is not None and data_interval_end is not None:
        period = Period.of(grain, data_interval_start.astimezone(cal.IST).date())
        as_of = data_interval_end
    else:
        raise ParamError("period_start: no period given and the run has no data interval")
    return {"kind": kind, "grain": grain, "period_start": period.start.isoformat(), "key": period.key,
            "as_of": as_of.isoformat(), "run_after": run_after.isoformat() if run_after is not None else None}


def land_tail(until: datetime, run_id: str, issues_until: datetime | None = None) -> list[dict]:
    """Extract the window sources (Prometheus, PagerDuty, GitHub) from where the last
    daily run's window ended up to ``until``: the weekend or holiday minutes a review
    due before the next daily run would otherwise miss. The next daily run extracts
    its whole window again (same slices, replaced), so nothing is loaded twice.
    ``issues_until`` (later): the GitHub issues up to then — a review run on Monday
    morning shows the post-mortems and action items as they stand when it runs. A
    source the hourly ingestion (:func:`ingest_window_source`) has landed that far
    already is not extracted again."""
    from kaizen import sources, warehouse
    from kaizen.kpis import periods
    from kaizen.period import window_day
    from kaizen.sources.base import load
    from kaizen.warehouse import coverage

    engine = warehouse.get_engine()
    with engine.connect() as conn:
        landed = periods.landed_to(conn)
        spans = coverage.spans(conn)
    if landed is None or landed >= until:
        return []
    day = window_day(landed)  # the trading day whose window the tail belongs to
    out = []
    for name in sources.WINDOW_SOURCES:
        upto = max(until, issues_until) if name == "github_issues" and issues_until is not None else until
        if sources.landed(name, spans, landed, upto):
            continue  # the hourly ingestion (kaizen_ingest) has landed it already
        try:
            out += [r.as_dict() for r in load(engine, (day, day), run_id, sources.prepare_window(name, landed, upto))]
        except Exception as exc:
            # the review still goes out: its period shows the gap ("awaiting …"), the
            # next daily run lands it and revises the review; check_sources fails the run
            from kaizen.warehouse.outages import reason_of

            log.warning("review tail: %s unavailable: %s", name, reason_of(exc))
            out.append({"source": name, "unavailable": reason_of(exc)})
    log.info("review tail %s … %s extracted: %s", landed.isoformat(), until.isoformat(), out)
    return out


# Hourly ingestion (dags/kaizen_ingest.py): every source lands on its own schedule,
# weekends and holidays included, whatever the reviews' times. The names are light
# (the DAG maps one task per source at parse time); a test keeps them equal to
# kaizen.sources.WINDOW_SOURCES.
INGEST_WINDOW_SOURCES = ("prometheus", "pagerduty", "github", "github_issues", "aws_cur", "oncall", "team_sheets")
INGEST_LOOKBACK = timedelta(days=7)  # how far back an ingest run fills a gap (older: kaizen_backfill)


def _plain(ts: datetime) -> datetime:
    """An aware instant (a pendulum DateTime from Airflow's context too) as a plain UTC datetime."""
    from datetime import UTC

    return datetime.fromtimestamp(ts.timestamp(), UTC)


def ingest_until(data_interval_end, run_after) -> datetime:
    """Where an ingest run lands to: its data interval's end (a scheduled run: the top of
    the hour), or, for a manual run without one, its run time down to a 15-minute slot edge."""
    if data_interval_end is not None:
        return _plain(data_interval_end)
    at = _plain(run_after)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def ingest_window_source(name: str, until: datetime, run_id: str) -> list[dict]:
    """Land window source ``name`` up to ``until``: every daily review window from the
    one where the source's landed coverage ends (at most :data:`INGEST_LOOKBACK` back)
    to the one holding ``until``, each extracted whole from its start — its slices and
    quarantine rows replaced, as the daily run and the review tail do, so hour after
    hour nothing is loaded twice or dropped. Returns the loads ([]: landed already)."""
    from kaizen import sources, warehouse
    from kaizen.period import window_day
    from kaizen.sources.base import load
    from kaizen.warehouse import coverage

    until = _plain(until)
    engine = warehouse.get_engine()
    with engine.connect() as conn:
        landed = sources.landed_to(name, coverage.spans(conn))
    if landed is not None and landed >= until:
        return []
    start = until - timedelta(microseconds=1) if landed is None else max(landed, until - INGEST_LOOKBACK)
    day, last = window_day(start), window_day(until - timedelta(microseconds=1))
    if landed is not None and landed < Period.day(day).opens_utc:
        log.warning("ingest %s: landed only to %s, more than %d days ago; %s to %s is left to kaizen_backfill",
                    name, landed.isoformat(), INGEST_LOOKBACK.days, landed.isoformat(),
                    Period.day(day).opens_utc.isoformat())
    out = []
    while day <= last:
        window = Period.day(day)
        loads = sources.prepare_window(name, window.opens_utc, min(window.closes_utc, until))
        out += [r.as_dict() for r in load(engine, (day, day), run_id, loads)]
        day = cal.next_trading_day(day)
    log.info("ingest %s to %s: %s", name, until.isoformat(), out)
    return out


def ingest_trading(until: datetime, run_id: str) -> list[dict] | None:
    """Land the trades and orders of the latest session that has closed by ``until``,
    once: None when they are landed already (the daily run lands them at its own time
    too; a later change to a day is landed by re-running it)."""
    from kaizen import sources, warehouse
    from kaizen.period import window_day
    from kaizen.warehouse import coverage

    until = _plain(until)
    day = window_day(until - timedelta(microseconds=1))
    if cal.session_bounds_utc(day)[1] > until:
        day = cal.previous_trading_day(day)
    with warehouse.get_engine().connect() as conn:
        spans = coverage.spans(conn)
    if sources.landed("trading", spans, *coverage.day_span(day, day)):
        return None
    return extract_source("trading", day, run_id)


def compute_review_rollups(period: dict, run_id: str) -> dict:
    """The reviewed period's KPIs, recomputed to the review's as-of time, once every
    source has landed up to it: the tail after the last daily run is extracted first
    (:func:`land_tail`)."""
    from kaizen import warehouse
    from kaizen.kpis import periods

    start = date.fromisoformat(period["period_start"])
    as_of = datetime.fromisoformat(period["as_of"])
    run_after = period.get("run_after")
    tail = land_tail(min(as_of, Period.of(period["grain"], start).closes_utc), run_id,
                     issues_until=datetime.fromisoformat(run_after) if run_after else None)
    rows = periods.compute_rollups(warehouse.get_engine(), [period["grain"]], start, start, run_id, as_of=as_of)
    from kaizen.goals.store import land_for_review  # OKRs and improvement backlog (monthly, quarterly)

    goals = land_for_review(period, run_id)
    return {"rows": len(rows), "tail": tail, "goals": goals,
            "unavailable": [f"{t['source']} ({t['unavailable']})" for t in tail + goals if "unavailable" in t]}


def check_review_sources(rollups: dict, period_key: str) -> dict:
    """Fail the review run (without retrying) when a source could not land the review's
    tail; the review went out with the period's gap shown ("awaiting …")."""
    from kaizen.sources.base import SourceError

    if rollups.get("unavailable"):
        raise SourceError(
            f"the review of {period_key} went out with its data incomplete: unavailable: "
            + "; ".join(rollups["unavailable"])
            + ". The review shows the gap; when the source is back, the next daily run lands the missing data "
            "and revises the review in place.",
            transient=False,
        )
    return {"period": period_key, "unavailable": []}


def render_review(period: dict, run_id: str) -> dict:
    """The RenderedReview as the deliver task gets it (its XCom): the charts, the
    Markdown and the HTML written to the artefact store and named by URL
    (``charts``, ``documents``), not carried inline and never as local paths, so
    ``deliver_review`` may run on another worker."""
    from kaizen import warehouse
    from kaizen.reports import review

    report = review.build_review(
        warehouse.get_engine(),
        period["kind"],
        date.fromisoformat(period["period_start"]),
        as_of=datetime.fromisoformat(period["as_of"]),
    )
    rendered = review.render_review(report, run_id=run_id)
    return {k: v for k, v in rendered.items() if k not in ("markdown", "html")}


def deliver_review(rendered: dict, *, mode: str = "auto", run_type: str | None = None) -> dict:
    """Slack (unless a backfill run or ``mode`` says otherwise), Sheets and the outbox."""
    from kaizen import warehouse
    from kaizen.delivery import reviews

    sink = delivery_sink(mode, run_type)
    if sink == "none":
        return {"report": rendered["report"], "period_key": rendered["period_key"], "action": "skipped"}
    return reviews.deliver_review(rendered, warehouse.get_engine(), post_to_slack=sink in (None, "slack"))
