"""GitHub issues for the post-mortem process, in the REST ``issue`` schema, written to
``github/issues.json`` (the list ``GET /repos/{owner}/{repo}/issues?state=all`` returns,
newest first, pull requests included as the endpoint lists them):

* a **post-mortem** issue (label ``postmortem``) for most resolved P0/P1 incidents,
  published 3–40 h after resolution; exactly one is late (50–90 h), and one incident
  resolved near the end has none yet;
* 2–4 **action items** (label ``postmortem-action`` + ``P0``..``P3``) per resolved
  P0/P1 incident and 1–2 per deployment-caused P2 incident, created with the
  post-mortem; ~94 % of the items due before the coverage end were closed by their SLA
  due date (P0 7 d, P1 30 d, P2 90 d), the rest late or still open (overdue);
* one pull request labelled ``postmortem-action`` (the source must skip it).

Everything happens before the coverage end (the files are the state at that time).
Random draws come from their own stream (child ``len(STREAMS)`` of the seed), so the
other demo files are byte-identical to a generator without this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kaizen.demo import github as gh
from kaizen.demo.scenario import DAY, IST_OFFSET, STREAMS, Period, dump_json, iso_z

HOUR = 3600
SLA_DAYS = {"P0": 7, "P1": 30, "P2": 90, "P3": None}
ON_TIME = 0.94
ACTIONS = [  # (title, usual priority)
    ("Fix root cause: {cause}", "P0"),
    ("Add monitoring and alerting for {service} probe failures", "P1"),
    ("Update the {service} incident runbook", "P1"),
    ("Implement a circuit breaker between order-router and {service}", "P2"),
    ("Add a pre-deploy health gate for {service}", "P1"),
    ("Load-test {service} at 3x opening-auction traffic", "P2"),
    ("Document the failover procedure for {service}", "P3"),
]
CAUSES = {
    "trading-api": "connection pool exhaustion in trading-api",
    "order-router": "order-router gateway retry storm",
    "market-data": "stale websocket session in market-data",
    "risk-engine": "risk-engine queue backlog",
}
LABELS = {  # name -> (id, colour, description)
    "postmortem": (6120001, "5319e7", "Published post-mortem of a P0/P1 incident"),
    "postmortem-action": (6120002, "d93f0b", "Action item from a post-mortem"),
    "P0": (6120010, "b60205", "Complete within 1 week"),
    "P1": (6120011, "d93f0b", "Complete within 1 month"),
    "P2": (6120012, "fbca04", "Complete within 1 quarter"),
    "P3": (6120013, "c5def5", "Best effort"),
}


def stream(seed: int) -> np.random.Generator:
    """The issues' own random stream: a child spawned after the generator's others."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(len(STREAMS) + 1)[-1])


def label_json(name: str) -> dict:
    lid, colour, desc = LABELS[name]
    return {
        "id": lid,
        "node_id": f"LA_kwDOKz{lid}",
        "url": f"{gh.API}/repos/{gh.REPO}/labels/{name}",
        "name": name,
        "color": colour,
        "default": False,
        "description": desc,
    }


def _ist_date(ts: int) -> str:
    return iso_z(ts + IST_OFFSET)[:10]


class _Issue:
    def __init__(self, number, title, body, labels, user, assignee, created, closed=None, pr=False):
        self.number, self.title, self.body, self.labels = number, title, body, labels
        self.user, self.assignee, self.created, self.closed, self.pr = user, assignee, created, closed, pr

    def json(self) -> dict:
        n = self.number
        base = f"{gh.API}/repos/{gh.REPO}/issues/{n}"
        updated = self.closed if self.closed is not None else self.created
        assignees = [gh.simple_user(self.assignee[0], self.assignee[1])] if self.assignee else []
        out = {
            "url": base,
            "repository_url": f"{gh.API}/repos/{gh.REPO}",
            "labels_url": f"{base}/labels{{/name}}",
            "comments_url": f"{base}/comments",
            "events_url": f"{base}/events",
            "html_url": f"{gh.WEB}/{gh.REPO}/{'pull' if self.pr else 'issues'}/{n}",
            "id": 2_400_000_000 + n * 7919,
            "node_id": f"I_kwDOKz{n:08d}",
            "number": n,
            "title": self.title,
            "user": gh.simple_user(self.user[0], self.user[1]),
            "labels": [label_json(lab) for lab in self.labels],
            "state": "closed" if self.closed is not None else "open",
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": 0,
            "created_at": iso_z(self.created),
            "updated_at": iso_z(updated),
            "closed_at": iso_z(self.closed) if self.closed is not None else None,
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": self.body,
            "closed_by": None,
            "reactions": {
                "url": f"{base}/reactions",
                "total_count": 0,
                "+1": 0,
                "-1": 0,
                "laugh": 0,
                "hooray": 0,
                "confused": 0,
                "heart": 0,
                "rocket": 0,
                "eyes": 0,
            },
            "timeline_url": f"{base}/timeline",
            "performed_via_github_app": None,
            "state_reason": "completed" if self.closed is not None else None,
        }
        if self.pr:
            out["pull_request"] = {
                "url": f"{gh.API}/repos/{gh.REPO}/pulls/{n}",
                "html_url": f"{gh.WEB}/{gh.REPO}/pull/{n}",
                "diff_url": f"{gh.WEB}/{gh.REPO}/pull/{n}.diff",
                "patch_url": f"{gh.WEB}/{gh.REPO}/pull/{n}.patch",
                "merged_at": iso_z(self.closed) if self.closed is not None else None,
            }
        return out


def plan(period: Period, incidents: list, seed: int) -> list[_Issue]:
    rng = stream(seed)
    end = period.cov_end
    dev = lambda: gh.DEVELOPERS[int(rng.integers(0, len(gh.DEVELOPERS)))]  # noqa: E731
    major = [i for i in incidents if i.priority in ("P0", "P1") and i.resolved is not None]
    minor = [
        i for i in incidents if i.priority == "P2" and i.resolved is not None and i.caused_by is not None
    ]
    major_ids = {i.id for i in major}
    late_pm = major[int(rng.integers(0, len(major)))].id if len(major) > 1 else None
    issues: list[_Issue] = []
    items: list[tuple[_Issue, int | None]] = []  # (item, due) for the overdue guarantee
    for inc in sorted(major + minor, key=lambda i: (i.created, i.id)):
        ref = f"[#{inc.number}] {inc.title}"
        if inc.id in major_ids:
            delay = rng.integers(50, 90) * HOUR if inc.id == late_pm else rng.integers(3, 40) * HOUR
            published = inc.resolved + int(delay) + int(rng.integers(0, 3600))
            if published >= end:
                continue  # not published yet at the coverage end
            author = dev()
            body = (
                f"Post-mortem of PagerDuty incident {ref}.\n\nIncident: {inc.id}\nSeverity: {inc.priority}\n"
            )
            closed = published + int(rng.integers(1, 4)) * DAY
            issues.append(
                _Issue(
                    0,
                    f"Post-mortem: {inc.title} (#{inc.number})",
                    body,
                    ["postmortem"],
                    author,
                    author,
                    published,
                    closed if closed < end else None,
                )
            )
            created0 = published
            n_items = 2 + int(rng.integers(0, 3))
        else:
            created0 = inc.resolved + int(rng.integers(2, 30)) * HOUR
            if created0 >= end:
                continue
            n_items = 1 + int(rng.integers(0, 2))
        picks = rng.permutation(len(ACTIONS))[:n_items]
        for j, k in enumerate(sorted(int(p) for p in picks)):
            title_t, prio = ACTIONS[k]
            if inc.id not in major_ids and prio in ("P0", "P1"):
                prio = "P2"
            created = created0 + 300 * (j + 1) + int(rng.integers(0, 240))
            if created >= end:
                continue
            owner = dev()
            sla = SLA_DAYS[prio]
            due = created + sla * DAY if sla else None
            if due is None:  # best effort: often done within two months
                closed = created + int(rng.integers(2, 60)) * DAY if rng.random() < 0.6 else None
            elif rng.random() < ON_TIME:
                closed = created + int(rng.uniform(0.1, 0.97) * sla * DAY)
            else:
                closed = due + int(rng.integers(1, 15)) * DAY  # late
            if closed is not None and closed >= end:
                closed = None
            title = title_t.format(service=inc.service, cause=CAUSES.get(inc.service, inc.service))
            body = (
                f"**Action Item:** {title}\n**From:** Post-mortem of PagerDuty incident {ref}\n"
                f"Incident: {inc.id}\n**Owner:** @{owner[0]}\n"
                f"**Due Date:** {_ist_date(due) if due else 'best effort'}\n**Priority:** {prio}\n"
            )
            it = _Issue(0, title, body, ["postmortem-action", prio], dev(), owner, created, closed)
            issues.append(it)
            items.append((it, due))
    # at least one open item past its due date (the weekly review lists overdue items first)
    overdue_open = [it for it, due in items if due is not None and due < end and it.closed is None]
    past_due = [(it, due) for it, due in items if due is not None and due < end]
    if not overdue_open and past_due:
        it, _due = past_due[int(rng.integers(0, len(past_due)))]
        it.closed = None
    # a pull request labelled postmortem-action: the issues endpoint lists PRs too
    it0 = items[0][0] if items else None
    if it0 is not None:
        pr_at = it0.created + 2 * HOUR
        if pr_at < end:
            issues.append(
                _Issue(
                    0,
                    f"Fix: {it0.title}",
                    "",
                    ["postmortem-action"],
                    it0.assignee,
                    None,
                    pr_at,
                    pr_at + 6 * HOUR if pr_at + 6 * HOUR < end else None,
                    pr=True,
                )
            )
    # numbers in creation order; PRs and unrelated issues take the numbers in between
    number = 2000 + int(rng.integers(0, 200))
    for it in sorted(issues, key=lambda i: (i.created, i.title)):
        number += 1 + int(rng.integers(0, 6))
        it.number = number
    for it in issues:
        if it.pr and it0 is not None:
            it.body = f"Closes #{it0.number}\n"
    return issues


def write(period: Period, incidents: list, seed: int, out: Path) -> dict:
    issues = plan(period, incidents, seed)
    issues.sort(key=lambda i: (i.created, i.number), reverse=True)  # the endpoint's default: newest first
    dump_json(out / "github" / "issues.json", [i.json() for i in issues])
    return {
        "action_items": sum(
            1 for i in issues if "P0" in i.labels or "P1" in i.labels or "P2" in i.labels or "P3" in i.labels
        ),
        "postmortems": sum(1 for i in issues if "postmortem" in i.labels),
        "pull_requests": sum(1 for i in issues if i.pr),
    }
