"""The fault matrix of issue 14, point 2 (permanent vs transient): one row per fault,
each played over real HTTP against the project's local fake servers with the real
clients — kaizen.sources.http.JsonClient (as the Prometheus, GitHub and PagerDuty
sources build it), slack_sdk's WebClient from kaizen.delivery.slack.make_client, and
gspread through kaizen.delivery.sheets. Each row states the outcome (ok, permanent or
transient), the fragments the error must contain (service, connection, Slack's or
Google's own words, what to do), the attempts the fake received, and the waits the
client took (recorded, not slept, so the file runs in a few seconds)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from fakes.github import FakeGitHub
from fakes.pagerduty import FakePagerDuty
from fakes.prometheus import FakePrometheus
from fakes.sheets import FakeSheetsServer
from fakes.slack import FakeSlack
from kaizen import config
from kaizen.delivery import sheets as sheets_sink
from kaizen.delivery import slack as slack_sink
from kaizen.errors import KaizenError, at_task_boundary
from kaizen.sources import github, http

OK, PERMANENT, TRANSIENT = "ok", "permanent", "transient"
CHANNEL = "C0DAILY01"
PROM_TOKEN, GH_TOKEN, PD_TOKEN = "prom-token", "ghp_matrix", "pd_matrix"
REPO = "desk/trading-api"
SID = "1kaizenMatrixSheet"

READ_QUOTA = ("Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' "
              "of service 'sheets.googleapis.com' for consumer 'project_number:0'.")


@dataclass(frozen=True)
class Row:
    service: str            # slack, prometheus, github, pagerduty, sheets
    fault: str              # the fault played (a fake's fault kind, or a scenario)
    outcome: str            # ok, permanent or transient
    attempts: int           # requests the fake received for the faulted call
    fragments: tuple[str, ...] = ()   # in the error message
    absent: tuple[str, ...] = ()      # never in the error message
    waits: tuple[tuple[float, float], ...] = ()  # each recorded wait, as (lowest, highest)
    options: dict = field(default_factory=dict, hash=False)
    max_s: float | None = None        # the row's wall time bound

    @property
    def id(self) -> str:
        return f"{self.service}-{self.fault}"


def exactly(*values: float) -> tuple[tuple[float, float], ...]:
    return tuple((v, v) for v in values)


SLACK_CONN = "connection 'kaizen_slack'"
PROM = ("Prometheus GET /api/v1/query_range", "connection 'kaizen_prometheus'")
GH = ("GitHub GET /repos/desk/trading-api/deployments", "connection 'kaizen_github'")
PD = ("PagerDuty GET /incidents", "connection 'kaizen_pagerduty'")

ROWS = [
    # ---------------------------------------------------------------- Slack
    Row("slack", "invalid_auth", PERMANENT, 1,
        ("Slack rejected the token of connection 'kaizen_slack' (invalid_auth) on chat.postMessage",
         "The call was to channel C0DAILY01", "bot token (xoxb-…", "password", "Retrying cannot help")),
    Row("slack", "channel_not_found", PERMANENT, 1,
        ("Slack refused chat.postMessage to channel C0NOPE000 (channel_not_found", SLACK_CONN,
         "KAIZEN_SLACK_DAILY_CHANNEL", "IDs, not names"),
        options={"channel": "C0NOPE000", "fault": None}),  # a channel the fake does not have
    Row("slack", "not_in_channel", PERMANENT, 1,
        ("Slack refused chat.postMessage to channel C0DAILY01 (not_in_channel", SLACK_CONN, "/invite @<app>")),
    Row("slack", "invalid_blocks", PERMANENT, 1,
        ("Slack chat.postMessage to channel C0DAILY01 (connection 'kaizen_slack') was refused (invalid_blocks)",
         "errors: must be less than 3001 characters [json-pointer:/blocks/1/text]",
         "response_metadata.messages: [ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text]",
         "Retrying cannot help"),
        options={"oversized_block": True, "fault": None}),  # refused by the fake's Block Kit check
    Row("slack", "invalid_blocks_format", PERMANENT, 1,
        ("(invalid_blocks_format)", "errors: invalid_blocks_format: must provide an object "
         "[json-pointer:/blocks/0/text]", "[ERROR] must provide an object", SLACK_CONN, CHANNEL)),
    Row("slack", "msg_too_long", PERMANENT, 1,
        ("was refused (msg_too_long)", "40,000 characters", SLACK_CONN, CHANNEL, "fix the message Kaizen renders")),
    Row("slack", "ratelimited:5", OK, 2, waits=((5, 6),)),  # Retry-After: 5, honoured
    Row("slack", "ratelimited:5 ×4", TRANSIENT, 4,
        ("still rate limited (HTTP 429, Retry-After 5 s)", SLACK_CONN, CHANNEL, "re-run the task"),
        waits=((5, 6),) * 3, options={"fault": "ratelimited:5", "times": 4}),
    Row("slack", "server_error on chat.update", OK, 2, waits=((0.5, 1.5),),
        options={"fault": "server_error", "method": "chat.update"}),
    Row("slack", "server_error ×3 on chat.update", TRANSIENT, 3,
        ("Slack chat.update to channel C0DAILY01 (connection 'kaizen_slack') failed with HTTP 500 "
         "(internal_error)", "Slack is failing or busy", "Re-run the task later"),
        waits=((0.5, 1.5), (1, 2)), options={"fault": "server_error", "method": "chat.update", "times": 3}),
    Row("slack", "server_error on chat.postMessage", TRANSIENT, 1,
        ("Slack answered HTTP 500 (internal_error)", "may have been posted anyway", SLACK_CONN,
         "looks the message up by its delivery key"),
        options={"fault": "server_error"}),
    # ---------------------------------------------------------------- Prometheus
    Row("prometheus", "bad_data", PERMANENT, 1,
        (*PROM, "failed with HTTP 400: bad_data: 1:1: parse error: unexpected character: '!'",
         "retrying cannot help")),
    Row("prometheus", "401", PERMANENT, 1, (*PROM, "HTTP 401", "check the token"), absent=(PROM_TOKEN,)),
    Row("prometheus", "503", OK, 2, waits=exactly(1.0)),
    Row("prometheus", "503 always", TRANSIENT, 3,
        (*PROM, "still failing after 3 attempts (last: HTTP 503: unavailable: TSDB not ready)",
         "may be down or overloaded: retry later"),
        waits=exactly(1.0, 2.0), options={"always": "503"}),
    Row("prometheus", "429", OK, 2, waits=exactly(1.0)),  # Retry-After: 1
    Row("prometheus", "truncated", OK, 2, waits=exactly(1.0)),
    Row("prometheus", "truncated always", TRANSIENT, 3,
        (*PROM, "still failing after 3 attempts (last: body cut off after ", "keeps cutting its answers off"),
        waits=exactly(1.0, 2.0), options={"always": "truncated"}),
    Row("prometheus", "truncated_chunked always", TRANSIENT, 3,
        (*PROM, "(last: body cut off after ", "keeps cutting its answers off"),
        waits=exactly(1.0, 2.0), options={"always": "truncated_chunked"}),
    Row("prometheus", "bad_gzip always", TRANSIENT, 3,
        (*PROM, "(last: body could not be decoded (Content-Encoding 'gzip'"),
        waits=exactly(1.0, 2.0), options={"always": "bad_gzip"}),
    Row("prometheus", "html", OK, 2, waits=exactly(1.0)),
    Row("prometheus", "html always", TRANSIENT, 3,
        (*PROM, "(last: HTTP 200 answer is not JSON (content-type 'text/html; charset=utf-8'",
         "is the Prometheus API itself, not a proxy, login or error page"),
        waits=exactly(1.0, 2.0), options={"always": "html"}),
    Row("prometheus", "trickle always", TRANSIENT, 2,
        (*PROM, "(last: no complete answer within the 0.5 s deadline", "answers too slowly"),
        waits=exactly(1.0), options={"always": "trickle", "client": {"max_attempts": 2, "total_deadline_s": 0.5}},
        max_s=3.0),
    # ---------------------------------------------------------------- GitHub
    Row("github", "401", PERMANENT, 1,
        (*GH, "failed with HTTP 401: Bad credentials", "check the token in connection 'kaizen_github'"),
        absent=(GH_TOKEN,)),
    Row("github", "html always", TRANSIENT, 3,
        (*GH, "still failing after 3 attempts (last: HTTP 200 answer is not JSON", "is the GitHub API itself"),
        waits=exactly(1.0, 2.0), options={"always": "html"}),
    Row("github", "truncated", OK, 2, waits=exactly(1.0)),
    Row("github", "secondary", OK, 2, waits=exactly(1.0)),  # 403 + retry-after: 1
    Row("github", "429_reset", OK, 2, waits=((4.5, 6.5),)),  # x-ratelimit-reset: now + 5 s
    # ---------------------------------------------------------------- PagerDuty
    Row("pagerduty", "2002", PERMANENT, 1,
        (*PD, "failed with HTTP 400: Arguments Caused Error (error code 2002, errors: Since cannot be after until.)",
         "retrying cannot help")),
    Row("pagerduty", "401", PERMANENT, 1, (*PD, "HTTP 401: Authentication failed (error code 2006)",
                                            "check the token"), absent=(PD_TOKEN,)),
    Row("pagerduty", "429_reset", OK, 2, waits=exactly(7.0)),  # ratelimit-reset: 7, no Retry-After
    Row("pagerduty", "429_reset always", TRANSIENT, 3,
        (*PD, "(last: HTTP 429 (rate limited))", "kept rate-limiting the token of connection 'kaizen_pagerduty'"),
        waits=exactly(7.0, 7.0), options={"always": "429_reset"}),
    Row("pagerduty", "500", OK, 2, waits=exactly(1.0)),
    Row("pagerduty", "truncated_chunked", OK, 2, waits=exactly(1.0)),
    # ---------------------------------------------------------------- Google Sheets
    Row("sheets", "429 read quota", TRANSIENT, 3,
        ("Google Sheets values.batchGet on spreadsheet '1kaizenMatrixSheet' was still rate-limited (HTTP 429: "
         "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'",
         "The Sheets API allows 60 read requests per minute per user", "connection 'kaizen_gsheets'",
         "Find what else reads with this account"),
        absent=("write requests",), waits=exactly(2.0, 2.0),
        options={"status": 429, "ops": ["values.batchGet"], "message": READ_QUOTA}),
    Row("sheets", "429 write quota", TRANSIENT, 3,
        ("Google Sheets values.batchUpdate on spreadsheet '1kaizenMatrixSheet' was still rate-limited (HTTP 429: "
         "Quota exceeded for quota metric 'Write requests'", "The Sheets API allows 60 write requests per minute "
         "per user", "connection 'kaizen_gsheets'", "Find what else writes with this account"),
        absent=("read requests per minute",), waits=exactly(2.0, 2.0),
        options={"status": 429, "ops": ["values.batchUpdate"]}),
    Row("sheets", "403", PERMANENT, 1,
        ("Google Sheets values.batchGet", "HTTP 403", "Connection 'kaizen_gsheets'", "Editor access"),
        options={"status": 403, "ops": ["values.batchGet"]}),
    Row("sheets", "503 once", OK, 2, waits=exactly(2.0),
        options={"status": 503, "ops": ["values.batchGet"], "times": 1}),
]


@dataclass
class Played:
    error: BaseException | None
    attempts: int
    waits: list[float]


# ---------------------------------------------------------------------------- fakes, once per module


@pytest.fixture(scope="module")
def fakes():
    with (
        FakeSlack() as slack,
        FakePrometheus(token=PROM_TOKEN) as prom,
        FakeGitHub(REPO, deployments=[{"id": 1, "sha": "abc", "environment": "production",
                                       "created_at": "2026-11-27T04:00:00Z"}], token=GH_TOKEN) as gh,
        FakePagerDuty(token=PD_TOKEN) as pd,
        FakeSheetsServer() as sheets,
    ):
        yield SimpleNamespace(slack=slack, prometheus=prom, github=gh, pagerduty=pd, sheets=sheets)


@pytest.fixture
def slept(monkeypatch):
    """Every client's back-off and rate-limit waits, recorded instead of slept."""
    from slack_sdk.http_retry import builtin_handlers, handler

    waits: list[float] = []
    monkeypatch.setattr(http, "_sleep", waits.append)
    clock = SimpleNamespace(sleep=waits.append)
    monkeypatch.setattr(builtin_handlers, "time", clock)
    monkeypatch.setattr(handler, "time", clock)
    return waits


# ---------------------------------------------------------------------------- players


def play_slack(row: Row, fake: FakeSlack, waits: list[float]) -> Played:
    fake.reset_calls()
    fake.messages.clear()
    conn = config.Conn(config.SLACK_CONN_ID, conn_type="slack", password="xoxb-test",
                       extra={"base_url": fake.base_url})
    client = slack_sink.make_client(conn)
    opts = row.options
    channel = opts.get("channel", CHANNEL)
    method = opts.get("method", "chat.postMessage")
    payload = {"text": "Daily review", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Daily review"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * (3001 if opts.get("oversized_block") else 10)}},
    ]}
    ts = slack_sink.post_message(client, CHANNEL, {"text": "first"}).ts if method == "chat.update" else None
    fake.reset_calls()
    fault = opts.get("fault", row.fault)
    if fault:
        fake.fail("*" if fault == "invalid_auth" else method, fault, times=opts.get("times", 1))
    error = None
    try:
        if method == "chat.update":
            slack_sink.update_message(client, channel, ts, payload)
        else:
            slack_sink.post_message(client, channel, payload)
    except Exception as exc:  # noqa: BLE001 - explained as delivery does
        error = slack_sink.explain(exc, method=method, channel=channel, kind="daily")
    assert fake._faults.get(method, []) == [] and fake._faults.get("*", []) == []  # every queued fault was met
    return Played(error, len(fake.calls_to(method)), waits)


def _json_fault(row: Row, fake) -> None:
    fake.requests.clear()
    fake.always = row.options.get("always")
    fake.faults = [] if fake.always else [row.fault]


def play_prometheus(row: Row, fake: FakePrometheus, waits: list[float]) -> Played:
    _json_fault(row, fake)
    fake.trickle_s = 0.05
    client = http.JsonClient("Prometheus", config.PROMETHEUS_CONN_ID, fake.url,
                             {"Accept": "application/json", "Authorization": f"Bearer {PROM_TOKEN}"},
                             **{"max_attempts": 3, **row.options.get("client", {})})
    try:
        body = client.get_json("/api/v1/query_range", {"query": "probe_success", "start": 1790000000,
                                                       "end": 1790003540, "step": 60})
        assert body["status"] == "success"
        error = None
    except KaizenError as exc:
        error = exc
    return Played(error, len(fake.requests), waits)


def play_github(row: Row, fake: FakeGitHub, waits: list[float]) -> Played:
    _json_fault(row, fake)
    client = github.client_for(fake.url, GH_TOKEN, max_attempts=3)
    try:
        resp = client.get(f"/repos/{REPO}/deployments", {"environment": "production", "per_page": 100})
        assert [d["id"] for d in resp.json()] == [1]  # as github._paged reads a page
        error = None
    except KaizenError as exc:
        error = exc
    return Played(error, len(fake.requests), waits)


def play_pagerduty(row: Row, fake: FakePagerDuty, waits: list[float]) -> Played:
    _json_fault(row, fake)
    client = http.JsonClient("PagerDuty", config.PAGERDUTY_CONN_ID, fake.url,
                             {"Accept": "application/json", "Authorization": f"Token token={PD_TOKEN}"},
                             max_attempts=3)
    try:
        body = client.get_json("/incidents", {"since": "2026-11-27T00:00:00Z", "until": "2026-11-28T00:00:00Z",
                                              "limit": 100, "offset": 0})
        assert body["incidents"] == [] and body["more"] is False
        error = None
    except KaizenError as exc:
        error = exc
    return Played(error, len(fake.requests), waits)


def play_sheets(row: Row, fake: FakeSheetsServer, waits: list[float]) -> Played:
    fake.spreadsheets.clear()
    fake.create_spreadsheet(SID, sheets=(("Daily", 100, 10),))  # an existing tab: the sync reads it first
    fake.clear_faults()
    conn = config.Conn(config.GSHEETS_CONN_ID, conn_type="google_sheets",
                       extra={"spreadsheet_id": SID, "base_url": fake.base_url})
    policy = sheets_sink.RetryPolicy(max_attempts=3, max_wait_s=10.0, base_delay_s=0.01, max_delay_s=0.01)
    sheet = sheets_sink.open_spreadsheet(conn, retry=policy)
    sheet.client.sleep = waits.append
    opts = row.options
    fake.fail(opts["status"], times=opts.get("times"), retry_after=2, ops=opts["ops"], message=opts.get("message"))
    with fake.lock:
        fake.requests.clear()
    tab = sheets_sink.SheetTab("Daily", ["period", "trades_count"], [["2026-11-27", 42]])
    try:
        sheets_sink.sync(sheet, [tab], "2026-11-27 18:00")
        assert fake.values(SID, "Daily") == [["period", "trades_count"], ["2026-11-27", 42]]
        error = None
    except KaizenError as exc:
        error = exc
    return Played(error, len(fake.calls(opts["ops"][0])), waits)


PLAYERS = {"slack": play_slack, "prometheus": play_prometheus, "github": play_github,
           "pagerduty": play_pagerduty, "sheets": play_sheets}


# ---------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault_matrix(row: Row, fakes, slept):
    t0 = time.monotonic()
    played = PLAYERS[row.service](row, getattr(fakes, row.service), slept)
    elapsed = time.monotonic() - t0
    if row.outcome == OK:
        assert played.error is None, f"{row.id}: expected success, got {played.error!r}"
    else:
        assert isinstance(played.error, KaizenError), f"{row.id}: expected an error, got {played.error!r}"
        assert played.error.transient is (row.outcome == TRANSIENT), str(played.error)
        message = str(played.error)
        missing = [f for f in row.fragments if f not in message]
        assert not missing, f"{row.id}: {missing} not in {message!r}"
        present = [f for f in row.absent if f.lower() in message.lower()]
        assert not present, f"{row.id}: {present} in {message!r}"
    assert played.attempts == row.attempts, f"{row.id}: {played.attempts} attempts on the fake"
    assert len(played.waits) == len(row.waits), f"{row.id}: waits {played.waits}"
    for wait, (lo, hi) in zip(played.waits, row.waits, strict=True):
        assert lo <= wait <= hi, f"{row.id}: waited {wait}, expected {lo}..{hi}"
    assert elapsed < (row.max_s or 5.0), f"{row.id}: took {elapsed:.1f} s"


def test_prometheus_bad_data_through_the_source_fails_the_task_on_its_first_request(waits):
    """End to end: the Prometheus source's own transport against the fake answering HTTP 400
    bad_data — one request, no back-off, and the task fails without Airflow retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from kaizen.sources import prometheus

    start = datetime(2026, 11, 27, tzinfo=UTC)
    with FakePrometheus(token=PROM_TOKEN) as fake:
        fake.always = "bad_data"
        fetch = prometheus.http_transport(fake.url, PROM_TOKEN)
        task = at_task_boundary(lambda: fetch(start, start + timedelta(hours=1)))
        with pytest.raises(AirflowFailException, match=r"HttpError \(permanent, not retried\): Prometheus GET "
                                                       r"/api/v1/query_range failed with HTTP 400: bad_data"):
            task()
        assert len(fake.requests) == 1 and waits == []
        # the error names the query Prometheus refused and the setting behind it
        with pytest.raises(http.HttpError, match=r"\(query 'probe_success', PromQL: min_over_time\(probe_success\{.*"
                                            r"setting KAIZEN_PROM_PROBE_SELECTOR\)") as info:
            fetch(start, start + timedelta(hours=1))
        assert not info.value.transient and info.value.status == 400
