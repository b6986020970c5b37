"""Start a real Airflow 3 (api-server, scheduler, dag-processor) on 127.0.0.1 with a
throwaway AIRFLOW_HOME, talk to it through the REST API v2, and stop every process
it started (each in its own session, the whole process group is killed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowStack:
    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.password = "kaizen-live-test"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__BASE_URL": self.base,
                "AIRFLOW__API_AUTH__JWT_SECRET": "kaizen-live-test-secret-0123456789abcdef",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "PYTHONPATH": str(REPO / "plugins"),
            }
        )
        env.update(extra_env or {})
        self.env = env

    # -- processes -------------------------------------------------------------------
    def _airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        subprocess.run(
            [self._airflow(), "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=300
        )
        for name, args in {
            "api-server": ["api-server", "-H", "127.0.0.1", "-p", str(self.port)],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
        }.items():
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.procs.append(
                subprocess.Popen(
                    [self._airflow(), *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            self._check_alive()
            time.sleep(1)
        else:
            raise TimeoutError(f"Airflow API not healthy in {timeout} s; logs in {self.home}")
        self.token = self._token()

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args} exited with {p.returncode}; logs in {self.home}")

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def alive_pids(self) -> list[int]:
        """PIDs still running in any process group this stack started."""
        out = subprocess.run(["ps", "-eo", "pid=,pgid="], capture_output=True, text=True).stdout
        groups = {p.pid for p in self.procs}
        return [int(a) for a, b in (ln.split() for ln in out.splitlines()) if int(b) in groups]

    # -- REST API v2 -----------------------------------------------------------------
    def _token(self) -> str:
        r = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": self.password}, timeout=10
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kw,
        )

    def repo_pools_file(self) -> Path:
        return REPO / "plugins" / "kaizen" / "pools.json"

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"/dags/{dag_id}")
            if r.status_code == 200:
                return r.json()
            self._check_alive()
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} not parsed in {timeout} s; see {self.home}/dag-processor.log")
