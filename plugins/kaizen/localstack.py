"""A real Airflow 3 on this machine, for ``make ui`` (``python -m kaizen ui``) and the
live tests: api-server, scheduler, dag-processor and triggerer, with the LocalExecutor
or with the CeleryExecutor and N Celery workers (Redis as broker, the PostgreSQL
metadata database as result backend).

Every process runs in its own session and is stopped by process group (SIGTERM, then
SIGKILL after a bounded grace). Each carries a marker in its environment
(``KAIZEN_LOCALSTACK_RUN``) that its children inherit, so :meth:`LocalStack.leftovers`
finds whatever a stop left behind, even a grandchild that started a session of its
own. Celery workers may get their own environment (the live test gives each its own
``KAIZEN_OUT_DIR``: two hosts that share no disk) and their own TaskInstance hostname
(:func:`worker_hostname`).

Standard library only at import time: a Celery worker imports this module to name
itself (``[core] hostname_callable``)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_MARKER = "KAIZEN_LOCALSTACK_RUN"
WORKER_NAME = "KAIZEN_WORKER_NAME"
HOSTNAME_CALLABLE = "kaizen.localstack.worker_hostname"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"
REDIS_LOCK_KEY = "kaizen:localstack:owner"


def worker_hostname() -> str:
    """TaskInstance hostname of a task run by a local Celery worker: the worker's name
    (``KAIZEN_WORKER_NAME``), as if each worker were its own host; else the FQDN."""
    return os.environ.get(WORKER_NAME) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- PostgreSQL and Redis: one database each per stack ---------------------------------
def create_database(name: str, admin_url: str = PG_ADMIN_URL, *, exist_ok: bool = False) -> str:
    """Create PostgreSQL database ``name`` (``exist_ok``: keep it if it is there) and
    return its URL."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            there = c.exec_driver_sql("select 1 from pg_database where datname = %(n)s", {"n": name}).first()
            if there and not exist_ok:
                raise RuntimeError(f"PostgreSQL database {name!r} exists already")
            if not there:
                c.exec_driver_sql(f'create database "{name}"')
    finally:
        admin.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    finally:
        admin.dispose()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_redis_db(url: str = REDIS_URL) -> int:
    """A Redis database number (1…15; 0 is left to everyone else) this process holds
    alone until :func:`release_redis_db`: an empty one, claimed by an owner key set with
    NX. A database whose owner key names a dead process of this host was a crashed
    stack's: it is emptied and taken over. Two stacks never share a broker."""
    import redis

    me = f"{socket.gethostname()}:{os.getpid()}"
    probe = redis.Redis.from_url(url)
    try:
        count = int(probe.config_get("databases").get("databases", 16))
    except redis.ResponseError:  # CONFIG refused (managed Redis): the default count
        count = 16
    finally:
        probe.close()
    for db in range(1, count):
        r = redis.Redis.from_url(url, db=db)
        try:
            if r.set(REDIS_LOCK_KEY, me, nx=True):
                if r.dbsize() == 1:
                    return db
                r.delete(REDIS_LOCK_KEY)  # someone's data without our key: not ours to use
                continue
            owner = (r.get(REDIS_LOCK_KEY) or b"").decode()
            host, _, pid = owner.rpartition(":")
            if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
                r.flushdb()
                if r.set(REDIS_LOCK_KEY, me, nx=True):
                    return db
        finally:
            r.close()
    raise RuntimeError(f"no free Redis database at {url} (1…{count - 1} are all in use)")


def release_redis_db(db: int, url: str = REDIS_URL) -> None:
    """Empty database ``db`` (the stack's queues and results) if this process holds it."""
    import redis

    r = redis.Redis.from_url(url, db=db)
    try:
        if (r.get(REDIS_LOCK_KEY) or b"").decode() == f"{socket.gethostname()}:{os.getpid()}":
            r.flushdb()
    finally:
        r.close()


# -- the stack -------------------------------------------------------------------------
@dataclass(frozen=True)
class Worker:
    """One Celery worker: its name (also the TaskInstance hostname of what it runs), the
    queues it listens on, its concurrency and environment of its own."""

    name: str
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 1
    env: dict[str, str] = field(default_factory=dict)
    # directories only this worker sees (a tmpfs in its own mount namespace; can_isolate())
    private_dirs: tuple[Path, ...] = ()


def can_isolate() -> bool:
    """Whether a process can be given directories of its own here (``unshare`` of a
    mount namespace and a tmpfs mount: root, or a kernel that allows it)."""
    import shutil
    import tempfile

    if not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "kaizen-probe", d],
            capture_output=True,
            timeout=10,
        )
    return r.returncode == 0


def _isolated(command: list[str], name: str, private_dirs: Iterable[Path]) -> list[str]:
    """``command`` in a mount namespace of its own with a fresh tmpfs over each of
    ``private_dirs`` (exec'd: the process keeps its pid, session and group)."""
    import shlex

    mounts = "".join(f"mount -t tmpfs kaizen-{name} {shlex.quote(str(d))}; " for d in private_dirs)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'set -e; {mounts}exec "$@"', "sh", *command]


class LocalStack:
    """Airflow on 127.0.0.1 from a throwaway or kept ``home``: ``start()``, the REST
    API v2 through :meth:`api`, ``stop()``; also a context manager."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str] | None = None,
        *,
        metadata_url: str | None = None,
        workers: Iterable[Worker] = (),
        broker_url: str | None = None,
        port: int | None = None,
        password: str | None = None,
        parallelism: int = 2,
        quick: bool = True,
    ) -> None:
        """``workers`` given: the CeleryExecutor, ``broker_url`` its broker and the
        metadata database (PostgreSQL) its result backend; none: the LocalExecutor.
        ``quick``: a 2 s scheduler heartbeat, a 5 s DAG folder refresh and task
        supervisors that check every second whether their task has ended. Settings
        (``AIRFLOW__*``) of this process's environment are not passed on; ``env`` is
        added last."""
        self.home = Path(home)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = tuple(workers)
        self.password = password or secrets.token_urlsafe(12)
        self.user = "admin"
        self.run_id = uuid.uuid4().hex
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []
        self.token: str | None = None
        self.stopped_in_s: dict[str, float] = {}
        metadata_url = metadata_url or f"sqlite:///{self.home / 'airflow.db'}"
        if self.workers and (not broker_url or not metadata_url.startswith("postgresql")):
            raise ValueError("Celery workers need a broker_url and a PostgreSQL metadata_url (the result backend)")
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        base.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.workers else "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__BASE_URL": self.base,
                # api-server and workers must share it (apache/airflow#49646); new each start
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "PYTHONPATH": _pythonpath(),
                RUN_MARKER: self.run_id,
            }
        )
        if quick:
            base["AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC"] = "2"
            base["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "5"
            # a task's supervisor notices its process ended at its next heartbeat check:
            # every 5 s by default, which kept a worker slot idle ~2.5 s after each task
            base["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] = "1"
        if self.workers:
            sa_url = metadata_url.split("://", 1)[1]
            base["AIRFLOW__CELERY__BROKER_URL"] = broker_url
            base["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+postgresql://{sa_url}"
        base.update(env or {})
        self.env = base

    @property
    def passwords_file(self) -> Path:
        return self.home / "passwords.json"

    # -- processes ---------------------------------------------------------------------
    def _airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def _spawn(self, name: str, args: list[str], env: dict[str, str], private_dirs: tuple[Path, ...] = ()) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        command = [self._airflow(), *args]
        if private_dirs:
            command = _isolated(command, name, private_dirs)
        self.procs[name] = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def migrate(self, timeout: float = 300) -> None:
        r = subprocess.run(
            [self._airflow(), "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if r.returncode:
            raise RuntimeError(f"airflow db migrate failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")

    def start(self, timeout: float = 180, migrate: bool = True) -> None:
        """Migrate the metadata database, start every process and wait until the API is
        healthy and each Celery worker answers; on any failure everything started is
        stopped again and the error names the log to read."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.passwords_file.write_text(json.dumps({self.user: self.password}))
        try:
            if migrate:
                self.migrate()
            self._spawn("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(self.port)], self.env)
            self._spawn("scheduler", ["scheduler", "--skip-serve-logs"], self.env)
            self._spawn("dag-processor", ["dag-processor"], self.env)
            self._spawn("triggerer", ["triggerer", "--skip-serve-logs"], self.env)
            for w in self.workers:
                env = {**self.env, **w.env, WORKER_NAME: w.name, "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE}
                self._spawn(
                    f"worker-{w.name}",
                    ["celery", "worker", "--queues", ",".join(w.queues), "--celery-hostname", f"{w.name}@localstack",
                     "--concurrency", str(w.concurrency), "--skip-serve-logs", "--without-mingle",
                     "--without-gossip", "--pid", str(self.home / f"worker-{w.name}.pid")],
                    env,
                    w.private_dirs,
                )
            self._wait_healthy(timeout)
            self.token = self._token()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            raise TimeoutError(f"Airflow API not healthy in {timeout:.0f} s; see {self.home}/api-server.log")
        for w in self.workers:  # Celery logs "<name>@localstack ready." once it consumes its queues
            log = self.home / f"worker-{w.name}.log"
            while f"{w.name}@localstack ready.".encode() not in log.read_bytes():
                self.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Celery worker {w.name} not ready in {timeout:.0f} s; see {log}")
                time.sleep(0.5)

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; see {self.home}/{name}.log")

    def stop(self, grace: float = 30) -> None:
        """SIGTERM to every process group, SIGKILL to what is still there after
        ``grace`` seconds (Celery's warm shutdown waits for running tasks)."""
        for p in self.procs.values():
            _killpg(p.pid, signal.SIGTERM)
        t0 = time.monotonic()
        waiting = dict(self.procs)
        while waiting and time.monotonic() < t0 + grace:
            for name, p in list(waiting.items()):
                if p.poll() is not None:
                    self.stopped_in_s[name] = round(time.monotonic() - t0, 1)
                    del waiting[name]
            time.sleep(0.1)
        for name, p in self.procs.items():
            _killpg(p.pid, signal.SIGKILL)  # the rest of the group too, and anyone past the grace
            p.wait()
            self.stopped_in_s.setdefault(name, round(time.monotonic() - t0, 1))
        for log in self._logs:
            log.close()
        self._logs.clear()

    def leftovers(self) -> list[str]:
        """Processes still running that this stack started (any depth, any session):
        those carrying its marker. Empty after a clean stop."""
        found = []
        needle = f"{RUN_MARKER}={self.run_id}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{entry.name}: {cmd.strip()[:160]}")
            except OSError:  # gone meanwhile, or another user's
                continue
        return found

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST API v2 -------------------------------------------------------------------
    def _token(self) -> str:
        import requests

        r = requests.post(
            f"{self.base}/auth/token", json={"username": self.user, "password": self.password}, timeout=10
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def api(self, method: str, path: str, **kw):
        import requests

        return requests.request(
            method, f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kw
        )

    def import_pools(self, path: Path = REPO_ROOT / "plugins" / "kaizen" / "pools.json") -> None:
        for name, doc in json.loads(path.read_text()).items():
            r = self.api("POST", "/pools", json={"name": name, "slots": doc["slots"], "description": doc["description"]})
            if r.status_code not in (200, 201, 409):
                raise RuntimeError(f"pool {name}: HTTP {r.status_code} {r.text[:300]}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"/dags/{dag_id}")
            if r.status_code == 200:
                return r.json()
            self.check_alive()
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed in {timeout:.0f} s; see {self.home}/dag-processor.log")

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        r = self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        if r.status_code != 200:
            raise RuntimeError(f"unpausing {dag_id}: HTTP {r.status_code} {r.text[:300]}")

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> dict:
        body = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        r = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"triggering {dag_id}: HTTP {r.status_code} {r.text[:500]}")
        return r.json()

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        """The run once it has finished (success or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if r.status_code == 200 and r.json()["state"] in ("success", "failed"):
                return r.json()
            self.check_alive()
            time.sleep(1)
        raise TimeoutError(f"{dag_id} run {run_id} not finished in {timeout:.0f} s; see {self.home}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        if r.status_code != 200:
            raise RuntimeError(f"task instances of {dag_id} {run_id}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()["task_instances"]

    def wait_idle(self, timeout: float = 300) -> None:
        """Until no DAG run is queued or running (the scheduler's own runs included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", "/dags/~/dagRuns", params=[("state", "queued"), ("state", "running"), ("limit", 1)])
            if r.status_code == 200 and r.json()["total_entries"] == 0:
                return
            self.check_alive()
            time.sleep(1)
        raise TimeoutError(f"runs still queued or running after {timeout:.0f} s")


def _pythonpath() -> str:
    """``plugins/`` first, then whatever PYTHONPATH this process has."""
    parts = [str(REPO_ROOT / "plugins"), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- make ui -----------------------------------------------------------------------------
UI_METADATA_DB = "kaizen_ui_airflow"


def run_ui(home: Path, port: int = 8080, pg_admin_url: str = PG_ADMIN_URL) -> int:
    """``make ui``: the local Airflow UI (api-server, scheduler, dag-processor, triggerer;
    LocalExecutor) until Ctrl-C. The metadata database is PostgreSQL database
    ``kaizen_ui_airflow`` when 127.0.0.1:5432 answers (kept between runs), else SQLite
    in ``home`` (with a warning: native backfills from the UI can lock it). The admin
    password is made once and kept in ``home/passwords.json``."""
    home.mkdir(parents=True, exist_ok=True)
    if port_answers("127.0.0.1", port):
        print(f"error: port {port} is in use; choose another: make ui UI_PORT=8081", file=sys.stderr)
        return 2
    pg = _pg_host_port(pg_admin_url)
    if port_answers(*pg):
        metadata_url = create_database(UI_METADATA_DB, pg_admin_url, exist_ok=True)
        metadata_text = f"PostgreSQL database {UI_METADATA_DB} on {pg[0]}:{pg[1]}"
    else:
        metadata_url = None
        metadata_text = f"SQLite {home / 'airflow.db'}"
        print(
            f"WARNING: PostgreSQL does not answer at {pg[0]}:{pg[1]}: the Airflow metadata database is SQLite.\n"
            "  A native backfill created from the UI can then fail with 'database is locked' and stop the\n"
            "  scheduler (runs stay queued until you restart `make ui`). Start PostgreSQL for backfills.",
            file=sys.stderr,
        )
    password = None
    stored = home / "passwords.json"
    if stored.exists():
        password = json.loads(stored.read_text()).get("admin")
    env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.setdefault("KAIZEN_SOURCES", os.environ.get("KAIZEN_SOURCES", "demo"))
    stack = LocalStack(home, env, metadata_url=metadata_url, port=port, password=password, parallelism=4)

    def stop_on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGHUP, stop_on_signal)
    t0 = time.monotonic()
    print(f"starting Airflow (metadata: {metadata_text}; logs: {home}/*.log) …", flush=True)
    try:
        stack.start()
        stack.import_pools()
        print(
            f"\nAirflow UI   {stack.base}/\n"
            f"Kaizen page  {stack.base}/kaizen/\n"
            f"user         {stack.user}\n"
            f"password     {stack.password}   (kept in {stored})\n"
            f"ready in {time.monotonic() - t0:.0f} s. DAGs start paused: unpause one to run it. Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            time.sleep(1)
            stack.check_alive()
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        return _stop_ui(stack, 0)
    except (RuntimeError, TimeoutError) as exc:  # a process died, or did not come up
        print(f"error: {exc}", file=sys.stderr)
        return _stop_ui(stack, 1)


def _stop_ui(stack: LocalStack, code: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
    t0 = time.monotonic()
    stack.stop()
    left = stack.leftovers()
    if left:
        print("error: still running after the stop (kill them):\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    print(f"stopped every process ({time.monotonic() - t0:.0f} s).")
    return code


def _pg_host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432
