"""Post-mortem drafts as GitHub pull requests (kaizen.delivery.github_prs) against the
fake GitHub over real HTTP: run twice → one PR, one branch, one file commit; a person's
edit on the branch left byte-identical; an untouched file follows the data; the PR
found again when the table lost it; closed and merged PRs never written to; races with
a concurrent run; every error naming what failed and what to do; the weekly review's
PR link — the table on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from fakes.github import FakeGitHub
from kaizen import config, pipeline, warehouse
from kaizen.delivery import github_prs
from kaizen.errors import is_permanent
from kaizen.reports import postmortem
from test_postmortems import TITLE, D, incident, insert, seed, utc

TOKEN = "ghp_postmortem_token_42"
REPO = "desk/post-mortems"
BRANCH = "kaizen/postmortem-PABC123"
PATH = "post-mortems/20260311_order_router_down_fail_1.md"
WEB = "https://kaizen-desk.pagerduty.com"


def git_blob(data: bytes) -> str:  # git hash-object, computed here independently
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\x00" + data).hexdigest()


@pytest.fixture
def fake():
    with FakeGitHub(REPO, token=TOKEN) as f:
        yield f


@pytest.fixture
def settings(fake, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_GITHUB", json.dumps(
        {"conn_type": "http", "host": fake.url, "password": TOKEN, "extra": {"repo": "desk/trading-api"}}))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_PAGERDUTY", json.dumps(
        {"conn_type": "http", "host": "https://api.pagerduty.com", "password": "pd", "extra": {"web_url": WEB}}))
    monkeypatch.setenv("KAIZEN_POSTMORTEM_REPO", REPO)
    monkeypatch.delenv("KAIZEN_POSTMORTEM_BASE_BRANCH", raising=False)
    config.clear_connection_cache()
    yield
    config.clear_connection_cache()


@pytest.fixture
def slept(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(github_prs, "_sleep", waits.append)
    return waits


def run(engine, run_id="r1"):
    return github_prs.publish(engine, postmortem.drafts(engine, D, D), github_prs.target_from_settings(),
                              run_id=run_id)


def writes(fake, since=0):
    return [(r["method"], r["path"]) for r in fake.requests[since:] if r["method"] != "GET"]


def table(engine):
    with engine.connect() as conn:
        cols, rows = warehouse.fetch_table(conn, "select * from postmortem_prs order by incident_id", {})
    return [dict(zip(cols, r, strict=True)) for r in rows]


def close_item_8(engine):  # new data: the draft's action-item table changes
    with engine.begin() as conn:
        conn.execute(sa.text("update raw_action_items set state = 'closed' where issue_number = 8"))


def draft_text(engine) -> bytes:
    (d,) = postmortem.drafts(engine, D, D)
    return d.text.encode("utf-8")


# ---------------------------------------------------------------- the acceptance line
def test_run_twice_one_pr_one_branch_one_commit(engine, fake, settings, slept):
    seed(engine)
    (first,) = run(engine)
    assert first == {
        "incident_id": "PABC123", "repo": REPO, "pr_number": 101,
        "pr_url": "https://github.com/desk/post-mortems/pull/101", "pr_state": "open",
        "branch": BRANCH, "base_branch": "main", "path": PATH, "status": "opened", "reason": None,
    }
    assert writes(fake) == [
        ("POST", f"/repos/{REPO}/git/refs"),
        ("PUT", f"/repos/{REPO}/contents/{PATH}"),
        ("POST", f"/repos/{REPO}/pulls"),
    ]
    n = len(fake.requests)
    (second,) = run(engine, "r2")
    assert second == {**first, "status": "unchanged"}
    assert writes(fake, n) == []  # the re-run only reads

    git = fake.git
    assert len(git.pulls) == 1
    assert set(git.branches) == {"main", BRANCH}
    assert len(git.history(BRANCH)) == 1
    data = git.file(BRANCH, PATH)
    assert data == draft_text(engine) and postmortem.is_untouched_draft(data.decode())
    assert data.decode().startswith("<!-- kaizen:draft incident=PABC123 sha256=")
    pr = git.pulls[0]
    assert (pr["title"], pr["head"], pr["base"]) == (
        "Post-mortem: Order router <down> & *fail* | #1 (INC-2026-042)", BRANCH, "main")
    body = pr["body"]
    assert f"- **Incident:** [PagerDuty PABC123]({WEB}/incidents/PABC123)" in body
    # resolved 11 Mar 10:23 IST (04:53Z) + 48 h
    assert "- **Due:** Fri 13 Mar 2026 10:23 IST — within 48 h of resolution (2026-03-11 10:23 IST)" in body
    assert f"- **Draft:** `{PATH}`" in body
    put = next(r for r in fake.requests if r["method"] == "PUT")
    assert put["body"]["branch"] == BRANCH and "sha" not in put["body"]
    assert base64.b64decode(put["body"]["content"]) == data
    (row,) = table(engine)
    assert (row["repo"], row["incident_id"], row["pr_number"], row["pr_url"], row["pr_state"], row["branch"],
            row["base_branch"], row["path"], row["status"], row["run_id"]) == (
        REPO, "PABC123", 101, "https://github.com/desk/post-mortems/pull/101", "open", BRANCH, "main", PATH,
        "unchanged", "r2")
    assert row["file_sha"] == git_blob(data)
    assert row["content_sha256"] == hashlib.sha256(data).hexdigest()
    assert str(row["due_at"]).startswith("2026-03-13 04:53:00")
    assert {r["headers"]["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert slept == []


@pytest.mark.parametrize("edit", ["body", "marker_removed", "deleted"])
def test_a_persons_edit_on_the_branch_is_left_byte_identical(engine, fake, settings, slept, edit):
    seed(engine)
    run(engine)
    ours = fake.git.file(BRANCH, PATH).decode()
    if edit == "body":
        theirs = ours.replace("[Detailed technical analysis of what caused the incident]",
                              "Connection pool exhausted by a retry storm.").encode()
    elif edit == "marker_removed":
        theirs = ours.partition("\n")[2].encode()
    else:
        theirs = None
    fake.git.commit(BRANCH, PATH, theirs, "Root cause", "asha")
    close_item_8(engine)  # even when the data changed since
    n = len(fake.requests)
    (res,) = run(engine, "r2")
    assert res["status"] == "skipped" and res["reason"].startswith("edited by a person: ")
    assert fake.git.file(BRANCH, PATH) == theirs
    assert writes(fake, n) == []
    assert [c.author for c in fake.git.history(BRANCH)] == ["asha", "kaizen-bot"]
    assert len(fake.git.pulls) == 1
    (row,) = table(engine)
    assert row["status"] == "skipped" and row["reason"] == res["reason"]
    assert row["file_sha"] == git_blob(ours.encode())  # still what Kaizen last wrote
    assert row["content_sha256"] == hashlib.sha256(ours.encode()).hexdigest()
    (third,) = run(engine, "r3")  # and stays so
    assert third["status"] == "skipped" and fake.git.file(BRANCH, PATH) == theirs


def test_an_untouched_file_follows_the_data(engine, fake, settings, slept):
    seed(engine)
    run(engine)
    before = fake.git.file(BRANCH, PATH)
    close_item_8(engine)
    n = len(fake.requests)
    (res,) = run(engine, "r2")
    assert res["status"] == "updated" and res["pr_number"] == 101
    after = fake.git.file(BRANCH, PATH)
    assert after == draft_text(engine) != before
    assert "| Restart runbook (#8) | @arjun | 2026-04-10 | P1 | Completed |" in after.decode()
    assert writes(fake, n) == [("PUT", f"/repos/{REPO}/contents/{PATH}")]
    put = fake.requests[-1]
    assert put["body"]["sha"] == git_blob(before)  # GitHub's guard against overwriting a newer file
    assert len(fake.git.history(BRANCH)) == 2 and len(fake.git.pulls) == 1
    (row,) = table(engine)
    assert (row["status"], row["file_sha"]) == ("updated", git_blob(after))


def test_the_table_lost_the_pr_github_still_knows_it(engine, fake, settings, slept):
    seed(engine)
    run(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from postmortem_prs"))
    close_item_8(engine)
    n = len(fake.requests)
    (res,) = run(engine, "r2")
    # found by head branch; the file still carries a valid marker, so it is Kaizen's to update
    assert (res["status"], res["pr_number"]) == ("updated", 101)
    lookup = next(r for r in fake.requests[n:] if r["path"] == f"/repos/{REPO}/pulls")
    assert (lookup["query"]["head"], lookup["query"]["state"]) == ([f"desk:{BRANCH}"], ["all"])
    assert writes(fake, n) == [("PUT", f"/repos/{REPO}/contents/{PATH}")]
    assert len(fake.git.pulls) == 1
    assert [r["pr_number"] for r in table(engine)] == [101]


@pytest.mark.parametrize("merged", [False, True], ids=["closed", "merged"])
@pytest.mark.parametrize("table_lost", [False, True], ids=["recorded", "table_lost"])
def test_closed_or_merged_pr_is_never_reopened_or_written(engine, fake, settings, slept, merged, table_lost):
    seed(engine)
    run(engine)
    fake.git.close(101, merged=merged)
    on_branch = fake.git.file(BRANCH, PATH)
    if table_lost:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from postmortem_prs"))
    close_item_8(engine)
    n = len(fake.requests)
    (res,) = run(engine, "r2")
    state = "merged" if merged else "closed"
    assert (res["status"], res["pr_state"], res["pr_number"]) == (state, state, 101)
    assert res["reason"] == f"pull request #101 is {state}: Kaizen never reopens it or writes to its branch"
    assert writes(fake, n) == []
    assert len(fake.git.pulls) == 1 and fake.git.file(BRANCH, PATH) == on_branch
    assert [(r["pr_state"], r["status"]) for r in table(engine)] == [(state, state)]


def test_a_concurrent_run_creates_branch_and_pr_first(engine, fake, settings, slept):
    """Another run creates the branch between this run's GET and POST of the ref, and
    opens the PR between this run's file write and its POST of the PR: GitHub's 422s
    are recognised, the other run's PR adopted, none duplicated."""
    seed(engine)
    git = fake.git
    fake.before.append(("POST", "/git/refs", lambda: git.branches.setdefault(BRANCH, git.branches["main"])))
    fake.before.append(("POST", "/pulls", lambda: git.open_pull("Post-mortem (other run)", BRANCH, "main",
                                                                "", "kaizen-bot")))
    (res,) = run(engine)
    assert (res["status"], res["pr_number"]) == ("opened", 101)
    assert len(git.pulls) == 1 and len(git.history(BRANCH)) == 1
    refused = [r for r in fake.requests if r["method"] == "POST"]
    assert [r["path"] for r in refused] == [f"/repos/{REPO}/git/refs", f"/repos/{REPO}/pulls"]
    (row,) = table(engine)
    assert (row["pr_number"], row["title"]) == (101, "Post-mortem (other run)")


def test_a_lost_put_answer_retried_is_recognised(engine, fake, settings, slept):
    """The file write succeeded but its answer was lost (500 after the commit): the
    retried PUT gets 409 (the sha no longer matches), the file is read back and is the
    draft's bytes: one commit, no error."""
    seed(engine)
    run(engine)
    close_item_8(engine)
    real = fake.route_write
    calls = []

    def lose_first_answer(method, path, query, headers, body):
        status, hdrs, answer = real(method, path, query, headers, body)
        calls.append(status)
        if method == "PUT" and len(calls) == 1:
            return 500, {}, {"message": "Server Error"}
        return status, hdrs, answer

    fake.route_write = lose_first_answer
    (res,) = run(engine, "r2")
    assert res["status"] == "updated" and calls == [200, 409]
    assert slept == [1.0]
    assert len(fake.git.history(BRANCH)) == 2
    assert table(engine)[0]["file_sha"] == git_blob(fake.git.file(BRANCH, PATH))


def test_two_incidents_two_prs_and_a_base_branch(engine, fake, settings, slept, monkeypatch):
    seed(engine)
    insert(engine, "raw_incidents", [incident("PABC999", 57, "P0", TITLE, utc(11, 8), utc(11, 8, 30))])
    fake.git.branches["release"] = fake.git.commit("main", "CHANGELOG.md", b"x\n")
    monkeypatch.setenv("KAIZEN_POSTMORTEM_BASE_BRANCH", "release")
    got = run(engine)
    assert [(r["incident_id"], r["pr_number"], r["base_branch"], r["path"]) for r in got] == [
        ("PABC123", 101, "release", PATH),
        ("PABC999", 102, "release", "post-mortems/20260311_order_router_down_fail_1_57.md"),
    ]
    assert [p["title"] for p in fake.git.pulls] == [
        "Post-mortem: Order router <down> & *fail* | #1 (INC-2026-042)",
        "Post-mortem: Order router <down> & *fail* | #1 (INC-2026-057)",
    ]
    assert [len(fake.git.history(b)) for b in (BRANCH, "kaizen/postmortem-PABC999")] == [1, 1]
    assert len(run(engine)) == 2 and len(fake.git.pulls) == 2


# ---------------------------------------------------------------- errors
def raises(engine):
    with pytest.raises(github_prs.GitHubPRError) as err:
        run(engine)
    return err.value


def test_bad_token_is_permanent_and_names_the_connection_password(engine, fake, settings, slept, monkeypatch):
    seed(engine)
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_GITHUB", json.dumps(
        {"conn_type": "http", "host": fake.url, "password": "ghp_revoked"}))
    err = raises(engine)
    assert is_permanent(err) and err.status == 401
    assert str(err).startswith(f"GitHub GET /repos/{REPO} failed with HTTP 401: Bad credentials. ")
    assert "password of connection 'kaizen_github'" in str(err) and "ghp_revoked" not in str(err)
    assert len(fake.requests) == 1 and slept == [] and table(engine) == []


def test_unknown_repository_names_the_setting(engine, fake, settings, slept, monkeypatch):
    seed(engine)
    monkeypatch.setenv("KAIZEN_POSTMORTEM_REPO", "desk/no-such-repo")
    err = raises(engine)
    assert is_permanent(err) and err.status == 404
    assert "GitHub has no repository 'desk/no-such-repo'" in str(err)
    assert "check KAIZEN_POSTMORTEM_REPO (owner/name)" in str(err)
    assert len(fake.requests) == 1


def test_missing_base_branch_names_the_setting(engine, fake, settings, slept, monkeypatch):
    seed(engine)
    monkeypatch.setenv("KAIZEN_POSTMORTEM_BASE_BRANCH", "release")
    err = raises(engine)
    assert is_permanent(err)
    assert "desk/post-mortems has no branch 'release' (KAIZEN_POSTMORTEM_BASE_BRANCH='release')" in str(err)
    assert writes(fake) == []


def test_rate_limit_far_away_is_transient_with_the_reset_time(engine, fake, settings, slept):
    seed(engine)
    fake.reset_s = 3600
    fake.always = "403_rate"
    err = raises(engine)
    assert not is_permanent(err) and err.transient and err.status == 403
    reset = re.search(r"spent until (\d\d:\d\d:\d\d) UTC \((\d\d:\d\d) IST\)", str(err))
    assert reset, str(err)
    expected = datetime.fromtimestamp(int(time.time()) + 3600, UTC)
    got = datetime.combine(expected.date(), datetime.strptime(reset.group(1), "%H:%M:%S").time(), UTC)
    assert abs((got - expected).total_seconds()) <= 5
    assert "API rate limit exceeded for user ID 1" in str(err) and "re-run after" in str(err)
    assert len(fake.requests) == 1 and slept == []


def test_rate_limit_resetting_soon_is_waited_out(engine, fake, settings, slept):
    seed(engine)
    fake.reset_s = 2
    fake.faults = ["403_rate"]
    (res,) = run(engine)
    assert res["status"] == "opened" and len(fake.git.pulls) == 1
    assert len(slept) == 1 and 1.0 < slept[0] <= 3.0  # reset − now + 1 s


def test_5xx_are_retried_then_transient(engine, fake, settings, slept):
    seed(engine)
    fake.faults = ["500", "500"]
    (res,) = run(engine)
    assert res["status"] == "opened" and slept == [1.0, 2.0]
    fake.always = "500"
    slept.clear()
    err = raises(engine)
    assert err.transient and "still failing after 4 attempts (last: HTTP 500: Server Error)" in str(err)
    assert slept == [1.0, 2.0, 4.0]


def test_token_without_write_access_is_permanent(engine, fake, settings, slept):
    seed(engine)
    real = fake.route_write
    fake.route_write = lambda *a: fake.fault("403") if a[0] == "POST" else real(*a)
    err = raises(engine)
    assert is_permanent(err) and err.status == 403
    assert str(err).startswith(f"GitHub POST /repos/{REPO}/git/refs failed with HTTP 403: Resource not accessible")
    assert "Contents and Pull requests write access" in str(err)
    assert fake.git.pulls == [] and table(engine) == []


@pytest.mark.parametrize(
    "repo, conn, message",
    [
        ("desk", {"conn_type": "http", "password": TOKEN},
         "KAIZEN_POSTMORTEM_REPO='desk' is not a repository as owner/name"),
        (REPO, None, "KAIZEN_POSTMORTEM_REPO is set (desk/post-mortems) but the Airflow connection 'kaizen_github' "
                     "is not configured"),
        (REPO, {"conn_type": "http", "host": "https://api.github.com"},
         "connection 'kaizen_github' has no token: put a GitHub token"),
    ],
    ids=["not_owner_name", "no_connection", "no_token"],
)
def test_bad_settings_are_refused_before_any_call(settings, monkeypatch, repo, conn, message):
    monkeypatch.setenv("KAIZEN_POSTMORTEM_REPO", repo)
    if conn is None:
        monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GITHUB")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_GITHUB", json.dumps(conn))
    config.clear_connection_cache()
    with pytest.raises(github_prs.GitHubPRError) as err:
        github_prs.target_from_settings()
    assert is_permanent(err.value) and str(err.value).startswith(message)


def test_unset_repository_keeps_drafts_local(engine, fake, settings, monkeypatch, tmp_path):
    seed(engine)
    monkeypatch.delenv("KAIZEN_POSTMORTEM_REPO")
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    monkeypatch.setattr(warehouse, "get_engine", lambda url=None: engine)
    assert github_prs.target_from_settings() is None
    (res,) = pipeline.draft_postmortems(D, lookback_days=0)
    assert res == {"incident_id": "PABC123", "path": str(tmp_path / PATH), "due_at": "2026-03-13T04:53:00Z",
                   "status": "written"}
    assert fake.requests == []


# ---------------------------------------------------------------- the pipeline step and the review
def test_pipeline_step_writes_local_drafts_and_opens_the_pr(engine, fake, settings, slept, monkeypatch, tmp_path):
    seed(engine)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    monkeypatch.setattr(warehouse, "get_engine", lambda url=None: engine)
    (res,) = pipeline.draft_postmortems(D, lookback_days=0, run_id="daily")
    assert (res["status"], res["pr"]["status"], res["pr"]["pr_url"]) == (
        "written", "opened", "https://github.com/desk/post-mortems/pull/101")
    assert (tmp_path / PATH).read_bytes() == fake.git.file(BRANCH, PATH)
    (again,) = pipeline.draft_postmortems(D, lookback_days=0, run_id="daily2")
    assert (again["status"], again["pr"]["status"]) == ("unchanged", "unchanged")
    assert len(fake.git.pulls) == 1


def test_weekly_review_links_each_draft_to_its_pr(engine, fake, settings, slept):
    """The week's drafts in the review: the PR link where one was opened (its state when
    no longer open), the local path where none was (the P0 resolved on the 9th is outside
    the drafted day)."""
    from kaizen.reports import render, review

    seed(engine)
    run(engine)

    def rendered():  # the review's own templates, as render_review fills them
        report = review.build_review(engine, "weekly", date(2026, 3, 9), as_of=datetime(2026, 3, 16, 5, tzinfo=UTC))
        context = {"r": report, "run_id": "w", "chart_titles": review.CHART_TITLES, "charts": review.CHARTS}
        md = render.render_text(review.MARKDOWN_TEMPLATE, **context)
        thread = render.render_json(review.SLACK_TEMPLATE, **context)["thread"]
        lines = [b["text"]["text"] for p in thread for b in p["blocks"]
                 if b.get("block_id", "").startswith("postmortems") and b["type"] == "section"]
        return report, md, "\n".join(lines)

    report, md, slack = rendered()
    assert [(p["number"], p["pr_number"], p["pr_state"]) for p in report.postmortems] == [
        (40, None, None), (42, 101, "open")]
    url = "https://github.com/desk/post-mortems/pull/101"
    assert ("| #40 Old outage | P0 | `post-mortems/20260309_old_outage.md` | Wed 11 Mar 11:30 IST | ⏳ not yet |\n"
            "| #42 Order router &lt;down&gt; &amp; \\*fail\\* \\| \\#1 | P1 | "
            f"[PR #101]({url}) | Fri 13 Mar 10:23 IST | ✅ on time |\n") in md
    assert ("• #40 P0 Old outage — draft `post-mortems/20260309_old_outage.md`, due Wed 11 Mar 11:30 IST "
            "⏳ not published yet") in slack
    assert (f"• #42 P1 Order router &lt;down&gt; &amp; *fail* | #1 — draft <{url}|PR #101>, "
            "due Fri 13 Mar 10:23 IST ✅ published on time") in slack
    fake.git.close(101, merged=True)
    run(engine, "r2")
    _, md, slack = rendered()
    assert f"| P1 | [PR #101]({url}) (merged) | Fri 13 Mar 10:23 IST |" in md
    assert f"— draft <{url}|PR #101> (merged), due" in slack
