"""GitHub source: deployments, statuses and compare against a fake GitHub (Link-header
pagination, stopping once past the window, 429 / secondary rate limit / 500 retries,
401), the demo files, every validation rule, rollback flags — SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from fakes.github import FakeGitHub
from kaizen.sources import SourceError, github
from source_wire import DAY, PREV_DAY, REPO, github_data, quarantine, rows, snapshot, write_github_demo

TOKEN = "ghp_secret_token_123"


@pytest.fixture
def fake():
    deps, statuses, compares = github_data()
    with FakeGitHub(REPO, deps, statuses, compares, token=TOKEN) as f:
        yield f


def transport(fake, per_page=2):
    return github.http_transport(fake.url, TOKEN, REPO, per_page=per_page)


def deployments(engine):
    return {r["deployment_id"]: r for r in rows(engine, "select * from raw_deployments")}


def test_http_extract_rows(engine, fake, waits):
    (res,) = github.extract(DAY, engine, "r1", transport(fake))
    assert (res.extracted, res.loaded, res.quarantined) == (6, 3, 3)
    got = deployments(engine)
    assert set(got) == {"101", "104", "107"}
    d = got["101"]
    assert (d["status"], d["sha"], d["environment"], d["commit_count"], d["pull_requests"]) == (
        "success",
        "s101",
        "production",
        3,
        "40,41",
    )
    assert str(d["finished_at"]).startswith("2026-11-25 11:05:00")
    assert str(d["first_commit_at"]).startswith("2026-11-24 20:00:00")
    assert (bool(d["is_rollback"]), bool(d["rolled_back"])) == (False, True)  # 104 rolled it back
    r = got["104"]
    assert (bool(r["is_rollback"]), bool(r["rolled_back"]), r["status"], r["commit_count"]) == (
        True,
        False,
        "success",
        0,
    )
    f = got["107"]  # newest *final* status wins over a later 'inactive'
    assert (f["status"], str(f["finished_at"])[:19]) == ("failure", "2026-11-26 07:09:00")
    headers = fake.requests[0]["headers"]
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == github.API_VERSION
    assert headers["authorization"] == f"Bearer {TOKEN}"


def test_pagination_follows_link_and_stops_past_the_window(engine, fake, waits):
    github.extract(DAY, engine, "r1", transport(fake))
    listing = [r for r in fake.requests if r["path"] == f"/repos/{REPO}/deployments"]
    # 16 deployments newest first, 2 per page: 106 (newer than the window), the window's
    # six, then 100 (older) on page 4 — the listing stops there, pages 5-8 are never read.
    assert [r["query"].get("page", ["1"])[0] for r in listing] == ["1", "2", "3", "4"]
    assert all(r["query"]["environment"] == ["production"] for r in listing)
    compare = [r for r in fake.requests if r["path"].endswith("/compare/s100...s101")]
    assert len(compare) == 2  # 3 commits at 2 per page
    statuses = [r for r in fake.requests if r["path"].endswith("/deployments/101/statuses")]
    assert len(statuses) == 2


def test_validation_reasons_and_payloads(engine, fake, waits):
    github.extract(DAY, engine, "r1", transport(fake))
    q = {k: v[0] for k, v in quarantine(engine, "deployments").items()}
    assert q["102"]["reason"] == "missing sha"
    assert q["103"]["reason"] == (
        "status 1030 (success) dated 2026-11-25T15:00:00+00:00 before the "
        "deployment was created 2026-11-25T16:00:00+00:00"
    )
    assert q["105"]["reason"] == "unknown status state 'exploded' (status 1050)"
    payload = json.loads(q["103"]["payload"])
    assert payload["deployment"]["id"] == 103 and payload["statuses"][0]["id"] == 1030


def test_rollback_in_a_later_window_marks_the_earlier_deployment(engine, fake, waits):
    github.extract(PREV_DAY, engine, "r1", transport(fake))
    assert bool(deployments(engine)["100"]["rolled_back"]) is True  # the API already lists 107
    with engine.begin() as c:  # as it was before 107 existed
        c.exec_driver_sql("update raw_deployments set rolled_back = false where deployment_id = '100'")
    github.extract(DAY, engine, "r1", transport(fake))
    assert bool(deployments(engine)["100"]["rolled_back"]) is True


def test_missing_compare_means_no_commits(engine, fake, waits):
    (res,) = github.extract(PREV_DAY, engine, "r1", transport(fake))
    assert (res.extracted, res.loaded) == (1, 1)
    d = deployments(engine)["100"]
    assert (d["commit_count"], d["first_commit_at"], d["pull_requests"]) == (0, None, None)
    assert any(r["path"].endswith("/compare/s07...s100") for r in fake.requests)  # answered 404


@pytest.mark.parametrize("fault", ["429", "secondary", "500"])
def test_transient_faults_are_retried(engine, fake, waits, fault):
    fake.faults = [fault]
    (res,) = github.extract(DAY, engine, "r1", transport(fake))
    assert (res.extracted, res.loaded, res.quarantined) == (6, 3, 3)
    assert len(waits) == 1
    if fault != "500":
        assert waits == [1.0]  # retry-after honoured


def test_primary_rate_limit_reset_too_far_fails_clearly(engine, fake, waits, monkeypatch):
    import time as _time

    def limited(kind):
        return (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(_time.time()) + 3600)},
            {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest",
            },
        )

    monkeypatch.setattr(fake, "fault", limited)
    fake.faults = ["limit"]
    with pytest.raises(SourceError, match="rate limited for .* re-run the task later"):
        github.extract(DAY, engine, "r1", transport(fake))


def test_401_names_the_connection(engine, fake, waits, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_GITHUB",
        json.dumps({"conn_type": "http", "host": fake.url, "password": "ghp_wrong", "extra": {"repo": REPO}}),
    )
    with pytest.raises(SourceError) as exc:
        github.extract(DAY, engine, "r1")
    msg = str(exc.value)
    assert "GitHub GET /repos/desk/trading-api/deployments failed with HTTP 401: Bad credentials" in msg
    assert "check the token in connection 'kaizen_github'" in msg
    assert "ghp_wrong" not in msg
    assert waits == []


def test_403_without_rate_limit_is_permission_error(engine, fake, waits):
    fake.faults = ["403"]
    with pytest.raises(SourceError, match="lacks permission"):
        github.extract(DAY, engine, "r1", transport(fake))
    assert waits == []


def test_connection_without_repo_is_refused(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_GITHUB", json.dumps({"conn_type": "http", "password": "x"}))
    with pytest.raises(SourceError, match='extra {"repo": "owner/name"}'):
        github.extract(DAY, engine, "r1")


def test_demo_transport_equals_http(engine, fake, waits, tmp_path):
    write_github_demo(tmp_path)
    (demo,) = github.extract(DAY, engine, "r1", github.demo_transport(tmp_path))
    first = snapshot(engine)
    (live,) = github.extract(DAY, engine, "r1", transport(fake))
    assert demo == live
    assert snapshot(engine) == first


def test_reextract_identical(engine, fake, waits):
    github.extract(PREV_DAY, engine, "r1", transport(fake))
    github.extract(DAY, engine, "r1", transport(fake))
    first = snapshot(engine)
    github.extract(DAY, engine, "r1", transport(fake))
    assert snapshot(engine) == first


def test_payload_as_json_text_is_understood():
    assert github._payload({"payload": '{"rollback_of": 7}'}) == {"rollback_of": 7}
    assert github._payload({"payload": ""}) == {}
