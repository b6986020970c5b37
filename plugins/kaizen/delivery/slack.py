"""Slack Web API sink (slack_sdk ``WebClient``) built from the ``kaizen_slack``
connection: token = the connection's password; ``base_url`` from its extra when given
(a proxy, or the local fake in tests); channel ids from configuration
(``KAIZEN_SLACK_<KIND>_CHANNEL``) or the extra ``{"channels": {"daily": "C…"}}`` —
never looked up by name.

Retries (decided here, once):
- HTTP 429 on any method: retried up to 3 times honouring ``Retry-After``; Slack did
  not process a rate-limited call, so nothing can double.
- HTTP 5xx and connection errors: retried only for calls that are safe to repeat
  (``auth.test``, ``conversations.info``, ``chat.update``, ``files.getUploadURLExternal``).
  ``chat.postMessage`` and ``files.completeUploadExternal`` are NOT retried on a 5xx or
  a reset: Slack has no idempotency key and may have posted already. Posts go through
  :func:`post_once` instead: the intent is in the ledger before the call and the key
  in the message's metadata, so the next try looks the message up (channel history,
  or the thread's replies) and adopts it rather than posting a second one.
- ``invalid_auth``, ``channel_not_found``, ``not_in_channel`` (and their kin) fail at
  once with a message naming the connection or channel and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaizen import config
from kaizen.errors import KaizenError

RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
IDEMPOTENT_METHODS = frozenset(
    {"auth.test", "conversations.info", "conversations.history", "conversations.replies", "chat.update",
     "files.getUploadURLExternal"}
)

AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
     "not_allowed_token_type", "no_permission", "team_access_not_granted", "ekm_access_denied",
     "access_denied"}
)
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action",
                            "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
                            "restricted_action_non_threadable_channel", "cannot_reply_to_message"})
# The call itself is wrong (its blocks, text, arguments or metadata): Slack refuses it
# the same way every time, so these are permanent too.
REQUEST_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "invalid_arguments", "too_many_attachments",
     "no_text", "invalid_attachments", "invalid_metadata_format", "invalid_metadata_schema",
     "metadata_too_large", "metadata_must_be_sent_from_app", "markdown_text_conflict", "invalid_form_data",
     "invalid_post_type", "invalid_json", "json_not_object", "invalid_array_arg", "invalid_charset",
     "message_not_found", "thread_not_found", "cant_update_message", "edit_window_closed",
     "file_not_found", "invalid_name"}
)
# Of those, the ones about the message being targeted rather than the one rendered.
TARGET_ERRORS = frozenset({"message_not_found", "thread_not_found", "cant_update_message", "edit_window_closed",
                           "file_not_found"})
REQUEST_FIXES = {
    "invalid_blocks": "a block breaks Block Kit's rules (see the json-pointer above: ≤ 50 blocks, section "
    "text ≤ 3,000 characters, header ≤ 150, ≤ 10 fields of ≤ 2,000)",
    "invalid_blocks_format": "the blocks are not valid Block Kit JSON (see the json-pointer above)",
    "msg_too_long": "the message text is longer than Slack accepts (40,000 characters)",
    "too_many_attachments": "the message has more than 100 attachments",
    "no_text": "the message has neither text nor blocks",
    "invalid_arguments": "an argument of the call is missing or invalid (see Slack's messages above)",
    "message_not_found": "the message to update is gone from the channel (deleted by hand?): delete its "
    "row in the delivery ledger so that the next run posts it afresh",
    "thread_not_found": "the thread's parent message is gone from the channel (deleted by hand?): delete "
    "its row in the delivery ledger so that the next run posts it afresh",
    "cant_update_message": "the message was not posted by this app's token, so it cannot be updated",
    "edit_window_closed": "the workspace no longer allows editing this message",
}
MAX_DETAILS = 8  # of Slack's errors[] / response_metadata.messages quoted in an error
# Slack's side failing or busy: a later try may pass.
SERVER_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                           "request_timeout"})

CHANNEL_ENV = {
    "daily": config.ENV_SLACK_DAILY_CHANNEL,
    "reviews": config.ENV_SLACK_REVIEWS_CHANNEL,
    "ops": config.ENV_SLACK_OPS_CHANNEL,
}


class SlackDeliveryError(KaizenError, RuntimeError):
    """A Slack call failed; the message says what to do. ``retryable`` is its
    :attr:`~kaizen.errors.KaizenError.transient`."""

    def __init__(self, message: str, *, slack_error: str | None = None, retryable: bool = True):
        super().__init__(message, transient=retryable)
        self.slack_error = slack_error

    @property
    def retryable(self) -> bool:
        return self.transient


def _api_method(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def retry_handlers() -> list:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    class IdempotentServerErrorRetryHandler(ServerErrorRetryHandler):
        """5xx retries for calls that are safe to repeat only."""

        def _can_retry(self, *, state, request, response=None, error=None) -> bool:
            return _api_method(request.url) in IDEMPOTENT_METHODS and super()._can_retry(
                state=state, request=request, response=response, error=error
            )

    class IdempotentConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
        """A reset after sending may mean Slack got the call: repeat safe calls only."""

        def _can_retry(self, *, state, request, response=None, error=None) -> bool:
            return _api_method(request.url) in IDEMPOTENT_METHODS and super()._can_retry(
                state=state, request=request, response=response, error=error
            )

    return [
        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        IdempotentServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        IdempotentConnectionErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
    ]


def get_slack_connection():
    """The ``kaizen_slack`` connection, or ``None`` (then the outbox is used)."""
    return config.get_connection(config.SLACK_CONN_ID)


def make_client(conn):
    from slack_sdk import WebClient

    if not conn.password:
        raise SlackDeliveryError(
            f"Airflow connection {config.SLACK_CONN_ID!r} has no password: put the bot token "
            "(xoxb-…) in the connection's password field.",
            retryable=False,
        )
    kwargs = {"token": conn.password, "timeout": 30, "retry_handlers": retry_handlers()}
    base_url = (conn.extra or {}).get("base_url")
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    return WebClient(**kwargs)


def resolve_channel(conn, kind: str) -> str:
    """Channel id for ``kind`` (daily, reviews, ops): the environment setting first,
    then the connection extra ``channels``. Ids only: a name is refused."""
    if kind not in CHANNEL_ENV:
        raise ValueError(f"channel kind must be one of {', '.join(CHANNEL_ENV)}, got {kind!r}")
    channel = config.slack_channel(kind) or ((conn.extra or {}).get("channels") or {}).get(kind)
    if not channel:
        raise SlackDeliveryError(
            f"no Slack channel configured for {kind!r}: set {CHANNEL_ENV[kind]} or the extra "
            f'"channels": {{"{kind}": "C…"}} of connection {config.SLACK_CONN_ID!r} to the channel ID '
            "(channel details → About → Channel ID).",
            retryable=False,
        )
    if channel.startswith("#") or not channel[:1].isalpha() or not channel.isalnum() or not channel.isupper():
        raise SlackDeliveryError(
            f"Slack channel for {kind!r} is {channel!r}, which is not a channel ID: Kaizen never looks "
            f"channels up by name; set {CHANNEL_ENV[kind]} to the ID (like C0123ABCD).",
            retryable=False,
        )
    return channel


def _slack_details(data: dict) -> str:
    """Slack's own words about a refused call: ``errors[]``, ``response_metadata.messages``
    (they name the bad block by json-pointer), ``needed``/``provided`` scopes."""
    parts = []
    errors = data.get("errors")
    if errors:
        errors = errors if isinstance(errors, list) else [errors]
        parts.append("errors: " + "; ".join(str(e)[:300] for e in errors[:MAX_DETAILS]))
    messages = (data.get("response_metadata") or {}).get("messages") if isinstance(
        data.get("response_metadata"), dict) else None
    if messages:
        messages = messages if isinstance(messages, list) else [messages]
        parts.append("response_metadata.messages: " + "; ".join(str(m)[:300] for m in messages[:MAX_DETAILS]))
    if data.get("needed"):
        parts.append(f"needed scope: {data['needed']}; the token has: {data.get('provided', '?')}")
    return f" [Slack says — {' | '.join(parts)}]" if parts else ""


def explain(exc: Exception, *, method: str, channel: str, kind: str) -> SlackDeliveryError:
    """A clear, actionable error for a failed Slack call (one already explained, such as
    a connection without a token, is returned as is). Every message names the method,
    the channel and the connection, quotes Slack's own details, and says what to do;
    ``retryable`` is False when a retry cannot help (token, channel, request errors)."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackDeliveryError):
        return exc
    conn = f"connection {config.SLACK_CONN_ID!r}"
    where = f"Slack {method} to channel {channel} ({conn})"
    posting = method.startswith("chat.postMessage")
    if isinstance(exc, SlackApiError):
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        err = data.get("error")
        status = exc.response.status_code
        details = _slack_details(data)
        if err in AUTH_ERRORS:
            return SlackDeliveryError(
                f"Slack rejected the token of {conn} ({err}) on {method}: set a valid bot token (xoxb-…, "
                f"scopes chat:write, files:write) as the connection's password.{details} The call was to "
                f"channel {channel}; the token also needs channels:history (to find its own posts). "
                "Retrying cannot help.",
                slack_error=err,
                retryable=False,
            )
        if err in CHANNEL_ERRORS:
            fix = {
                "channel_not_found": f"check the channel ID in {CHANNEL_ENV.get(kind, 'the channel setting')} / "
                f"the extra 'channels.{kind}' of {conn} (IDs, not names) and that the bot can see the channel",
                "not_in_channel": "invite the Kaizen app to the channel (/invite @<app>)",
                "is_archived": "unarchive the channel or configure another channel ID",
            }.get(err, "check the channel's settings (posting permissions, threads) or configure another "
                       "channel ID")
            return SlackDeliveryError(
                f"Slack refused {method} to channel {channel} ({err}, {conn}){details}: {fix}. "
                "Retrying cannot help.",
                slack_error=err,
                retryable=False,
            )
        if err in REQUEST_ERRORS:
            fix = REQUEST_FIXES.get(err, "the call's arguments are refused (see Slack's messages above)")
            then = ("" if err in TARGET_ERRORS else ": fix the message Kaizen renders (a bug in kaizen.reports, "
                    "or a setting that makes it too long) and re-run")
            return SlackDeliveryError(
                f"{where} was refused ({err}){details}: {fix}. Retrying cannot help{then}.",
                slack_error=err,
                retryable=False,
            )
        if status >= 500 and posting:
            return SlackDeliveryError(
                f"Slack answered HTTP {status} ({err or 'no error code'}) to {where}; the message may have been "
                "posted anyway (Slack has no idempotency key), so it was not repeated at once. Re-run the task "
                "later: Kaizen recorded its intent and looks the message up by its delivery key before posting "
                "again.",
                slack_error=err,
            )
        if status == 429 or err == "ratelimited":
            after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            return SlackDeliveryError(
                f"{where} was still rate limited (HTTP {status}{f', Retry-After {after} s' if after else ''}) "
                "after the client's retries: re-run the task in a minute, and check what else posts with "
                f"the token of {conn}.",
                slack_error=err,
            )
        if status >= 500 or err in SERVER_ERRORS:
            return SlackDeliveryError(
                f"{where} failed with HTTP {status} ({err or 'no error code'}){details} after the client's "
                "retries: Slack is failing or busy. Re-run the task later (see https://slack-status.com).",
                slack_error=err,
            )
        return SlackDeliveryError(
            f"{where} failed: HTTP {status} {err or exc}{details}. Retrying may help; if the same error comes "
            f"back, look the code up at https://api.slack.com/methods/{method.split()[0]} and fix {conn} or "
            "the message.",
            slack_error=err,
        )
    lost = (" The message may have been posted: the next try looks it up by its delivery key before posting "
            "again." if posting else "")
    return SlackDeliveryError(
        f"{where} failed: {type(exc).__name__}: {exc}. Slack could not be reached or did not answer: check "
        f"network access to Slack (or the base_url in the extra of {conn}) and re-run the task.{lost}"
    )


@dataclass(frozen=True)
class Posted:
    channel_id: str
    ts: str


METADATA_EVENT = "kaizen_delivery"
LOOKBACK = 200  # messages of the channel (or thread) searched for a post whose answer was lost


def _metadata(key: str | None) -> dict:
    return {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": key}}} if key else {}


def find_posted(client, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
    """The ts of the message carrying delivery ``key`` in its metadata, among the
    channel's :data:`LOOKBACK` newest top-level messages (or the thread of
    ``thread_ts``'s); None when there is none."""
    if thread_ts:
        resp = client.conversations_replies(channel=channel, ts=thread_ts, limit=LOOKBACK,
                                            include_all_metadata=True)
    else:
        resp = client.conversations_history(channel=channel, limit=LOOKBACK, include_all_metadata=True)
    for msg in resp.get("messages") or []:
        meta = msg.get("metadata") or {}
        if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
            return msg.get("ts")
    return None


def post_once(client, channel: str, payload: dict, key: str, *, pending: dict | None,
              record_intent, thread_ts: str | None = None) -> tuple[Posted, bool]:
    """``chat.postMessage`` exactly once for delivery ``key``: when an earlier try
    recorded its intent (``pending``, the ledger's) and may have posted — a crash, a
    lost answer, a ledger write that failed — the message is looked up by its key
    first and adopted; otherwise ``record_intent(intent)`` writes the intent to the
    ledger BEFORE the call and the message carries the key in its ``metadata``.
    Returns (the message, whether it was found rather than posted)."""
    if pending and pending.get("key") == key:
        ts = find_posted(client, channel, key, thread_ts=thread_ts)
        if ts:
            return Posted(channel_id=channel, ts=ts), True
    record_intent({"key": key})
    return post_message(client, channel, payload, thread_ts=thread_ts, key=key), False


def post_message(client, channel: str, payload: dict, *, thread_ts: str | None = None,
                 key: str | None = None) -> Posted:
    """``chat.postMessage`` of a Block Kit payload; a reply in a thread with ``thread_ts``;
    ``key`` goes into the message's metadata (see :func:`post_once`)."""
    kwargs = {"thread_ts": thread_ts} if thread_ts else {}
    kwargs.update(_metadata(key))
    resp = client.chat_postMessage(
        channel=channel,
        text=payload.get("text", ""),
        blocks=payload.get("blocks"),
        unfurl_links=False,
        unfurl_media=False,
        **kwargs,
    )
    return Posted(channel_id=resp["channel"], ts=resp["ts"])


def update_message(client, channel: str, ts: str, payload: dict) -> Posted:
    resp = client.chat_update(
        channel=channel, ts=ts, text=payload.get("text", ""), blocks=payload.get("blocks")
    )
    return Posted(channel_id=resp["channel"], ts=resp["ts"])


def find_uploaded(client, channel: str, thread_ts: str, file_id: str) -> bool:
    """Whether file ``file_id`` is shared in the thread of ``thread_ts`` (its share is a
    message of the thread whose ``files`` hold it)."""
    resp = client.conversations_replies(channel=channel, ts=thread_ts, limit=LOOKBACK)
    return any(f.get("id") == file_id for msg in resp.get("messages") or [] for f in msg.get("files") or [])


def upload_once(client, channel: str, thread_ts: str, data: bytes, filename: str, title: str, key: str, *,
                pending: dict | None, record_intent) -> tuple[str, bool]:
    """Upload ``data`` into the thread of ``thread_ts`` exactly once for delivery
    ``key``, with the v2 flow done step by step: ``files.getUploadURLExternal``, the raw
    POST of the bytes, then — with the file id recorded as the intent in the ledger
    first — ``files.completeUploadExternal``, the call that shares the file. After an
    unknown outcome (``pending`` holds this key's file id) the thread is searched for
    that file before anything is uploaded again. Returns (file id, whether found)."""
    if pending and pending.get("key") == key and pending.get("file_id"):
        if find_uploaded(client, channel, thread_ts, pending["file_id"]):
            return pending["file_id"], True
    ticket = client.files_getUploadURLExternal(filename=filename, length=len(data))
    file_id = ticket["file_id"]
    _post_bytes(ticket["upload_url"], data, filename)
    record_intent({"key": key, "file_id": file_id})
    client.files_completeUploadExternal(files=[{"id": file_id, "title": title}], channel_id=channel,
                                        thread_ts=thread_ts)
    return file_id, False


def _post_bytes(url: str, data: bytes, filename: str) -> None:
    """The raw POST of an upload's bytes to the URL Slack handed out (no token: the URL
    is the credential)."""
    import requests

    from kaizen.errors import TransientError

    try:
        resp = requests.post(url, data=data, timeout=(5, 60), headers={"Content-Type": "application/octet-stream"})
    except requests.RequestException as exc:
        raise TransientError(f"Slack file upload of {filename} failed before it was shared: {type(exc).__name__}; "
                             "nothing was posted, a retry uploads it again.") from exc
    if resp.status_code != 200:
        raise TransientError(f"Slack file upload of {filename} answered HTTP {resp.status_code} before it was "
                             "shared; nothing was posted, a retry uploads it again.")
