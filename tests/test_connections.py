"""Connections come from Airflow (issue 14, point 6): its secrets backends in Airflow's
order — a configured secrets backend, then ``AIRFLOW_CONN_<ID>``, then the metastore —
the Task SDK inside a task, every secret registered with Airflow's log masker, and
Kaizen's own parsing of ``AIRFLOW_CONN_<ID>`` only where Airflow is not installed."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest

from kaizen import cli, config, warehouse


class DictBackend:
    """A custom secrets backend (``[secrets] backend``) holding the connections given as
    ``backend_kwargs`` ``{"connections": {conn_id: JSON form}}``."""

    def __init__(self, connections: dict | None = None):
        self.connections = connections or {}
        self.conn_class = None

    def _set_connection_class(self, cls):
        self.conn_class = cls

    def get_connection(self, conn_id: str, team_name: str | None = None):
        doc = self.connections.get(conn_id)
        if doc is None:
            return None
        return self.conn_class.from_json(json.dumps(doc), conn_id=conn_id)

    def get_variable(self, key: str, team_name: str | None = None):
        return None

    def get_config(self, key: str):
        return None


def _conn_id() -> str:
    return f"kaizen_t_{uuid.uuid4().hex[:12]}"


def _doc(password: str, host: str = "db.example") -> dict:
    return {"conn_type": "postgres", "host": host, "port": 5432, "login": "kaizen",
            "password": password, "schema": "kaizen"}


@pytest.fixture(autouse=True)
def fresh_cache():
    config.clear_connection_cache()
    yield
    config.clear_connection_cache()


@pytest.fixture
def metastore():
    """Adds connections to Airflow's metadata database (unique ids), removes them after."""
    from airflow.models.connection import Connection  # the metastore's table
    from airflow.utils.session import create_session

    added: list[str] = []

    def add(conn_id: str, doc: dict) -> None:
        with create_session() as session:
            session.add(Connection(conn_id=conn_id, **doc))
        added.append(conn_id)

    yield add
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(added)).delete(synchronize_session=False)


@pytest.fixture
def secrets_backend(monkeypatch):
    """Configures :class:`DictBackend` as Airflow's secrets backend with the given connections."""

    def configure(connections: dict) -> None:
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "test_connections.DictBackend")
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps({"connections": connections}))

    yield configure
    from airflow.sdk import configuration as sdk_configuration

    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND", raising=False)
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND_KWARGS", raising=False)
    sdk_configuration.clear_secrets_backends_cache()


def test_the_env_var_comes_before_the_metastore(metastore, monkeypatch):
    conn_id = _conn_id()
    metastore(conn_id, _doc("from-the-metastore", host="meta.example"))
    assert config.get_connection(conn_id).password == "from-the-metastore"  # found in the metastore alone

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(_doc("from-the-env-var", host="env.example")))
    c = config.get_connection(conn_id)  # the variable changed: not the cached answer
    assert (c.password, c.host, c.port, c.login, c.schema, c.conn_type) == (
        "from-the-env-var", "env.example", 5432, "kaizen", "kaizen", "postgres")

    monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}")
    assert config.get_connection(conn_id).password == "from-the-metastore"


def test_a_secrets_backend_comes_before_the_env_var_and_the_metastore(secrets_backend, metastore, monkeypatch):
    conn_id = _conn_id()
    metastore(conn_id, _doc("from-the-metastore"))
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(_doc("from-the-env-var")))
    secrets_backend({conn_id: _doc("from-the-backend", host="vault.example")})
    c = config.get_connection(conn_id)
    assert (c.password, c.host) == ("from-the-backend", "vault.example")

    secrets_backend({})  # the backend does not have it: the next in Airflow's order answers
    assert config.get_connection(conn_id).password == "from-the-env-var"


def test_a_connection_defined_nowhere_is_none():
    conn_id = _conn_id()
    assert config.get_connection(conn_id) is None
    with pytest.raises(LookupError, match=f"AIRFLOW_CONN_{conn_id.upper()}"):
        config.require_connection(conn_id, "a test service")


def test_uri_form_and_extras_as_airflow_reads_them(monkeypatch):
    conn_id = _conn_id()
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                       "postgres://kaizen:p%40ss%2Fw0rd-long@db.example:6543/warehouse?sslmode=require")
    c = config.get_connection(conn_id)
    assert (c.conn_type, c.login, c.password, c.host, c.port, c.schema, c.extra) == (
        "postgres", "kaizen", "p@ss/w0rd-long", "db.example", 6543, "warehouse", {"sslmode": "require"})


def test_the_password_is_masked_in_logs(monkeypatch, caplog):
    from airflow.sdk._shared.secrets_masker import SecretsMasker, redact

    conn_id = _conn_id()
    token = f"sekrit-{uuid.uuid4().hex}"
    key = f"-----BEGIN PRIVATE KEY-----\nMII{uuid.uuid4().hex}\n-----END PRIVATE KEY-----\n"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "slack", "password": token,
         "extra": {"base_url": "http://127.0.0.1:9/api/", "keyfile_dict": json.dumps({"private_key": key})}}))
    assert config.get_connection(conn_id).password == token
    assert redact(f"token={token}") == "token=***"
    assert redact(f"key {key}") == "key ***"  # a secret inside an extra that is itself JSON
    assert redact("http://127.0.0.1:9/api/") == "http://127.0.0.1:9/api/"  # not everything

    factory, was_enabled = logging.getLogRecordFactory(), SecretsMasker.is_log_masking_enabled()
    try:
        cli.mask_logs()  # what `python -m kaizen` does first
        with caplog.at_level(logging.INFO, logger="kaizen.test"):
            logging.getLogger("kaizen.test").info("calling Slack with %s", token)
            try:
                raise RuntimeError(f"refused {token}")
            except RuntimeError:
                logging.getLogger("kaizen.test").exception("failed")
            # a record whose caller marks it as masked already (the masker's own warnings do)
            logging.getLogger("kaizen.test").info("marked %s", token,
                                                  extra={SecretsMasker.ALREADY_FILTERED_FLAG: True})
    finally:
        logging.setLogRecordFactory(factory)
        if not was_enabled:
            SecretsMasker.disable_log_masking()
    assert [r.getMessage() for r in caplog.records] == ["calling Slack with ***", "failed", "marked ***"]
    assert token not in caplog.text and "refused ***" in caplog.text


def test_the_warehouse_url_is_masked_and_shown_without_its_password(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    token = f"sekrit-{uuid.uuid4().hex}"
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps(_doc(token, host="127.0.0.1")))
    url = warehouse.warehouse_url()
    assert url == f"postgresql+psycopg://kaizen:{token}@127.0.0.1:5432/kaizen"  # the engine needs it
    assert warehouse.warehouse_url(hide_password=True) == "postgresql+psycopg://kaizen:***@127.0.0.1:5432/kaizen"
    assert token not in redact(f"engine for {url}")


def test_in_a_task_the_task_sdk_is_asked(monkeypatch):
    """Inside a task (a supervisor channel is set) Kaizen asks ``airflow.sdk.Connection.get``;
    each task context asks again (its supervisor must learn the secrets to mask)."""
    import airflow.sdk
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.execution_time import task_runner

    conn_id = _conn_id()
    asked: list[str] = []

    def get(cid):
        asked.append(cid)
        if cid != conn_id:
            raise AirflowNotFoundException(f"The conn_id `{cid}` isn't defined")
        return airflow.sdk.Connection(conn_id=cid, conn_type="http", host="h.example", password="task-sdk-pw")

    monkeypatch.setattr(airflow.sdk.Connection, "get", staticmethod(get))
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)
    assert config.get_connection(conn_id).password == "task-sdk-pw"
    assert config.get_connection(conn_id).password == "task-sdk-pw"
    assert config.get_connection("kaizen_t_absent") is None
    assert asked == [conn_id, "kaizen_t_absent"]  # cached within the task
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object())  # the next task
    config.get_connection(conn_id)
    assert asked == [conn_id, "kaizen_t_absent", conn_id]


def test_without_airflow_kaizen_reads_the_env_var_itself(monkeypatch):
    monkeypatch.setattr(config, "airflow_available", lambda: False)
    conn_id = _conn_id()
    assert config.get_connection(conn_id) is None
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(_doc("plain-pw")))
    c = config.get_connection(conn_id)
    assert (c.password, c.host, c.port) == ("plain-pw", "db.example", 5432)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", "http://user:other-pw@api.example:8443/v1")
    c = config.get_connection(conn_id)
    assert (c.conn_type, c.password, c.host, c.port, c.schema) == ("http", "other-pw", "api.example", 8443, "v1")


def test_connection_env_hands_the_resolved_connection_to_a_helper(secrets_backend, monkeypatch):
    conn_id = _conn_id()
    secrets_backend({conn_id: {**_doc("helper-pw"), "extra": {"sslmode": "require"}}})
    env = config.connection_env([conn_id, _conn_id()])
    assert list(env) == [f"AIRFLOW_CONN_{conn_id.upper()}"]  # the one configured
    # the helper reads it back as Airflow would, from its environment
    secrets_backend({})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", env[f"AIRFLOW_CONN_{conn_id.upper()}"])
    c = config.get_connection(conn_id)
    assert (c.password, c.host, c.port, c.login, c.schema, c.extra) == (
        "helper-pw", "db.example", 5432, "kaizen", "kaizen", {"sslmode": "require"})


def test_a_lookup_is_cheap_and_follows_env_changes(monkeypatch):
    """Lookups are frequent (every engine, every sink): after the first, a lookup costs
    microseconds, and changing the variable between lookups is still seen."""
    conn_id = _conn_id()
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    monkeypatch.setenv(name, json.dumps(_doc("first-pw")))
    t0 = time.perf_counter()
    assert config.get_connection(conn_id).password == "first-pw"
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(1000):
        config.get_connection(conn_id)
    cached = (time.perf_counter() - t0) / 1000
    assert cached < 100e-6 and cached < first  # measured here: ~4 µs, against ~0.5 ms uncached
    monkeypatch.setenv(name, json.dumps(_doc("second-pw")))
    assert config.get_connection(conn_id).password == "second-pw"
    monkeypatch.delenv(name)
    assert config.get_connection(conn_id) is None
