"""docker-compose.yaml, Dockerfile, .dockerignore and .env.example, checked offline (no
Docker engine here: the image is never built and the stack never started by these tests).

- the compose-spec schema (check-jsonschema), every depends_on / volume / network
  reference resolving;
- the settings a team stack needs, after the official Airflow 3 compose file: one JWT
  secret, API secret key, fernet key and execution-API URL for every Airflow service, the
  FAB auth manager, the API base URL, the admin from .env;
- the code baked into the image, nothing bind-mounted; the image installs only the
  runtime section of requirements.txt, every package pinned;
- .env.example defines every variable the compose file interpolates, and none is dead.

Each rule is a function returning the problems it finds: the tests run it on the real
files (no problem) and on mutated copies (the problem named), so no rule passes vacuously.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
BASE_IMAGE = "apache/airflow:slim-3.3.2-python3.11"
CODE_DIRS = ("dags", "plugins", "include", "sql")
# set once for every Airflow component, each from a required .env variable
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")


def _freeze():
    import importlib.util

    spec = importlib.util.spec_from_file_location("kaizen_freeze", REPO / ".ci" / "freeze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _compose(text: str | None = None) -> dict:
    return yaml.safe_load(COMPOSE.read_text() if text is None else text)


def _env_example(text: str | None = None) -> dict[str, str]:
    text = ENV_EXAMPLE.read_text() if text is None else text
    pairs = (ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.lstrip().startswith("#"))
    return {k.strip(): v for k, v in pairs}


# --- compose variable interpolation (the subset of the compose spec this file uses) ---

_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)")


class Missing(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def _references(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, argument) of every ${...} / $NAME in ``text``; $$ is a literal $."""
    text = text.replace("$$", "")
    return [(m["name"] or m["bare"], m["op"], m["arg"] or "") for m in _VAR.finditer(text)]


def _interpolate(value: str, env: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name = m["name"] or m["bare"]
        op, arg, have = m["op"], m["arg"] or "", env.get(name)
        if op in (":-", "-"):
            return have if (have if op == ":-" else have is not None) else arg
        if op in (":?", "?") and not (have if op == ":?" else have is not None):
            raise Missing(name, arg)
        return have or ""

    parts = value.split("$$")
    return "$".join(_VAR.sub(one, p) for p in parts)


def _resolve(node, env: dict[str, str]):
    if isinstance(node, str):
        return _interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    return node


def _filled_example() -> dict[str, str]:
    """.env.example with its empty secrets filled in, as an operator does."""
    env = _env_example()
    return {k: (v or f"value-of-{k}") for k, v in env.items()}


def _unshared(doc: dict) -> dict:
    """A copy in which no two services share a mapping (YAML anchors make them share
    one), so a mutation touches the one service it names."""
    return json.loads(json.dumps(doc))


def _airflow_services(doc: dict) -> dict[str, dict]:
    return {n: s for n, s in doc["services"].items() if str(s.get("image", "")).startswith("kaizen-airflow")}


def _command(svc: dict) -> list[str]:
    cmd = svc.get("command") or []
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def _service_running(doc: dict, command: str) -> str:
    return next(n for n, s in _airflow_services(doc).items() if _command(s)[:1] == [command])


# --- the rules ---


def shared_settings_problems(doc: dict) -> list[str]:
    """Every Airflow service: the same JWT secret, API secret key and fernet key, each
    from a required .env variable (no default secret); the same execution-API URL, on the
    api-server's service name and port; the FAB auth manager; the API base URL from .env."""
    problems = []
    services = _airflow_services(doc)
    if len(services) < 6:
        problems.append(f"only {sorted(services)} run the Kaizen image")
    api = _service_running(doc, "api-server")
    expected_url = f"http://{api}:8080/execution/"
    seen: dict[str, set] = {}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if not isinstance(env, dict):
            problems.append(f"{name}: environment must be a mapping")
            continue
        for key in (*SHARED_SECRETS, "AIRFLOW__API__BASE_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                    "AIRFLOW__CORE__AUTH_MANAGER"):
            seen.setdefault(key, set()).add(env.get(key))
            if not env.get(key):
                problems.append(f"{name} does not set {key}")
        for key in (*SHARED_SECRETS, "AIRFLOW__API__BASE_URL"):
            refs = _references(str(env.get(key) or ""))
            if len(refs) != 1 or refs[0][1] != ":?":
                problems.append(f"{name}: {key} must come from one required .env variable (${{VAR:?...}}), "
                                f"not {env.get(key)!r}")
        if env.get("AIRFLOW__CORE__AUTH_MANAGER") != FAB:
            problems.append(f"{name}: AIRFLOW__CORE__AUTH_MANAGER is {env.get('AIRFLOW__CORE__AUTH_MANAGER')!r}, "
                            f"not {FAB}")
        if env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") != expected_url:
            problems.append(f"{name}: AIRFLOW__CORE__EXECUTION_API_SERVER_URL is "
                            f"{env.get('AIRFLOW__CORE__EXECUTION_API_SERVER_URL')!r}, not {expected_url}")
    for key, values in seen.items():
        if len(values) > 1:
            problems.append(f"{key} differs between Airflow services: {sorted(map(str, values))}")
    if "8080" not in {str(port).rsplit(":", 1)[-1] for port in doc["services"][api].get("ports") or []}:
        problems.append(f"{api} does not publish its port 8080, where the execution API URL points")
    return problems


def admin_problems(doc: dict, example: dict[str, str]) -> list[str]:
    """airflow-init has the image's entrypoint create the admin from .env variables that
    .env.example defines; nothing else in the stack creates users."""
    problems = []
    init = doc["services"].get("airflow-init") or {}
    env = init.get("environment") or {}
    if str(env.get("_AIRFLOW_WWW_USER_CREATE", "")).lower() != "true":
        problems.append("airflow-init does not set _AIRFLOW_WWW_USER_CREATE")
    if str(env.get("_AIRFLOW_DB_MIGRATE", "")).lower() != "true":
        problems.append("airflow-init does not migrate before creating the admin (_AIRFLOW_DB_MIGRATE)")
    for key in ("_AIRFLOW_WWW_USER_USERNAME", "_AIRFLOW_WWW_USER_PASSWORD"):
        refs = _references(str(env.get(key) or ""))
        if len(refs) != 1 or refs[0][1] != ":?":
            problems.append(f"airflow-init: {key} must be one required .env variable, not {env.get(key)!r}")
        elif refs[0][0] not in example:
            problems.append(f"airflow-init: {key} reads {refs[0][0]}, which .env.example does not define")
    for name, svc in _airflow_services(doc).items():
        if name != "airflow-init" and "_AIRFLOW_WWW_USER_CREATE" in (svc.get("environment") or {}):
            problems.append(f"{name} creates users too")
    return problems


def bind_mount_problems(doc: dict) -> list[str]:
    """No service mounts a host path: code is in the image, state in named volumes."""
    problems = []
    named = set(doc.get("volumes") or {})
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes") or []:
            if isinstance(vol, dict):
                if vol.get("type") != "volume" or vol.get("source") not in named:
                    problems.append(f"{name} mounts {vol}")
                continue
            src = vol.split(":", 1)[0]
            if src not in named:
                problems.append(f"{name} bind-mounts {src!r} (only named volumes: {sorted(named)})")
    return problems


def _strings(node):
    """Every string in a parsed compose file, keys included (compose interpolates values;
    comments are not part of the parsed document)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for x in node:
            yield from _strings(x)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)


def _interpolated(doc: dict) -> list[tuple[str, str | None, str]]:
    return [ref for s in _strings(doc) for ref in _references(s)]


def env_coverage_problems(doc: dict, example: dict[str, str]) -> list[str]:
    """Every variable the compose file interpolates is defined in .env.example."""
    names = {n for n, _, _ in _interpolated(doc)}
    return [f"docker-compose.yaml reads ${{{n}}}, which .env.example does not define"
            for n in sorted(names - set(example))]


def dead_variable_problems(doc: dict, example: dict[str, str], code: str) -> list[str]:
    """Every .env.example variable is used: interpolated by the compose file, or read in
    the containers (an Airflow setting, a connection, or a KAIZEN_ setting the code reads)."""
    interpolated = {n for n, _, _ in _interpolated(doc)}
    # names the code spells whole ("KAIZEN_X") or builds (f"KAIZEN_RETENTION_{source}_DAYS")
    spelled = set(re.findall(r'"(KAIZEN_\w+)"', code))
    built = [re.compile(re.escape(a) + r"\w+" + re.escape(b))
             for a, b in re.findall(r'f"(KAIZEN_\w*)\{[^}"]+\}(\w*)"', code)]
    problems = []
    for key in example:
        if key in interpolated or key.startswith(("AIRFLOW__", "AIRFLOW_CONN_")):
            continue
        if key.startswith("KAIZEN_") and (key in spelled or any(b.fullmatch(key) for b in built)):
            continue
        problems.append(f".env.example defines {key}, which nothing reads")
    return problems


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[\w,-]+\])?==[\w.${}+!-]+$")


def install_problems(dockerfile: str) -> list[str]:
    """Every package the image installs is pinned: pip install takes only options, -r of
    the cut requirements file, and name==version."""
    problems = []
    installs = 0
    for word, args in _instructions(dockerfile):
        if word != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", args):
            tokens = [t.strip("'\"") for t in cmd.split()]
            if "install" not in tokens or not {"pip", "uv", "pip3"} & set(tokens[: tokens.index("install")]):
                if {"apt-get", "apt", "conda", "mamba"} & set(tokens) and "install" in tokens:
                    problems.append(f"installs outside requirements.txt: {cmd.strip()}")
                continue
            installs += 1
            rest = tokens[tokens.index("install") + 1 :]
            i = 0
            while i < len(rest):
                tok = rest[i]
                if tok in ("-r", "--requirement"):
                    if not rest[i + 1 : i + 2] or not rest[i + 1].endswith("requirements-runtime.txt"):
                        problems.append(f"installs a requirements file other than the cut one: {cmd.strip()}")
                    i += 2
                    continue
                if tok in ("--no-cache-dir", "--no-cache", "--user", "--compile") or tok.startswith("--python"):
                    i += 1 + (tok == "--python")
                    continue
                if tok.startswith("-"):
                    problems.append(f"unexpected install option {tok!r}: {cmd.strip()}")
                elif not _PIN.match(tok):
                    problems.append(f"unpinned install {tok!r}: {cmd.strip()}")
                i += 1
    if installs != 1:
        problems.append(f"{installs} install commands; one is expected (the cut requirements)")
    return problems


def copy_problems(dockerfile: str) -> list[str]:
    """The code directories are copied where config.REPO_ROOT (/opt/airflow) expects them."""
    copied = {}
    for word, args in _instructions(dockerfile):
        if word == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            for src in parts[:-1]:
                copied[src.rstrip("/")] = parts[-1].rstrip("/")
    return [f"the image lacks {d}/ at /opt/airflow/{d}" for d in CODE_DIRS
            if copied.get(d) != f"/opt/airflow/{d}"]


def _cut_command(dockerfile: str, workdir: Path) -> str:
    """The Dockerfile's requirements cut (the RUN holding the install, without the install),
    pointed at ``workdir`` instead of /opt/kaizen."""
    run = next(args for word, args in _instructions(dockerfile) if word == "RUN" and "install" in args)
    steps = [s.strip() for s in run.split("&&") if " install " not in f" {s} "]
    return " && ".join(steps).replace("/opt/kaizen", str(workdir))


def _run_cut(dockerfile: str, requirements: str, tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "requirements.txt").write_text(requirements)
    out = subprocess.run(["bash", "-c", _cut_command(dockerfile, tmp_path)], capture_output=True, text=True)
    cut = tmp_path / "requirements-runtime.txt"
    return out.returncode, cut.read_text() if cut.exists() else ""


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore ``patterns`` exclude ``path`` (relative, /-separated): Docker
    matches each pattern against the whole path from the context root, ``**`` spanning
    directories, and a matched directory excludes what is under it; ``!`` re-includes."""
    def regex(p: str) -> re.Pattern:
        out, i = "", 0
        while i < len(p):
            if p.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif p.startswith("**", i):
                out, i = out + ".*", i + 2
            elif p[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif p[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(p[i]), i + 1
        return re.compile(out + "(?:/.*)?")

    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        if regex(pat.lstrip("!").strip("/")).fullmatch(path):
            excluded = not neg
    return excluded


def _dockerignore_patterns(text: str | None = None) -> list[str]:
    text = (REPO / ".dockerignore").read_text() if text is None else text
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


# --- tests ---


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe, "check-jsonschema is pinned in requirements.txt"
    return subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True)


def test_compose_spec_schema(tmp_path):
    out = _check_jsonschema(COMPOSE)
    assert out.returncode == 0, out.stdout + out.stderr
    # the validator does refuse a broken file: a misspelt service key
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n", "    healthchek:\n", 1))
    out = _check_jsonschema(broken)
    assert out.returncode != 0 and "healthchek" in out.stdout + out.stderr, out.stdout + out.stderr


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
            assert vol.split(":", 1)[0] in volumes, f"{name} uses unknown volume {vol}"


def test_stack_has_every_component_with_healthchecks():
    doc = _compose()
    services = doc["services"]
    by_command = {" ".join(_command(s)[:2]): n for n, s in _airflow_services(doc).items()}
    for needed in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        assert needed in by_command, needed
        assert services[by_command[needed]].get("healthcheck"), f"{by_command[needed]} has no healthcheck"
    images = [s.get("image", "") for s in services.values()]
    assert sum(i.startswith("postgres:") for i in images) == 2  # metadata + warehouse
    assert any(i.startswith("redis:") for i in images)
    for name, svc in services.items():
        if not svc.get("image", "").startswith("kaizen-airflow"):
            assert svc.get("healthcheck"), f"{name} has no healthcheck"
    # the scheduler's healthcheck asks the health server it must switch on
    assert "8974/health" in " ".join(services[by_command["scheduler"]]["healthcheck"]["test"])
    assert services[by_command["scheduler"]]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"


def test_every_airflow_service_shares_jwt_secret_execution_api_auth_manager_and_base_url():
    doc = _compose()
    assert shared_settings_problems(doc) == []
    env = _airflow_services(doc)["worker"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW__API_AUTH__JWT_SECRET:?")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB
    assert env["AIRFLOW__API__BASE_URL"].startswith("${AIRFLOW_BASE_URL:?")
    # resolved with the values of .env.example, the base URL is the one it documents
    resolved = _resolve(env, _filled_example())
    assert resolved["AIRFLOW__API__BASE_URL"] == _env_example()["AIRFLOW_BASE_URL"] == "http://localhost:8080"


def test_shared_settings_rule_catches_each_mistake():
    base = _compose()

    def mutated(edit) -> list[str]:
        doc = _unshared(base)
        edit(doc)
        return shared_settings_problems(doc)

    # the worker without the JWT secret: apache/airflow#49646, every task fails to authenticate
    def drop_jwt(doc):
        del doc["services"]["worker"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert "worker does not set AIRFLOW__API_AUTH__JWT_SECRET" in mutated(drop_jwt)

    # a default secret (what the official file ships) is a known secret
    def default_jwt(doc):
        for svc in _airflow_services(doc).values():
            svc["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] = "${AIRFLOW__API_AUTH__JWT_SECRET:-airflow_jwt_secret}"
    assert any("AIRFLOW__API_AUTH__JWT_SECRET must come from one required .env variable" in p
               for p in mutated(default_jwt))

    def two_secrets(doc):
        doc["services"]["scheduler"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] = "${OTHER_SECRET:?x}"
    assert any(p.startswith("AIRFLOW__API_AUTH__JWT_SECRET differs between Airflow services")
               for p in mutated(two_secrets))

    def simple_auth(doc):
        doc["services"]["api-server"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"] = (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    assert any(p.startswith("api-server: AIRFLOW__CORE__AUTH_MANAGER is") for p in mutated(simple_auth))

    def no_base_url(doc):
        for svc in _airflow_services(doc).values():
            svc["environment"].pop("AIRFLOW__API__BASE_URL")
    assert "api-server does not set AIRFLOW__API__BASE_URL" in mutated(no_base_url)

    def localhost_execution_api(doc):
        doc["services"]["worker"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
            "http://localhost:8080/execution/")
    assert any(p.startswith("worker: AIRFLOW__CORE__EXECUTION_API_SERVER_URL is") for p in mutated(localhost_execution_api))


def test_admin_comes_from_env_variables_that_env_example_defines():
    doc, example = _compose(), _env_example()
    assert admin_problems(doc, example) == []
    init = _resolve(doc["services"]["airflow-init"]["environment"], _filled_example())
    assert init["_AIRFLOW_WWW_USER_USERNAME"] == example["AIRFLOW_ADMIN_USER"] == "admin"
    assert init["_AIRFLOW_WWW_USER_PASSWORD"] == example["AIRFLOW_ADMIN_PASSWORD"]
    # the init command fails when the entrypoint's (error-ignoring) migrate or user creation did not happen
    command = " ".join(_command(doc["services"]["airflow-init"]))
    assert "airflow db check-migrations" in command and "airflow users list" in command

    # a hard-coded password, or a variable .env.example lacks, is refused
    bad = _unshared(doc)
    bad["services"]["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_PASSWORD"] = "airflow"
    assert admin_problems(bad, example) == [
        "airflow-init: _AIRFLOW_WWW_USER_PASSWORD must be one required .env variable, not 'airflow'"]
    lacking = {k: v for k, v in example.items() if k != "AIRFLOW_ADMIN_PASSWORD"}
    assert admin_problems(doc, lacking) == [
        "airflow-init: _AIRFLOW_WWW_USER_PASSWORD reads AIRFLOW_ADMIN_PASSWORD, which .env.example does not define"]


def test_no_service_bind_mounts_code():
    doc = _compose()
    assert bind_mount_problems(doc) == []
    bad = _unshared(doc)
    bad["services"]["worker"]["volumes"] = ["./dags:/opt/airflow/dags:ro"]
    bad["services"]["scheduler"]["volumes"] = [{"type": "bind", "source": "./plugins", "target": "/opt/airflow/plugins"}]
    problems = bind_mount_problems(bad)
    assert len(problems) == 2, problems
    assert any(p.startswith("worker bind-mounts './dags'") for p in problems)
    assert any(p.startswith("scheduler mounts {'type': 'bind'") for p in problems)


def test_worker_serves_the_default_and_the_deliver_queue():
    doc = _compose()
    worker = _airflow_services(doc)["worker"]
    for value, queue in (("deliver", "deliver"), ("slack-allowed", "slack-allowed"), ("", "deliver"), (None, "deliver")):
        env = {**_filled_example(), "KAIZEN_DELIVER_QUEUE": value}
        if value is None:
            env.pop("KAIZEN_DELIVER_QUEUE")
        cmd = _resolve(_command(worker), env)
        queues = cmd[cmd.index("--queues") + 1].split(",")
        assert queues == ["default", queue]
        # the dag-processor, which decides each task's queue, sees the same queue name
        seen = _resolve(doc["services"]["dag-processor"]["environment"], env)["KAIZEN_DELIVER_QUEUE"]
        assert seen == queue


def test_every_variable_compose_interpolates_is_in_env_example():
    doc, example = _compose(), _env_example()
    assert env_coverage_problems(doc, example) == []
    bad = _unshared(doc)
    bad["services"]["worker"]["environment"]["KAIZEN_NEW"] = "${NEW_SETTING:-x}"
    assert env_coverage_problems(bad, example) == [
        "docker-compose.yaml reads ${NEW_SETTING}, which .env.example does not define"]
    # copied unfilled, .env.example stops compose on exactly the three secrets (no shipped secret) ...
    missing = set()
    for _name, _op, _arg in _interpolated(doc):
        try:
            _interpolate(f"${{{_name}{_op or ''}{_arg}}}", example)
        except Missing as exc:
            missing.add(exc.name)
    assert missing == set(SHARED_SECRETS)
    assert all(example[k] == "" for k in SHARED_SECRETS)
    # ... and once they are filled in, everything resolves
    _resolve(_compose(), _filled_example())


def test_env_example_has_no_dead_variable():
    code = "\n".join(p.read_text() for d in ("plugins", "dags") for p in (REPO / d).rglob("*.py"))
    doc, example = _compose(), _env_example()
    assert dead_variable_problems(doc, example, code) == []
    # AIRFLOW_ADMIN_PASSWORD was once defined and never read: the rule catches that
    unread = _compose(COMPOSE.read_text().replace("${AIRFLOW_ADMIN_PASSWORD:?", "${ADMIN_PW:?"))
    assert dead_variable_problems(unread, example, code) == [
        ".env.example defines AIRFLOW_ADMIN_PASSWORD, which nothing reads"]


def test_env_example_has_every_key_the_code_reads():
    code = "\n".join(p.read_text() for p in (REPO / "plugins" / "kaizen").rglob("*.py"))
    conn_ids = set(re.findall(r'_CONN_ID = "(kaizen_\w+)"', code))
    env_keys = set(re.findall(r'^ENV_\w+ = "(KAIZEN_\w+)"', code, re.M))
    example = set(_env_example())
    missing = {f"AIRFLOW_CONN_{c.upper()}" for c in conn_ids} - example
    assert not missing, f".env.example lacks {sorted(missing)}"
    # demo/test-only folders need not be set in production
    optional = {"KAIZEN_DEMO_DIR", "KAIZEN_DATA_DIR", "KAIZEN_OUT_DIR"}
    missing = env_keys - optional - example - {"KAIZEN_SOURCES"}
    assert not missing, f".env.example lacks {sorted(missing)}"
    compose_env = _compose()["x-airflow"]["environment"]
    assert compose_env["KAIZEN_SOURCES"] == "live"


def test_dockerfile_cuts_requirements_at_the_marker(tmp_path):
    dockerfile, requirements = DOCKERFILE.read_text(), (REPO / "requirements.txt").read_text()
    marker = _freeze().TOOLS_MARKER
    assert _instructions(dockerfile)[0] == ("FROM", BASE_IMAGE)
    rc, cut = _run_cut(dockerfile, requirements, tmp_path)
    lines = requirements.splitlines()
    assert rc == 0
    assert cut.splitlines() == lines[: lines.index(marker)]
    names = {ln.split("==")[0] for ln in cut.splitlines() if ln and not ln.startswith("#")}
    assert {"apache-airflow", "apache-airflow-providers-celery", "apache-airflow-providers-fab", "redis"} <= names
    assert not {"pytest", "ruff", "playwright", "check-jsonschema"} & names
    # without the marker the build stops instead of installing the test tools
    (tmp_path / "requirements-runtime.txt").unlink()
    rc, cut = _run_cut(dockerfile, requirements.replace(marker + "\n", ""), tmp_path)
    assert rc != 0 and cut == ""


def test_dockerfile_installs_nothing_unpinned_and_copies_the_code():
    dockerfile = DOCKERFILE.read_text()
    assert install_problems(dockerfile) == []
    assert copy_problems(dockerfile) == []
    # the first version of this Dockerfile: the whole file (test tools too) plus two unpinned packages
    before = (
        "FROM apache/airflow:slim-3.3.2-python3.11\nUSER airflow\n"
        "COPY --chown=airflow:root requirements.txt /opt/kaizen/requirements.txt\n"
        "RUN pip install --no-cache-dir uv \\\n"
        ' && uv pip install --no-cache --python "$(command -v python)" -r /opt/kaizen/requirements.txt \\\n'
        '      "apache-airflow-providers-celery" "redis"\n'
    )
    problems = install_problems(before)
    assert "unpinned install 'uv': pip install --no-cache-dir uv" in problems
    assert any("unpinned install 'apache-airflow-providers-celery'" in p for p in problems)
    assert any("unpinned install 'redis'" in p for p in problems)
    assert any("a requirements file other than the cut one" in p for p in problems)
    assert copy_problems(before) == [f"the image lacks {d}/ at /opt/airflow/{d}" for d in CODE_DIRS]


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_the_code():
    patterns = _dockerignore_patterns()
    for path in (".env", ".venv/bin/python", ".airflow/airflow.db", "out/outbox/x.json", "data/demo/trades.csv",
                 "tests/test_compose.py", ".git/HEAD", "plugins/kaizen/__pycache__/config.cpython-311.pyc"):
        assert _dockerignored(patterns, path), path
    shipped = [p.relative_to(REPO).as_posix() for d in CODE_DIRS for p in (REPO / d).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    assert "plugins/kaizen/data/nse_holidays.json" in shipped  # a "data" folder the image needs
    assert [p for p in shipped if _dockerignored(patterns, p)] == []
    assert not _dockerignored(patterns, "requirements.txt")
    # "**/data" instead of "data" would drop the calendar data: the matcher sees it
    assert _dockerignored(["**/data"], "plugins/kaizen/data/nse_holidays.json")


@pytest.mark.parametrize(("module", "defines"), [
    ("airflow/providers/fab/auth_manager/fab_auth_manager.py", "class FabAuthManager("),
    ("airflow/providers/celery/executors/celery_executor.py", 'if name == "app":'),
])
def test_class_paths_in_compose_exist_in_the_pinned_providers(module, defines):
    """The auth manager and the Celery app the worker healthcheck pings are where the
    compose file says, in the provider versions requirements.txt pins (read as files:
    importing airflow here would cost seconds)."""
    files = [Path(p) / module for p in sys.path if (Path(p) / module).is_file()]
    assert files, f"{module} is not installed"
    assert defines in files[0].read_text()
    text = COMPOSE.read_text()
    dotted = module.removesuffix(".py").replace("/", ".")
    assert dotted in text
