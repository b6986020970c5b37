"""Settings and connections, each id defined once.

Connections are Airflow Connections. Outside a running Airflow they are read from the
same ``AIRFLOW_CONN_<ID>`` environment variables Airflow itself reads (JSON or URI
form), so the CLI, tests and benchmarks see exactly what a task would see.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

# Connection ids: the only place they are spelled.
WAREHOUSE_CONN_ID = "kaizen_warehouse"
TRADING_DB_CONN_ID = "kaizen_trading_db"
PROMETHEUS_CONN_ID = "kaizen_prometheus"
GITHUB_CONN_ID = "kaizen_github"
PAGERDUTY_CONN_ID = "kaizen_pagerduty"
SLACK_CONN_ID = "kaizen_slack"
GSHEETS_CONN_ID = "kaizen_gsheets"

# Environment settings (documented in the README).
ENV_SOURCES = "KAIZEN_SOURCES"  # "demo" reads the demo files; anything else: real APIs
ENV_DEMO_DIR = "KAIZEN_DEMO_DIR"
ENV_DATA_DIR = "KAIZEN_DATA_DIR"
ENV_OUT_DIR = "KAIZEN_OUT_DIR"
ENV_SLACK_DAILY_CHANNEL = "KAIZEN_SLACK_DAILY_CHANNEL"
ENV_SLACK_REVIEWS_CHANNEL = "KAIZEN_SLACK_REVIEWS_CHANNEL"
ENV_SLACK_OPS_CHANNEL = "KAIZEN_SLACK_OPS_CHANNEL"
ENV_CAPITAL_BASE = "KAIZEN_CAPITAL_BASE_INR"

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


def get_connection(conn_id: str) -> Conn | None:
    """The connection, or ``None`` when it is not configured anywhere."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw:
        return _parse_env(conn_id, raw)
    if "airflow" not in __import__("sys").modules:
        return None  # outside Airflow: env vars are the only store
    try:
        from airflow.sdk import Connection
    except ImportError:  # pragma: no cover - Airflow not installed
        return None
    try:
        c = Connection.get(conn_id)
    except Exception as exc:  # the SDK raises its own not-found error types
        if "not found" in str(exc).lower() or "isn't defined" in str(exc).lower():
            return None
        raise
    return Conn(
        conn_id=conn_id,
        conn_type=c.conn_type,
        host=c.host,
        port=c.port,
        login=c.login,
        password=c.password,
        schema=c.schema,
        extra=c.extra_dejson,
    )


def connection_env(conn_ids) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` JSON for each of ``conn_ids`` that is configured: how a
    helper process started by a task sees the connections the task resolved (it cannot
    ask the Airflow task API itself)."""
    out = {}
    for conn_id in conn_ids:
        c = get_connection(conn_id)
        if c is not None:
            out[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
                "conn_type": c.conn_type, "host": c.host, "port": c.port, "login": c.login,
                "password": c.password, "schema": c.schema, "extra": c.extra,
            })
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
