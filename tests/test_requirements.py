"""requirements.txt: every pin exact, and its first section — what the production image
installs — closed under the runtime roots' dependencies, so the image cut at the
tools marker lacks nothing Kaizen imports and ships no test tool."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _freeze():
    spec = importlib.util.spec_from_file_location("kaizen_freeze", REPO / ".ci" / "freeze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sections():
    freeze = _freeze()
    runtime, tools, current = [], [], None
    current = runtime
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line == freeze.TOOLS_MARKER:
            current = tools
        elif line and not line.startswith("#"):
            current.append(line)
    return freeze, runtime, tools


def test_every_pin_is_exact():
    _, runtime, tools = _sections()
    assert tools, "the tools marker line is missing"
    for line in runtime + tools:
        name, sep, version = line.partition("==")
        assert sep and name and version and not any(c in version for c in "<>=,; "), line


def test_runtime_section_is_the_closure_of_the_runtime_roots():
    freeze, runtime, tools = _sections()
    names = {freeze.norm(line.split("==")[0]) for line in runtime}
    needed = freeze.closure(freeze.RUNTIME_ROOTS)
    assert needed - names == set(), "runtime dependencies pinned only in the tools section"
    assert names - needed == set(), "pins in the production section nothing at runtime needs"
    tool_names = {freeze.norm(line.split("==")[0]) for line in tools}
    assert {"pytest", "ruff", "playwright", "aiosmtpd", "check-jsonschema"} <= tool_names
    assert {"apache-airflow-providers-celery", "apache-airflow-providers-fab", "redis", "celery"} <= names


def test_installed_versions_match_the_pins():
    from importlib import metadata

    freeze, runtime, tools = _sections()
    for line in runtime + tools:
        name, _, version = line.partition("==")
        assert metadata.version(name) == version, line


def test_the_pinned_celery_runs_the_celery_executor():
    """celery 5.7.0 dropped ``celery.backends.database.retry``, which the Celery provider
    imports: every worker and a CeleryExecutor scheduler failed at import. The pins must
    keep the executor importable."""
    import importlib

    importlib.import_module("airflow.providers.celery.executors.celery_executor_utils")
