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
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})

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


def explain(exc: Exception, *, method: str, channel: str, kind: str) -> SlackDeliveryError:
    """A clear, actionable error for a failed Slack call (one already explained, such as
    a connection without a token, is returned as is)."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackDeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        err = (exc.response.data or {}).get("error") if isinstance(exc.response.data, dict) else None
        status = exc.response.status_code
        if err in AUTH_ERRORS:
            return SlackDeliveryError(
                f"Slack rejected the token of connection {config.SLACK_CONN_ID!r} ({err}) on {method}: "
                "set a valid bot token (xoxb-…, scopes chat:write, files:write) as the connection's password.",
                slack_error=err,
                retryable=False,
            )
        if err in CHANNEL_ERRORS:
            fix = {
                "channel_not_found": f"check the channel ID in {CHANNEL_ENV[kind]} / the connection extra "
                f"'channels.{kind}' (IDs, not names) and that the bot can see the channel",
                "not_in_channel": "invite the Kaizen app to the channel (/invite @<app>)",
                "is_archived": "unarchive the channel or configure another channel ID",
            }.get(err, "check the channel's settings")
            return SlackDeliveryError(
                f"Slack refused {method} to channel {channel} ({err}): {fix}.",
                slack_error=err,
                retryable=False,
            )
        if status >= 500 and method == "chat.postMessage":
            return SlackDeliveryError(
                f"Slack answered HTTP {status} to chat.postMessage in channel {channel}; the message may have been "
                "posted anyway (Slack has no idempotency key), so it was not retried automatically. A re-run posts "
                "again: delete a duplicate by hand if one appears.",
                slack_error=err,
            )
        return SlackDeliveryError(
            f"Slack {method} failed in channel {channel}: HTTP {status} {err or exc}", slack_error=err
        )
    return SlackDeliveryError(f"Slack {method} failed in channel {channel}: {type(exc).__name__}: {exc}")


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


def upload_file(client, channel: str, thread_ts: str | None, data: bytes, filename: str, title: str) -> str:
    """Upload ``data`` with the v2 flow (``files.getUploadURLExternal``, the raw POST,
    ``files.completeUploadExternal``) into ``channel``, in the thread of ``thread_ts``
    when given; returns the file id."""
    resp = client.files_upload_v2(
        channel=channel, thread_ts=thread_ts, content=data, filename=filename, title=title
    )
    file = resp.get("file") or (resp.get("files") or [{}])[0]
    return str(file.get("id", ""))
