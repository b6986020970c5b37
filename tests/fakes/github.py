"""Fake GitHub REST API: deployments (environment filter), deployment statuses and
compare, issues (``labels`` ANDed, ``state``, ``since`` on updated_at; pull requests
listed too, as the real endpoint does), paginated with ``per_page``/``page`` and RFC 8288 ``Link`` headers
(rel="next"/"last"/"first"/"prev") like api.github.com; GitHub's error bodies
(``{"message", "documentation_url", "status"}``), 429 with Retry-After, the
secondary-rate-limit 403, and the primary-rate-limit 429 with only
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (a Unix time
:attr:`FakeGitHub.reset_s` seconds ahead) (``429_reset``), and its 403 twin
(``403_rate``, what api.github.com answers when a token's primary limit is spent).

Writing a repository, for the post-mortem pull requests (:class:`GitRepo`, one repo):
``GET /repos/{o}/{r}`` (``default_branch``); git references ``GET git/ref/heads/{branch}``
and ``POST git/refs`` (422 "Reference already exists"); contents ``GET
contents/{path}?ref=`` (base64 in 60-character lines, the blob ``sha``) and ``PUT
contents/{path}`` (one commit; 422 when ``sha`` is missing for an existing file, 409
when it does not match); pulls ``GET pulls`` (``state``, ``head=owner:branch``,
``base``), ``GET pulls/{n}`` and ``POST pulls`` (422 "A pull request already exists
for …" and "No commits between …"). Helpers act as a person would: :meth:`GitRepo.commit`
(an edit on a branch), :meth:`GitRepo.close` (close or merge a PR).
:attr:`FakeGitHub.before` holds one-shot hooks run before a matching request is
routed (a concurrent run creating the same branch or PR in between)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from fakes._json_api import FakeAPI, q1

DOCS = "https://docs.github.com/rest"
WEB = "https://github.com"


def blob_sha(data: bytes) -> str:
    """The git blob id of ``data``: what the contents API answers as ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    parent: str | None
    tree: dict[str, bytes]
    message: str
    author: str


@dataclass
class GitRepo:
    """A repository's branches, commits and pull requests, as the fake serves them."""

    full_name: str
    default_branch: str = "main"
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name → head commit sha
    pulls: list[dict] = field(default_factory=list)  # oldest first
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(101))

    def __post_init__(self):
        root = self._new_commit(None, {"README.md": b"# trading-api\n"}, "Initial commit", "desk")
        self.branches[self.default_branch] = root.sha

    def _new_commit(self, parent, tree, message, author) -> Commit:
        sha = hashlib.sha1(f"commit {next(self._seq)} {message}".encode()).hexdigest()
        c = Commit(sha, parent, dict(tree), message, author)
        self.commits[sha] = c
        return c

    def file(self, branch: str, path: str) -> bytes | None:
        head = self.branches.get(branch)
        return None if head is None else self.commits[head].tree.get(path)

    def commit(self, branch: str, path: str, data: bytes | None, message: str = "Edit", author: str = "asha") -> str:
        """A commit on ``branch`` setting ``path`` to ``data`` (None: delete it), as a person pushing."""
        tree = dict(self.commits[self.branches[branch]].tree)
        if data is None:
            tree.pop(path, None)
        else:
            tree[path] = data
        c = self._new_commit(self.branches[branch], tree, message, author)
        self.branches[branch] = c.sha
        return c.sha

    def history(self, branch: str) -> list[Commit]:
        """Commits on ``branch`` not on the default branch, newest first."""
        base = set()
        sha = self.branches[self.default_branch]
        while sha:
            base.add(sha)
            sha = self.commits[sha].parent
        out, sha = [], self.branches.get(branch)
        while sha and sha not in base:
            out.append(self.commits[sha])
            sha = self.commits[sha].parent
        return out

    def pull(self, number: int) -> dict:
        return next(p for p in self.pulls if p["number"] == number)

    def close(self, number: int, *, merged: bool = False) -> None:
        """A person closes (or merges) pull request ``number``."""
        pr = self.pull(number)
        pr["state"] = "closed"
        pr["closed_at"] = pr["updated_at"] = "2026-03-14T09:00:00Z"
        if merged:  # the head's files land on the base branch
            base, head = pr["base"], self.branches[pr["head"]]
            tree = {**self.commits[self.branches[base]].tree, **self.commits[head].tree}
            c = self._new_commit(self.branches[base], tree, f"Merge pull request #{number}", "asha")
            self.branches[base] = c.sha
            pr["merged_at"] = pr["closed_at"]
            pr["merge_commit_sha"] = c.sha
            pr["head_sha"] = head

    def open_pull(self, title: str, head: str, base: str, body: str | None, user: str) -> dict:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pr = {"number": next(self._numbers), "title": title, "body": body, "head": head, "base": base,
              "state": "open", "user": user, "created_at": now, "updated_at": now, "closed_at": None,
              "merged_at": None, "merge_commit_sha": None, "head_sha": None}
        self.pulls.append(pr)
        return pr


class FakeGitHub(FakeAPI):
    def __init__(
        self,
        repo: str = "desk/trading-api",
        deployments=None,
        statuses=None,
        compares=None,
        token: str = "ghp_test",
        issues=None,
    ):
        """deployments newest first; statuses {id: [...] newest first}; compares {"a...b": body}."""
        super().__init__()
        self.repo = repo
        self.deployments = deployments or []
        self.statuses = statuses or {}
        self.compares = compares or {}
        self.token = token
        self.issues = issues or []  # newest first, as GET /repos/{o}/{r}/issues sorts by default
        self.reset_s = 5  # x-ratelimit-reset of the "429_reset" and "403_rate" faults, seconds from now
        self.git = GitRepo(repo)
        self.login = "kaizen-bot"  # the user the token belongs to (author of what the API writes)
        # one-shot hooks: (method, path suffix, fn) run before the first matching request is routed
        self.before: list[tuple[str, str, object]] = []

    def _page(self, path, query, items):
        per_page = min(int(q1(query, "per_page", 30)), 100)
        page = int(q1(query, "page", 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = {k: v[0] for k, v in query.items() if k != "page"}

        def link(p, rel):
            return f'<{self.url}{path}?{urlencode({**base, "page": p})}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(page - 1, "prev")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first")]
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _run_hooks(self, method, path):
        for i, (m, suffix, fn) in enumerate(self.before):
            if m == method and path.endswith(suffix):
                del self.before[i]
                fn()
                return

    def route(self, method, path, query, headers):
        if headers.get("authorization") != f"Bearer {self.token}":
            return self.fault("401")
        self._run_hooks(method, path)
        if path == f"/repos/{self.repo}":
            return 200, {}, self.repo_json()
        prefix = f"/repos/{self.repo}/"
        if not path.startswith(prefix):
            return self.fault("404")
        rest = [unquote(p) for p in path[len(prefix) :].split("/")]
        if rest[:3] == ["git", "ref", "heads"] and len(rest) > 3:
            branch = "/".join(rest[3:])
            if branch not in self.git.branches:
                return 404, {}, {"message": "Not Found", "documentation_url": f"{DOCS}/git/refs#get-a-reference",
                                 "status": "404"}
            return 200, {}, self.ref_json(branch)
        if rest[0] == "contents" and len(rest) > 1:
            file_path = "/".join(rest[1:])
            ref = q1(query, "ref") or self.git.default_branch
            if ref not in self.git.branches:
                return 404, {}, {"message": f"No commit found for the ref {ref}",
                                 "documentation_url": f"{DOCS}/repos/contents#get-repository-content",
                                 "status": "404"}
            data = self.git.file(ref, file_path)
            if data is None:
                return self.fault("404")
            return 200, {}, self.content_json(file_path, data, ref, with_content=True)
        if rest == ["pulls"]:
            state = q1(query, "state", "open")
            head = q1(query, "head")
            base = q1(query, "base")
            owner = self.repo.split("/")[0]
            items = [
                p for p in reversed(self.git.pulls)  # sort=created, direction=desc
                if (state == "all" or p["state"] == state)
                and (head is None or f"{owner}:{p['head']}" == head)
                and (base is None or p["base"] == base)
            ]
            chunk, hdrs = self._page(path, query, [self.pull_json(p) for p in items])
            return 200, hdrs, chunk
        if len(rest) == 2 and rest[0] == "pulls" and rest[1].isdigit():
            pr = next((p for p in self.git.pulls if p["number"] == int(rest[1])), None)
            if pr is None:
                return self.fault("404")
            return 200, {}, self.pull_json(pr, full=True)
        if rest == ["deployments"]:
            env = q1(query, "environment")
            items = [d for d in self.deployments if env is None or d.get("environment") == env]
            chunk, hdrs = self._page(path, query, items)
            return 200, hdrs, chunk
        if rest == ["issues"]:
            wanted = [x for x in (q1(query, "labels") or "").split(",") if x]
            state = q1(query, "state", "open")
            since = q1(query, "since")
            items = [
                i
                for i in self.issues
                if all(w in [lab["name"] for lab in i.get("labels", [])] for w in wanted)
                and (state == "all" or i.get("state") == state)
                and (since is None or i.get("updated_at", "") >= since)  # ISO-8601 Z text sorts
            ]
            chunk, hdrs = self._page(path, query, items)
            return 200, hdrs, chunk
        if len(rest) == 3 and rest[0] == "deployments" and rest[2] == "statuses":
            chunk, hdrs = self._page(path, query, self.statuses.get(rest[1], []))
            return 200, hdrs, chunk
        if len(rest) == 2 and rest[0] == "compare":
            body = self.compares.get(rest[1])
            if body is None:
                return self.fault("404")
            chunk, hdrs = self._page(path, query, body.get("commits", []))
            return 200, hdrs, {**body, "commits": chunk}
        return self.fault("404")

    # -- writes: git refs, contents, pulls
    def route_write(self, method, path, query, headers, body):
        if headers.get("authorization") != f"Bearer {self.token}":
            return self.fault("401")
        self._run_hooks(method, path)
        prefix = f"/repos/{self.repo}/"
        if not path.startswith(prefix):
            return self.fault("404")
        rest = [unquote(p) for p in path[len(prefix) :].split("/")]
        body = body if isinstance(body, dict) else {}
        if method == "POST" and rest == ["git", "refs"]:
            return self.create_ref(body)
        if method == "PUT" and rest[0] == "contents" and len(rest) > 1:
            return self.put_content("/".join(rest[1:]), body)
        if method == "POST" and rest == ["pulls"]:
            return self.create_pull(body)
        return self.fault("404")

    def _invalid(self, message, doc, status=422):
        return status, {}, {"message": message, "documentation_url": f"{DOCS}/{doc}", "status": str(status)}

    def _validation(self, errors, doc):
        return 422, {}, {"message": "Validation Failed", "errors": errors, "documentation_url": f"{DOCS}/{doc}",
                         "status": "422"}

    def create_ref(self, body):
        doc = "git/refs#create-a-reference"
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            return self._invalid("Reference name must start with 'refs/' and have at least two slashes.", doc)
        if sha not in self.git.commits:
            return self._invalid("Object does not exist", doc)
        if not ref.startswith("refs/heads/"):
            return self._invalid("Only branches are served by this fake", doc)
        branch = ref[len("refs/heads/") :]
        if branch in self.git.branches:
            return self._invalid("Reference already exists", doc)
        self.git.branches[branch] = sha
        return 201, {"Location": f"{self.url}/repos/{self.repo}/git/refs/heads/{branch}"}, self.ref_json(branch)

    def put_content(self, file_path, body):
        doc = "repos/contents#create-or-update-file-contents"
        for name in ("message", "content"):
            if not isinstance(body.get(name), str):
                return self._invalid(f'Invalid request.\n\n"{name}" wasn\'t supplied.', doc)
        branch = body.get("branch") or self.git.default_branch
        if branch not in self.git.branches:
            return self._invalid(f"Branch {branch} not found", doc, 404)
        try:
            data = base64.b64decode(body["content"], validate=True)
        except ValueError:
            return self._invalid("content is not valid Base64", doc)
        old = self.git.file(branch, file_path)
        if old is not None and body.get("sha") is None:
            return self._invalid('Invalid request.\n\n"sha" wasn\'t supplied.', doc)
        if old is not None and body["sha"] != blob_sha(old):
            return self._invalid(f"{file_path} does not match {body['sha']}", doc, 409)
        commit_sha = self.git.commit(branch, file_path, data, body["message"], self.login)
        c = self.git.commits[commit_sha]
        answer = {
            "content": self.content_json(file_path, data, branch, with_content=False),
            "commit": {
                "sha": c.sha,
                "node_id": f"C_{c.sha[:12]}",
                "url": f"{self.url}/repos/{self.repo}/git/commits/{c.sha}",
                "html_url": f"{WEB}/{self.repo}/commit/{c.sha}",
                "author": {"name": self.login, "email": f"{self.login}@users.noreply.github.com",
                           "date": "2026-03-12T06:00:00Z"},
                "committer": {"name": self.login, "email": f"{self.login}@users.noreply.github.com",
                              "date": "2026-03-12T06:00:00Z"},
                "message": c.message,
                "tree": {"sha": hashlib.sha1(c.sha.encode()).hexdigest(),
                         "url": f"{self.url}/repos/{self.repo}/git/trees/{c.sha}"},
                "parents": [{"sha": c.parent, "url": f"{self.url}/repos/{self.repo}/git/commits/{c.parent}",
                             "html_url": f"{WEB}/{self.repo}/commit/{c.parent}"}],
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
            },
        }
        return (200 if old is not None else 201), {}, answer

    def create_pull(self, body):
        doc = "pulls/pulls#create-a-pull-request"
        missing = [f for f in ("head", "base") if not isinstance(body.get(f), str) or not body.get(f)]
        if missing:
            return self._validation([{"resource": "PullRequest", "field": f, "code": "missing_field"}
                                     for f in missing], doc)
        if not body.get("title") and not body.get("issue"):
            return self._validation([{"resource": "PullRequest", "field": "title", "code": "missing_field"}], doc)
        owner = self.repo.split("/")[0]
        head = body["head"].split(":", 1)[1] if ":" in body["head"] else body["head"]
        if (":" in body["head"] and body["head"].split(":", 1)[0] != owner) or head not in self.git.branches:
            return self._validation([{"resource": "PullRequest", "field": "head", "code": "invalid"}], doc)
        if body["base"] not in self.git.branches:
            return self._validation([{"resource": "PullRequest", "field": "base", "code": "invalid"}], doc)
        if any(p["head"] == head and p["base"] == body["base"] and p["state"] == "open" for p in self.git.pulls):
            return self._validation([{"resource": "PullRequest", "code": "custom",
                                      "message": f"A pull request already exists for {owner}:{head}."}], doc)
        if not self.git.history(head):
            return self._validation([{"resource": "PullRequest", "code": "custom",
                                      "message": f"No commits between {body['base']} and {head}"}], doc)
        pr = self.git.open_pull(body["title"], head, body["base"], body.get("body"), self.login)
        return 201, {"Location": f"{self.url}/repos/{self.repo}/pulls/{pr['number']}"}, self.pull_json(pr, full=True)

    # -- GitHub's JSON shapes
    def repo_json(self) -> dict:
        owner, name = self.repo.split("/")
        return {
            "id": 1296269, "node_id": "R_kgDOAAAAAQ", "name": name, "full_name": self.repo, "private": True,
            "owner": {"login": owner, "id": 583231, "type": "Organization"},
            "html_url": f"{WEB}/{self.repo}", "url": f"{self.url}/repos/{self.repo}",
            "default_branch": self.git.default_branch, "visibility": "private",
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def ref_json(self, branch: str) -> dict:
        sha = self.git.branches[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{hashlib.sha1(branch.encode()).hexdigest()[:12]}",
            "url": f"{self.url}/repos/{self.repo}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{self.url}/repos/{self.repo}/git/commits/{sha}"},
        }

    def content_json(self, file_path: str, data: bytes, ref: str, *, with_content: bool) -> dict:
        sha = blob_sha(data)
        api = f"{self.url}/repos/{self.repo}/contents/{file_path}?ref={ref}"
        git = f"{self.url}/repos/{self.repo}/git/blobs/{sha}"
        html = f"{WEB}/{self.repo}/blob/{ref}/{file_path}"
        out = {"name": file_path.rsplit("/", 1)[-1], "path": file_path, "sha": sha, "size": len(data),
               "url": api, "html_url": html, "git_url": git,
               "download_url": f"https://raw.githubusercontent.com/{self.repo}/{ref}/{file_path}",
               "type": "file", "_links": {"self": api, "git": git, "html": html}}
        if with_content:  # base64 in lines of 60 characters, each ending in a newline, as GitHub sends it
            b64 = base64.b64encode(data).decode("ascii")
            out["content"] = "".join(b64[i : i + 60] + "\n" for i in range(0, len(b64), 60))
            out["encoding"] = "base64"
        return out

    def pull_json(self, pr: dict, *, full: bool = False) -> dict:
        owner = self.repo.split("/")[0]
        n = pr["number"]
        head_sha = pr["head_sha"] or self.git.branches.get(pr["head"])
        out = {
            "url": f"{self.url}/repos/{self.repo}/pulls/{n}", "id": 1_800_000_000 + n,
            "node_id": f"PR_kwDO{n:08d}", "html_url": f"{WEB}/{self.repo}/pull/{n}",
            "diff_url": f"{WEB}/{self.repo}/pull/{n}.diff", "issue_url": f"{self.url}/repos/{self.repo}/issues/{n}",
            "number": n, "state": pr["state"], "locked": False, "title": pr["title"],
            "user": {"login": pr["user"], "type": "User"}, "body": pr["body"],
            "created_at": pr["created_at"], "updated_at": pr["updated_at"], "closed_at": pr["closed_at"],
            "merged_at": pr["merged_at"], "merge_commit_sha": pr["merge_commit_sha"], "draft": False,
            "head": {"label": f"{owner}:{pr['head']}", "ref": pr["head"], "sha": head_sha,
                     "user": {"login": owner}, "repo": {"full_name": self.repo}},
            "base": {"label": f"{owner}:{pr['base']}", "ref": pr["base"],
                     "sha": self.git.branches.get(pr["base"]), "user": {"login": owner},
                     "repo": {"full_name": self.repo}},
            "author_association": "NONE",
        }
        if full:
            out.update({"merged": pr["merged_at"] is not None, "mergeable": None, "comments": 0,
                        "commits": len(self.git.history(pr["head"])) if pr["head"] in self.git.branches else 0})
        return out

    def fault(self, kind):
        if kind == "401":
            return 401, {}, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        if kind == "404":
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        if kind == "429":
            return (
                429,
                {"Retry-After": "1"},
                {"message": "API rate limit exceeded", "documentation_url": DOCS, "status": "429"},
            )
        if kind == "secondary":
            return (
                403,
                {"retry-after": "1"},
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                    "you try again.",
                    "documentation_url": DOCS,
                    "status": "403",
                },
            )
        if kind == "403":
            return (
                403,
                {},
                {
                    "message": "Resource not accessible by personal access token",
                    "documentation_url": DOCS,
                    "status": "403",
                },
            )
        if kind == "403_rate":
            return (
                403,
                {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                 "x-ratelimit-resource": "core", "x-ratelimit-reset": str(int(time.time()) + self.reset_s)},
                {"message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
                            "please include the request ID 7C48:0D53:0E1A:1FA3:5CAF6147.",
                 "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                 "status": "403"},
            )
        if kind == "500":
            return 500, {}, {"message": "Server Error", "status": "500"}
        if kind == "429_reset":
            return (
                429,
                {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                 "x-ratelimit-reset": str(int(time.time()) + self.reset_s)},
                {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS, "status": "429"},
            )
        raise ValueError(kind)
