"""Write requirements.txt from the virtualenv (``make freeze``): every installed
distribution pinned exactly, in two sections. The first is what the production image
installs: the dependency closure of RUNTIME_ROOTS. The second, from the TOOLS_MARKER
line on, is test and tool pins only; the Dockerfile cuts the file there. The closure
is recomputed by tests/test_requirements.py, so a root that gains a dependency from
the tools section fails the suite instead of breaking the image."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

RUNTIME_ROOTS = [
    "apache-airflow", "apache-airflow-providers-celery", "apache-airflow-providers-fab",
    "apache-airflow-providers-slack", "apache-airflow-providers-postgres", "apache-airflow-providers-common-sql",
    "apache-airflow-providers-common-io", "apache-airflow-providers-smtp", "apache-airflow-providers-standard",
    "pandas", "numpy", "sqlalchemy", "slack-sdk", "pyyaml", "pendulum", "requests", "gspread", "google-auth",
    "scipy", "matplotlib", "cryptography", "markdown-it-py", "jinja2", "psycopg", "psycopg-binary",
    "psycopg2-binary", "redis", "celery", "fsspec",
]
TOOLS_MARKER = "# --- test and tool pins: not in the production image (the Dockerfile cuts here) ---"
HEADER = """# Exact pins for Kaizen. Airflow's constraint files cannot be downloaded here, so these
# pins are ours: regenerate with `make freeze` after a change (.ci/freeze.py). The first
# section is the production image's (the dependency closure of the runtime roots)."""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> set[str]:
    dists = {norm(d.metadata["Name"]): d for d in metadata.distributions()}
    seen: set[tuple[str, frozenset]] = set()
    stack = [(norm(r), frozenset()) for r in roots]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = dists.get(name)
        if dist is None:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            stack.append((norm(req.name), frozenset(req.extras)))
    return {n for n, _ in seen}


def main() -> int:
    pins = sorted(
        (f"{norm(d.metadata['Name'])}=={d.version}" for d in metadata.distributions()
         if norm(d.metadata["Name"]) not in {"pip", "uv"}),
    )
    runtime = closure(RUNTIME_ROOTS)
    first = [p for p in pins if p.split("==")[0] in runtime]
    rest = [p for p in pins if p.split("==")[0] not in runtime]
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.txt")
    out.write_text("\n".join([HEADER, *first, TOOLS_MARKER, *rest]) + "\n")
    print(f"{out}: {len(first)} runtime pins, {len(rest)} test/tool pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
