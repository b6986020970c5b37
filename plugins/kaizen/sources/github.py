"""Production deployments from the GitHub REST API (Deployments, deployment statuses,
compare) for the review window of a trading day, into ``raw_deployments``.

Conventions (docs/contracts.md): a rollback is a deployment whose ``payload`` is
``{"rollback_of": <deployment id>}``; the final status is the newest status whose state
is success, failure or error. The commits a deployment carries are those of
``compare/<previous deployment sha>...<sha>`` (previous = the deployment created just
before it, any status).

A range of trading days (:func:`extract_range`, e.g. a year's rebuild) is one fetch and
one load for the range's window [first day's window start, last day's window end) —
the windows of consecutive trading days tile the time line — leaving exactly what
extracting the days one at a time in order leaves (:class:`DayReplay`).

Validation of times (:func:`parse`): a deployment without a readable ``created_at``
belongs to no window: it is in every window of the extract, quarantined by each (as
:mod:`kaizen.sources.github_issues` does with an issue without ``updated_at``). A
status or commit date that cannot be read, a status dated before its deployment was
created, and a ``created_at``, ``finished_at`` (the final status) or first commit
date more than :data:`~kaizen.sources.base.FUTURE_TOLERANCE` after the extract's
*as-of* quarantine the deployment. The as-of is the instant the extraction runs as of
(``as_of`` of :func:`prepare_window`; by default the extraction's clock,
:func:`kaizen.sources.base.extraction_clock`). A later non-final status (e.g.
``inactive`` once a newer deployment supersedes it) sets no loaded time and is not
checked against it."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import requests
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
    load,
    parse_ts,
    read_ts,
)
from kaizen.sources.http import HttpError, JsonClient

log = logging.getLogger(__name__)

ENVIRONMENT = "production"
API_VERSION = "2022-11-28"
DEFAULT_API = "https://api.github.com"
STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
FINAL_STATES = {"success", "failure", "error"}
PR_PATTERNS = (re.compile(r"Merge pull request #(\d+)"), re.compile(r"\(#(\d+)\)"))

# A transport returns {"deployments": [...newest first, reaching one past the window
# start...], "statuses": {id: [...]}, "compares": {"base...head": body or None}}.
Transport = Callable[[datetime, datetime], dict]


def _created(d: dict) -> datetime | None:
    try:
        return parse_ts(d.get("created_at"))
    except ValueError:
        return None


def _needed(deployments: list[dict], start: datetime, end: datetime):
    """(in-window deployments, {id: previous deployment}) from a newest-first list."""
    ordered = sorted((d for d in deployments if _created(d)), key=lambda d: (_created(d), str(d.get("id"))))
    prev = {}
    for i, d in enumerate(ordered):
        prev[str(d.get("id"))] = ordered[i - 1] if i else None
    inside = [d for d in deployments if _created(d) and start <= _created(d) < end]
    return inside, prev


def _secondary_limit(resp: requests.Response) -> float | None:
    """GitHub's primary/secondary rate limits answer 403 (or 429) with retry-after or
    x-ratelimit-remaining: 0 + x-ratelimit-reset."""
    if resp.status_code not in (403, 429):
        return None
    if resp.headers.get("retry-after") is not None:
        try:
            return max(0.0, float(resp.headers["retry-after"]))
        except ValueError:
            return None
    if resp.headers.get("x-ratelimit-remaining") == "0" and resp.headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(resp.headers["x-ratelimit-reset"]) - time.time()) + 1
        except ValueError:
            return None
    return None


def _paged(client: JsonClient, path: str, params: dict, stop: Callable[[list], bool] | None = None):
    url, p = path, dict(params)
    while url:
        resp = client.get(url, p)
        page = resp.json()
        items = page.get("commits", []) if isinstance(page, dict) else page
        yield page
        if stop and stop(items):
            return
        url, p = resp.links.get("next", {}).get("url"), None  # the next URL carries the query


def client_for(api_url: str, token: str, **client_kw) -> JsonClient:
    """A GitHub REST client: versioned JSON media type, bearer token, rate-limit rules."""
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
               "User-Agent": "kaizen-kpi-pipeline"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return JsonClient("GitHub", config.GITHUB_CONN_ID, api_url, headers,
                      rate_limit_wait=_secondary_limit, **client_kw)


def http_transport(api_url: str, token: str, repo: str, *, per_page: int = 100, **client_kw) -> Transport:
    client = client_for(api_url, token, **client_kw)

    def fetch(start: datetime, end: datetime) -> dict:
        deployments: list[dict] = []

        def older_than_window(items: list) -> bool:
            return any((_created(d) or start) < start for d in items)

        for page in _paged(client, f"/repos/{repo}/deployments",
                           {"environment": ENVIRONMENT, "per_page": per_page}, stop=older_than_window):
            deployments.extend(page)
        inside, prev = _needed(deployments, start, end)
        statuses, compares = {}, {}
        for d in inside:
            did = str(d.get("id"))
            statuses[did] = [s for page in _paged(client, f"/repos/{repo}/deployments/{did}/statuses",
                                                  {"per_page": per_page}) for s in page]
            base = prev.get(did)
            if base and base.get("sha") and d.get("sha"):
                spec = f"{base['sha']}...{d['sha']}"
                try:
                    pages = list(_paged(client, f"/repos/{repo}/compare/{spec}", {"per_page": per_page}))
                except HttpError as exc:
                    if exc.status != 404:
                        raise
                    log.warning("GitHub compare %s not found (sha gone?): no commits recorded", spec)
                    compares[spec] = None
                    continue
                body = dict(pages[0])
                body["commits"] = [c for p in pages for c in p.get("commits", [])]
                compares[spec] = body
        return {"deployments": deployments, "statuses": statuses, "compares": compares}
    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    root = Path(demo_dir or config.demo_dir()) / "github"

    def read(path: Path):
        return json.loads(path.read_text()) if path.exists() else None

    def fetch(start: datetime, end: datetime) -> dict:
        deployments = read(root / "deployments.json")
        if deployments is None:
            raise SourceError(f"demo file {root / 'deployments.json'} is missing: run `python -m kaizen demo-data`.")
        inside, prev = _needed(deployments, start, end)
        statuses, compares = {}, {}
        for d in inside:
            did = str(d.get("id"))
            statuses[did] = read(root / "statuses" / f"{did}.json") or []
            base = prev.get(did)
            if base and base.get("sha") and d.get("sha"):
                spec = f"{base['sha']}...{d['sha']}"
                compares[spec] = read(root / "compare" / f"{spec}.json")
        return {"deployments": deployments, "statuses": statuses, "compares": compares}
    return fetch


def connection_settings() -> tuple[str, str, str]:
    """(API base URL, token, "owner/name") from the ``kaizen_github`` connection."""
    conn = config.require_connection(config.GITHUB_CONN_ID, "GitHub REST API")
    repo = (conn.extra or {}).get("repo")
    if not repo or "/" not in repo:
        raise SourceError(f"connection {config.GITHUB_CONN_ID!r} needs extra {{\"repo\": \"owner/name\"}}.")
    host = conn.host or DEFAULT_API
    if not host.startswith(("http://", "https://")):
        host = f"https://{host}"
    return host, conn.password or "", repo


def live_transport() -> Transport:
    host, token, repo = connection_settings()
    return http_transport(host, token, repo)


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- parsing

def _payload(d: dict) -> dict:
    p = d.get("payload")
    if isinstance(p, str):  # the API returns the payload as given: object or JSON text
        try:
            p = json.loads(p) if p.strip() else {}
        except ValueError:
            return {}
    return p if isinstance(p, dict) else {}


def _pull_requests(commits: list[dict]) -> str | None:
    nums: set[int] = set()
    for c in commits:
        msg = (c.get("commit") or {}).get("message") or ""
        for pat in PR_PATTERNS:
            nums.update(int(n) for n in pat.findall(msg))
    return ",".join(str(n) for n in sorted(nums)) or None


def _check(d: dict, statuses: list[dict], compare: dict | None, rolled_back: bool, as_of: datetime | None = None):
    """(row, None) or (None, reason); times after ``as_of`` (the extraction's as-of,
    with its tolerance; None: not checked) are in the future."""
    did = str(d.get("id"))
    if d.get("id") is None:
        return None, "missing deployment id"
    created, reason = read_ts(d.get("created_at"), "created_at")
    if reason or created is None:
        return None, reason or "missing created_at"
    if not d.get("sha"):
        return None, "missing sha"
    env = d.get("environment")
    if env != ENVIRONMENT:
        return None, f"environment {env!r} is not {ENVIRONMENT!r}"
    parsed = []
    for s in statuses:
        state = s.get("state")
        if state not in STATES:
            return None, f"unknown status state {state!r} (status {s.get('id')})"
        at, reason = read_ts(s.get("created_at"), "created_at")
        if at is None:
            return None, f"status {s.get('id')} has no valid created_at" + (f" ({reason})" if reason else "")
        if at < created:
            return None, (f"status {s.get('id')} ({state}) dated {at.isoformat()} before the deployment "
                          f"was created {created.isoformat()}")
        parsed.append((at, str(s.get("id")), state))
    parsed.sort()
    finals = [p for p in parsed if p[2] in FINAL_STATES]
    if finals:
        finished_at, _, status = finals[-1]
    else:
        finished_at, status = None, (parsed[-1][2] if parsed else "pending")
    commits = (compare or {}).get("commits") or []
    dates = []
    for c in commits:
        at, reason = read_ts(((c.get("commit") or {}).get("author") or {}).get("date"), "commit.author.date")
        if reason:
            return None, f"commit {c.get('sha')}: {reason}"
        if at:
            dates.append(at)
    first_commit = min(dates) if dates else None
    future = (future_reason("created_at", created, as_of, "a deployment created")
              or future_reason("finished_at", finished_at, as_of, f"a final status ({status})")
              or future_reason("first commit date", first_commit, as_of, "a commit"))
    if future:
        return None, future
    count = (compare or {}).get("total_commits")
    return {
        "deployment_id": did,
        "environment": env,
        "sha": d["sha"],
        "ref": d.get("ref"),
        "created_at": created,
        "finished_at": finished_at,
        "status": status,
        "is_rollback": "rollback_of" in _payload(d),
        "rolled_back": rolled_back,
        "first_commit_at": first_commit,
        "commit_count": int(count) if isinstance(count, int) else len(commits),
        "pull_requests": _pull_requests(commits),
    }, None


def _clash_reject(source: str, table: str, key: str, row: dict, day: date) -> Reject:
    """What :func:`kaizen.sources.base.load` quarantines when ``row``'s key is already loaded
    outside the slice it replaces (same reason text)."""
    return Reject(source, str(row[key]), f"{key} {row[key]} is already loaded in {table} "
                  "for another day; this copy was not loaded", row, day=day)


class DayReplay:
    """The rows that loading a raw table one trading day after the other (in order) would
    leave behind, played in memory so that a range is loaded in ONE
    :func:`~kaizen.sources.base.load`.

    Each :meth:`day` is one day's load: its delete (kept rows whose key is in
    ``drop_keys`` or whose ``column`` is in ``drop_values``: the day's slice), then its
    rows — a key still kept (an earlier day of the range loaded it) is quarantined as
    the load's key check does, the others are kept. A kept row deleted by a later day's
    slice is *superseded*: day by day it was loaded and then replaced, so the range
    neither loads nor quarantines it (subtract :attr:`superseded` from the extracted
    count). Every step is proportional to the day's own records, never to the range.
    """

    def __init__(self, source: str, table: str, key: str, column: str | None = None):
        self.source, self.table, self.key, self.column = source, table, key, column
        self.kept: dict = {}
        self.by: dict = {}  # column value -> keys of kept rows
        self.rejects: list[Reject] = []
        self.dupes: list[dict] = []  # same key twice in one day: left to the insert to refuse
        self.superseded = 0

    def _drop(self, k) -> None:
        row = self.kept.pop(k)
        if self.column is not None:
            self.by.get(row[self.column], set()).discard(k)
        self.superseded += 1

    def day(self, day: date, rows: list[dict], drop_keys=(), drop_values=()) -> None:
        for k in drop_keys:
            if k in self.kept:
                self._drop(k)
        for v in drop_values:
            for k in list(self.by.get(v, ())):
                self._drop(k)
        clash = {r[self.key] for r in rows if r[self.key] in self.kept}
        fresh: set = set()
        for r in rows:
            k = r[self.key]
            if k in clash:
                self.rejects.append(_clash_reject(self.source, self.table, self.key, r, day))
            elif k in fresh:
                self.dupes.append(r)
            else:
                fresh.add(k)
                self.kept[k] = r
                if self.column is not None:
                    self.by.setdefault(r[self.column], set()).add(k)

    def rows(self) -> list[dict]:
        return [*self.kept.values(), *self.dupes]


def by_window_day(records: list[dict], placed: Callable[[dict], datetime]) -> list[tuple[date, list[dict]]]:
    """``records`` (all with a placement time) grouped by the trading day whose review
    window holds it, days in order, each day's records in their given order."""
    groups: dict[date, list[dict]] = {}
    for r in records:
        groups.setdefault(window_day(placed(r)), []).append(r)
    return sorted(groups.items(), key=lambda kv: kv[0])


def window_days(start: datetime, end: datetime) -> list[date]:
    """The trading days whose review windows meet [start, end): where a record without a
    readable time (on no day) is met, and quarantined, by each."""
    return cal.trading_days(window_day(start), window_day(end - timedelta(microseconds=1)))


def with_undated(groups: list[tuple[date, list[dict]]], undated: list[dict], start: datetime, end: datetime
                 ) -> list[tuple[date, list[dict]]]:
    """``groups`` (:func:`by_window_day`) with the records on no day added to every window
    of [start, end) — each day's extract meets them — days in order."""
    if not undated:
        return groups
    by_day = dict(groups)
    return [(day, by_day.get(day, []) + undated) for day in window_days(start, end)]


def parse(raw: dict, start: datetime, end: datetime, *, as_of: datetime | None = None
          ) -> tuple[int, list[dict], list[Reject], set[str]]:
    """(extracted, rows, rejects, rollback targets) of the deployments created in
    [start, end): per trading day window as its own extract would, then the days in
    order (a deployment id loaded by an earlier day is quarantined by a later one).
    Validated as of ``as_of`` (None: the extraction's clock); a deployment without a
    readable created_at is in every window, and quarantined by each."""
    as_of = as_of or extraction_clock()
    deployments = raw["deployments"]
    inside, prev = _needed(deployments, start, end)
    undated = [d for d in deployments if _created(d) is None]
    if undated:
        log.warning("GitHub deployments without a readable created_at are on no day: quarantined by every "
                    "window: %s", [d.get("id") for d in undated])
    rollback_targets = {str(_payload(d)["rollback_of"]) for d in deployments if "rollback_of" in _payload(d)}
    replay = DayReplay("deployments", "raw_deployments", "deployment_id")
    rejects: list[Reject] = []
    targets: set[str] = set()
    n = 0
    for day, group in with_undated(by_window_day(inside, _created), undated, start, end):
        n += len(group)
        rows, seen = [], set()
        for d in group:
            did = str(d.get("id"))
            base = prev.get(did)
            spec = f"{base.get('sha')}...{d.get('sha')}" if base else None
            row, reason = _check(d, raw["statuses"].get(did, []),
                                 raw["compares"].get(spec) if spec else None, did in rollback_targets, as_of)
            if row is None:
                rejects.append(Reject("deployments", did, reason,
                                      {"deployment": d, "statuses": raw["statuses"].get(did, [])}, day=day))
            elif did in seen:
                rejects.append(Reject("deployments", did, f"duplicate deployment id {did}",
                                      {"deployment": d}, day=day))
            else:
                seen.add(did)
                rows.append(row)
        replay.day(day, rows)
        # rollbacks in this window mark their (earlier) targets as rolled back
        targets |= {str(_payload(d)["rollback_of"]) for d in group
                    if "rollback_of" in _payload(d) and str(d.get("id")) in seen}
    return n, replay.rows(), rejects + replay.rejects, targets


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` in one fetch, validated: the same rows and
    quarantine as extracting them one at a time in order (``as_of``: see :func:`parse`)."""
    return prepare_window(*windows_utc(first, last), transport, as_of=as_of)


def prepare_window(start: datetime, end: datetime, transport: Transport | None = None, *,
                   as_of: datetime | None = None) -> list[TableLoad]:
    """The instants [start, end) in one fetch, validated as of ``as_of`` (None: the
    extraction's clock): what to load."""
    raw = (transport or default_transport())(start, end)
    n, rows, rejects, targets = parse(raw, start, end, as_of=as_of)
    # Targets inside the range were flagged by the parse (``rolled_back``: any listed
    # rollback names them); older ones are updated here, as each day's extract would.
    extra = [("update raw_deployments set rolled_back = true where deployment_id = :id and created_at < :start",
              {"id": t, "start": start}) for t in sorted(targets)]
    return [
        TableLoad("deployments", "raw_deployments", "created_at >= :start and created_at < :end",
                  {"start": start, "end": end}, n, rows, rejects, key="deployment_id", extra_sql=extra),
    ]


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None, *, as_of: datetime | None = None) -> list[ExtractResult]:
    """The trading days ``first``..``last`` in one fetch and one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)
