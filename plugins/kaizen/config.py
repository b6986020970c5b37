"""Settings and connections, each id defined once.

Connections are Airflow Connections, resolved by Airflow wherever it is installed
(inside a task through the Task SDK, elsewhere through Airflow's secrets backends in
Airflow's order), so every secret is registered with Airflow's log masker. Only
without Airflow does Kaizen read the ``AIRFLOW_CONN_<ID>`` variables (JSON or URI form)
itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

# Connection ids: the only place they are spelled.
WAREHOUSE_CONN_ID = "kaizen_warehouse"
TRADING_DB_CONN_ID = "kaizen_trading_db"
PROMETHEUS_CONN_ID = "kaizen_prometheus"
GITHUB_CONN_ID = "kaizen_github"
PAGERDUTY_CONN_ID = "kaizen_pagerduty"
SLACK_CONN_ID = "kaizen_slack"
GSHEETS_CONN_ID = "kaizen_gsheets"
SMTP_CONN_ID = "kaizen_smtp"  # failure alerts by e-mail (kaizen.alerts)

# Environment settings (documented in the README).
ENV_SOURCES = "KAIZEN_SOURCES"  # "demo" reads the demo files; anything else: real APIs
ENV_DEMO_DIR = "KAIZEN_DEMO_DIR"
ENV_DATA_DIR = "KAIZEN_DATA_DIR"
ENV_OUT_DIR = "KAIZEN_OUT_DIR"
ENV_SLACK_DAILY_CHANNEL = "KAIZEN_SLACK_DAILY_CHANNEL"
ENV_SLACK_REVIEWS_CHANNEL = "KAIZEN_SLACK_REVIEWS_CHANNEL"
ENV_SLACK_OPS_CHANNEL = "KAIZEN_SLACK_OPS_CHANNEL"
ENV_CAPITAL_BASE = "KAIZEN_CAPITAL_BASE_INR"
ENV_ALERT_EMAIL = "KAIZEN_ALERT_EMAIL"  # recipients of failure alerts, comma-separated
# post-mortem drafts opened as pull requests in this repository (owner/name) through
# kaizen_github; unset: drafts stay local (kaizen.delivery.github_prs)
ENV_POSTMORTEM_REPO = "KAIZEN_POSTMORTEM_REPO"
ENV_POSTMORTEM_BASE_BRANCH = "KAIZEN_POSTMORTEM_BASE_BRANCH"  # default: the repository's default branch
# Where artefacts pass between tasks, and where review documents are published
# (kaizen.artifacts): ObjectStoragePath URLs.
ENV_ARTIFACT_ROOT = "KAIZEN_ARTIFACT_ROOT"
ENV_ARTIFACT_CONN_ID = "KAIZEN_ARTIFACT_CONN_ID"
ENV_PUBLISH_ROOT = "KAIZEN_PUBLISH_ROOT"
ENV_PUBLISH_BASE_URL = "KAIZEN_PUBLISH_BASE_URL"
ENV_PUBLISH_CONN_ID = "KAIZEN_PUBLISH_CONN_ID"

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = REPO_ROOT / "sql"
TEMPLATES_DIR = REPO_ROOT / "include" / "templates"


def data_dir() -> Path:
    return Path(os.environ.get(ENV_DATA_DIR) or REPO_ROOT / "data")


def demo_dir() -> Path:
    return Path(os.environ.get(ENV_DEMO_DIR) or data_dir() / "demo")


def local_airflow_defaults() -> None:
    """The Makefile's Airflow settings for this checkout, where the environment does not
    set them: a plain ``pytest`` or ``python bench/…`` then works too. Call it before
    anything imports airflow (its configuration is read at import time)."""
    for key, value in {
        "AIRFLOW_HOME": str(REPO_ROOT / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }.items():
        os.environ.setdefault(key, value)


def demo_now():
    """The instant the demo sources answer as of (``KAIZEN_DEMO_NOW``, ISO-8601 with an
    offset), as a live API answers as of the moment it is asked; None (unset): as of
    the end of the demo data. A rehearsal (``bench/replay.py``) sets it to each
    replayed run's time."""
    from datetime import datetime

    text = os.environ.get("KAIZEN_DEMO_NOW")
    if not text:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"KAIZEN_DEMO_NOW={text!r} has no time zone offset")
    return at


def out_dir() -> Path:
    return Path(os.environ.get(ENV_OUT_DIR) or REPO_ROOT / "out")


def _storage_url(name: str, raw: str) -> str:
    """An ObjectStoragePath URL from setting ``name``: ``scheme://…`` as given (no
    trailing slash), an absolute local path as ``file://``; anything else refused."""
    raw = raw.strip()
    if "://" in raw:
        scheme, rest = raw.split("://", 1)
        if not scheme.isidentifier() or not rest.strip("/"):
            raise ValueError(f"{name}={raw!r} is not a storage URL: use file:///path, s3://bucket/prefix or "
                             "gs://bucket/prefix")
        return raw.rstrip("/")
    if Path(raw).is_absolute():
        return Path(raw).as_uri()
    raise ValueError(f"{name}={raw!r} is neither a URL (file:///path, s3://bucket/prefix, gs://bucket/prefix) "
                     "nor an absolute path")


def artifact_root(base: Path | str | None = None) -> str:
    """Where a task puts what the next task reads (``KAIZEN_ARTIFACT_ROOT``): default
    ``file://<KAIZEN_OUT_DIR>/artifacts`` (``base`` instead of the out dir when given),
    which only tasks on this host (or sharing this volume) can read."""
    raw = os.environ.get(ENV_ARTIFACT_ROOT, "").strip()
    if raw:
        return _storage_url(ENV_ARTIFACT_ROOT, raw)
    return (Path(base or out_dir()).resolve() / "artifacts").as_uri()


def artifact_conn_id() -> str | None:
    """The Airflow connection of the artefact store (``KAIZEN_ARTIFACT_CONN_ID``, e.g.
    aws_default for s3://), or None: the filesystem's own defaults."""
    return os.environ.get(ENV_ARTIFACT_CONN_ID, "").strip() or None


@dataclass(frozen=True)
class PublishSettings:
    root: str  # ObjectStoragePath URL the documents are written under
    base_url: str  # the http(s) URL people open that maps to ``root``
    conn_id: str | None = None


def publish_settings() -> PublishSettings | None:
    """Where review documents are published for people (``KAIZEN_PUBLISH_ROOT`` and
    ``KAIZEN_PUBLISH_BASE_URL``, both or neither), or None: no store."""
    root = os.environ.get(ENV_PUBLISH_ROOT, "").strip()
    base_url = os.environ.get(ENV_PUBLISH_BASE_URL, "").strip()
    if not root and not base_url:
        return None
    if not root or not base_url:
        have, lack = (ENV_PUBLISH_ROOT, ENV_PUBLISH_BASE_URL) if root else (ENV_PUBLISH_BASE_URL, ENV_PUBLISH_ROOT)
        raise ValueError(f"{have} is set but {lack} is not: set both (the storage URL documents are written "
                         "under, and the http(s) URL people open for it), or neither to attach the review "
                         "document in Slack instead")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"{ENV_PUBLISH_BASE_URL}={base_url!r} is not an http(s) URL: it is the address people "
                         f"open for {ENV_PUBLISH_ROOT}")
    return PublishSettings(_storage_url(ENV_PUBLISH_ROOT, root), base_url.rstrip("/"),
                           os.environ.get(ENV_PUBLISH_CONN_ID, "").strip() or None)


# How many days back a source still answers (Prometheus keeps 15 days by default);
# a re-extract of an older window that returns fewer rows than are stored keeps the
# stored ones (kaizen.sources.base.load). KAIZEN_RETENTION_<SOURCE>_DAYS overrides.
RETENTION_DAYS = {"prometheus": 15}


def retention(source: str):
    """The retention of ``source`` as a timedelta, or None (it keeps everything)."""
    from datetime import timedelta

    name = f"KAIZEN_RETENTION_{source.upper()}_DAYS"
    text = os.environ.get(name, "").strip()
    if not text:
        days = RETENTION_DAYS.get(source)
        return None if days is None else timedelta(days=days)
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a whole number of days") from None
    if days < 0:
        raise ValueError(f"{name}: {days} is negative; use a number of days, or 0 for no retention limit")
    return timedelta(days=days) if days else None


def sources_mode() -> str:
    """``demo`` or ``live``. Never guessed: a missing live connection is an error."""
    mode = os.environ.get(ENV_SOURCES, "live").strip().lower()
    if mode not in {"demo", "live"}:
        raise ValueError(f"{ENV_SOURCES} must be 'demo' or 'live', got {mode!r}")
    return mode


@dataclass(frozen=True)
class Conn:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # never print secrets
        return f"Conn({self.conn_id!r}, type={self.conn_type!r}, host={self.host!r})"


def _parse_uri(conn_id: str, uri: str) -> Conn:
    parts = urlsplit(uri)
    extra = dict(parse_qsl(parts.query))
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    return Conn(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_") or None,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=parts.port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=path or None,
        extra=extra,
    )


def _parse_env(conn_id: str, raw: str) -> Conn:
    raw = raw.strip()
    if not raw.startswith("{"):
        return _parse_uri(conn_id, raw)
    doc = json.loads(raw)
    extra = doc.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    return Conn(
        conn_id=conn_id,
        conn_type=doc.get("conn_type"),
        host=doc.get("host"),
        port=int(doc["port"]) if doc.get("port") else None,
        login=doc.get("login"),
        password=doc.get("password"),
        schema=doc.get("schema"),
        extra=extra,
    )


# A resolved connection is kept for this long in the process (connections are looked up
# many times a run; Airflow's own lookup costs ~0.3–0.5 ms, a kept one ~4–10 µs). The
# entry is also dropped as soon as what Airflow would read changes: the connection's
# AIRFLOW_CONN_<ID> variable, the [secrets] backend settings, or the task context.
CONNECTION_CACHE_TTL_S = 60.0
_conn_cache: dict[str, tuple[tuple, float, Conn | None]] = {}


def clear_connection_cache() -> None:
    """Forget every resolved connection (after changing a secrets backend or the metastore)."""
    _conn_cache.clear()


@lru_cache(maxsize=1)
def airflow_available() -> bool:
    """Whether Airflow (3.x, with its Task SDK) can be imported here. Without it Kaizen
    reads ``AIRFLOW_CONN_<ID>`` itself."""
    import importlib.util

    try:
        return importlib.util.find_spec("airflow.sdk") is not None
    except ImportError:  # no airflow package at all
        return False


def _task_comms():
    """The running task's channel to its Airflow supervisor, or None outside a task."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None)


def _from_airflow(conn_id: str, in_task: bool) -> Conn | None:
    """The connection as Airflow resolves it. In a task: the Task SDK's
    ``Connection.get`` (the worker's secrets backends, then the execution API). Anywhere
    else (CLI, tests, benchmarks): Airflow's own search path — a configured secrets
    backend, then ``AIRFLOW_CONN_<ID>``, then the metastore."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        if not in_task:
            try:
                from airflow.models.connection import Connection as CoreConnection
            except ImportError:  # a Task-SDK-only install has no metastore to search
                in_task = True
        if in_task:
            from airflow.sdk import Connection

            c = Connection.get(conn_id)
        else:
            c = CoreConnection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    return Conn(
        conn_id=conn_id,
        conn_type=c.conn_type or None,
        host=c.host or None,
        port=int(c.port) if c.port else None,
        login=c.login or None,
        password=c.password or None,
        schema=c.schema or None,
        extra=dict(c.extra_dejson or {}),
    )


_masked: set[tuple[str, int | None]] = set()  # strings already registered, by task context


def mask_secret(value) -> None:
    """Register ``value`` (a string, or a dict whose sensitive keys are hidden) with
    Airflow's log masker, in this process and, inside a task, in its supervisor; no-op
    without Airflow. A string is registered once per task context, so callers need not
    keep track (inside a task each registration is a message to the supervisor)."""
    if not value or not airflow_available():
        return
    from airflow.sdk.log import mask_secret as airflow_mask_secret

    if isinstance(value, str):
        comms = _task_comms()
        key = (value, None if comms is None else id(comms))
        if key in _masked:
            return
        airflow_mask_secret(value)
        _masked.add(key)
        return
    airflow_mask_secret(value)


def _mask_connection(conn: Conn) -> None:
    """Every secret of ``conn`` registered with the masker: the password (also as it
    appears URL-encoded) and the extra's sensitive keys, also inside an extra that is
    itself JSON (e.g. a service-account key's ``private_key``)."""
    if conn.password:
        mask_secret(conn.password)
        quoted = quote(conn.password, safe="")
        if quoted != conn.password:
            mask_secret(quoted)
    if conn.extra:
        mask_secret(conn.extra)
        for value in conn.extra.values():
            if isinstance(value, str) and value.lstrip().startswith("{"):
                try:
                    mask_secret(json.loads(value))
                except ValueError:
                    pass


def get_connection(conn_id: str) -> Conn | None:
    """The connection, or ``None`` when it is not configured anywhere.

    With Airflow installed, Airflow resolves it (:func:`_from_airflow`), so secrets
    backends are searched in Airflow's order and every secret is registered with
    Airflow's log masker. Without Airflow, ``AIRFLOW_CONN_<ID>`` (JSON or URI) is read
    here."""
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if not airflow_available():
        raw = os.environ.get(env_name)
        return _parse_env(conn_id, raw) if raw else None
    comms = _task_comms()
    key = (
        os.environ.get(env_name),
        os.environ.get("AIRFLOW__SECRETS__BACKEND"),
        os.environ.get("AIRFLOW__SECRETS__BACKEND_KWARGS"),
        os.environ.get("AIRFLOW__WORKERS__SECRETS_BACKEND"),
        None if comms is None else id(comms),
    )
    now = time.monotonic()
    hit = _conn_cache.get(conn_id)
    if hit is not None and hit[0] == key and now - hit[1] < CONNECTION_CACHE_TTL_S:
        return hit[2]
    conn = _from_airflow(conn_id, in_task=comms is not None)
    if conn is not None:
        _mask_connection(conn)
    _conn_cache[conn_id] = (key, now, conn)
    return conn


def connection_env(conn_ids) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` JSON for each of ``conn_ids`` that is configured: how a
    helper process started by a task sees the connections the task resolved (it cannot
    ask the Airflow task API itself). The values hold secrets: pass them in the child's
    environment only, never on a command line or in a log."""
    out = {}
    for conn_id in conn_ids:
        c = get_connection(conn_id)
        if c is not None:
            doc = {"conn_type": c.conn_type, "host": c.host, "port": c.port, "login": c.login,
                   "password": c.password, "schema": c.schema, "extra": c.extra}
            out[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({k: v for k, v in doc.items() if v})
    return out


def require_connection(conn_id: str, what: str) -> Conn:
    conn = get_connection(conn_id)
    if conn is None:
        raise LookupError(
            f"Airflow connection {conn_id!r} ({what}) is not configured: define it in "
            f"the Airflow UI or as AIRFLOW_CONN_{conn_id.upper()} (see README, 'Connections'),"
            f" or set {ENV_SOURCES}=demo to read the demo files."
        )
    return conn


def env_number(name: str, convert=float, *, valid, refusal: str, error=ValueError):
    """The number in setting ``name``; None when it is unset or blank. A value that
    ``convert`` cannot read, or that ``valid`` refuses, raises ``error`` with
    ``"<name>=<value><refusal>"`` (``refusal`` says what to give)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise error(f"{name}={text!r}{refusal}")
    return value


def capital_base_inr() -> float:
    """Capital base for returns and drawdown (₹). Default ₹1 crore, see the KPI catalog."""
    return float(os.environ.get(ENV_CAPITAL_BASE, "10000000"))


def slack_channel(kind: str) -> str | None:
    env = {
        "daily": ENV_SLACK_DAILY_CHANNEL,
        "reviews": ENV_SLACK_REVIEWS_CHANNEL,
        "ops": ENV_SLACK_OPS_CHANNEL,
    }[kind]
    return os.environ.get(env) or None


def alert_email_recipients(smtp_extra: dict | None = None) -> list[str]:
    """Who gets failure alerts by e-mail: ``KAIZEN_ALERT_EMAIL`` (comma- or
    semicolon-separated), else the ``kaizen_smtp`` connection extra ``"to"`` (a string
    like the setting, or a list)."""
    raw = os.environ.get(ENV_ALERT_EMAIL) or (smtp_extra or {}).get("to") or ""
    parts = raw if isinstance(raw, list) else str(raw).replace(";", ",").split(",")
    return [p.strip() for p in parts if str(p).strip()]
