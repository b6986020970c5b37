"""The shared time line of the demo world: the period, the 24×7 coverage, random
streams, outages, and small formatting helpers used by every source writer.

All times inside the generator are integer (or millisecond) Unix epochs, never
wall-clock readings, so the same arguments always give the same files.
"""

from __future__ import annotations

import calendar as pycal
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from kaizen import calendar as cal
from kaizen.period import review_window_utc

DAY = 86400
IST_OFFSET = 19800  # +05:30, India has no DST
STREAMS = ("trading", "prometheus", "github", "pagerduty", "outages", "bad")
ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def subtract_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + (d.month - 1) - months, 12)
    m += 1
    return date(y, m, min(d.day, pycal.monthrange(y, m)[1]))


def epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def ist_epoch(d: date, t: time) -> int:
    return epoch(cal.ist_datetime(d, t))


def iso_z(ts: int | float) -> str:
    """ISO-8601 UTC with ``Z`` and whole seconds, as GitHub and PagerDuty write it."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_day_ist(d: date) -> int:
    """Days since 1970-01-01 of an IST calendar date (for vectorised membership tests)."""
    return (d - date(1970, 1, 1)).days


def rand_id(rng: np.random.Generator, prefix: str, n: int) -> str:
    return prefix + "".join(ID_ALPHABET[rng.integers(0, len(ID_ALPHABET), n)])


def rand_hex(rng: np.random.Generator, nbytes: int) -> str:
    return rng.bytes(nbytes).hex()


def dump_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Window:
    day: date
    start: int  # epoch seconds, inclusive (previous trading day 16:00 IST)
    end: int  # epoch seconds, exclusive (day 16:00 IST)


@dataclass
class Period:
    end: date
    months: int
    start: date  # end − months (calendar)
    days: list[date]  # trading days in [start, end]
    windows: list[Window]
    cov_start: int  # first review window start
    cov_end: int  # last review window end (last trading day 16:00 IST)
    streams: dict = field(default_factory=dict)

    @property
    def last_day(self) -> date:
        return self.days[-1]

    @property
    def last_window(self) -> Window:
        return self.windows[-1]

    def window_of(self, ts: int) -> Window | None:
        for w in self.windows:
            if w.start <= ts < w.end:
                return w
        return None


def build_period(end: date, months: int, seed: int) -> Period:
    if months < 1:
        raise ValueError("months must be ≥ 1")
    start = subtract_months(end, months)
    days = cal.trading_days(start, end)
    if not days:
        raise ValueError(f"no NSE trading day in {start} … {end}")
    windows = []
    for d in days:
        a, b = review_window_utc(d)
        windows.append(Window(d, epoch(a), epoch(b)))
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    streams = {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}
    return Period(end=end, months=months, start=start, days=days, windows=windows,
                  cov_start=windows[0].start, cov_end=windows[-1].end, streams=streams)


def session_bounds(d: date) -> tuple[int, int]:
    opens, closes = cal.session_hours(d)  # a special session's own hours
    return ist_epoch(d, opens), ist_epoch(d, closes)


@dataclass
class Outage:
    """Minutes [start, start + minutes·60) in which the trading-api probe failed."""

    start: int  # epoch seconds, minute aligned
    minutes: int
    priority: str  # P0 or P1
    deployment_id: int | None = None

    @property
    def end(self) -> int:
        return self.start + self.minutes * 60


@dataclass(frozen=True)
class ScrapeGap:
    start: int  # first missing evaluation timestamp (epoch seconds, minute aligned)
    minutes: int


def plan_scrape_gap(period: Period, rng: np.random.Generator) -> ScrapeGap:
    """One short Prometheus outage (missing samples), on a weekend if the period has one."""
    span = period.cov_end - period.cov_start
    lo = period.cov_start + span // 4
    t = lo + int(rng.integers(0, max(1, span // 2)))
    t -= t % 60
    return ScrapeGap(start=t, minutes=int(rng.integers(4, 9)))


def _overlaps(start: int, end: int, busy: list[tuple[int, int]], margin: int) -> bool:
    return any(start < b + margin and a - margin < end for a, b in busy)


def plan_outages(period: Period, deployments: list, gap: ScrapeGap, rng: np.random.Generator,
                 forced_dep) -> list[Outage]:
    """4–8 outages a quarter (at least 2 in any period), 1–40 minutes; about a third
    start soon after a production deployment that then counts as their cause. The
    deployment ``forced_dep`` always causes one (it causes a second incident too)."""
    span_days = (period.cov_end - period.cov_start) / DAY
    lam = 6.0 / 91.0 * span_days
    n = int(np.clip(rng.poisson(lam), max(2, round(lam * 4 / 6)), max(2, round(lam * 8 / 6))))
    n_dep = max(1, int(round(0.35 * n)))
    busy: list[tuple[int, int]] = [(gap.start - 3600, gap.start + gap.minutes * 60 + 3600)]
    lw = period.last_window
    busy.append((lw.start, lw.end))  # keep the bad-record day readable: no outage there
    out: list[Outage] = []
    candidates = [d for d in deployments if d.caused_ok(period)]
    dep_pick = [forced_dep] if forced_dep is not None else []
    if candidates:
        order = rng.permutation(len(candidates))
        for i in order:
            if len(dep_pick) >= n_dep:
                break
            if candidates[i] is not forced_dep:
                dep_pick.append(candidates[i])
    for dep in dep_pick:
        for _ in range(50):
            minutes = int(np.clip(round(rng.lognormal(np.log(10.0), 0.75)), 1, 40))
            start = dep.finished + int(rng.integers(180, 2400))
            start += (-start) % 60
            if not _overlaps(start, start + minutes * 60, busy, 6 * 3600):
                out.append(Outage(start, minutes, "P1", dep.id))
                busy.append((start, start + minutes * 60))
                break
    lo, hi = period.cov_start + 3 * 3600, period.cov_end - 6 * 3600
    while len(out) < n and hi > lo:
        for _ in range(200):
            minutes = int(np.clip(round(rng.lognormal(np.log(10.0), 0.75)), 1, 40))
            start = lo + int(rng.integers(0, hi - lo))
            start -= start % 60
            if not _overlaps(start, start + minutes * 60, busy, 6 * 3600):
                out.append(Outage(start, minutes, "P1"))
                busy.append((start, start + minutes * 60))
                break
        else:
            break
    out.sort(key=lambda o: o.start)
    for o in out:  # the long ones page as P0
        o.priority = "P0" if o.minutes >= 15 or rng.random() < 0.15 else "P1"
    return out


def window_counts(period: Period, times: list[int]) -> dict[str, int]:
    """How many of the epoch ``times`` fall in each trading day's review window."""
    starts = np.array([w.start for w in period.windows])
    arr = np.asarray(sorted(times), dtype=np.int64)
    out = {}
    for w, s in zip(period.windows, starts, strict=True):
        out[w.day.isoformat()] = int(np.searchsorted(arr, w.end) - np.searchsorted(arr, s))
    return out


def day_start_utc(ts: int) -> int:
    return ts - ts % DAY


def utc_date(ts: int) -> date:
    return date(1970, 1, 1) + timedelta(days=ts // DAY)
