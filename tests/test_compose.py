"""docker-compose.yaml validated offline (no Docker engine here): the compose-spec
schema, every depends_on / volume / network reference resolving, the mounts the
image needs, and every env key the code reads present in .env.example."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_spec_schema():
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe, "check-jsonschema is pinned in requirements.txt"
    out = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_references_resolve():
    doc = _compose()
    services, volumes, networks = doc["services"], set(doc.get("volumes") or {}), set(doc.get("networks") or {})
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown service {dep}"
        for net in svc.get("networks") or []:
            assert net in networks, f"{name} uses unknown network {net}"
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0]
            if src.startswith((".", "/")):
                assert (REPO / src).exists(), f"{name} mounts missing path {src}"
            else:
                assert src in volumes, f"{name} uses unknown volume {src}"


def test_stack_has_every_component():
    services = _compose()["services"]
    commands = {" ".join(s.get("command") or []) for s in services.values()}
    for needed in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        assert needed in commands, needed
    images = [s.get("image", "") for s in services.values()]
    assert sum(i.startswith("postgres:") for i in images) == 2  # metadata + warehouse
    assert any(i.startswith("redis:") for i in images)
    mounts = {v.split(":")[1] for s in services.values() for v in s.get("volumes") or [] if v.startswith("./")}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include", "/opt/airflow/sql"} <= mounts


def test_env_example_has_every_key_the_code_reads():
    code = "\n".join(p.read_text() for p in (REPO / "plugins" / "kaizen").rglob("*.py"))
    conn_ids = set(re.findall(r'_CONN_ID = "(kaizen_\w+)"', code))
    env_keys = set(re.findall(r'^ENV_\w+ = "(KAIZEN_\w+)"', code, re.M))
    example = {ln.split("=", 1)[0] for ln in (REPO / ".env.example").read_text().splitlines() if "=" in ln}
    missing = {f"AIRFLOW_CONN_{c.upper()}" for c in conn_ids} - example
    assert not missing, f".env.example lacks {sorted(missing)}"
    # demo/test-only folders need not be set in production
    optional = {"KAIZEN_DEMO_DIR", "KAIZEN_DATA_DIR", "KAIZEN_OUT_DIR"}
    missing = env_keys - optional - example - {"KAIZEN_SOURCES"}
    assert not missing, f".env.example lacks {sorted(missing)}"
    compose_env = _compose()["x-airflow"]["environment"]
    assert compose_env["KAIZEN_SOURCES"] == "live"
