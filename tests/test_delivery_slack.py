"""Delivery over the real wire: slack_sdk's WebClient → HTTP → the local fake Slack
(tests/fakes/slack.py); the ledger on SQLite and PostgreSQL; the outbox."""

from __future__ import annotations

import json

import pytest

from fakes.slack import FakeSlack
from kaizen import delivery
from kaizen.delivery import ledger
from kaizen.delivery.slack import SlackDeliveryError
from kaizen.reports.render import content_hash

CHANNEL = "C0DAILY01"
PERIOD = "2026-11-27"


def payload(trades: int = 42, run_id: str = "run-1", title: str = "deploy & rollback") -> dict:
    return {
        "text": f"📊 Daily Trading Review — Fri 27 Nov 2026: {trades} trades",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "📊 Daily Trading Review — Fri 27 Nov 2026"},
            },
            {
                "type": "section",
                "block_id": "trading",
                "text": {"type": "mrkdwn", "text": f"• Trades: *{trades}*"},
            },
            {"type": "section", "block_id": "issues", "text": {"type": "mrkdwn", "text": title}},
            {
                "type": "context",
                "block_id": "kaizen_meta_run",
                "elements": [{"type": "mrkdwn", "text": f"Kaizen · {run_id}"}],
            },
        ],
    }


@pytest.fixture
def slack(monkeypatch, tmp_path):
    with FakeSlack() as fake:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KAIZEN_SLACK",
            json.dumps({"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": fake.base_url}}),
        )
        monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", CHANNEL)
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
        yield fake


def send(engine, p, md="# md\n"):
    return delivery.deliver("daily_review", PERIOD, p, md, engine, channel_kind="daily")


def test_first_delivery_posts_once_and_records_ts(engine, slack):
    result = send(engine, payload())
    assert result.action == "posted" and result.version == 1 and result.sink == "slack"
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 1 and slack.calls == posts
    assert posts[0].body["channel"] == CHANNEL
    assert posts[0].body["blocks"] == payload()["blocks"]
    assert posts[0].auth == "Bearer xoxb-test"
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert (row.status, row.message_ts, row.channel_id, row.version) == (
        "delivered",
        result.message_ts,
        CHANNEL,
        1,
    )
    assert row.content_hash == content_hash(payload()) and row.first_delivered_at is not None


def test_same_content_again_makes_no_call(engine, slack):
    first = send(engine, payload())
    slack.reset_calls()
    again = send(engine, payload(run_id="run-2"))  # a re-run: only the run id differs
    assert slack.calls == []
    assert again.action == "unchanged" and again.message_ts == first.message_ts and again.version == 1


def test_changed_content_updates_the_same_message_and_notes_it_in_thread(engine, slack):
    first = send(engine, payload(trades=42))
    slack.reset_calls()
    second = send(engine, payload(trades=43, run_id="run-2"))
    assert second.action == "updated" and second.version == 2 and second.message_ts == first.message_ts
    updates = slack.calls_to("chat.update")
    assert len(updates) == 1 and updates[0].body["ts"] == first.message_ts
    assert "*43*" in json.dumps(updates[0].body["blocks"])
    assert slack.top_level_posts() == []
    replies = slack.thread_replies()
    assert len(replies) == 1 and replies[0].body["thread_ts"] == first.message_ts
    assert replies[0].body["text"].startswith("Revised:")
    assert slack.messages[(CHANNEL, first.message_ts)]["blocks"][1]["text"]["text"] == "• Trades: *43*"
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert (row.version, row.status, row.message_ts) == (2, "delivered", first.message_ts)
    slack.reset_calls()
    assert send(engine, payload(trades=43, run_id="run-3")).action == "unchanged"
    assert slack.calls == []


def test_rate_limit_is_retried_then_succeeds(engine, slack):
    slack.fail("chat.postMessage", "ratelimited", times=1)
    result = send(engine, payload())
    posts = slack.calls_to("chat.postMessage")
    assert [c.http_status for c in posts] == [429, 200]
    assert len(slack.top_level_posts()) == 1
    assert result.action == "posted"
    assert ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL).status == "delivered"


def test_invalid_auth_fails_at_once_and_is_recorded(engine, slack):
    slack.fail("*", "invalid_auth", times=5)
    with pytest.raises(SlackDeliveryError) as err:
        send(engine, payload())
    msg = str(err.value)
    assert "kaizen_slack" in msg and "invalid_auth" in msg and "password" in msg
    assert len(slack.calls) == 1  # no retry
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert row.status == "failed" and "invalid_auth" in row.error and row.message_ts is None


def test_wrong_token_is_invalid_auth(engine, slack, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_SLACK",
        json.dumps({"conn_type": "slack", "password": "xoxb-wrong", "extra": {"base_url": slack.base_url}}),
    )
    with pytest.raises(SlackDeliveryError, match="invalid_auth"):
        send(engine, payload())


def test_channel_not_found_names_the_channel_and_the_setting(engine, slack, monkeypatch):
    monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", "C0NOPE000")
    with pytest.raises(SlackDeliveryError) as err:
        send(engine, payload())
    assert "C0NOPE000" in str(err.value) and "KAIZEN_SLACK_DAILY_CHANNEL" in str(err.value)
    assert len(slack.calls) == 1
    assert ledger.get(engine, "daily_review", PERIOD, "slack", "C0NOPE000").status == "failed"


def test_not_in_channel_says_invite(engine, slack):
    slack.fail("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackDeliveryError, match="invite"):
        send(engine, payload())


def test_channel_names_are_refused(engine, slack, monkeypatch):
    monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", "#kaizen-daily")
    with pytest.raises(SlackDeliveryError, match="not a channel ID"):
        send(engine, payload())
    assert slack.calls == []


def test_channel_from_connection_extra(engine, slack, monkeypatch):
    monkeypatch.delenv("KAIZEN_SLACK_DAILY_CHANNEL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_SLACK",
        json.dumps(
            {
                "conn_type": "slack",
                "password": "xoxb-test",
                "extra": {"base_url": slack.base_url, "channels": {"daily": "C0REVIEW1"}},
            }
        ),
    )
    assert send(engine, payload()).target == "C0REVIEW1"


def test_server_error_on_post_is_not_retried_and_recorded_failed(engine, slack):
    slack.fail("chat.postMessage", "server_error", times=1)
    with pytest.raises(SlackDeliveryError, match="may have been posted"):
        send(engine, payload())
    assert len(slack.calls_to("chat.postMessage")) == 1
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert row.status == "failed" and row.message_ts is None
    # the task's retry: a failed row without a message posts again
    slack.reset_calls()
    assert send(engine, payload()).action == "posted"
    assert len(slack.top_level_posts()) == 1


def test_server_error_on_update_is_retried(engine, slack):
    send(engine, payload(trades=42))
    slack.reset_calls()
    slack.fail("chat.update", "server_error", times=1)
    result = send(engine, payload(trades=44))
    assert [c.http_status for c in slack.calls_to("chat.update")] == [500, 200]
    assert result.action == "updated" and slack.top_level_posts() == []


def test_failed_update_keeps_the_message_and_is_redone(engine, slack):
    first = send(engine, payload(trades=42))
    slack.fail("chat.update", "server_error", times=3)  # outlasts the retries
    with pytest.raises(SlackDeliveryError):
        send(engine, payload(trades=45))
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert (row.status, row.message_ts, row.version) == ("failed", first.message_ts, 1)
    assert row.content_hash == content_hash(payload(trades=42))  # what Slack still shows
    slack.reset_calls()
    again = send(engine, payload(trades=45))
    assert again.action == "updated" and again.version == 2 and slack.top_level_posts() == []


def test_invalid_blocks_are_rejected_like_slack(engine, slack):
    p = payload()
    p["blocks"][1]["text"]["text"] = "x" * 3001
    with pytest.raises(SlackDeliveryError, match="invalid_blocks") as err:
        send(engine, p)
    msg = str(err.value)
    # Slack's own details name the bad block
    assert "errors: must be less than 3001 characters [json-pointer:/blocks/1/text]" in msg
    assert "response_metadata.messages: [ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text]" in msg
    assert "connection 'kaizen_slack'" in msg and CHANNEL in msg and "Retrying cannot help" in msg
    assert err.value.retryable is False and err.value.slack_error == "invalid_blocks"
    assert len(slack.calls_to("chat.postMessage")) == 1
    row = ledger.get(engine, "daily_review", PERIOD, "slack", CHANNEL)
    assert row.status == "failed" and "json-pointer:/blocks/1/text" in row.error


@pytest.mark.parametrize(
    ("fault", "fragments"),
    [
        ("invalid_blocks_format", ["must provide an object [json-pointer:/blocks/0/text]", "not valid Block Kit"]),
        ("msg_too_long", ["msg_too_long", "40,000 characters"]),
        ("invalid_arguments", ["response_metadata.messages: [ERROR] missing required field: channel"]),
        ("too_many_attachments", ["more than 100 attachments"]),
        ("no_text", ["neither text nor blocks"]),
    ],
)
def test_a_refused_message_is_permanent_and_quotes_slack(engine, slack, fault, fragments):
    slack.fail("chat.postMessage", fault)
    with pytest.raises(SlackDeliveryError) as err:
        send(engine, payload())
    msg = str(err.value)
    assert err.value.retryable is False and err.value.transient is False and err.value.slack_error == fault
    for fragment in [fault, *fragments, "connection 'kaizen_slack'", CHANNEL, "fix the message Kaizen renders"]:
        assert fragment in msg
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_missing_scope_names_the_scope_needed(engine, slack):
    slack.fail("chat.postMessage", "missing_scope")
    with pytest.raises(SlackDeliveryError) as err:
        send(engine, payload())
    msg = str(err.value)
    assert "missing_scope" in msg and "needed scope: chat:write; the token has: channels:read" in msg
    assert err.value.retryable is False and "kaizen_slack" in msg


def test_a_rate_limit_that_outlasts_the_retries_is_transient(engine, slack, monkeypatch):
    from types import SimpleNamespace

    from slack_sdk.http_retry import builtin_handlers

    slept = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    slack.fail("chat.postMessage", "ratelimited:9", times=4)
    with pytest.raises(SlackDeliveryError) as err:
        send(engine, payload())
    msg = str(err.value)
    assert err.value.retryable is True
    assert "still rate limited (HTTP 429, Retry-After 9 s)" in msg and "kaizen_slack" in msg and CHANNEL in msg
    assert len(slack.calls_to("chat.postMessage")) == 4 and len(slept) == 3 and all(9 <= w < 10 for w in slept)


def test_a_ledger_that_is_down_stops_the_post_before_it_is_made(engine, slack, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("warehouse down")

    monkeypatch.setattr(ledger, "write", broken)
    with pytest.raises(delivery.LedgerWriteError, match="could not record the intent to post the review .*"
                                                        "nothing was sent"):
        send(engine, payload())
    assert slack.top_level_posts() == []
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK")  # every sink: the outbox too
    with pytest.raises(delivery.LedgerWriteError, match="written to outbox daily_review/2026-11-27"):
        send(engine, payload())


def test_ledger_write_failure_after_post_is_an_error_and_the_rerun_posts_nothing(engine, slack, monkeypatch):
    """The post succeeded and only the final ledger write failed: the error names the
    message; the re-run finds it by its key (metadata) and posts nothing new."""
    real = ledger.write

    def broken_after_post(*args, **kwargs):
        if kwargs.get("status") == ledger.DELIVERED:
            raise RuntimeError("warehouse down")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "write", broken_after_post)
    with pytest.raises(delivery.LedgerWriteError, match="posted in Slack channel C0DAILY01 .ts 1790000000"):
        send(engine, payload())
    monkeypatch.setattr(ledger, "write", real)
    again = send(engine, payload())
    assert len(slack.top_level_posts()) == 1
    assert again.message_ts == slack.top_level_posts()[0].response["ts"]
    row = ledger.get(engine, "daily_review", PERIOD, "slack", "C0DAILY01")
    assert (row.status, row.message_ts, json.loads(row.thread_state)) == ("delivered", again.message_ts, {})


def test_outbox_without_connection_writes_the_exact_payload(engine, monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    p = payload(title="<!channel> deploy & <@U123> rollback")
    result = send(engine, p, md="# Daily review\n")
    folder = tmp_path / "out" / "daily_review" / PERIOD
    assert result.sink == "outbox" and result.action == "written" and result.path == str(folder)
    assert json.loads((folder / "slack_payload.json").read_text(encoding="utf-8")) == p
    assert (folder / "daily_review.md").read_text(encoding="utf-8") == "# Daily review\n"
    row = ledger.get(engine, "daily_review", PERIOD, "outbox", "daily_review/" + PERIOD)
    assert (row.sink, row.status, row.version, row.content_hash) == (
        "outbox",
        "delivered",
        1,
        content_hash(p),
    )
    assert send(engine, p, md="# Daily review\n").action == "unchanged"
    changed = send(engine, payload(trades=7), md="# v2\n")
    assert changed.action == "written" and changed.version == 2
    assert json.loads((folder / "slack_payload.json").read_text(encoding="utf-8")) == payload(trades=7)


@pytest.fixture
def no_slack(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))


def outbox_row(engine):
    return ledger.get(engine, "daily_review", PERIOD, "outbox", "daily_review/" + PERIOD)


def broken_once(monkeypatch, module, name: str) -> None:
    real = getattr(module, name)

    def broken(*args, **kwargs):
        monkeypatch.setattr(module, name, real)
        raise OSError("disk full")

    monkeypatch.setattr(module, name, broken)


def test_version_counts_deliveries_not_attempts(engine, no_slack, monkeypatch):
    """The one versioning rule (kaizen.delivery.ledger): 1 on the first delivery, + 1
    only when delivered content changes; a failed attempt is recorded without bumping."""
    from kaizen.delivery import outbox

    broken_once(monkeypatch, outbox, "write")
    with pytest.raises(OSError, match="disk full"):
        send(engine, payload(trades=1))
    row = outbox_row(engine)
    assert (row.status, row.version, row.first_delivered_at) == ("failed", 1, None)
    assert row.error == "OSError: disk full"
    # the content changed before the retry: still the first delivery, so version 1
    assert (send(engine, payload(trades=2)).action, outbox_row(engine).version) == ("written", 1)

    broken_once(monkeypatch, outbox, "write")
    with pytest.raises(OSError):
        send(engine, payload(trades=3))
    row = outbox_row(engine)
    assert (row.status, row.version, row.content_hash) == ("failed", 1, content_hash(payload(trades=2)))
    assert row.first_delivered_at is not None  # the last good delivery is kept
    assert send(engine, payload(trades=3)).version == 2
    assert send(engine, payload(trades=3)).action == "unchanged"


def test_fake_speaks_the_v2_upload_flow(slack):
    from slack_sdk import WebClient

    client = WebClient(token="xoxb-test", base_url=slack.base_url)
    resp = client.files_upload_v2(
        channel=CHANNEL, content=b"\x89PNG fake", filename="equity.png", title="Equity"
    )
    assert resp["file"]["title"] == "Equity"
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert slack.uploads[resp["file"]["id"]] == b"\x89PNG fake"
    assert client.auth_test()["team_id"] == "T0KAIZEN"
    assert client.conversations_info(channel=CHANNEL)["channel"]["id"] == CHANNEL


def test_rendered_daily_review_with_200_incidents_is_accepted_by_slack(engine, slack):
    from datetime import timedelta

    from kaizen.reports import daily
    from test_report_daily import DAY, WINDOW_START, incident, load_incidents, load_kpis

    load_kpis(engine)
    load_incidents(
        engine,
        [
            incident(f"I{n}", f"<!channel> {n} & co " * 15, WINDOW_START + timedelta(minutes=n), n=n)
            for n in range(1, 201)
        ],
    )
    rendered = daily.render_daily(daily.build_daily(engine, DAY), run_id="run-1")
    result = delivery.deliver(
        "daily_review", DAY.isoformat(), rendered["payload"], rendered["markdown"], engine
    )
    assert result.action == "posted" and result.content_hash == rendered["content_hash"]
    [post] = slack.calls_to("chat.postMessage")
    assert post.response["ok"] is True
    assert "<!channel>" not in json.dumps(post.body)


@pytest.mark.parametrize("fault", ["lost answer", "crash after the post", "lost answer of the revision note"])
def test_a_daily_post_whose_outcome_was_lost_is_found_not_doubled(engine, slack, fault):
    """Slack processed the post and the answer was lost, or the worker died right after
    it: the re-run finds the message by the key in its metadata (one top-level post;
    for a revision, one note in its thread)."""
    from kaizen.delivery import slack as slack_sink

    if fault.endswith("revision note"):
        first = send(engine, payload(trades=1))
        slack.fail("chat.postMessage", "lost_answer")  # the note, after the chat.update
        with pytest.raises(slack_sink.SlackDeliveryError):
            send(engine, payload(trades=2))
        again = send(engine, payload(trades=2))
        notes = [m for m in slack.messages.values() if m["thread_ts"] == first.message_ts]
        assert again.action == "updated" and len(notes) == 1 and notes[0]["text"].startswith("Revised:")
        assert len([m for m in slack.messages.values() if not m["thread_ts"]]) == 1
        return
    with pytest.MonkeyPatch.context() as mp:
        if fault == "lost answer":
            slack.fail("chat.postMessage", "lost_answer")
            expected = slack_sink.SlackDeliveryError
        else:
            real = slack_sink.post_message

            def post(*args, **kwargs):
                real(*args, **kwargs)
                raise SystemExit("killed")

            mp.setattr(slack_sink, "post_message", post)
            expected = SystemExit
        with pytest.raises(expected):
            send(engine, payload())
    again = send(engine, payload())
    tops = [m for m in slack.messages.values() if not m["thread_ts"]]
    assert len(tops) == 1 and again.message_ts == tops[0]["ts"]
    assert tops[0]["metadata"] == {"event_type": "kaizen_delivery",
                                   "event_payload": {"key": "kaizen:daily_review:2026-11-27"}}
