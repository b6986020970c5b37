"""Review documents reach people (kaizen.delivery.reviews over the fake Slack): with a
publishing store (KAIZEN_PUBLISH_ROOT + KAIZEN_PUBLISH_BASE_URL) the Markdown, HTML and
charts are published under <root>/<report>/<period_key>/ and the Slack headline links
the HTML; without one, the HTML document is shared into the thread as a file, exactly
once. Re-runs send nothing; revisions republish at the same address or re-upload the
changed document. The review is the real render of an empty warehouse, handed to
delivery as the render task's XCom (everything by artefact URL)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from fakes.slack import FakeSlack
from kaizen import artifacts
from kaizen.delivery import ledger, reviews
from kaizen.reports import review

CHANNEL = "C0REVIEW1"
REPORT, PERIOD = "weekly_review", "2026-W47"
AS_OF = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
BASE_URL = "https://reports.example.test/kaizen"
LINK = f"{BASE_URL}/{REPORT}/{PERIOD}/review.html"
CHARTS = [f"{name}.png" for name in review.CHARTS]


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("AIRFLOW_CONN_KAIZEN_GSHEETS", "KAIZEN_PUBLISH_ROOT", "KAIZEN_PUBLISH_BASE_URL",
                 "KAIZEN_PUBLISH_CONN_ID", "KAIZEN_ARTIFACT_ROOT", "KAIZEN_ARTIFACT_CONN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    registry = tmp_path / "experiments.yaml"
    registry.write_text("experiments: []\n", encoding="utf-8")
    monkeypatch.setenv("KAIZEN_EXPERIMENTS_FILE", str(registry))
    return monkeypatch


@pytest.fixture
def slack(env):
    with FakeSlack() as fake:
        env.setenv("AIRFLOW_CONN_KAIZEN_SLACK", json.dumps(
            {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": fake.base_url}}))
        env.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", CHANNEL)
        yield fake


@pytest.fixture
def store(env, tmp_path):
    env.setenv("KAIZEN_PUBLISH_ROOT", (tmp_path / "published").as_uri())
    env.setenv("KAIZEN_PUBLISH_BASE_URL", BASE_URL + "/")
    return tmp_path / "published" / REPORT / PERIOD


def render(engine, *, retitle: str = "") -> tuple[dict, dict[str, bytes]]:
    """The render task's XCom (no inline documents) and the bytes it wrote, by file name."""
    report = review.build_review(engine, "weekly", date(2026, 11, 16), as_of=AS_OF)
    if retitle:  # a revision: other content
        report = replace(report, title=report.title + retitle)
    rendered = review.render_review(report, run_id="scheduled__t")
    xcom = {k: v for k, v in rendered.items() if k not in ("markdown", "html")}
    urls = {**{f"{n}.png": u for n, u in xcom["charts"].items()},
            "review.md": xcom["documents"]["markdown"], "review.html": xcom["documents"]["html"]}
    return xcom, {name: artifacts.get(url, what=name) for name, url in urls.items()}


def deliver(engine, xcom, **kwargs):
    return reviews.deliver_review(xcom, engine, sync_sheets=False, **kwargs)


def uploaded_names(fake: FakeSlack) -> list[str]:
    return [c.body["filename"] for c in fake.calls_to("files.getUploadURLExternal")]


def shared(fake: FakeSlack) -> list[tuple[str, bytes]]:
    """(title, bytes) of every file shared in a thread, in order."""
    return [(f["title"], fake.uploads[f["id"]]) for m in sorted(fake.messages.values(), key=lambda m: m["ts"])
            for f in m.get("files") or []]


# ---------------------------------------------------------------------------- with a store


def test_published_and_linked_from_the_headline(engine, slack, store):
    xcom, wrote = render(engine)
    result = deliver(engine, xcom)

    # the published files, byte for byte what the render wrote
    assert sorted(p.name for p in store.iterdir()) == sorted([*CHARTS, "review.md", "review.html"])
    for name, data in wrote.items():
        assert (store / name).read_bytes() == data, name
    html = (store / "review.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 4 and 'src="equity_drawdown.png"' not in html
    assert "](equity_drawdown.png)" in (store / "review.md").read_text(encoding="utf-8")  # beside it
    pub = result["publish"]
    assert (pub["sink"], pub["action"], pub["version"], pub["url"], pub["target"]) == (
        "publish", "published", 1, LINK, LINK)
    row = ledger.get(engine, REPORT, PERIOD, "publish", LINK)
    assert (row.status, row.version, row.content_hash) == ("delivered", 1, pub["content_hash"])

    # the headline: the link after the "detail" context, before the run's metadata
    [top] = slack.top_level_posts()
    blocks = top.body["blocks"]
    ids = [b.get("block_id") for b in blocks]
    assert ids[-3:] == ["detail", "full_report", "kaizen_meta_run"]
    assert blocks[ids.index("full_report")] == {
        "type": "section", "block_id": "full_report", "text": {"type": "mrkdwn", "text": f"📄 <{LINK}|Full report>"}}
    assert blocks[:-3] + blocks[-3:-2] + blocks[-1:] == xcom["headline"]["blocks"]  # nothing else changed
    # the document is linked, not attached: only the four charts go into the thread
    assert uploaded_names(slack) == CHARTS
    assert result["slack"]["document_file_id"] is None


def test_a_rerun_sends_and_writes_nothing(engine, slack, store):
    xcom, _ = render(engine)
    deliver(engine, xcom)
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    slack.reset_calls()
    again = deliver(engine, render(engine)[0])
    assert slack.calls == []
    assert again["publish"]["action"] == "unchanged" and again["slack"]["action"] == "unchanged"
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps

    # a published file deleted (or edited) in the store is published again; Slack hears nothing
    (store / "review.html").unlink()
    (store / "review.md").write_text("edited by hand", encoding="utf-8")
    assert deliver(engine, xcom)["publish"]["action"] == "published"
    assert (store / "review.md").read_bytes() == artifacts.get(xcom["documents"]["markdown"], what="md")
    assert (store / "review.html").exists() and slack.calls == []


def test_a_revision_republishes_at_the_same_address(engine, slack, store):
    first, _ = render(engine)
    deliver(engine, first)
    head_ts = slack.top_level_posts()[0].response["ts"]
    slack.reset_calls()
    revised, wrote = render(engine, retitle=" (revised)")
    result = deliver(engine, revised)
    assert (result["publish"]["action"], result["publish"]["version"], result["publish"]["url"]) == (
        "published", 2, LINK)
    for name, data in wrote.items():
        assert (store / name).read_bytes() == data, name
    assert "(revised)" in (store / "review.md").read_text(encoding="utf-8")
    [update] = slack.calls_to("chat.update")  # the headline, still linking the same address
    assert update.body["ts"] == head_ts and f"<{LINK}|Full report>" in json.dumps(update.body["blocks"])
    assert slack.top_level_posts() == [] and uploaded_names(slack) == []  # linked, never attached


def test_the_outbox_headline_carries_the_link_too(engine, env, store, tmp_path):
    env.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    xcom, wrote = render(engine)
    result = deliver(engine, xcom)
    folder = tmp_path / "out" / REPORT / PERIOD
    assert result["outbox"]["action"] == "written" and result["publish"]["action"] == "published"
    headline = json.loads((folder / "headline.json").read_text(encoding="utf-8"))
    assert f"<{LINK}|Full report>" in json.dumps(headline, ensure_ascii=False)
    assert (folder / "review.html").read_bytes() == wrote["review.html"] == (store / "review.html").read_bytes()


def test_a_half_configured_store_sends_nothing(engine, slack, env, tmp_path):
    env.setenv("KAIZEN_PUBLISH_BASE_URL", BASE_URL)
    xcom, _ = render(engine)
    with pytest.raises(ValueError, match="KAIZEN_PUBLISH_BASE_URL is set but KAIZEN_PUBLISH_ROOT is not"):
        deliver(engine, xcom)
    assert slack.calls == []


# ---------------------------------------------------------------------------- without a store


def test_without_a_store_the_document_is_shared_in_the_thread_once(engine, slack):
    xcom, wrote = render(engine)
    result = deliver(engine, xcom)
    [top] = slack.top_level_posts()
    assert "full_report" not in [b.get("block_id") for b in top.body["blocks"]]
    assert top.body["blocks"] == xcom["headline"]["blocks"]
    assert uploaded_names(slack) == [*CHARTS, f"{REPORT}_{PERIOD}.html"]
    titles = [t for t, _ in shared(slack)]
    assert titles[-1] == f"Weekly review {PERIOD}: full report"
    assert shared(slack)[-1][1] == wrote["review.html"]
    assert all(m["thread_ts"] == top.response["ts"] for m in slack.messages.values() if m.get("files"))
    state = json.loads(ledger.get(engine, REPORT, PERIOD, "slack", CHANNEL).thread_state)
    assert state["documents"]["review.html"]["file_id"] == result["slack"]["document_file_id"]
    assert result["publish"] is None

    slack.reset_calls()
    assert deliver(engine, render(engine)[0])["slack"]["action"] == "unchanged"
    assert slack.calls == []  # a re-run posts and uploads nothing
    assert len(slack.shared_files()) == 5


def test_a_revision_uploads_the_document_again_only_when_its_html_changed(engine, slack):
    first, _ = render(engine)
    deliver(engine, first)
    # other content, the same documents (a changed Sheet row, say): no new upload
    same_html = {**first, "content_hash": "0" * 64, "summary": first["summary"] + "; again"}
    slack.reset_calls()
    assert deliver(engine, same_html)["slack"]["action"] == "updated"
    assert uploaded_names(slack) == []
    [note] = slack.thread_replies()
    assert note.body["text"].startswith("Revised: ")

    revised, wrote = render(engine, retitle=" (revised)")
    slack.reset_calls()
    result = deliver(engine, revised)
    assert (result["slack"]["action"], result["slack"]["version"]) == ("updated", 3)
    assert uploaded_names(slack) == [f"{REPORT}_{PERIOD}.html"]  # the charts did not change
    title, data = shared(slack)[-1]
    assert (title, data) == (f"Weekly review {PERIOD}: full report (revised, version 3)", wrote["review.html"])
    assert len(slack.shared_files()) == 6  # 4 charts, the document, its revision
    slack.reset_calls()
    deliver(engine, revised)
    assert slack.calls == []
