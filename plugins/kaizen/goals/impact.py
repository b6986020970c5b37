"""The impact of a closed improvement on the KPIs it names: each KPI over two equal
windows, before and after the close date, the change, and whether it moved the right
way.

Windows (IST calendar days; ``W`` = ``KAIZEN_IMPACT_WINDOW_DAYS``, default 28): the
close day is the IST date of ``closed_at`` and belongs to neither window (the change
lands part-way through it):

- before = the ``W`` days ending the day before the close day;
- after  = the ``W`` days starting the day after it.

**How a window's value is computed:** recomputed from the warehouse over the window
exactly as a period of that length would be (:func:`kaizen.kpis.measures.measure_scope`
on a scope of those days: counts and sums over the window's rows and 15-minute slot
facts, percentiles and means recomputed from the rows — never an average of daily
values), with the catalog's ``min_sample`` rule: too few samples → no value.

The verdict uses the KPI's ``better`` and its ``neutral_band_pct`` (the trend rule's
band): a change within ±band % of the before value is ``unchanged``; otherwise
``improved`` when it moved the better way, else ``worsened``. The after window must
have ended by the review's as-of (else ``pending`` until its end), and the before
window must lie inside the warehouse's history (else ``no data``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kaizen import calendar as cal
from kaizen import config
from kaizen.errors import PermanentError

log = logging.getLogger(__name__)

ENV_WINDOW_DAYS = "KAIZEN_IMPACT_WINDOW_DAYS"
DEFAULT_WINDOW_DAYS = 28
IMPROVED, WORSENED, UNCHANGED, PENDING, NO_DATA = "improved", "worsened", "unchanged", "pending", "no data"
VERDICTS = (IMPROVED, WORSENED, UNCHANGED, PENDING, NO_DATA)


def window_days() -> int:
    """The window length ``W`` in days (setting ``KAIZEN_IMPACT_WINDOW_DAYS``, 1–366)."""
    days = config.env_number(ENV_WINDOW_DAYS, int, valid=lambda d: 1 <= d <= 366, error=PermanentError,
                             refusal=": give a whole number of days from 1 to 366 (default 28)")
    return DEFAULT_WINDOW_DAYS if days is None else days


@dataclass(frozen=True)
class Windows:
    close_day: date
    before: tuple[date, date]  # first, last (IST days, inclusive)
    after: tuple[date, date]

    @property
    def after_ends(self) -> datetime:
        """00:00 IST after the after window's last day (aware UTC)."""
        from kaizen.period import midnight_utc

        return midnight_utc(self.after[1] + timedelta(days=1))

    @property
    def before_starts(self) -> datetime:
        from kaizen.period import midnight_utc

        return midnight_utc(self.before[0])


def windows(closed_at: datetime, days: int) -> Windows:
    close = cal.ist_date(closed_at)
    one = timedelta(days=1)
    return Windows(close, (close - timedelta(days=days), close - one), (close + one, close + timedelta(days=days)))


def window_scope(first: date, last: date):
    """The measures' scope of the IST days [first, last]: their trading days, their
    UTC window [first 00:00 IST, last + 1 00:00 IST), their business days."""
    from kaizen.kpis.measures import Scope
    from kaizen.period import midnight_utc, weekdays

    start, end = midnight_utc(first), midnight_utc(last + timedelta(days=1))
    return Scope(
        grain="window",
        period_start=first,
        period_end=last,
        first_day=first,
        last_day=last,
        start=start,
        end=end,
        full_minutes=(end - start).total_seconds() / 60.0,
        session_days=tuple(cal.trading_days(first, last)),
        business_days=weekdays(first, last),
    )


def verdict(before: float | None, after: float | None, better: str, band_pct: float) -> str:
    """improved, worsened or unchanged (within ±band_pct % of |before|); no data when
    either value is missing."""
    if before is None or after is None:
        return NO_DATA
    change = after - before
    if change == 0 or abs(change) <= abs(before) * band_pct / 100.0:
        return UNCHANGED
    return IMPROVED if (change > 0) == (better == "higher") else WORSENED


@dataclass(frozen=True)
class Impact:
    issue_number: int
    kpi_id: str
    close_day: date
    window_days: int
    before_first: date
    before_last: date
    after_first: date
    after_last: date
    before_value: float | None
    after_value: float | None
    before_status: str | None  # the window's KPI status (on_target, insufficient_data, …); None: not measured
    after_status: str | None
    change: float | None  # after − before
    change_pct: float | None  # change ÷ |before| × 100 (None when before is 0 or missing)
    verdict: str  # improved, worsened, unchanged, pending, no data
    note: str | None = None  # why pending / no data

    def as_row(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _value(measure, kpi) -> tuple[float | None, str]:
    from kaizen.kpis import status as st

    sample = None if measure.sample_size is None else int(measure.sample_size)
    value = measure.value
    if value is not None and value != value:  # NaN
        value = None
    if sample is not None and sample < kpi.min_sample:
        value = None
    status = st.status_for(value, target=kpi.target, comparator=kpi.comparator, sample_size=sample,
                           min_sample=kpi.min_sample, stale=measure.stale, no_events=measure.no_events)
    return (None if value is None else float(value)), status


def measure_impacts(conn, items, as_of: datetime, days: int, cat=None) -> list[Impact]:
    """The impacts of the closed improvements ``items`` (done, with target KPIs) as of
    ``as_of``: one per improvement × target KPI. Reads only."""
    from kaizen.kpis.catalog import load_catalog
    from kaizen.kpis.measures import load_data, measure_scope
    from kaizen.warehouse.coverage import history_start

    cat = cat or load_catalog()
    begins = history_start(conn)
    plans = []
    for item in items:
        if not item.is_done or not item.target_kpis or item.closed_at is None:
            continue
        plans.append((item, windows(item.closed_at, days)))
    ready = [(i, w) for i, w in plans if w.after_ends <= as_of and begins is not None and w.before_starts >= begins]
    scopes = {}
    for _, w in ready:
        scopes.setdefault(w.before, window_scope(*w.before))
        scopes.setdefault(w.after, window_scope(*w.after))
    measured, failure = {}, None
    if scopes:
        try:
            data = load_data(conn, list(scopes.values()))
            measured = {span: measure_scope(data, scope, cat) for span, scope in scopes.items()}
        except Exception as exc:  # the review goes on: its impacts say they could not be measured
            failure = " ".join(str(exc).split()) or type(exc).__name__
            log.exception("improvement impacts could not be measured")
    out = []
    for item, w in plans:
        for kpi_id in item.target_kpis:
            base = dict(issue_number=item.issue_number, kpi_id=kpi_id, close_day=w.close_day, window_days=days,
                        before_first=w.before[0], before_last=w.before[1], after_first=w.after[0],
                        after_last=w.after[1])
            kpi = cat.kpis.get(kpi_id)
            if w.after_ends > as_of:
                end = w.after[1]
                out.append(Impact(**base, before_value=None, after_value=None, before_status=None,
                                  after_status=None, change=None, change_pct=None, verdict=PENDING,
                                  note=f"the after window runs to {end.day} {end:%b %Y}"))
                continue
            if begins is None or w.before_starts < begins:
                since = "" if begins is None else f" ({cal.ist_date(begins):%d %b %Y})"
                out.append(Impact(**base, before_value=None, after_value=None, before_status=None,
                                  after_status=None, change=None, change_pct=None, verdict=NO_DATA,
                                  note=f"the before window starts before the warehouse's history{since}"))
                continue
            if failure is not None:
                out.append(Impact(**base, before_value=None, after_value=None, before_status=None,
                                  after_status=None, change=None, change_pct=None, verdict=NO_DATA,
                                  note=f"not measured: {failure[:200]}"))
                continue
            if kpi is None or not kpi.active or kpi_id not in measured[w.before]:
                out.append(Impact(**base, before_value=None, after_value=None, before_status=None,
                                  after_status=None, change=None, change_pct=None, verdict=NO_DATA,
                                  note=f"{kpi_id} is not computed (planned KPI)"))
                continue
            b, b_status = _value(measured[w.before][kpi_id], kpi)
            a, a_status = _value(measured[w.after][kpi_id], kpi)
            change = None if a is None or b is None else a - b
            change_pct = None if change is None or b == 0 else change / abs(b) * 100.0
            v = verdict(b, a, kpi.better, kpi.neutral_band_pct)
            note = None
            if v == NO_DATA:
                note = "; ".join(f"{side}: {s.replace('_', ' ')}" for side, s, x in
                                 (("before", b_status, b), ("after", a_status, a)) if x is None)
            out.append(Impact(**base, before_value=b, after_value=a, before_status=b_status,
                              after_status=a_status, change=change, change_pct=change_pct, verdict=v, note=note))
    return out
