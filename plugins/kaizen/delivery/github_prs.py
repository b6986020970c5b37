"""Post-mortem drafts as GitHub pull requests: one per incident, idempotent, never
overwriting a person's edits.

With ``KAIZEN_POSTMORTEM_REPO`` (``owner/name``) set, each draft of
:func:`kaizen.reports.postmortem.drafts` goes to that repository through the
``kaizen_github`` connection (its host is the API base URL, its password the token):
branch ``kaizen/postmortem-<incident id>`` off ``KAIZEN_POSTMORTEM_BASE_BRANCH`` (else
the repository's default branch), file ``post-mortems/YYYYMMDD_incident_name.md``,
title ``Post-mortem: <incident title> (INC-YYYY-###)``, a body with the 48 h due time
and the incident's PagerDuty link. Endpoints used: ``GET /repos/{o}/{r}``, git refs
(``GET git/ref/heads/…``, ``POST git/refs``), contents (``GET``/``PUT contents/{path}``)
and pulls (``GET pulls?head=owner:branch&state=all``, ``GET pulls/{n}``, ``POST pulls``).

The rules, per incident:

- **One pull request.** The PR is recorded in ``postmortem_prs`` (number, URL, branch,
  path, the blob sha of the file Kaizen wrote). A re-run finds it there, or — when the
  table lost it — by ``GET pulls?head=owner:branch&state=all``; a concurrent run that
  opened it first is found through GitHub's 422 "A pull request already exists". A
  second PR is never opened.
- **A person's edit wins.** The file on the branch is rewritten only when it is still
  what Kaizen wrote — its blob sha is the one recorded, or its marker line
  (``<!-- kaizen:draft incident=… sha256=… -->``) still matches its body — and the new
  bytes differ. Anything else (edited, marker removed, file deleted from an open PR's
  branch) is left byte-identical and reported ``skipped`` with reason "edited by a
  person".
- **Closed or merged is final.** A closed or merged PR is never reopened, and nothing is
  written to its branch (status ``closed`` / ``merged``).

Errors are :class:`GitHubPRError` (a :class:`~kaizen.errors.KaizenError`) naming the
request, GitHub's message and what to do: a bad token (401) → the ``kaizen_github``
connection's password; an unknown repository (404) → ``KAIZEN_POSTMORTEM_REPO``; a
token without write access (403) → its permissions — all permanent. A spent rate limit
(403/429 with ``x-ratelimit-remaining: 0``) is waited out up to :data:`MAX_WAIT_S` and
otherwise transient, naming the reset time; 5xx and connection errors are retried with
backoff, then transient. A retry after an answer that was lost is safe: an existing
branch, an identical file or an existing PR is recognised, not duplicated.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import requests
import sqlalchemy as sa

from kaizen import config, warehouse
from kaizen.calendar import IST
from kaizen.errors import KaizenError
from kaizen.reports.postmortem import Draft, is_untouched_draft
from kaizen.reports.render import clip, md_escape

log = logging.getLogger(__name__)

TABLE = "postmortem_prs"
KEY = ("repo", "incident_id")
API_VERSION = "2022-11-28"
DEFAULT_API = "https://api.github.com"
BRANCH_PREFIX = "kaizen/postmortem-"
TITLE_MAX = 200  # of the incident title inside the PR title (GitHub allows 256 in all)
EDITED = "edited by a person"
REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
MAX_ATTEMPTS = 4
BACKOFF_S = 1.0  # first retry wait; doubles each attempt
MAX_WAIT_S = 60.0  # a rate limit that resets later than this is reported, not slept through

_sleep = time.sleep  # tests replace this to record waits instead of sleeping


class GitHubPRError(KaizenError, RuntimeError):
    """A pull-request step failed; ``status`` is GitHub's HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None, *, transient: bool = False):
        super().__init__(message, transient=transient)
        self.status = status


# ---------------------------------------------------------------- settings
@dataclass(frozen=True)
class Target:
    """Where the pull requests go: ``repo`` (owner/name), the base branch (None: the
    repository's default), the API base URL and token of ``kaizen_github``."""

    repo: str
    base_branch: str | None
    api_url: str
    token: str = ""

    def __repr__(self) -> str:  # never the token
        return f"Target(repo={self.repo!r}, base_branch={self.base_branch!r}, api_url={self.api_url!r})"


def target_from_settings() -> Target | None:
    """The target from ``KAIZEN_POSTMORTEM_REPO`` / ``KAIZEN_POSTMORTEM_BASE_BRANCH`` and
    the ``kaizen_github`` connection; None when the repository is not set (drafts stay
    local). A malformed setting or a missing connection or token is a permanent error."""
    repo_var, base_var = config.ENV_POSTMORTEM_REPO, config.ENV_POSTMORTEM_BASE_BRANCH
    repo = os.environ.get(repo_var, "").strip()
    if not repo:
        return None
    if not REPO_RE.match(repo):
        raise GitHubPRError(
            f"{repo_var}={repo!r} is not a repository as owner/name (e.g. desk/post-mortems): set it to the "
            "repository the post-mortem pull requests go to, or unset it to keep the drafts local only."
        )
    base = os.environ.get(base_var, "").strip() or None
    conn = config.get_connection(config.GITHUB_CONN_ID)
    if conn is None:
        raise GitHubPRError(
            f"{repo_var} is set ({repo}) but the Airflow connection {config.GITHUB_CONN_ID!r} is not configured: "
            f"define it (host = the GitHub API base URL, password = a token with Contents and Pull requests "
            f"write access to {repo}; see README, 'Post-mortem pull requests'), or unset {repo_var}."
        )
    if not conn.password:
        raise GitHubPRError(
            f"connection {config.GITHUB_CONN_ID!r} has no token: put a GitHub token with Contents and Pull "
            f"requests write access to {repo} in its password (needed because {repo_var} is set)."
        )
    host = conn.host or DEFAULT_API
    if not host.startswith(("http://", "https://")):
        host = f"https://{host}"
    return Target(repo, base, host, conn.password)


def branch_name(incident_id: str) -> str:
    return BRANCH_PREFIX + re.sub(r"[^A-Za-z0-9._-]+", "-", incident_id).strip("-.")


def blob_sha(data: bytes) -> str:
    """Git's blob id of ``data``: what the contents API calls the file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# ---------------------------------------------------------------- the HTTP client
def _reset_text(at: datetime) -> str:
    return f"{at:%H:%M:%S} UTC ({at.astimezone(IST):%H:%M} IST)"


def _rate_limit(resp: requests.Response) -> tuple[float, datetime] | None:
    """(seconds to wait, when the limit resets) for GitHub's rate-limit answers: 429, or
    403 with ``retry-after`` (secondary limit) or ``x-ratelimit-remaining: 0`` (primary
    limit, reset at the Unix time ``x-ratelimit-reset``); None for any other answer."""
    if resp.status_code not in (403, 429):
        return None
    now = time.time()
    retry_after = resp.headers.get("retry-after")
    if retry_after is not None:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
        if wait is not None:
            return wait, datetime.fromtimestamp(now + wait, UTC)
    if resp.headers.get("x-ratelimit-remaining") == "0" and resp.headers.get("x-ratelimit-reset"):
        try:
            reset = float(resp.headers["x-ratelimit-reset"])
        except ValueError:
            reset = None
        if reset is not None:
            return max(0.0, reset - now) + 1, datetime.fromtimestamp(reset, UTC)
    if resp.status_code == 429:
        return BACKOFF_S, datetime.fromtimestamp(now + BACKOFF_S, UTC)
    return None


def _github_message(data) -> str:
    """GitHub's error text: ``message`` plus the ``errors`` details of a 422."""
    if not isinstance(data, dict):
        return str(data)[:200]
    msg = " ".join(str(data.get("message", "")).split())
    details = []
    for e in data.get("errors") or []:
        if isinstance(e, dict):
            details.append(e.get("message") or " ".join(str(e.get(k)) for k in ("resource", "field", "code") if e.get(k)))
        else:
            details.append(str(e))
    return msg + (f" ({'; '.join(details)})" if details else "")


class GitHub:
    """The few GitHub REST calls the flow makes, for one repository. ``conn_id`` is
    named in every error; the token never is."""

    def __init__(self, api_url: str, token: str, repo: str, *, max_attempts: int = MAX_ATTEMPTS,
                 max_wait_s: float = MAX_WAIT_S):
        self.base_url = api_url.rstrip("/")
        self.repo = repo
        self.owner = repo.split("/", 1)[0]
        self.conn_id = config.GITHUB_CONN_ID
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.session = requests.Session()
        self.session.headers.update({
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "kaizen-kpi-pipeline",
            "Authorization": f"Bearer {token}",
        })
        self.requests_made = 0

    def call(self, method: str, path: str, *, params=None, body=None, accept: tuple[int, ...] = ()):
        """``(status, parsed JSON)`` of a request whose status is below 400 or in
        ``accept`` (answers the caller decides on, e.g. 404 for "no such branch yet").
        Raises :class:`GitHubPRError` otherwise, after the retries of the module doc."""
        url = self.base_url + path
        what = f"GitHub {method} {urlsplit(url).path}"
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.requests_made += 1
                resp = self.session.request(method, url, params=params, json=body,
                                            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = type(exc).__name__
                wait = self._backoff(attempt)
            else:
                limited = _rate_limit(resp)
                if limited is not None:
                    wait, reset = limited
                    last = f"HTTP {resp.status_code} rate limited until {_reset_text(reset)}"
                    if wait > self.max_wait_s:
                        raise GitHubPRError(
                            f"{what}: GitHub's rate limit for the token of connection {self.conn_id!r} is spent "
                            f"until {_reset_text(reset)} ({_github_message(self._json(resp))}). Transient: the "
                            f"task's retries, or a re-run after {reset:%H:%M} UTC, carry on where this run "
                            "stopped (nothing is opened twice); if it recurs, find what else uses this token.",
                            resp.status_code, transient=True,
                        )
                elif resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}: {_github_message(self._json(resp))}"
                    wait = self._backoff(attempt)
                else:
                    data = self._json(resp) if resp.content else None
                    if resp.status_code < 400 and resp.content and not isinstance(data, dict | list):
                        raise GitHubPRError(
                            f"{what}: HTTP {resp.status_code} answer is not JSON "
                            f"(content-type {resp.headers.get('Content-Type')!r}): check that the host of "
                            f"connection {self.conn_id!r} ({urlsplit(url).netloc}) is the GitHub API itself, "
                            "not a proxy or login page.",
                            resp.status_code, transient=True,
                        )
                    if resp.status_code < 400 or resp.status_code in accept:
                        return resp.status_code, data
                    raise self._refused(what, resp.status_code, data)
            if attempt == self.max_attempts:
                break
            log.warning("%s: %s; retry %d/%d in %.1f s", what, last, attempt, self.max_attempts - 1, wait)
            _sleep(wait)
        raise GitHubPRError(
            f"{what} still failing after {self.max_attempts} attempts (last: {last}); GitHub at "
            f"{urlsplit(url).netloc} may be down or overloaded: retry later, or check the host in connection "
            f"{self.conn_id!r}.",
            transient=True,
        )

    @staticmethod
    def _json(resp: requests.Response):
        try:
            return resp.json()
        except ValueError:
            return (resp.text or "").strip()[:200]

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_S * 2 ** (attempt - 1), self.max_wait_s)

    def _refused(self, what: str, code: int, data) -> GitHubPRError:
        msg = _github_message(data)
        if code == 401:
            hint = (f"the token in the password of connection {self.conn_id!r} is missing, expired or revoked: "
                    f"put a valid token there (it needs Contents and Pull requests write access to {self.repo}).")
        elif code == 403:
            hint = (f"the token of connection {self.conn_id!r} may not do this in {self.repo}: give it Contents "
                    "and Pull requests write access (fine-grained token) or the repo scope (classic token).")
        elif code == 404:
            hint = (f"check {config.ENV_POSTMORTEM_REPO} ({self.repo}) and that the token of connection "
                    f"{self.conn_id!r} can see that repository (GitHub answers 404 for a private repository "
                    "the token may not read).")
        else:
            hint = ("GitHub refused the request; retrying cannot help. Check the repository's branch protection "
                    f"and settings for {self.repo}; otherwise this is a bug in kaizen.delivery.github_prs.")
        return GitHubPRError(f"{what} failed with HTTP {code}: {msg}. {hint}", code)

    # -- the endpoints
    def repository(self) -> dict:
        status, data = self.call("GET", f"/repos/{self.repo}", accept=(404,))
        if status == 404:
            raise GitHubPRError(
                f"GitHub has no repository {self.repo!r} that the token of connection {self.conn_id!r} can see "
                f"(GET /repos/{self.repo}: 404 {_github_message(data)}): check {config.ENV_POSTMORTEM_REPO} "
                "(owner/name) and that the token may read and write that repository.",
                404,
            )
        return data

    def branch_head(self, branch: str) -> str | None:
        status, data = self.call("GET", f"/repos/{self.repo}/git/ref/heads/{quote(branch, safe='/')}", accept=(404,))
        return None if status == 404 else data["object"]["sha"]

    def create_branch(self, branch: str, sha: str) -> bool:
        """True when created; False when it exists already (422 "Reference already exists")."""
        status, data = self.call("POST", f"/repos/{self.repo}/git/refs",
                                 body={"ref": f"refs/heads/{branch}", "sha": sha}, accept=(422,))
        if status == 422:
            if "already exists" in _github_message(data):
                return False
            raise self._refused(f"GitHub POST /repos/{self.repo}/git/refs", status, data)
        return True

    def file(self, branch: str, path: str) -> tuple[bytes, str] | None:
        """(bytes, blob sha) of ``path`` on ``branch``, None when it is not there."""
        status, data = self.call("GET", f"/repos/{self.repo}/contents/{quote(path)}", params={"ref": branch},
                                 accept=(404,))
        if status == 404:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitHubPRError(f"{path} on branch {branch} of {self.repo} is not a file (a person put a "
                                "folder there?): move it away, or close the pull request.", status)
        if data.get("encoding") != "base64":  # a file over 1 MB comes without content: no draft is that big
            return b"", data["sha"]
        return base64.b64decode(data["content"]), data["sha"]

    def put_file(self, branch: str, path: str, data: bytes, message: str, sha: str | None):
        """``(status, answer)``: 200/201 when written, 409/422 when the file changed under us."""
        body = {"message": message, "content": base64.b64encode(data).decode("ascii"), "branch": branch}
        if sha:
            body["sha"] = sha
        return self.call("PUT", f"/repos/{self.repo}/contents/{quote(path)}", body=body, accept=(409, 422))

    def pull(self, number: int) -> dict | None:
        status, data = self.call("GET", f"/repos/{self.repo}/pulls/{number}", accept=(404,))
        return None if status == 404 else data

    def find_pull(self, branch: str) -> dict | None:
        """The PR from ``branch`` (any state): the open one, else the newest."""
        _, data = self.call("GET", f"/repos/{self.repo}/pulls",
                            params={"head": f"{self.owner}:{branch}", "state": "all", "per_page": 100})
        pulls = [p for p in data or [] if p.get("head", {}).get("ref") == branch]
        open_ = [p for p in pulls if p.get("state") == "open"]
        return (open_ or sorted(pulls, key=lambda p: p.get("number", 0), reverse=True) or [None])[0]

    def open_pull(self, branch: str, base: str, title: str, body: str) -> dict:
        status, data = self.call("POST", f"/repos/{self.repo}/pulls",
                                 body={"title": title, "head": branch, "base": base, "body": body}, accept=(422,))
        if status == 422:
            if "already exists" in _github_message(data):  # a concurrent run, or a lost answer retried
                found = self.find_pull(branch)
                if found is not None:
                    return found
            raise self._refused(f"GitHub POST /repos/{self.repo}/pulls", status, data)
        return data


# ---------------------------------------------------------------- the flow
def pr_title(d: Draft) -> str:
    return f"Post-mortem: {clip(d.title, TITLE_MAX)} ({d.incident_ref})"


def incident_url(incident_id: str) -> str | None:
    """The incident's PagerDuty web page, from the ``web_url`` extra of the
    ``kaizen_pagerduty`` connection (e.g. ``https://acme.pagerduty.com``); None without it."""
    conn = config.get_connection(config.PAGERDUTY_CONN_ID)
    web = (conn.extra or {}).get("web_url") if conn is not None else None
    if not isinstance(web, str) or not web.startswith(("http://", "https://")):
        return None
    return f"{web.rstrip('/')}/incidents/{quote(incident_id)}"


def _no_mentions(text: str) -> str:
    """Markdown-escaped untrusted text in which ``@name`` can notify no one."""
    return md_escape(text).replace("@", "@\u200b")


def pr_body(d: Draft, path: str, link: str | None) -> str:
    incident = (f"[PagerDuty {d.incident_id}]({link})" if link
                else f"PagerDuty {_no_mentions(d.incident_id)}")
    return "\n".join([
        f"Kaizen's draft of the blameless post-mortem for **{_no_mentions(d.title)}** "
        f"({d.incident_ref}, {d.priority} on {_no_mentions(d.service)}).",
        "",
        f"- **Incident:** {incident}",
        f"- **Due:** {d.due_text} — within 48 h of resolution "
        f"({d.resolved_at.astimezone(IST):%Y-%m-%d %H:%M} IST)",
        f"- **Draft:** `{path}`",
        "",
        "Fill in the bracketed parts on this branch and merge once the post-mortem meeting has reviewed it. "
        "Kaizen updates the file while it is still exactly what Kaizen wrote (new data, e.g. an action item "
        "closed); once a person edits it, Kaizen leaves it alone. A closed or merged pull request is never "
        "reopened or written to.",
        "",
        f"<!-- kaizen:postmortem-pr incident={d.incident_id} -->",
    ])


def _row(engine: sa.Engine, repo: str, incident_id: str) -> dict | None:
    with engine.connect() as conn:
        cols, rows = warehouse.fetch_table(
            conn, f"select * from {TABLE} where repo = :repo and incident_id = :id", {"repo": repo, "id": incident_id}
        )
    return dict(zip(cols, rows[0], strict=True)) if rows else None


def _record(engine: sa.Engine, row: dict) -> None:
    with warehouse.writing(engine) as conn:
        warehouse.upsert(conn, TABLE, [row], KEY)


def _state(pr: dict) -> str:
    if pr.get("merged_at"):
        return "merged"
    return "closed" if pr.get("state") == "closed" else "open"


def _sync_file(gh: GitHub, d: Draft, branch: str, path: str, known_sha: str | None, pr_open: bool):
    """Bring ``path`` on ``branch`` to the draft's bytes when it is still Kaizen's.
    Returns (status, blob sha of Kaizen's file or None, reason or None)."""
    new = d.text.encode("utf-8")
    found = gh.file(branch, path)
    if found is None and pr_open:
        return "skipped", None, f"{EDITED}: {path} is no longer on branch {branch}; not written back"
    if found is not None:
        data, sha = found
        if data == new:
            return "unchanged", sha, None
        ours = sha == known_sha or is_untouched_draft(data.decode("utf-8", "replace"))
        if not ours:
            return "skipped", None, (f"{EDITED}: {path} on branch {branch} is no longer what Kaizen wrote; "
                                     "not overwritten")
        message = f"Update post-mortem draft for {d.incident_ref} (the warehouse data changed)"
        status_ok = "updated"
    else:
        sha, message, status_ok = None, f"Post-mortem draft for {d.incident_ref}", "written"
    status, answer = gh.put_file(branch, path, new, message, sha)
    if status in (409, 422):  # the file changed since it was read: a person, or this very write retried
        again = gh.file(branch, path)
        if again is not None and again[0] == new:
            return status_ok, again[1], None
        raise GitHubPRError(
            f"{path} on branch {branch} of {gh.repo} changed while Kaizen was writing it (GitHub PUT contents: "
            f"HTTP {status} {_github_message(answer)}). Transient: the next run looks again and leaves a "
            "person's edit alone.",
            status, transient=True,
        )
    return status_ok, answer["content"]["sha"], None


def _publish_one(engine: sa.Engine, gh: GitHub, base: str, base_sha, d: Draft, run_id: str | None) -> dict:
    branch = branch_name(d.incident_id)
    row = _row(engine, gh.repo, d.incident_id)
    pr = gh.pull(int(row["pr_number"])) if row else None
    if pr is None:  # never opened, or the table lost it: GitHub knows
        pr = gh.find_pull(branch)
    same_pr = row is not None and pr is not None and int(row["pr_number"]) == pr["number"]
    path = row["path"] if same_pr else d.file
    known_sha = row["file_sha"] if same_pr else None
    now = datetime.now(UTC)
    status, reason, file_sha = None, None, known_sha
    content_sha = row["content_sha256"] if same_pr else None  # of what Kaizen last wrote
    if pr is not None and _state(pr) != "open":
        status = _state(pr)
        reason = f"pull request #{pr['number']} is {status}: Kaizen never reopens it or writes to its branch"
    else:
        if pr is not None:
            branch = pr["head"]["ref"]
        elif gh.branch_head(branch) is None:
            gh.create_branch(branch, base_sha())  # False: a concurrent run made it a moment ago
        status, sha, reason = _sync_file(gh, d, branch, path, known_sha, pr_open=pr is not None)
        if sha is not None:  # the branch holds the draft's bytes now
            file_sha, content_sha = sha, hashlib.sha256(d.text.encode("utf-8")).hexdigest()
        if pr is None:
            pr = gh.open_pull(branch, base, pr_title(d), pr_body(d, path, incident_url(d.incident_id)))
            status = "opened"
    result = {
        "incident_id": d.incident_id,
        "repo": gh.repo,
        "pr_number": pr["number"],
        "pr_url": pr["html_url"],
        "pr_state": _state(pr),
        "branch": pr.get("head", {}).get("ref", branch),
        "base_branch": pr.get("base", {}).get("ref", base),
        "path": path,
        "status": status,
        "reason": reason,
    }
    _record(engine, {
        **result,
        "file_sha": file_sha,
        "content_sha256": content_sha,
        "title": row["title"] if same_pr else pr.get("title") or pr_title(d),
        "due_at": d.due_at,
        "opened_at": row["opened_at"] if same_pr else now,
        "updated_at": now,
        "run_id": run_id,
    })
    log.info("post-mortem PR %s #%s for %s: %s%s", gh.repo, pr["number"], d.incident_id, status,
             f" ({reason})" if reason else "")
    return result


def publish(engine: sa.Engine, drafts: list[Draft], target: Target, *, run_id: str | None = None,
            client: GitHub | None = None) -> list[dict]:
    """One pull request per draft in ``target.repo`` (see the module doc). Returns per
    incident: ``incident_id``, ``repo``, ``pr_number``, ``pr_url``, ``pr_state``,
    ``branch``, ``base_branch``, ``path``, ``status`` (``opened``, ``updated``,
    ``unchanged``, ``skipped``, ``closed``, ``merged``) and ``reason`` (why nothing was
    written; None otherwise)."""
    if not drafts:
        return []
    gh = client or GitHub(target.api_url, target.token, target.repo)
    info = gh.repository()
    base = target.base_branch or info.get("default_branch") or "main"
    cached: list[str] = []

    def base_sha() -> str:
        if not cached:
            sha = gh.branch_head(base)
            if sha is None:
                source = (f"{config.ENV_POSTMORTEM_BASE_BRANCH}={base!r}" if target.base_branch
                          else f"the default branch {base!r}")
                raise GitHubPRError(
                    f"{gh.repo} has no branch {base!r} ({source}): set {config.ENV_POSTMORTEM_BASE_BRANCH} to a "
                    "branch that exists, or unset it to use the repository's default branch.",
                    404,
                )
            cached.append(sha)
        return cached[0]

    return [_publish_one(engine, gh, base, base_sha, d, run_id) for d in drafts]
