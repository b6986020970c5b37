"""NSE trading days and sessions, and the daily cut-off. Pure standard library (no
pandas, no calendar package), so the scheduler's timetables can import it cheaply.
Periods, their keys and windows are :mod:`kaizen.period`.

A day's status comes from three layers, each later one winning:

1. **Rule** — the fixed-date holidays (Republic Day 26 Jan, Dr. Ambedkar Jayanti 14 Apr,
   Maharashtra Day 1 May, Independence Day 15 Aug, Gandhi Jayanti 2 Oct, Christmas
   25 Dec) are holidays in every year, whenever they fall on a weekday.
2. **List** — NSE's published holiday list of each year (``data/nse_holidays.json``,
   or an operator's ``holiday_lists`` in the overrides file). A year with no list is
   *provisional*: only the rule applies, and :func:`provisional_notes` says so.
3. **Override** — the operator's overrides file (path: ``KAIZEN_NSE_CALENDAR_OVERRIDES``,
   default ``data/nse_calendar_overrides.json``): extra holidays, removed holidays and
   special sessions with their own hours (weekends included). It is re-read when it
   changes, so an edit needs no code change and no restart.

Weekdays that are not holidays are sessions of 09:15–15:30 IST. Dates before the first
year with a published list are outside the calendar's coverage: asking about them
raises :class:`CalendarNotCovered` (records so dated go to the quarantine).
"""

from __future__ import annotations

import json
import os
import threading
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kaizen.errors import PermanentError

IST = ZoneInfo("Asia/Kolkata")
UTC = UTC
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
REVIEW_TIME = time(16, 0)  # the daily review's cut-off and schedule after a regular session
REVIEW_AFTER_CLOSE = timedelta(minutes=30)  # a session closing later is reviewed this long after
DATA_DIR = Path(__file__).resolve().parent / "data"
HOLIDAYS_FILE = DATA_DIR / "nse_holidays.json"
DEFAULT_OVERRIDES_FILE = DATA_DIR / "nse_calendar_overrides.json"
ENV_OVERRIDES = "KAIZEN_NSE_CALENDAR_OVERRIDES"

# (month, day, name): holidays on these dates every year (when a weekday)
FIXED_HOLIDAYS = (
    (1, 26, "Republic Day"),
    (4, 14, "Dr. Baba Saheb Ambedkar Jayanti"),
    (5, 1, "Maharashtra Day"),
    (8, 15, "Independence Day"),
    (10, 2, "Mahatma Gandhi Jayanti"),
    (12, 25, "Christmas"),
)
RELOAD_CHECK_SECONDS = 1.0  # how often the files' modification times are looked at


class CalendarNotCovered(PermanentError, LookupError):
    """The date is before the calendar's first year: the holidays then are unknown."""


class CalendarFileError(PermanentError, ValueError):
    """The holiday list or the overrides file is malformed; the message names the file,
    the entry and the field."""


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    source: str  # "rule", "list" or "override"


@dataclass(frozen=True)
class Session:
    day: date
    open: time
    close: time
    name: str  # "regular session" or the special session's name
    source: str  # "regular" or "override"

    @property
    def special(self) -> bool:
        return self.source == "override"


@dataclass(frozen=True)
class Calendar:
    first_year: int
    lists: dict[int, dict[date, str]]  # year → published holidays (weekday closures)
    list_sources: dict[int, str]  # year → the file its list came from
    extra: dict[date, str] = field(default_factory=dict)
    removed: dict[date, str] = field(default_factory=dict)
    special: dict[date, Session] = field(default_factory=dict)
    overrides_file: Path = DEFAULT_OVERRIDES_FILE
    _sessions: dict = field(default_factory=dict, compare=False, repr=False)  # memo of session()

    def check_covered(self, d: date) -> None:
        if d.year < self.first_year:
            raise CalendarNotCovered(
                f"{d.isoformat()} is before the NSE calendar's coverage (it starts on "
                f"{self.first_year}-01-01): the exchange's holidays of {d.year} are unknown here"
            )

    def is_provisional(self, year: int) -> bool:
        """No published holiday list for ``year``: only fixed-date holidays are known."""
        return year >= self.first_year and year not in self.lists

    def holiday(self, d: date) -> Holiday | None:
        """The holiday on ``d`` and where it comes from, or None (weekends are not
        holidays here: they are simply no session)."""
        self.check_covered(d)
        if d in self.special or d in self.removed:
            return None
        if d in self.extra:
            return Holiday(d, self.extra[d], "override")
        listed = self.lists.get(d.year, {}).get(d)
        if listed is not None:
            return Holiday(d, listed, "list")
        for m, day, name in FIXED_HOLIDAYS:
            if (d.month, d.day) == (m, day) and d.weekday() < 5:
                return Holiday(d, name, "rule")
        return None

    def session(self, d: date) -> Session | None:
        """The NSE session on ``d`` with its hours, or None (weekend or holiday)."""
        try:
            return self._sessions[d]
        except KeyError:
            pass
        self.check_covered(d)
        if d in self.special:
            s = self.special[d]
        elif d.weekday() >= 5 or self.holiday(d) is not None:
            s = None
        else:
            s = Session(d, SESSION_OPEN, SESSION_CLOSE, "regular session", "regular")
        self._sessions[d] = s
        return s


# ---------------------------------------------------------------- the files
def overrides_path() -> Path:
    return Path(os.environ.get(ENV_OVERRIDES) or DEFAULT_OVERRIDES_FILE)


def _read_json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalendarFileError(f"{what} {path} does not exist (set {ENV_OVERRIDES} to an existing file)") from None
    except json.JSONDecodeError as exc:
        raise CalendarFileError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CalendarFileError(f"{what} {path}: the top level must be a JSON object")
    return doc


def _day(path: Path, where: str, text) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise CalendarFileError(f"{path}: {where}: {text!r} is not a date in YYYY-MM-DD form") from None


def _clock(path: Path, where: str, text) -> time:
    try:
        t = time.fromisoformat(str(text))
    except ValueError:
        t = None
    if t is None or t.tzinfo is not None or len(str(text)) != 5:
        raise CalendarFileError(f"{path}: {where}: {text!r} is not a time in HH:MM form (IST)")
    return t


def _mapping(path: Path, doc: dict, key: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise CalendarFileError(f"{path}: {key!r} must be an object of date → entry")
    return value


def _holiday_list(path: Path, where: str, year_text, entries) -> tuple[int, dict[date, str]]:
    try:
        year = int(year_text)
    except ValueError:
        raise CalendarFileError(f"{path}: {where}: {year_text!r} is not a year") from None
    if not isinstance(entries, dict):
        raise CalendarFileError(f"{path}: {where}.{year}: must be an object of date → holiday name")
    out = {}
    for text, name in entries.items():
        d = _day(path, f"{where}.{year}", text)
        if d.year != year:
            raise CalendarFileError(f"{path}: {where}.{year}: {text} is not in {year}")
        out[d] = str(name)
    return year, out


def _load(overrides: Path) -> Calendar:
    base = _read_json(HOLIDAYS_FILE, "NSE holiday list")
    lists: dict[int, dict[date, str]] = {}
    list_sources: dict[int, str] = {}
    for year_text, entries in _mapping(HOLIDAYS_FILE, base, "years").items():
        year, days = _holiday_list(HOLIDAYS_FILE, "years", year_text, entries)
        lists[year], list_sources[year] = days, str(HOLIDAYS_FILE)
    if not lists:
        raise CalendarFileError(f"{HOLIDAYS_FILE}: 'years' holds no published list")
    doc = _read_json(overrides, "NSE calendar overrides file")
    known = {"_comment", "holiday_lists", "holidays", "removed_holidays", "special_sessions"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise CalendarFileError(
            f"{overrides}: unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(sorted(known - {'_comment'}))}"
        )
    for year_text, entries in _mapping(overrides, doc, "holiday_lists").items():
        year, days = _holiday_list(overrides, "holiday_lists", year_text, entries)
        lists[year], list_sources[year] = days, str(overrides)
    extra = {_day(overrides, "holidays", k): str(v) for k, v in _mapping(overrides, doc, "holidays").items()}
    removed = {_day(overrides, "removed_holidays", k): str(v)
               for k, v in _mapping(overrides, doc, "removed_holidays").items()}
    special: dict[date, Session] = {}
    for k, v in _mapping(overrides, doc, "special_sessions").items():
        d = _day(overrides, "special_sessions", k)
        where = f"special_sessions.{k}"
        if not isinstance(v, dict):
            raise CalendarFileError(f"{overrides}: {where}: must be an object with name, open and close")
        for f in ("name", "open", "close"):
            if not v.get(f):
                raise CalendarFileError(f"{overrides}: {where}.{f} is missing")
        opens, closes = _clock(overrides, f"{where}.open", v["open"]), _clock(overrides, f"{where}.close", v["close"])
        if opens.minute % 15 or closes.minute % 15:
            raise CalendarFileError(f"{overrides}: {where}: hours must be on a quarter hour (HH:00, :15, :30, :45),"
                                    f" got {v['open']}–{v['close']}")
        if not opens < closes:
            raise CalendarFileError(f"{overrides}: {where}: open {v['open']} is not before close {v['close']}")
        if d in extra:
            raise CalendarFileError(f"{overrides}: {k} is both in 'holidays' and in 'special_sessions'")
        special[d] = Session(d, opens, closes, str(v["name"]), "override")
    clash = sorted(set(extra) & set(removed))
    if clash:
        raise CalendarFileError(f"{overrides}: {clash[0]} is both in 'holidays' and in 'removed_holidays'")
    return Calendar(first_year=min(lists), lists=lists, list_sources=list_sources, extra=extra,
                    removed=removed, special=special, overrides_file=overrides)


class _Cache:
    """The calendar, re-read when a file's modification time or the overrides path
    changes (looked at no more often than every ``RELOAD_CHECK_SECONDS``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Calendar | None = None
        self.key: tuple | None = None
        self.path: str | None = None  # the overrides setting the value was read under
        self.checked = 0.0

    @staticmethod
    def _stamp(path: Path) -> tuple:
        try:
            s = path.stat()
        except OSError:
            return (str(path), None)
        return (str(path), s.st_mtime_ns, s.st_size)

    def get(self) -> Calendar:
        env = os.environ.get(ENV_OVERRIDES)
        now = _time.monotonic()
        if self.value is not None and env == self.path and now - self.checked < RELOAD_CHECK_SECONDS:
            return self.value
        path = overrides_path()
        with self.lock:
            key = (self._stamp(HOLIDAYS_FILE), self._stamp(path))
            if self.value is None or key != self.key:
                self.value, self.key = _load(path), key
            self.path, self.checked = env, now
            return self.value

    def clear(self) -> None:
        with self.lock:
            self.value = self.key = self.path = None


_cache = _Cache()


def calendar() -> Calendar:
    """The current calendar (list + rule + the operator's overrides)."""
    return _cache.get()


def refresh() -> None:
    """Forget the cached calendar: the next question reads the files again."""
    _cache.clear()


# ---------------------------------------------------------------- days and sessions
def check_covered(d: date) -> None:
    calendar().check_covered(d)


def is_provisional(year: int) -> bool:
    return calendar().is_provisional(year)


def session(d: date) -> Session | None:
    return calendar().session(d)


def holiday(d: date) -> Holiday | None:
    return calendar().holiday(d)


def is_trading_day(d: date) -> bool:
    return calendar().session(d) is not None


def next_trading_day(d: date) -> date:
    """The first trading day strictly after ``d``."""
    d += timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before ``d``."""
    d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in ``[start, end]`` (both inclusive)."""
    out, d = [], start
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def ist_datetime(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST)


def session_hours(d: date) -> tuple[time, time]:
    """(open, close) IST of the session on ``d``; the regular hours when ``d`` has none."""
    s = session(d)
    return (s.open, s.close) if s else (SESSION_OPEN, SESSION_CLOSE)


def session_bounds_utc(d: date) -> tuple[datetime, datetime]:
    """NSE session [open, close) IST of day ``d`` in UTC (a special session's own hours)."""
    opens, closes = session_hours(d)
    return (ist_datetime(d, opens).astimezone(UTC), ist_datetime(d, closes).astimezone(UTC))


def review_time(d: date) -> time:
    """The daily review's cut-off on trading day ``d``: 16:00 IST, or for a session that
    closes later (a Muhurat evening session) 30 minutes after its close, rounded up to
    the quarter hour."""
    closes = session_hours(d)[1]
    if closes <= SESSION_CLOSE:
        return REVIEW_TIME
    at = datetime.combine(d, closes) + REVIEW_AFTER_CLOSE
    at += timedelta(minutes=-at.minute % 15, seconds=-at.second, microseconds=-at.microsecond)
    if at.date() != d:
        raise CalendarFileError(f"the session of {d} closes at {closes:%H:%M}: too late for a review that day")
    return at.time()


def ist_date(ts: datetime) -> date:
    return ts.astimezone(IST).date()


# ---------------------------------------------------------------- what the calendar knows
def shown_path(path: Path) -> str:
    """A file's path as a note shows it: relative to the repository when inside it."""
    root = DATA_DIR.parents[2]
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def provisional_notes(day: date) -> list[str]:
    """The lines a daily review of ``day`` carries about the calendar: the day's own year
    is provisional, or (from 1 November) next year's is."""
    cal = calendar()
    where = (f"add NSE's published list to {shown_path(HOLIDAYS_FILE)} "
             f"or to holiday_lists in {shown_path(cal.overrides_file)}")
    notes = []
    if cal.is_provisional(day.year):
        notes.append(f"⚠️ The NSE holiday list for {day.year} is not confirmed: only fixed-date holidays are "
                     f"known, so a festival holiday may run as a trading day — {where}.")
    if day.month >= 11 and cal.is_provisional(day.year + 1):
        notes.append(f"⚠️ The NSE holiday list for {day.year + 1} is not confirmed yet — {where} "
                     f"before 1 January.")
    return notes


def year_report(year: int) -> dict:
    """Every session and holiday of ``year`` with its source (for ``kaizen calendar``)."""
    cal = calendar()
    d, end = date(year, 1, 1), date(year, 12, 31)
    cal.check_covered(d)
    sessions, holidays = [], []
    while d <= end:
        s = cal.session(d)
        if s is not None:
            sessions.append(s)
        h = cal.holiday(d)
        if h is not None and d.weekday() < 5:
            holidays.append(h)
        d += timedelta(days=1)
    removed = sorted(k for k in cal.removed if k.year == year)
    return {
        "year": year,
        "provisional": cal.is_provisional(year),
        "list_source": cal.list_sources.get(year),
        "overrides_file": str(cal.overrides_file),
        "sessions": sessions,
        "holidays": holidays,
        "removed": [(k, cal.removed[k]) for k in removed],
    }


def utc_text(ts: datetime) -> str:
    """Canonical UTC text for binding timestamps on SQLite and PostgreSQL alike:
    fixed width, so text order is time order in SQLite."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: timestamps must carry a time zone")
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    # isoformat is ~4× faster than strftime; the offset is always +00:00 here
    return ts.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + "+00:00"

