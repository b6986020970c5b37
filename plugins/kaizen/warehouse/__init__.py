"""The warehouse: one SQLAlchemy engine from the ``kaizen_warehouse`` connection
(a SQLite file in the repo's data folder when none is configured), the DDL in
``sql/`` applied idempotently, and the few write shapes the pipeline uses:
replace-a-slice and upsert, each in one transaction.

Timestamps are bound as canonical UTC text (:func:`kaizen.calendar.utc_text`) and
dates as ISO text, which PostgreSQL casts to ``timestamptz``/``date`` and SQLite keeps
as order-preserving text; :func:`read_frame` normalises what comes back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache

import sqlalchemy as sa

from kaizen import config
from kaizen.calendar import utc_text
from kaizen.warehouse import facts

# DDL files in dependency order; each is one table (STYLE: one file per target table).
DDL_FILES = (
    "raw_trades.sql",
    "raw_orders.sql",
    "raw_probe_minutes.sql",
    "raw_latency_buckets.sql",
    "raw_error_minutes.sql",
    "raw_deployments.sql",
    "raw_incidents.sql",
    "raw_alerts.sql",
    "raw_incident_log_entries.sql",
    "raw_action_items.sql",
    "raw_satisfaction_responses.sql",
    "raw_team_months.sql",
    "raw_oncall_spans.sql",
    "raw_incident_assignments.sql",
    "raw_cost_daily.sql",
    "cost_exports.sql",
    *facts.DDL_FILES,
    "quarantine.sql",
    "kpi_definitions.sql",
    "kpi_values.sql",
    "source_coverage.sql",
    "period_coverage.sql",
    "source_outages.sql",
    "report_deliveries.sql",
    "postmortem_prs.sql",
    "experiments.sql",
    "experiment_results.sql",
    "raw_okrs.sql",
    "raw_improvements.sql",
    "okr_scores.sql",
    "improvement_impacts.sql",
    "review_snapshots.sql",
    "kaizen_schema.sql",
    "v_scorecard.sql",
    "v_kpi_day.sql",
    "v_kpi_week.sql",
    "v_kpi_month.sql",
    "v_kpi_quarter.sql",
    "v_experiment_readout.sql",
    "v_okr_scores.sql",
    "v_improvement_backlog.sql",
    "v_improvement_impact.sql",
    "v_team_month.sql",
    "v_oncall_load_day.sql",
    "v_cost_daily.sql",
    "v_alerts.sql",
)


def warehouse_url(hide_password: bool = False) -> str:
    """The warehouse's SQLAlchemy URL. It holds the password: it is registered with
    Airflow's log masker, and anything shown to a person passes ``hide_password=True``
    (the password as ``***``)."""
    conn = config.get_connection(config.WAREHOUSE_CONN_ID)
    if conn is None:
        path = config.data_dir() / "kaizen.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if conn.conn_type in {"sqlite"}:
        return f"sqlite:///{conn.host or conn.schema}"
    if conn.conn_type in {"postgres", "postgresql"}:
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            database=conn.schema,
        )
        if hide_password:
            return url.render_as_string(hide_password=True)
        text = url.render_as_string(hide_password=False)
        if conn.password:
            config.mask_secret(text)
        return text
    raise ValueError(
        f"connection {config.WAREHOUSE_CONN_ID!r} has type {conn.conn_type!r}; "
        "the warehouse must be 'postgres' or 'sqlite'"
    )


@lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        eng = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _):  # WAL lets the demo's readers and the task's writer coexist
            cur = dbapi_conn.cursor()
            cur.execute("pragma journal_mode=wal")
            cur.execute("pragma synchronous=normal")
            cur.close()

        return eng
    return sa.create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> sa.Engine:
    return _engine_for(url or warehouse_url())


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


# Every write transaction of a run takes the warehouse's write lock first, so
# overlapping runs — two backfills, a backfill and the daily run, two runs of one day —
# write one after the other, whole slices at a time, and never deadlock on each other's
# rows or see each other's half-replaced slices: on PostgreSQL a transaction advisory
# lock, on SQLite ``begin immediate`` (its one writer; the next waits up to the 60 s
# busy timeout instead of failing when it reads first and writes later).
WRITE_LOCK = 0x4B41495A454E  # "KAIZEN"
SCHEMA_TABLE = "kaizen_schema"


def lock_for_writing(conn: sa.Connection) -> None:
    """Take the warehouse's write lock for the rest of ``conn``'s transaction (call it
    first in the transaction)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"select pg_advisory_xact_lock({WRITE_LOCK})")
    elif not conn.connection.driver_connection.in_transaction:
        conn.exec_driver_sql("begin immediate")


@contextmanager
def writing(engine: sa.Engine):
    """A write transaction holding the warehouse's write lock (see :data:`WRITE_LOCK`)."""
    with engine.begin() as conn:
        lock_for_writing(conn)
        yield conn


def schema_version() -> str:
    """A digest of the DDL this release applies: a warehouse that holds it needs no DDL."""
    import hashlib

    from kaizen.warehouse.docs import comment_statements

    h = hashlib.sha256()
    for name in DDL_FILES:
        h.update((config.SQL_DIR / name).read_bytes())
    for stmt in comment_statements():
        h.update(stmt.encode())
    return h.hexdigest()[:16]


def _applied_version(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table(SCHEMA_TABLE):
        return None
    return conn.exec_driver_sql(f"select version from {SCHEMA_TABLE}").scalar()


def apply_ddl(engine: sa.Engine) -> None:
    """Create every table, index and view that does not exist yet (idempotent), after
    migrating tables an older release created in another shape; fact tables new to an
    existing warehouse are computed from its landing tables once.

    A warehouse that records this release's :func:`schema_version` is left alone: a
    run's hot path reads one row and runs no DDL (DDL there deadlocked two runs of one
    day on ``drop view``). Concurrent appliers serialise on the write lock."""
    version = schema_version()
    with engine.connect() as conn:
        if _applied_version(conn) == version:
            return
    with writing(engine) as conn:
        if _applied_version(conn) == version:  # another run applied it while this one waited
            return
        _migrate_latency_buckets(conn)
        _retire_caches(conn)
        _add_missing_columns(conn)
        inspector = sa.inspect(conn)
        facts_new = [f.table for f in facts.FACTS if not inspector.has_table(f.table)]
        coverage_new = not inspector.has_table("source_coverage")
        for name in DDL_FILES:
            for stmt in _statements((config.SQL_DIR / name).read_text()):
                conn.exec_driver_sql(stmt)
        if facts_new:
            facts.rebuild(conn)
        if coverage_new:
            from kaizen.warehouse import coverage

            coverage.seed(conn, datetime.now(UTC))
        if engine.dialect.name == "postgresql":
            from kaizen.warehouse.docs import comment_statements

            for stmt in comment_statements():
                conn.exec_driver_sql(stmt.replace("%", "%%"))  # psycopg: % is a placeholder
        conn.exec_driver_sql(f"delete from {SCHEMA_TABLE}")
        conn.exec_driver_sql(f"insert into {SCHEMA_TABLE} (version) values ('{version}')")


# what releases before the facts layer kept beside the landing tables
_RETIRED_TABLES = ("trade_sessions", "trade_sessions_stale", "series_months")
_RETIRED_TRIGGERS = ("trade_sessions_%", "series_months_%")


def _retire_caches(conn: sa.Connection) -> None:
    """Drop the caches the facts replaced (``trade_sessions``, ``series_months``) and
    the triggers on the landing tables that kept them, which would fail once the
    tables are gone."""
    like = " or ".join(f"{{col}} like '{p}'" for p in _RETIRED_TRIGGERS)
    if conn.dialect.name == "postgresql":
        for name, table in conn.exec_driver_sql(
            f"select tgname, tgrelid::regclass::text from pg_trigger where not tgisinternal "
            f"and ({like.format(col='tgname')})".replace("%", "%%")
        ).all():
            conn.exec_driver_sql(f'drop trigger if exists "{name}" on {table}')
        for fn in ("kaizen_trade_sessions_sync()", "kaizen_trade_sessions_sum(date[])", "kaizen_series_months_forget()"):
            conn.exec_driver_sql(f"drop function if exists {fn}")
    else:
        for (name,) in conn.exec_driver_sql(
            f"select name from sqlite_master where type = 'trigger' and ({like.format(col='name')})"
        ).all():
            conn.exec_driver_sql(f'drop trigger if exists "{name}"')
    for table in _RETIRED_TABLES:
        conn.exec_driver_sql(f"drop table if exists {table}")


def _add_missing_columns(conn: sa.Connection) -> None:
    """Nullable columns a table's DDL declares that the table an older release created
    lacks (``alter table … add column``; ``create table if not exists`` leaves an
    existing table as it is). A missing column the DDL declares ``not null`` cannot be
    added to rows that exist: that is refused, naming the table to migrate by hand."""
    inspector = sa.inspect(conn)
    line = re.compile(r"^\s{4}([a-z_][a-z0-9_]*)\s+([a-z ]+?)(\s+(?:not null|primary key|default .*))*,?\s*(?:--.*)?$")
    for name in DDL_FILES:
        text = (config.SQL_DIR / name).read_text()
        m = re.search(r"create table if not exists (\w+) \(", text)
        if m is None or not inspector.has_table(m.group(1)):
            continue
        table = m.group(1)
        have = {c["name"] for c in inspector.get_columns(table)}
        body = text[m.end():].split("\n);", 1)[0]
        for ln in body.splitlines():
            col = line.match(ln)
            if col is None or col.group(1) in have or col.group(1) == "primary":
                continue
            if "not null" in ln.split("--", 1)[0] or "primary key" in ln.split("--", 1)[0]:
                raise RuntimeError(f"table {table} lacks column {col.group(1)}, which {name} declares not null: "
                                   "migrate that table by hand (or drop it and re-extract its source)")
            conn.exec_driver_sql(f"alter table {table} add column {col.group(1)} {col.group(2).strip()}")


def _migrate_latency_buckets(conn: sa.Connection) -> None:
    """``raw_latency_buckets`` was one row per minute *and bucket* (columns ``le``,
    ``le_seconds``, ``request_count``) before it became one row per minute with the
    buckets as aligned JSON arrays: regroup the old rows once, keeping run ids."""
    import json

    inspector = sa.inspect(conn)
    if not inspector.has_table("raw_latency_buckets"):
        return
    if "le" not in {c["name"] for c in inspector.get_columns("raw_latency_buckets")}:
        return
    old = conn.execute(
        sa.text("select ts, le, request_count, run_id, loaded_at from raw_latency_buckets order by ts")
    ).tuples().all()
    conn.exec_driver_sql("drop table raw_latency_buckets")
    for stmt in _statements((config.SQL_DIR / "raw_latency_buckets.sql").read_text()):
        conn.exec_driver_sql(stmt)
    minutes: dict = {}
    for ts, le, count, run_id, loaded_at in old:
        minutes.setdefault(ts, ([], run_id, loaded_at))[0].append((le, float(count)))
    rows = []
    for ts, (buckets, run_id, loaded_at) in minutes.items():
        buckets.sort(key=lambda b: float(b[0]))
        rows.append({
            "ts": ts,
            "bounds": json.dumps([b[0] for b in buckets], separators=(",", ":")),
            "counts": json.dumps([b[1] for b in buckets], separators=(",", ":")),
            "request_count": dict(buckets).get("+Inf"),
            "run_id": run_id,
            "loaded_at": loaded_at,
        })
    insert_rows(conn, "raw_latency_buckets", rows)


def _statements(sql: str) -> list[str]:
    # DDL carries no string literals containing "--" or ";", so comments strip safely.
    lines = [ln.split("--", 1)[0] for ln in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def as_date(v) -> date:
    """A stored date (a date on PostgreSQL, ISO text on SQLite) → date."""
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def bind_value(v):
    """Python value → the bound form used on both dialects."""
    if isinstance(v, datetime):
        return utc_text(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _bind_rows(rows: Iterable[Mapping]) -> list[dict]:
    return [{k: bind_value(v) for k, v in r.items()} for r in rows]


def replace_slice(
    conn: sa.Connection,
    table: str,
    where_sql: str,
    where_params: Mapping,
    rows: Sequence[Mapping],
) -> int:
    """Delete the slice ``where_sql`` of ``table`` and insert ``rows`` (caller's
    transaction). Re-running with the same rows leaves the table identical."""
    conn.execute(sa.text(f"delete from {table} where {where_sql}"), _bind_rows([where_params])[0])
    return insert_rows(conn, table, rows)


def _plain(v):
    """One value as bound: NULL for None/NaN/NaT, canonical text for times and dates."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if type(v).__name__ in ("NaTType", "NAType"):
        return None
    return bind_value(v)


_TS_TEMPLATE = b"0000-00-00 00:00:00.000000+00:00"
# (first byte, digits, field) of each number in _TS_TEMPLATE
_TS_FIELDS = ((0, 4, "y"), (5, 2, "mo"), (8, 2, "d"), (11, 2, "h"), (14, 2, "mi"), (17, 2, "s"), (20, 6, "us"))


def _utc_texts(us) -> list:
    """datetime64[us] (UTC) → :func:`kaizen.calendar.utc_text` of each value, NaT → None:
    the digits computed with integer arithmetic into one byte matrix (numpy's own
    datetime-to-text and text casts cost 4× more). Years outside 1–9999 go value by
    value."""
    import numpy as np

    nat = np.isnat(us)
    some = us[~nat]
    if len(some) and (some.min() < np.datetime64("0001-01-01") or some.max() >= np.datetime64("10000-01-01")):
        text = np.datetime_as_string(us, unit="us").tolist()
        return [None if t == "NaT" else f"{t[:10]} {t[11:]}+00:00" for t in text]
    t = np.where(nat, 0, us.astype("int64"))
    days, rem = np.divmod(t, 86_400_000_000)
    # civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible low-level date algorithms")
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    parts = {
        "y": yoe + era * 400 + (month <= 2), "mo": month, "d": doy - (153 * mp + 2) // 5 + 1,
        "h": rem // 3_600_000_000, "mi": rem // 60_000_000 % 60, "s": rem // 1_000_000 % 60, "us": rem % 1_000_000,
    }
    out = np.tile(np.frombuffer(_TS_TEMPLATE, dtype=np.uint8), (len(t), 1))
    pairs = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)  # "00".."99"
    for at, width, name in _TS_FIELDS:
        v = parts[name].astype(np.int32)
        for k in range(0, width, 2):  # two digits at a time, from the right
            out[:, at + width - 2 - k:at + width - k] = pairs[v // 10**k % 100]
    text = out.tobytes().decode("ascii")
    values = [text[i:i + 32] for i in range(0, len(text), 32)]
    for i in np.flatnonzero(nat).tolist():
        values[i] = None
    return values


def _column(series) -> list:
    """A DataFrame column as bound Python values (vectorised for timestamps, dates
    and floats)."""
    import numpy as np
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        utc = series.dt.tz_convert("UTC") if isinstance(series.dtype, pd.DatetimeTZDtype) else series.dt.tz_localize("UTC")
        return _utc_texts(utc.dt.tz_localize(None).to_numpy("datetime64[us]"))
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.tolist()
        return [None if v != v else v for v in values] if series.isna().any() else values
    values = series.tolist()
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return values
    kinds = set(map(type, values))
    if kinds <= {str, int, type(None)}:
        return values  # text as it is: nothing to bind
    if kinds <= {date, type(None)}:  # few distinct days: spell each once
        codes, uniques = pd.factorize(series)
        spelled = np.array([d.isoformat() for d in uniques] + [None], dtype=object)
        return spelled[codes].tolist()
    return [_plain(v) for v in values]


def insert_rows(conn: sa.Connection, table: str, rows, extra: Mapping | None = None) -> int:
    """Insert ``rows`` — dicts, or a pandas DataFrame for bulk loads — plus the
    constant columns ``extra`` (caller's transaction). PostgreSQL loads by ``COPY``
    (a DataFrame in binary: :func:`copy_frame`), SQLite by the driver's executemany;
    values are bound as :func:`bind_value` does (a DataFrame's timestamp columns must
    be datetime64, UTC or naive UTC)."""
    extra = dict(extra or {})
    if not len(rows):
        return 0
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur:
            if hasattr(rows, "columns"):
                return copy_frame(cur, table, rows, extra)
            return copy_text(cur, table, rows, extra)
    cols, tuples = bound_rows(rows, extra)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"insert into {table} ({', '.join(cols)}) values ({', '.join([mark] * len(cols))})", tuples)
    return len(tuples)


def bound_rows(rows, extra: Mapping) -> tuple[list[str], list[tuple]]:
    """(column names, value tuples) of ``rows`` (dicts or a DataFrame) plus the constant
    columns ``extra``, every value bound as :func:`bind_value` does."""
    if hasattr(rows, "columns"):
        cols = [str(c) for c in rows.columns]
        columns = [_column(rows[c]) for c in rows.columns]
    else:
        cols = list(rows[0].keys())
        columns = [[bind_value(r[c]) for r in rows] for c in cols]
    n = len(rows)
    for k, v in extra.items():
        cols.append(k)
        columns.append([bind_value(v)] * n)
    return cols, list(zip(*columns, strict=True))


def copy_text(cursor, table: str, rows, extra: Mapping) -> int:
    """Text ``COPY`` of ``rows`` (dicts or a DataFrame) plus ``extra``, row by row on a
    psycopg ``cursor``: dict rows, and the frames :func:`copy_frame` does not take."""
    cols, tuples = bound_rows(rows, extra)
    with cursor.copy(f"copy {table} ({', '.join(cols)}) from stdin") as copy:
        for t in tuples:
            copy.write_row(t)
    return len(tuples)


# the column types copy_frame writes in binary → the Python types psycopg's binary
# dumpers for them take and store as the text COPY stores their bound text
_BINARY = {
    "text": {str}, "integer": {int}, "bigint": {int}, "double precision": {float, int},
    "boolean": {bool}, "date": {date}, "timestamp with time zone": {datetime},
}
_INT4 = range(-(2**31), 2**31)  # psycopg's int4 dumper wraps what is outside: never give it that


def copy_frame(cursor, table: str, frame, extra: Mapping) -> int:
    """Binary ``COPY`` of the DataFrame ``frame`` plus ``extra`` by psycopg's own dumpers
    (``set_types`` from the table's column types), storing what :func:`copy_text`
    stores: NULL for None/NaN/NaT, timestamps in UTC to the µs. A frame with any column
    that could store otherwise (another column type, mixed Python types, an integer
    out of range, ...) goes through :func:`copy_text` whole."""
    cursor.execute(
        "select attname, atttypid::regtype::text, atttypid::int from pg_attribute"
        " where attrelid = %s::regclass and attnum > 0 and not attisdropped", (table,))
    types = {name: (pgtype, oid) for name, pgtype, oid in cursor.fetchall()}
    cols = [str(c) for c in frame.columns] + [str(k) for k in extra]
    if len(set(cols)) < len(cols) or any(types.get(c, ("",))[0] not in _BINARY for c in cols):
        return copy_text(cursor, table, frame, extra)
    oids: list[int | str] = [types[c][1] for c in cols]
    columns = []
    for i, c in enumerate(cols[: frame.shape[1]]):
        columns.append(_binary_values(frame.iloc[:, i], types[c][0]))
        if types[c][0] == "timestamp with time zone":
            # naive UTC datetimes (3× cheaper to make than aware ones) by the timestamp
            # dumper: binary timestamp and timestamptz are the same µs since 2000-01-01
            oids[i] = "timestamp"
    for k, v in extra.items():
        bind_value(v)  # a naive datetime raises as on the text path
        ok = v is None or (type(v) in _BINARY[types[k][0]] and (types[k][0] != "integer" or v in _INT4))
        columns.append([v] * len(frame) if ok else None)
    if any(values is None for values in columns):
        return copy_text(cursor, table, frame, extra)
    with cursor.copy(f"copy {table} ({', '.join(cols)}) from stdin (format binary)") as copy:
        copy.set_types(oids)
        for row in zip(*columns, strict=True):
            copy.write_row(row)
    return len(frame)


def _binary_values(series, pgtype: str) -> list | None:
    """A frame column as copy_frame's dumper for ``pgtype`` takes it (None: it cannot):
    the values :func:`_column` binds, but datetimes and dates as themselves."""
    import pandas as pd

    dtype = series.dtype
    if pgtype == "timestamp with time zone":
        if not (isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype)):
            return None
        utc = series.dt.tz_convert("UTC") if isinstance(dtype, pd.DatetimeTZDtype) else series
        # naive datetimes, NaT → None (a year outside 1–9999 → int: not taken)
        values = utc.dt.tz_localize(None).to_numpy("datetime64[us]").astype(object).tolist()
    elif pgtype == "date":
        values = series.tolist()  # datetime.date objects, None for NULL (else not taken)
    else:
        values = _column(series)
    kinds = set(map(type, values)) - {type(None)}
    if not kinds <= _BINARY[pgtype]:
        return None
    if pgtype == "integer" and kinds and not (int(series.min()) in _INT4 and int(series.max()) in _INT4):
        return None
    return values


def fetch_rows(conn: sa.Connection, sql: str, params: Mapping | None = None) -> list[tuple]:
    """Plain tuples straight from the driver's cursor (``:name`` parameters, bound as
    :func:`bind_value`): for reads of many rows, where SQLAlchemy's row handling
    would cost more than the query."""
    return fetch_table(conn, sql, params)[1]


def fetch_table(conn: sa.Connection, sql: str, params: Mapping | None) -> tuple[list[str], list[tuple]]:
    """(column names, plain tuples) of ``sql`` run on the driver's own cursor."""
    bound = {k: bind_value(v) for k, v in (params or {}).items()}
    if conn.dialect.name == "postgresql":
        sql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
    cursor = conn.connection.driver_connection.cursor()
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor.execute(sql, bound)
        return [d[0] for d in cursor.description], cursor.fetchall()
    except dbapi_error as exc:  # raised as SQLAlchemy raises it (OperationalError, ...)
        raise sa.exc.DBAPIError.instance(sql, bound, exc, dbapi_error) from exc
    finally:
        cursor.close()


def upsert(conn: sa.Connection, table: str, rows: Sequence[Mapping], key: Sequence[str]) -> int:
    """Insert or update ``rows`` on the natural ``key`` (same SQL on both dialects)."""
    if not rows:
        return 0
    cols = list(rows[0].keys())
    updates = [c for c in cols if c not in key]
    set_sql = ", ".join(f"{c} = excluded.{c}" for c in updates)
    stmt = (
        f"insert into {table} ({', '.join(cols)}) values ({', '.join(':' + c for c in cols)}) "
        f"on conflict ({', '.join(key)}) do "
        + (f"update set {set_sql}" if updates else "nothing")
    )
    conn.execute(sa.text(stmt), _bind_rows(rows))
    return len(rows)


def read_frame(engine_or_conn, sql: str, params: Mapping | None = None, *, ts_cols=(), date_cols=()):
    """Run ``sql`` and return a pandas DataFrame with timestamps as UTC-aware
    ``datetime64`` and dates as ``datetime.date`` on both dialects."""
    import pandas as pd

    def fetch(conn):
        # plain driver tuples: pandas probes SQLAlchemy Row objects attribute by attribute
        cols, rows = fetch_table(conn, sql, params)
        return pd.DataFrame(rows, columns=cols)

    if isinstance(engine_or_conn, sa.Engine):
        with engine_or_conn.connect() as conn:
            df = fetch(conn)
    else:
        df = fetch(engine_or_conn)
    for c in ts_cols:
        if c in df:
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    for c in date_cols:
        if c in df:
            df[c] = [v if v is None or isinstance(v, date) else date.fromisoformat(str(v)[:10]) for v in df[c]]
    return df
