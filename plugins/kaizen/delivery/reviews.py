"""Delivery of the review reports (weekly, monthly, quarterly): one ``RenderedReview``
(docs/contracts.md, "Review reports") to Slack or the outbox, and to Google Sheets or
its stand-in, with the ledger ``report_deliveries`` kept true for every sink.

The RenderedReview names its charts — and, as a render task's XCom, its Markdown and
HTML (``documents``) — by artefact URL (:mod:`kaizen.artifacts`); they are read back
from the artefact store before anything is sent, so delivery may run on another worker
than the render. A missing artefact fails at once, naming its URL.

Publishing (``KAIZEN_PUBLISH_ROOT`` + ``KAIZEN_PUBLISH_BASE_URL``): ``review.md``,
``review.html`` and ``<chart>.png`` are written under ``<root>/<report>/<period_key>/``
(:func:`kaizen.artifacts.publish`; the HTML embeds its charts, so it also reads
offline; the Markdown's ``<chart>.png`` links resolve beside it); ledger sink
``publish``, target the document's http(s) URL, the hash over the files' bytes. The
headline, wherever it goes (Slack, the outbox's ``headline.json``), then carries a
"Full report" link to ``<base_url>/<report>/<period_key>/review.html``; a revision
republishes at the same address.

Slack (connection ``kaizen_slack`` exists and ``post_to_slack``): one ledger row per
report × period × channel. The headline is the only top-level message; the thread
payloads follow as replies, then each chart is uploaded into the thread (files v2),
then — only without a publishing store — the HTML document
(``<report>_<period_key>.html``). The row's ``thread_state`` (JSON) records the reply
ts's with the hash of what each shows, the uploaded charts and document with the hash
of their bytes, and the content hash last delivered completely; ``summary`` holds that
content's one-line summary.

- Same content hash as the last complete delivery → no Slack call at all.
- New period → ``chat.postMessage`` of the headline, replies, uploads.
- Changed content (a late trade, a backfill) → exactly one ``chat.update``, of the
  headline (when it changed), and one thread reply "Revised: <old summary vs new>";
  never a new top-level message; version + 1. The earlier replies and charts stay as
  they were — the thread is the review's history and the note says the detail above
  is the previous version; the current detail is in the review document and the Sheet.
  The document itself is re-uploaded when its HTML changed (titled "revised"), so the
  thread holds the current one; the charts are not.
- The ledger is written after every Slack call that succeeded (status ``failed``,
  error "incomplete: …" until the end), so a failure or a crash half-way leaves the
  headline's ts and the replies already posted on record: the re-run resumes (posts
  only what is missing) instead of posting a second headline. ``chat.postMessage`` and
  ``files.completeUploadExternal`` are not retried on a 5xx (see ``slack.py``); the
  failure is recorded with its error and raised.

Outbox (no Slack connection, or ``post_to_slack=False`` as in a backfill): the files
``headline.json`` (the headline payload exactly as ``chat.postMessage`` gets it),
``thread.json`` (the reply payloads, in order), ``review.md``, ``review.html``,
``<chart>.png`` and, after a change, ``revisions.json`` (the "Revised:" notes) under
``<out_dir>/<report>/<period_key>/``; ledger sink ``outbox``.

Sheets (connection ``kaizen_gsheets`` exists and ``sync_sheets``): the ``sheet_rows``
tabs go through :func:`kaizen.delivery.sheets.sync` in one sync (rows upserted by key);
ledger sink ``sheets``, target the spreadsheet id, ``sheet_range`` the JSON of
``{tab: A1 range}``; the hash is over ``sheet_rows`` alone, so wording changes in the
Slack text do not re-sync. Without the connection each tab is merged by key into
``<out_dir>/sheets/<tab>.json`` (cells as they would go on the wire); ledger sink
``outbox``, target ``sheets``.

Every sink delivers through :class:`kaizen.delivery.ledger.Attempt`: the same skip /
send / record routine and the same versioning rule (1 on the first delivery, + 1 when
the delivered content changes, a failure recorded without touching the last good
version). Every sink is attempted even when an earlier one failed; the first failure
is then raised (the others attached as notes).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from kaizen import artifacts, config
from kaizen.calendar import IST, UTC
from kaizen.delivery import ledger, outbox
from kaizen.delivery import sheets as sheets_sink
from kaizen.delivery import slack as slack_sink
from kaizen.reports.render import META_BLOCK_PREFIX, check_block_kit, slack_escape
from kaizen.reports.render import content_hash as payload_hash

log = logging.getLogger(__name__)

SINK_SLACK = "slack"
SINK_OUTBOX = "outbox"
SINK_SHEETS = "sheets"
SINK_PUBLISH = "publish"
OUTBOX_SHEETS_TARGET = outbox.SHEETS_FOLDER

HEADLINE_FILE = "headline.json"
THREAD_FILE = "thread.json"
MARKDOWN_FILE = "review.md"
HTML_FILE = "review.html"
REVISIONS_FILE = "revisions.json"
RESERVED_FILES = frozenset({HEADLINE_FILE, THREAD_FILE, MARKDOWN_FILE, HTML_FILE, REVISIONS_FILE})

REQUIRED_KEYS = (  # and the documents: "markdown" and "html" inline, or by URL in "documents"
    "report",
    "period_key",
    "headline",
    "thread",
    "charts",
    "sheet_rows",
    "content_hash",
    "summary",
)
REMOVED_REPLY = {"text": "(This part is no longer in the review; see the revised thread.)"}
MAX_NOTE_CHARS = 3000


# ---------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Review:
    report: str
    period_key: str
    headline: dict
    thread: list[dict]
    markdown: str
    html: str
    charts: dict[str, bytes]  # name -> PNG bytes, read from the artefact store, in the rendered order
    sheet_rows: dict
    digest: str
    summary: str

    @classmethod
    def from_rendered(cls, rendered: dict) -> _Review:
        documents = rendered.get("documents") or {}
        missing = [k for k in REQUIRED_KEYS if k not in rendered]
        missing += [k for k in ("markdown", "html") if k not in rendered and not documents.get(k)]
        if missing:
            raise ValueError(f"RenderedReview lacks {', '.join(missing)}")
        outbox.folder(rendered["report"], rendered["period_key"])  # plain names or ValueError
        of = f"{rendered['report']} {rendered['period_key']}"
        headline, thread = rendered["headline"], rendered["thread"]
        if not isinstance(headline, dict) or not headline.get("text"):
            raise ValueError("RenderedReview headline must be a Block Kit payload with a 'text'")
        if not isinstance(thread, list) or not all(isinstance(p, dict) and p.get("text") for p in thread):
            raise ValueError("RenderedReview thread must be a list of Block Kit payloads with a 'text'")
        charts: dict[str, bytes] = {}
        for name, url in (rendered["charts"] or {}).items():
            file_name = f"{name}.png"
            if not name or "/" in name or "\\" in name or name.startswith(".") or file_name in RESERVED_FILES:
                raise ValueError(f"chart name {name!r} is not a plain name")
            charts[name] = artifacts.get(url, what=f"{of}: chart {name!r}")
        text = {
            k: str(rendered[k]) if k in rendered else artifacts.get_text(documents[k], what=f"{of}: the {k} document")
            for k in ("markdown", "html")
        }
        if not isinstance(rendered["sheet_rows"], dict):
            raise ValueError("RenderedReview sheet_rows must be a dict tab -> rows")
        return cls(
            report=rendered["report"],
            period_key=rendered["period_key"],
            headline=headline,
            thread=list(thread),
            markdown=text["markdown"],
            html=text["html"],
            charts=charts,
            sheet_rows=rendered["sheet_rows"],
            digest=str(rendered["content_hash"]),
            summary=str(rendered["summary"] or ""),
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sheet_rows_hash(sheet_rows: dict) -> str:
    canonical = json.dumps(sheet_rows, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return _sha256(canonical.encode("utf-8"))


def sheet_tabs(sheet_rows: dict) -> list[sheets_sink.SheetTab]:
    """``rendered["sheet_rows"]`` as :class:`~kaizen.delivery.sheets.SheetTab` s."""
    tabs = []
    for name, spec in sheet_rows.items():
        tabs.append(
            sheets_sink.SheetTab(
                name=name,
                header=list(spec["header"]),
                rows=[list(r) for r in spec.get("rows") or []],
                key_columns=int(spec.get("key_columns", 1)),
                number_formats=dict(spec.get("number_formats") or {}),
            )
        )
    return tabs


def last_sync_text(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")


def _chart_title(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


# ---------------------------------------------------------------------------- revision note


def _pair(old: str, new: str) -> str:
    """'win rate 57.1 %', 'win rate 57.3 %' -> 'win rate 57.1 % → 57.3 %'."""
    a, b = old.split(), new.split()
    k = 0
    while k < min(len(a), len(b)) - 1 and a[k] == b[k]:
        k += 1
    return " ".join([*a[:k], " ".join(a[k:]), "→", " ".join(b[k:])]).strip()


def describe_change(old: str | None, new: str | None) -> str:
    """What the revision note says changed, from the old and new one-line summaries.
    Summaries made of ``;``-separated items ("win rate 57.1 %; net P&L ₹1,200") are
    compared item by item and only the changed items are named."""
    old, new = (old or "").strip(), (new or "").strip()
    if not old:
        return new or "the figures changed"
    if not new:
        return "the figures changed"
    if old == new:
        return f"details changed; the headline figures are unchanged ({new})"
    a = [p.strip() for p in old.split(";")]
    b = [p.strip() for p in new.split(";")]
    if len(a) == len(b):
        return "; ".join(_pair(x, y) for x, y in zip(a, b, strict=True) if x != y)
    return f"{old} → {new}"


def revision_note(old_summary: str | None, new_summary: str | None, version: int) -> str:
    change = slack_escape(" ".join(describe_change(old_summary, new_summary).split()))
    tail = (
        f" (version {version}). The headline shows the current figures; the replies above are the"
        " previous version — the current detail is in the review document and the Sheet."
    )
    if len(change) + len(tail) + 10 > MAX_NOTE_CHARS:
        change = change[: MAX_NOTE_CHARS - len(tail) - 11].rstrip() + "…"
    return f"Revised: {change}{tail}"


# ---------------------------------------------------------------------------- documents

FULL_REPORT_BLOCK = "full_report"


def link_full_report(headline: dict, url: str) -> dict:
    """``headline`` with a "Full report" link to ``url``: a section after the "detail"
    context block (else before the run's metadata blocks, else last)."""
    link = {"type": "section", "block_id": FULL_REPORT_BLOCK,
            "text": {"type": "mrkdwn", "text": f"📄 <{slack_escape(url)}|Full report>"}}
    blocks = [b for b in headline.get("blocks") or [] if b.get("block_id") != FULL_REPORT_BLOCK]
    at = next((i + 1 for i, b in enumerate(blocks) if b.get("block_id") == "detail"), None)
    if at is None:
        at = next((i for i, b in enumerate(blocks) if str(b.get("block_id", "")).startswith(META_BLOCK_PREFIX)),
                  len(blocks))
    linked = {**headline, "blocks": [*blocks[:at], link, *blocks[at:]]}
    problems = check_block_kit(linked)
    if problems:
        raise ValueError(f"the headline with its 'Full report' link breaks Block Kit limits: {'; '.join(problems)}")
    return linked


def document_files(review: _Review) -> dict[str, bytes]:
    """What is published of a review: the Markdown, the HTML and the charts (beside the
    Markdown, whose image links name them)."""
    files = {MARKDOWN_FILE: review.markdown.encode("utf-8"), HTML_FILE: review.html.encode("utf-8")}
    files.update({f"{name}.png": data for name, data in review.charts.items()})
    return files


def _files_hash(files: dict[str, bytes]) -> str:
    return _sha256(json.dumps({n: _sha256(b) for n, b in files.items()}, sort_keys=True).encode("utf-8"))


def _deliver_publish(review: _Review, engine: sa.Engine, settings: config.PublishSettings) -> dict:
    files = document_files(review)
    digest = _files_hash(files)
    url = artifacts.published_url(settings, review.report, review.period_key, HTML_FILE)

    def send(_attempt: ledger.Attempt) -> ledger.Sent:
        artifacts.publish(settings, review.report, review.period_key, files)
        return ledger.Sent("published")

    attempt = ledger.Attempt(engine, review.report, review.period_key, SINK_PUBLISH, url, digest)
    done = attempt.run(send, present=lambda: artifacts.published_intact(settings, review.report,
                                                                        review.period_key, files))
    return {
        "sink": SINK_PUBLISH,
        "target": url,
        "content_hash": digest,
        "action": done.action,
        "version": done.version,
        "url": url,
        "files": sorted(files),
    }


# ---------------------------------------------------------------------------- entry point


def deliver_review(
    rendered: dict,
    engine: sa.Engine,
    *,
    channel_kind: str = "reviews",
    post_to_slack: bool = True,
    sync_sheets: bool = True,
    now: datetime | None = None,
    sheets_retry: sheets_sink.RetryPolicy | None = None,
) -> dict:
    """Deliver one RenderedReview; see the module docstring.

    ``post_to_slack=False`` (a backfill) writes the outbox instead of Slack even when
    Slack is configured; ``sync_sheets=False`` skips Sheets and its stand-in. ``now``
    (aware; default the wall clock) is the "last sync (IST)" stamp. Returns a JSON-able
    dict ``{"report", "period_key", "content_hash", "publish", "slack", "outbox",
    "sheets"}``, one entry per sink (``None`` when not used) with its ``action``,
    ``version`` and where the report went."""
    review = _Review.from_rendered(rendered)
    publishing = config.publish_settings()
    if publishing is not None:
        url = artifacts.published_url(publishing, review.report, review.period_key, HTML_FILE)
        review = replace(review, headline=link_full_report(review.headline, url))
    now = now or datetime.now(UTC)
    last_sync = last_sync_text(now)
    ledger.ensure_columns(engine)
    result: dict = {
        "report": review.report,
        "period_key": review.period_key,
        "content_hash": review.digest,
        "publish": None,
        "slack": None,
        "outbox": None,
        "sheets": None,
    }
    failures: list[BaseException] = []
    if publishing is not None:  # first: the headline links it
        try:
            result["publish"] = _deliver_publish(review, engine, publishing)
        except Exception as exc:
            failures.append(exc)
    conn = slack_sink.get_slack_connection() if post_to_slack else None
    try:
        if conn is not None:
            result["slack"] = _SlackDelivery(review, engine, conn, channel_kind,
                                             attach_document=publishing is None).run()
        else:
            result["outbox"] = _deliver_outbox(review, engine)
    except Exception as exc:
        failures.append(exc)
    if sync_sheets:
        try:
            result["sheets"] = deliver_sheets(
                review.report, review.period_key, review.sheet_rows, engine, last_sync=last_sync, retry=sheets_retry
            )
        except Exception as exc:
            failures.append(exc)
    if failures:
        first = failures[0]
        for other in failures[1:]:
            log.error("%s %s: another sink failed too: %s", review.report, review.period_key, other)
            first.add_note(f"also failed: {type(other).__name__}: {other}")
        raise first
    return result


# ---------------------------------------------------------------------------- Slack


class _SlackDelivery:
    def __init__(self, review: _Review, engine: sa.Engine, conn, kind: str, *, attach_document: bool = True):
        self.rv = review
        self.conn = conn
        self.kind = kind
        self.attach_document = attach_document  # no publishing store: the HTML goes into the thread
        self.channel = slack_sink.resolve_channel(conn, kind)
        self.attempt = ledger.Attempt(
            engine,
            review.report,
            review.period_key,
            SINK_SLACK,
            self.channel,
            review.digest,
            where={"channel_id": self.channel},
        )
        self.row = self.attempt.row
        self.state = self._load_state(self.row)
        self.ts: str | None = self.attempt.where["message_ts"]
        self.channel_id: str = self.attempt.where["channel_id"]
        self.steps: list[str] = []
        self.method = "chat.postMessage"
        self.key = f"kaizen:{review.report}:{review.period_key}"  # the deliveries' key in Slack metadata

    @staticmethod
    def _load_state(row: ledger.LedgerRow | None) -> dict:
        state: dict = {}
        if row is not None and row.thread_state:
            try:
                state = json.loads(row.thread_state)
            except ValueError:
                log.warning(
                    "report_deliveries.thread_state of %s %s is not JSON; ignored", row.report, row.period_key
                )
        state.setdefault("headline_hash", None)
        state.setdefault("replies", [])
        state.setdefault("charts", {})
        state.setdefault("documents", {})
        state.setdefault("notes", [])
        state.setdefault("noted_hash", None)
        state.setdefault("pending", None)  # the post an earlier try was about to make
        if "shown_hash" not in state:  # a row written by another code path
            delivered = row is not None and row.status == ledger.DELIVERED and row.message_ts
            state["shown_hash"] = row.content_hash if delivered else None
        return state

    def _result(self, action: str, version: int) -> dict:
        return {
            "sink": SINK_SLACK,
            "target": self.channel,
            "action": action,
            "version": version,
            "content_hash": self.rv.digest,
            "channel_id": self.channel_id,
            "message_ts": self.ts,
            "reply_ts": [r["ts"] for r in self.state["replies"]][: len(self.rv.thread)],
            "file_ids": {name: c["file_id"] for name, c in self.state["charts"].items()},
            "document_file_id": (self.state["documents"].get(HTML_FILE) or {}).get("file_id"),
            "note_ts": self.state["notes"][-1] if self.state["notes"] else None,
            "steps": list(self.steps),
        }

    # -- the ledger
    def _where(self) -> dict:
        return dict(
            channel_id=self.channel_id, message_ts=self.ts, thread_state=json.dumps(self.state, sort_keys=True)
        )

    def _checkpoint(self, step: str) -> None:
        """Record a Slack call that succeeded before making the next one."""
        self.steps.append(step)
        self.attempt.checkpoint(step, **self._where())

    # -- the run
    def run(self) -> dict:
        done = self.attempt.run(self._send, explain=self._explain)
        return self._result(done.action, done.version)

    def _send(self, attempt: ledger.Attempt) -> ledger.Sent:
        rv, row, version = self.rv, self.row, attempt.version
        shown = self.state["shown_hash"]
        revision = shown is not None and shown != rv.digest
        client = slack_sink.make_client(self.conn)
        posted_headline = self.ts is None
        self._headline(client)
        # a revision edits the headline only; replies and charts are posted when missing
        self._replies(client, version, in_place=not revision)
        self._charts(client, version, revision)
        if self.attach_document:
            self._document(client, version)
        if revision and self.state["noted_hash"] != rv.digest:
            text = revision_note(row.summary if row else None, rv.summary, version)
            note, _ = self._post_once(client, {"text": text}, f"{self.key}:revised:{version}", "the revision note",
                                      thread_ts=self.ts)
            self.state["notes"].append(note.ts)
            self.state["noted_hash"] = rv.digest
            self._checkpoint("the revision note")
        self.state["shown_hash"] = rv.digest
        action = "posted" if posted_headline else ("updated" if revision else "resumed")
        return ledger.Sent(action, {**self._where(), "summary": rv.summary})

    def _explain(self, exc: Exception) -> slack_sink.SlackDeliveryError:
        error = slack_sink.explain(exc, method=self.method, channel=self.channel, kind=self.kind)
        done = "; ".join(self.steps) or "nothing"
        where = (
            f" The headline exists (ts {self.ts}); a re-run resumes and posts only what is missing."
            if self.ts
            else ""
        )
        return slack_sink.SlackDeliveryError(
            f"{error} Done before the failure: {done}.{where}", slack_error=error.slack_error, retryable=error.retryable
        )

    def _post_once(self, client, payload: dict, key: str, what: str, *, thread_ts: str | None = None):
        """``chat.postMessage`` exactly once (:func:`kaizen.delivery.slack.post_once`):
        the intent in the ledger before the call, the message found by its key after
        an unknown outcome. Returns (the message, whether it was found)."""
        def record(intent: dict) -> None:
            self.state["pending"] = intent
            self.attempt.intend(what, **self._where())

        self.method = "chat.postMessage"
        posted, found = slack_sink.post_once(client, self.channel, payload, key, pending=self.state.get("pending"),
                                             record_intent=record, thread_ts=thread_ts)
        self.state["pending"] = None
        return posted, found

    def _headline(self, client) -> None:
        rv = self.rv
        digest = payload_hash(rv.headline)
        if self.ts is None:
            posted, found = self._post_once(client, rv.headline, self.key, "the headline")
            self.ts, self.channel_id = posted.ts, posted.channel_id
            # a new headline starts a new thread: nothing of an older one applies
            self.state.update(headline_hash=digest, replies=[], charts={}, documents={}, notes=[], noted_hash=None)
            self._checkpoint("the headline" + (" (found by its key)" if found else ""))
            if found:  # posted by an earlier try: show this content there
                self.method = "chat.update"
                slack_sink.update_message(client, self.channel, self.ts, rv.headline)
        elif self.state["headline_hash"] != digest:
            self.method = "chat.update"
            slack_sink.update_message(client, self.channel, self.ts, rv.headline)
            self.state["headline_hash"] = digest
            self._checkpoint("the headline update")

    def _replies(self, client, version: int, *, in_place: bool = True) -> None:
        replies = self.state["replies"]
        wanted = list(self.rv.thread)
        removed = dict(REMOVED_REPLY, text=f"(Version {version}: this part is no longer in the review.)")
        for i in range(max(len(wanted), len(replies))):
            payload = wanted[i] if i < len(wanted) else removed
            digest = payload_hash(payload) if i < len(wanted) else "removed"
            if i < len(replies):
                if replies[i]["hash"] == digest or not in_place:
                    continue
                self.method = "chat.update"
                slack_sink.update_message(client, self.channel, replies[i]["ts"], payload)
                replies[i]["hash"] = digest
                self._checkpoint(f"the update of reply {i + 1}")
            else:
                posted, found = self._post_once(client, payload, f"{self.key}:reply:{i + 1}", f"reply {i + 1}",
                                                thread_ts=self.ts)
                if found and digest != "removed":  # posted by an earlier try: this content there
                    self.method = "chat.update"
                    slack_sink.update_message(client, self.channel, posted.ts, payload)
                replies.append({"ts": posted.ts, "hash": digest})
                self._checkpoint(f"reply {i + 1} of {len(wanted)}")

    def _charts(self, client, version: int, revision: bool) -> None:
        for name, data in self.rv.charts.items():
            digest = _sha256(data)
            known = self.state["charts"].get(name)
            if known and (known["hash"] == digest or revision):
                continue
            title = _chart_title(name) + (f" (revised, version {version})" if known else "")
            self.method = "files.completeUploadExternal"

            def record(intent: dict, name=name) -> None:
                self.state["pending"] = intent
                self.attempt.intend(f"the upload of chart {name}", **self._where())

            file_id, found = slack_sink.upload_once(
                client, self.channel, self.ts, data, f"{name}.png", title, f"{self.key}:chart:{name}:{digest}",
                pending=self.state.get("pending"), record_intent=record)
            self.state["pending"] = None
            self.state["charts"][name] = {"file_id": file_id, "hash": digest}
            self._checkpoint(f"the upload of chart {name}" + (" (found in the thread)" if found else ""))

    def _document(self, client, version: int) -> None:
        """The HTML document uploaded into the thread exactly once per content (the
        same :func:`~kaizen.delivery.slack.upload_once` as the charts): again only
        when its HTML changed, titled as the revision it is."""
        rv = self.rv
        data = rv.html.encode("utf-8")
        digest = _sha256(data)
        known = self.state["documents"].get(HTML_FILE)
        if known and known["hash"] == digest:
            return
        title = f"{_chart_title(rv.report)} {rv.period_key}: full report" + (
            f" (revised, version {version})" if known else "")
        self.method = "files.completeUploadExternal"

        def record(intent: dict) -> None:
            self.state["pending"] = intent
            self.attempt.intend("the upload of the review document", **self._where())

        file_id, found = slack_sink.upload_once(
            client, self.channel, self.ts, data, f"{rv.report}_{rv.period_key}.html", title,
            f"{self.key}:document:{digest}", pending=self.state.get("pending"), record_intent=record)
        self.state["pending"] = None
        self.state["documents"][HTML_FILE] = {"file_id": file_id, "hash": digest}
        self._checkpoint("the upload of the review document" + (" (found in the thread)" if found else ""))


# ---------------------------------------------------------------------------- outbox


def outbox_files(review: _Review) -> dict[str, str | bytes]:
    """The outbox's files for ``review``: the Slack payloads exactly, the documents, the charts."""
    files: dict[str, str | bytes] = {
        HEADLINE_FILE: outbox.json_text(review.headline),
        THREAD_FILE: outbox.json_text(review.thread),
        MARKDOWN_FILE: review.markdown,
        HTML_FILE: review.html,
    }
    files.update({f"{name}.png": data for name, data in review.charts.items()})
    return files


def _deliver_outbox(review: _Review, engine: sa.Engine) -> dict:
    target = outbox.target(review.report, review.period_key)
    files = outbox_files(review)
    path = str(outbox.folder(review.report, review.period_key))

    def send(attempt: ledger.Attempt) -> ledger.Sent:
        if attempt.revision:
            revisions_path = outbox.folder(review.report, review.period_key) / REVISIONS_FILE
            notes = json.loads(revisions_path.read_text(encoding="utf-8")) if revisions_path.exists() else []
            text = revision_note(attempt.row.summary, review.summary, attempt.version)
            notes.append({"version": attempt.version, "text": text})
            files[REVISIONS_FILE] = outbox.json_text(notes)
        outbox.write_files(review.report, review.period_key, files)
        return ledger.Sent("written", {"summary": review.summary})

    attempt = ledger.Attempt(engine, review.report, review.period_key, SINK_OUTBOX, target, review.digest)
    done = attempt.run(send, present=lambda: outbox.files_exist(review.report, review.period_key, files))
    return {
        "sink": SINK_OUTBOX,
        "target": target,
        "content_hash": review.digest,
        "path": path,
        "action": done.action,
        "version": done.version,
        "files": sorted(files),
    }


# ---------------------------------------------------------------------------- Sheets


def _sheet_key(key_columns: int):
    def key_of(row: list) -> tuple:
        return tuple(sheets_sink._norm(v) for v in (list(row) + [""] * key_columns)[:key_columns])

    return key_of


def _wire_rows(tab: sheets_sink.SheetTab) -> tuple[list, list[list]]:
    """Header and rows as the sync sends them (inert text, JSON numbers, padded)."""
    width = len(tab.header)
    header = [sheets_sink._cell(h) for h in tab.header]
    rows = [[sheets_sink._cell(v) for v in row] + [""] * (width - len(row)) for row in tab.rows]
    return header, rows


def deliver_sheets(
    report: str,
    period_key: str,
    sheet_rows: dict,
    engine: sa.Engine,
    *,
    last_sync: str,
    retry: sheets_sink.RetryPolicy | None = None,
) -> dict | None:
    """Upsert one report's Sheet rows (one sync, ledger row per report × period), or
    merge them into ``out/sheets/`` without a Sheets connection. Same rows → nothing."""
    if not sheet_rows:
        return None
    tabs = sheet_tabs(sheet_rows)
    digest = sheet_rows_hash(sheet_rows)
    conn = config.get_connection(config.GSHEETS_CONN_ID)
    if conn is None:
        return _sheets_outbox(report, period_key, engine, tabs, digest, last_sync)
    spreadsheet_id = str((conn.extra or {}).get("spreadsheet_id") or "").strip()
    if not spreadsheet_id:
        raise ValueError(f"connection {conn.conn_id!r} has no extra 'spreadsheet_id'")

    def send(_attempt: ledger.Attempt) -> ledger.Sent:
        spreadsheet = sheets_sink.open_spreadsheet(conn, retry=retry)
        synced = sheets_sink.sync(spreadsheet, tabs, last_sync)
        ranges = {t.name: synced.ranges[t.name] for t in tabs}
        return ledger.Sent("synced", {"sheet_range": json.dumps(ranges, ensure_ascii=False)}, detail=synced)

    done = ledger.Attempt(engine, report, period_key, SINK_SHEETS, spreadsheet_id, digest).run(send)
    ranges = json.loads(done.where["sheet_range"]) if done.where["sheet_range"] else {}
    result = {
        "sink": SINK_SHEETS,
        "target": spreadsheet_id,
        "content_hash": digest,
        "action": done.action,
        "version": done.version,
        "ranges": ranges,
    }
    if done.detail is not None:
        synced = done.detail
        result.update(
            rows_updated=synced.rows_updated,
            rows_appended=synced.rows_appended,
            rows_unchanged=synced.rows_unchanged,
        )
    return result


def _sheets_outbox(
    report: str, period_key: str, engine: sa.Engine, tabs: list[sheets_sink.SheetTab], digest: str, last_sync: str
) -> dict:
    target = OUTBOX_SHEETS_TARGET
    paths = [outbox.sheet_file(t.name) for t in tabs]

    def send(_attempt: ledger.Attempt) -> ledger.Sent:
        for tab in tabs:
            header, rows = _wire_rows(tab)
            outbox.upsert_sheet_tab(
                tab.name,
                header,
                rows,
                key_columns=tab.key_columns,
                number_formats=tab.number_formats,
                last_sync_ist=last_sync,
                key_of=_sheet_key(tab.key_columns),
            )
        return ledger.Sent("written")

    attempt = ledger.Attempt(engine, report, period_key, SINK_OUTBOX, target, digest)
    done = attempt.run(send, present=lambda: all(p.exists() for p in paths))
    return {
        "sink": SINK_OUTBOX,
        "target": target,
        "content_hash": digest,
        "paths": [str(p) for p in paths],
        "action": done.action,
        "version": done.version,
    }
