"""GitHub REST wire records: production deployments, their statuses, and the
compare responses between consecutive deployments' shas.

Shapes follow the REST schemas (``deployment``, ``deployment-status``,
``commit-comparison`` with ``commit`` items and ``simple-user`` people).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path

import numpy as np

from kaizen.demo.scenario import DAY, Period, dump_json, iso_z, ist_epoch, rand_hex, rand_id

REPO = "kaizen-desk/nifty-trader"
API = "https://api.github.com"
WEB = "https://github.com"
FINAL_STATES = ("success", "failure", "error")

DEVELOPERS = [  # (login, id, name, email)
    ("arjun-mehta", 4812207, "Arjun Mehta", "arjun.mehta@kaizen-desk.in"),
    ("priya-iyer", 5930114, "Priya Iyer", "priya.iyer@kaizen-desk.in"),
    ("rohan-kulkarni", 7104552, "Rohan Kulkarni", "rohan.kulkarni@kaizen-desk.in"),
    ("sneha-reddy", 8822391, "Sneha Reddy", "sneha.reddy@kaizen-desk.in"),
    ("vikram-nair", 10293847, "Vikram Nair", "vikram.nair@kaizen-desk.in"),
    ("kavya-sharma", 12458730, "Kavya Sharma", "kavya.sharma@kaizen-desk.in"),
]
BOT = ("github-actions[bot]", 41898282)
PR_TOPICS = [
    ("feature", "Tighten stop-loss band for momentum_breakout"),
    ("fix", "Handle partial fills in order-router retry"),
    ("feature", "Add VWAP slippage guard"),
    ("fix", "Reconnect market-data websocket on heartbeat miss"),
    ("chore", "Bump pandas and numpy pins"),
    ("feature", "Per-symbol position limits from risk config"),
    ("fix", "Round exit price to NSE tick size"),
    ("perf", "Cache instrument master between sessions"),
    ("feature", "A/B arm tagging for mean_reversion"),
    ("fix", "Debounce duplicate cancel requests"),
    ("refactor", "Split order-router gateway client"),
    ("fix", "Correct IST session boundary at 15:30"),
]
SOURCE_FILES = ["trader/strategies/momentum.py", "trader/strategies/mean_reversion.py",
                "trader/router/gateway.py", "trader/risk/limits.py", "trader/marketdata/feed.py",
                "trader/api/app.py", "deploy/values-production.yaml", "requirements.txt"]


def simple_user(login: str, uid: int, kind: str = "User") -> dict:
    base = f"{API}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
        "url": base, "html_url": f"{WEB}/{login}" if kind == "User" else f"{WEB}/apps/github-actions",
        "followers_url": f"{base}/followers", "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}", "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions", "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos", "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events", "type": kind, "user_view_type": "public",
        "site_admin": False,
    }


@dataclass
class Commit:
    sha: str
    author: tuple  # DEVELOPERS row or None for web-flow merges
    authored: int
    committed: int
    message: str
    parents: list[str]
    merge_committer: bool = False


@dataclass
class Deployment:
    id: int
    node_id: str
    sha: str
    ref: str
    task: str
    payload: dict
    description: str
    created: int
    head_idx: int  # index into the main history of the deployed commit
    statuses: list = field(default_factory=list)  # [(id, node_id, state, ts, description)]
    is_rollback: bool = False
    rolled_back: bool = False

    @property
    def final(self) -> tuple[str, int] | None:
        done = [(s[3], s[2]) for s in self.statuses if s[2] in FINAL_STATES]
        if not done:
            return None
        ts, state = max(done)
        return state, ts

    @property
    def finished(self) -> int:
        return self.final[1]

    def caused_ok(self, period: Period) -> bool:
        """May this deployment be named as the cause of an incident?"""
        f = self.final
        return (f is not None and f[0] == "success" and not self.is_rollback and not self.rolled_back
                and period.cov_start + 3600 < f[1] < period.last_window.start - 8 * 3600)


class History:
    """The main branch: a linear list of commits (PR commits and their merges)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.commits: list[Commit] = []
        self.pr_number = 1180 + int(rng.integers(0, 60))
        root = Commit(rand_hex(rng, 20), DEVELOPERS[0], 0, 0, "Initial import of nifty-trader", [])
        self.commits.append(root)

    def add_change(self, first_at: int, merge_until: int) -> int:
        """Append 1–3 merged PRs whose first commit is at ``first_at`` and whose last
        merge is before ``merge_until``; returns the new head index."""
        rng = self.rng
        n_pr = 1 + int(rng.poisson(0.7))
        n_pr = min(n_pr, 3)
        span = max(600, merge_until - first_at)
        # commit times: first commit exactly at first_at, the rest spread, merges last
        sizes = [1 + int(rng.integers(0, 3)) for _ in range(n_pr)]
        total = sum(sizes) + n_pr
        offsets = np.sort(rng.integers(1, max(2, int(span * 0.9)), total - 1))
        times = [first_at] + [first_at + int(o) for o in offsets]
        k = 0
        for p in range(n_pr):
            kind, title = PR_TOPICS[int(rng.integers(0, len(PR_TOPICS)))]
            dev = DEVELOPERS[int(rng.integers(0, len(DEVELOPERS)))]
            self.pr_number += 1 + int(rng.integers(0, 4))
            branch = f"{dev[0].split('-')[0]}/{kind}-{self.pr_number}"
            base_sha = self.commits[-1].sha
            prev = base_sha
            for _ in range(sizes[p]):
                t = times[k]
                k += 1
                c = Commit(rand_hex(rng, 20), dev, t - int(rng.integers(0, 900)), t,
                           f"{kind}: {title.lower()}" if rng.random() < 0.5 else title, [prev])
                self.commits.append(c)
                prev = c.sha
            t = times[k]
            k += 1
            merge = Commit(rand_hex(rng, 20), dev, t, t,
                           f"Merge pull request #{self.pr_number} from {REPO.split('/')[0]}/{branch}\n\n{title}",
                           [base_sha, prev], merge_committer=True)
            self.commits.append(merge)
        return len(self.commits) - 1

    def commit_json(self, c: Commit) -> dict:
        dev = c.author
        author = {"name": dev[2], "email": dev[3], "date": iso_z(c.authored)}
        if c.merge_committer:
            committer = {"name": "GitHub", "email": "noreply@github.com", "date": iso_z(c.committed)}
            committer_user = simple_user("web-flow", 19864447)
            verification = {"verified": True, "reason": "valid", "signature": None, "payload": None,
                            "verified_at": iso_z(c.committed)}
        else:
            committer = {"name": dev[2], "email": dev[3], "date": iso_z(c.committed)}
            committer_user = simple_user(dev[0], dev[1])
            verification = {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                            "verified_at": None}
        tree = self.rng_tree(c.sha)
        return {
            "sha": c.sha,
            "node_id": f"C_kwDOKz{c.sha[:20]}",
            "commit": {
                "author": author, "committer": committer, "message": c.message,
                "tree": {"sha": tree, "url": f"{API}/repos/{REPO}/git/trees/{tree}"},
                "url": f"{API}/repos/{REPO}/git/commits/{c.sha}", "comment_count": 0,
                "verification": verification,
            },
            "url": f"{API}/repos/{REPO}/commits/{c.sha}",
            "html_url": f"{WEB}/{REPO}/commit/{c.sha}",
            "comments_url": f"{API}/repos/{REPO}/commits/{c.sha}/comments",
            "author": simple_user(dev[0], dev[1]),
            "committer": committer_user,
            "parents": [{"sha": p, "url": f"{API}/repos/{REPO}/commits/{p}", "html_url": f"{WEB}/{REPO}/commit/{p}"}
                        for p in c.parents],
        }

    @staticmethod
    def rng_tree(sha: str) -> str:
        # a stable, distinct tree id derived from the commit sha (no extra random draws)
        return sha[20:] + sha[:20]

    def compare_json(self, base_idx: int, head_idx: int, rng: np.random.Generator) -> dict:
        base, head = self.commits[base_idx], self.commits[head_idx]
        if head_idx > base_idx:
            status, ahead, behind, merge_base = "ahead", head_idx - base_idx, 0, base
            commits = self.commits[base_idx + 1: head_idx + 1]
        elif head_idx < base_idx:
            status, ahead, behind, merge_base = "behind", 0, base_idx - head_idx, head
            commits = []
        else:
            status, ahead, behind, merge_base, commits = "identical", 0, 0, base, []
        files = []
        if commits:
            for j in rng.permutation(len(SOURCE_FILES))[: 1 + int(rng.integers(0, 3))]:
                name = SOURCE_FILES[int(j)]
                add, dele = int(rng.integers(1, 120)), int(rng.integers(0, 60))
                blob = rand_hex(rng, 20)
                files.append({
                    "sha": blob, "filename": name, "status": "modified", "additions": add,
                    "deletions": dele, "changes": add + dele,
                    "blob_url": f"{WEB}/{REPO}/blob/{head.sha}/{name}",
                    "raw_url": f"{WEB}/{REPO}/raw/{head.sha}/{name}",
                    "contents_url": f"{API}/repos/{REPO}/contents/{name}?ref={head.sha}",
                })
        spec = f"{base.sha}...{head.sha}"
        return {
            "url": f"{API}/repos/{REPO}/compare/{spec}",
            "html_url": f"{WEB}/{REPO}/compare/{spec}",
            "permalink_url": f"{WEB}/{REPO}/compare/kaizen-desk:{base.sha[:7]}...kaizen-desk:{head.sha[:7]}",
            "diff_url": f"{WEB}/{REPO}/compare/{spec}.diff",
            "patch_url": f"{WEB}/{REPO}/compare/{spec}.patch",
            "base_commit": self.commit_json(base),
            "merge_base_commit": self.commit_json(merge_base),
            "status": status, "ahead_by": ahead, "behind_by": behind,
            "total_commits": len(commits),
            "commits": [self.commit_json(c) for c in commits],
            "files": files,
        }


class DeploymentPlan:
    def __init__(self, deployments: list[Deployment], history: History):
        self.deployments = deployments  # chronological
        self.history = history
        self.bad_status: dict | None = None

    def created_times(self) -> list[int]:
        return [d.created for d in self.deployments]


def _status(rng, ids, state: str, ts: int, description: str) -> tuple:
    ids[0] += 1 + int(rng.integers(0, 5000))
    return (ids[0], rand_id(rng, "DES_kwDOKz", 12), state, ts, description)


def plan(period: Period, rng: np.random.Generator) -> DeploymentPlan:
    history = History(rng)
    dep_id = [int(rng.integers(1_400_000_000, 1_600_000_000))]
    status_id = [int(rng.integers(3_000_000_000, 3_200_000_000))]
    # deployments from three days before the coverage so the first one in it has a base
    first_day = date(1970, 1, 1) + timedelta(days=(period.cov_start + 19800) // DAY - 3)
    last_day = period.last_day
    times: list[int] = []
    d = first_day
    while d <= last_day:
        weekday = d.weekday() < 5
        n = int(rng.poisson(2.35 if weekday else 0.15))
        for _ in range(n):
            if weekday and rng.random() < 0.4:  # during the session (riskier), 09:30–15:00
                minute = 9 * 60 + 30 + int(rng.integers(0, 330))
            else:  # after the close or early evening, 16:05–21:30
                minute = 16 * 60 + 5 + int(rng.integers(0, 325))
            t = ist_epoch(d, time(minute // 60, minute % 60)) + int(rng.integers(0, 60))
            if t < period.cov_end - 1800:
                times.append(t)
        d += timedelta(days=1)
    # at least two deployments in the last review window (one carries a bad status)
    lw = period.last_window
    in_last = [t for t in times if lw.start <= t < lw.end]
    while len(in_last) < 2:
        t = lw.start + 7200 + len(in_last) * 5400 + int(rng.integers(0, 600))
        times.append(t)
        in_last.append(t)
    times.sort()

    deployments: list[Deployment] = []
    last_success: Deployment | None = None
    for t in times:
        lead = float(np.clip(rng.lognormal(np.log(3.6 * 3600), 0.7), 3600, 72 * 3600))
        duration = int(rng.integers(240, 900))
        finish = t + duration
        head = history.add_change(int(finish - lead), t - int(rng.integers(300, 2400)))
        dep_id[0] += 1 + int(rng.integers(0, 400_000))
        sha = history.commits[head].sha
        dep = Deployment(dep_id[0], rand_id(rng, "DE_kwDOKz", 14), sha, "main", "deploy", {},
                         f"Deploy {sha[:7]} to production", t, head)
        u = rng.random()
        final = "success" if u < 0.95 else ("failure" if u < 0.98 else "error")
        q = t + int(rng.integers(1, 8))
        ip = q + int(rng.integers(15, 90))
        dep.statuses.append(_status(rng, status_id, "queued", q, "Deployment queued"))
        dep.statuses.append(_status(rng, status_id, "in_progress", ip, "Rolling out to production"))
        desc = {"success": "Deployment finished successfully.", "failure": "Health checks failed; rollout halted.",
                "error": "Deployment job errored."}[final]
        dep.statuses.append(_status(rng, status_id, final, finish, desc))
        if final == "success":
            if last_success is not None:  # GitHub marks the previous one inactive
                last_success.statuses.append(_status(rng, status_id, "inactive", finish,
                                                     "Superseded by a newer deployment"))
            last_success = dep
        deployments.append(dep)
        # ~2.5 % of successful deployments are rolled back 10–45 minutes later
        if (final == "success" and len(deployments) > 1 and rng.random() < 0.025
                and finish + 3600 < lw.start):
            prev = deployments[-2]
            rt = finish + int(rng.integers(600, 2700))
            dep_id[0] += 1 + int(rng.integers(0, 400_000))
            rb = Deployment(dep_id[0], rand_id(rng, "DE_kwDOKz", 14), prev.sha, prev.sha, "deploy:rollback",
                            {"rollback_of": dep.id}, f"Rollback of deployment {dep.id}", rt, prev.head_idx,
                            is_rollback=True)
            dep.rolled_back = True
            rq = rt + int(rng.integers(1, 8))
            rb.statuses.append(_status(rng, status_id, "queued", rq, "Deployment queued"))
            rb.statuses.append(_status(rng, status_id, "in_progress", rq + 20, "Rolling back"))
            rfin = rq + int(rng.integers(120, 400))
            rb.statuses.append(_status(rng, status_id, "success", rfin, "Rollback finished successfully."))
            dep.statuses.append(_status(rng, status_id, "inactive", rfin, "Superseded by a newer deployment"))
            last_success = rb
            deployments.append(rb)
    deployments.sort(key=lambda x: (x.created, x.id))
    return DeploymentPlan(deployments, history)


def make_bad_status(plan_: DeploymentPlan, period: Period) -> dict:
    """One deployment in the last window gets a status dated before the deployment."""
    lw = period.last_window
    dep = [d for d in plan_.deployments if lw.start <= d.created < lw.end][0]
    sid, node, _state, ts, desc = dep.statuses[0]
    dep.statuses[0] = (sid, node, "queued", dep.created - 240, desc)
    plan_.bad_status = {"source": "deployments", "key": str(dep.id),
                        "reason": "deployment status created before the deployment",
                        "day": lw.day.isoformat(), "status_id": sid}
    return plan_.bad_status


def deployment_json(d: Deployment) -> dict:
    latest = max(s[3] for s in d.statuses) if d.statuses else d.created
    return {
        "url": f"{API}/repos/{REPO}/deployments/{d.id}",
        "id": d.id,
        "node_id": d.node_id,
        "task": d.task,
        "original_environment": "production",
        "environment": "production",
        "description": d.description,
        "created_at": iso_z(d.created),
        "updated_at": iso_z(max(latest, d.created)),
        "statuses_url": f"{API}/repos/{REPO}/deployments/{d.id}/statuses",
        "repository_url": f"{API}/repos/{REPO}",
        "creator": simple_user(BOT[0], BOT[1], "Bot"),
        "sha": d.sha,
        "ref": d.ref,
        "payload": d.payload,
        "transient_environment": False,
        "production_environment": True,
        "performed_via_github_app": None,
    }


def status_json(d: Deployment, s: tuple) -> dict:
    sid, node, state, ts, desc = s
    return {
        "url": f"{API}/repos/{REPO}/deployments/{d.id}/statuses/{sid}",
        "id": sid,
        "node_id": node,
        "state": state,
        "creator": simple_user(BOT[0], BOT[1], "Bot"),
        "description": desc,
        "environment": "production",
        "target_url": f"{WEB}/{REPO}/actions/runs/{d.id // 7}",
        "created_at": iso_z(ts),
        "updated_at": iso_z(ts),
        "deployment_url": f"{API}/repos/{REPO}/deployments/{d.id}",
        "repository_url": f"{API}/repos/{REPO}",
        "environment_url": "https://trader.kaizen-desk.in",
        "log_url": f"{WEB}/{REPO}/actions/runs/{d.id // 7}",
        "performed_via_github_app": None,
    }


def write(plan_: DeploymentPlan, out: Path, rng: np.random.Generator) -> dict:
    gh = out / "github"
    deps = plan_.deployments
    dump_json(gh / "deployments.json", [deployment_json(d) for d in reversed(deps)])
    for d in deps:
        statuses = sorted(d.statuses, key=lambda s: (s[3], s[0]), reverse=True)
        dump_json(gh / "statuses" / f"{d.id}.json", [status_json(d, s) for s in statuses])
    n_compare = 0
    for prev, cur in zip(deps, deps[1:], strict=False):
        body = plan_.history.compare_json(prev.head_idx, cur.head_idx, rng)
        dump_json(gh / "compare" / f"{prev.sha}...{cur.sha}.json", body)
        n_compare += 1
    return {"deployments": len(deps), "compare_files": n_compare}
