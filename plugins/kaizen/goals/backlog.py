"""The improvement backlog: GitHub issues labelled ``improvement`` (the source
document's "Improvement Backlog"), read from the GitHub REST API
(``GET /repos/{owner}/{repo}/issues?labels=improvement&state=all``, every page) through
connection ``kaizen_github``, or with ``KAIZEN_SOURCES=demo`` from
``<demo dir>/github/improvements.json`` (that listing's body, newest first).

Conventions (README, "Improvement backlog"):

- **title**, **owner** = the first assignee's login (else ``assignee``; none: unassigned),
  **state** = ``open``/``closed`` with GitHub's ``state_reason``;
- **priority** = one label ``priority: high``, ``priority: medium`` or ``priority: low``
  (also written ``priority/high``, ``priority-high``; case free); none: unprioritised;
- **votes** = the issue's 👍 reactions, ``reactions["+1"]`` of the issue object (the
  reactions rollup every issue in the listing carries);
- **target KPIs** = a body line ``Target KPIs: alerts_per_day, mttr_minutes`` (ids of
  the KPI catalog, separated by commas or spaces; Markdown bold and back-ticks allowed):
  a closed improvement that names them gets its before/after impact
  (:mod:`kaizen.goals.impact`);
- pull requests (the endpoint lists them too, with a ``pull_request`` key) are skipped.

Quarantined (source ``improvements``, with the reason): a number that is not an
integer, unreadable ``created_at``/``closed_at``, an unknown state, closed without
``closed_at`` or before it was created, two different priority labels, no readable
``reactions["+1"]``, a ``Target KPIs:`` line that names no KPI or an id the catalog
does not know, a number listed twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kaizen import config
from kaizen.sources.base import Reject, SourceError, parse_ts
from kaizen.sources.github_issues import issue_as_of, label_names

SOURCE = "improvements"
LABEL = "improvement"
DEMO_FILE = Path("github") / "improvements.json"
PRIORITIES = ("high", "medium", "low")
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2, None: 3}
PRIORITY_LABEL = re.compile(r"priority\s*[:/_-]?\s*(high|medium|low)", re.IGNORECASE)
TARGET_LINE = re.compile(r"^[ \t>*_-]*target[ \t_-]*kpis?[*_ \t]*:[*_ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)

# A transport returns every issue labelled ``improvement`` (open and closed; pull
# requests included, as the endpoint lists them), as they stand when it is asked.
Transport = Callable[[], list[dict]]


@dataclass(frozen=True)
class Improvement:
    issue_number: int
    title: str  # untrusted
    priority: str | None  # high, medium, low; None: no priority label
    owner: str | None  # untrusted login
    state: str  # open, closed
    state_reason: str | None  # completed, not_planned, reopened, None
    votes: int  # 👍 reactions
    created_at: datetime
    updated_at: datetime | None
    closed_at: datetime | None
    target_kpis: tuple[str, ...]  # from the "Target KPIs:" line, in the order written
    html_url: str | None

    @property
    def is_done(self) -> bool:
        """Closed as completed (not as "not planned")."""
        return self.state == "closed" and self.state_reason != "not_planned"


# ---------------------------------------------------------------- transports


def http_transport(api_url: str, token: str, repo: str, *, per_page: int = 100, **client_kw) -> Transport:
    from kaizen.sources import github

    client = github.client_for(api_url, token, **client_kw)

    def fetch() -> list[dict]:
        out: list[dict] = []
        params = {"labels": LABEL, "state": "all", "per_page": per_page}
        for page in github._paged(client, f"/repos/{repo}/issues", params):
            out.extend(page)
        return out

    return fetch


def demo_file(demo_dir: Path | None = None) -> Path:
    return Path(demo_dir or config.demo_dir()) / DEMO_FILE


def demo_transport(demo_dir: Path | None = None) -> Transport:
    path = demo_file(demo_dir)

    def fetch() -> list[dict]:
        if not path.exists():
            raise SourceError(f"demo file {path} is missing: run `python -m kaizen demo-data`.")
        issues = json.loads(path.read_text(encoding="utf-8"))
        now = config.demo_now()  # as the API would answer then (a rehearsal's clock)
        if now is not None:
            issues = [a for a in (issue_as_of(i, now, rewind_updated_at=False) for i in issues) if a is not None]
        return [i for i in issues if LABEL in label_names(i)]

    return fetch


def live_transport() -> Transport:
    from kaizen.sources import github

    host, token, repo = github.connection_settings()
    return http_transport(host, token, repo)


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- parsing


def priority_of(labels: list[str]) -> tuple[str | None, str | None]:
    """(priority, None) or (None, reason) from an issue's label names."""
    found = sorted({m[1].lower() for lab in labels if (m := PRIORITY_LABEL.fullmatch(lab))},
                   key=PRIORITY_RANK.get)
    if len(found) > 1:
        return None, f"conflicting priority labels ({', '.join('priority: ' + p for p in found)}): keep one"
    return (found[0] if found else None), None


def target_kpis(body, known) -> tuple[tuple[str, ...], str | None]:
    """The KPI ids of the body's ``Target KPIs:`` line (none: ``()``), or the reason
    the line is refused. ``known``: the catalog's KPI ids."""
    m = TARGET_LINE.search(body) if isinstance(body, str) else None
    if m is None:
        return (), None
    ids = [t.strip("*_`.;()[]").lower() for t in re.split(r"[,\s]+", m[1]) if t.strip("*_`.;()[]")]
    if not ids:
        return (), "the 'Target KPIs:' line names no KPI (write e.g. 'Target KPIs: alerts_per_day, mttr_minutes')"
    unknown = [i for i in ids if i not in known]
    if unknown:
        return (), (f"the 'Target KPIs:' line names {', '.join(repr(u) for u in unknown)}, not "
                    f"{'a KPI' if len(unknown) == 1 else 'KPIs'} of the catalog "
                    "(plugins/kaizen/kpis/catalog.yaml; e.g. alerts_per_day): fix the issue body")
    return tuple(dict.fromkeys(ids)), None


def check(issue: dict, known) -> tuple[Improvement | None, str | None]:
    """One issue as an :class:`Improvement`, or the reason it is quarantined."""
    num = issue.get("number")
    if not isinstance(num, int) or isinstance(num, bool):
        return None, f"issue number {num!r} is not an integer"
    try:
        created = parse_ts(issue.get("created_at"))
        closed = parse_ts(issue.get("closed_at")) if issue.get("closed_at") else None
        updated = parse_ts(issue.get("updated_at")) if issue.get("updated_at") else None
    except ValueError as exc:
        return None, f"unparseable timestamp ({exc})"
    if created is None:
        return None, "missing created_at"
    state = issue.get("state")
    if state not in ("open", "closed"):
        return None, f"unknown state {state!r}"
    if state == "closed" and closed is None:
        return None, "state closed without closed_at"
    if closed is not None and closed < created:
        return None, f"closed {closed.isoformat()} before created {created.isoformat()}"
    priority, reason = priority_of(label_names(issue))
    if reason:
        return None, reason
    reactions = issue.get("reactions")
    votes = reactions.get("+1") if isinstance(reactions, dict) else None
    if not isinstance(votes, int) or isinstance(votes, bool) or votes < 0:
        return None, f"no readable 👍 count (reactions['+1'] is {votes!r}): votes unknown"
    kpis, reason = target_kpis(issue.get("body"), known)
    if reason:
        return None, reason
    assignees = [a for a in issue.get("assignees") or [] if isinstance(a, dict) and a.get("login")]
    owner = assignees[0]["login"] if assignees else ((issue.get("assignee") or {}).get("login") or None)
    return Improvement(
        issue_number=num,
        title=" ".join(str(issue.get("title") or "").split()),
        priority=priority,
        owner=owner,
        state=state,
        state_reason=issue.get("state_reason"),
        votes=votes,
        created_at=created,
        updated_at=updated,
        closed_at=closed if state == "closed" else None,  # a reopened issue is not done
        target_kpis=kpis,
        html_url=issue.get("html_url"),
    ), None


def parse(issues: list[dict], known) -> tuple[int, list[Improvement], list[Reject]]:
    """(issues read, the improvements, the rejects) of a listing; pull requests are
    skipped and an issue listed twice identically (a page shift) is read once."""
    improvements: list[Improvement] = []
    rejects: list[Reject] = []
    seen: dict = {}
    loaded: set[int] = set()
    n = 0
    for issue in issues:
        if not isinstance(issue, dict):
            n += 1
            rejects.append(Reject(SOURCE, "?", f"expected an issue object, got {type(issue).__name__}", issue))
            continue
        if "pull_request" in issue:
            continue
        key = issue.get("number")
        if isinstance(key, int) and seen.get(key) == issue:
            continue
        seen.setdefault(key, issue)
        n += 1
        item, reason = check(issue, known)
        if item is None:
            rejects.append(Reject(SOURCE, str(key), reason, issue))
        elif item.issue_number in loaded:
            rejects.append(Reject(SOURCE, str(key), f"duplicate issue number {key} (the first was loaded)", issue))
        else:
            loaded.add(item.issue_number)
            improvements.append(item)
    return n, improvements, rejects


def focus(items: list[Improvement], n: int = 3) -> list[Improvement]:
    """Next month's focus: the ``n`` open improvements with the most 👍. Ties: the
    higher priority label first (high, medium, low, none), then the older issue (the
    lower number)."""
    open_items = [i for i in items if i.state == "open"]
    return sorted(open_items, key=rank_key)[:n]


def rank_key(i: Improvement) -> tuple:
    return -i.votes, PRIORITY_RANK[i.priority], i.issue_number
