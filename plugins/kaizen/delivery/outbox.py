"""The outbox sink, used when no Slack connection is configured: what would have been
sent, written to ``<out_dir>/<report>/<period_key>/`` — ``slack_payload.json`` (the
exact Block Kit payload) and ``<report>.md`` (a readable preview)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kaizen import config

PAYLOAD_FILE = "slack_payload.json"


def folder(report: str, period_key: str) -> Path:
    for part in (report, period_key):
        if not part or "/" in part or "\\" in part or part in (".", ".."):
            raise ValueError(f"report and period key must be plain names, got {part!r}")
    return config.out_dir() / report / period_key


def target(report: str, period_key: str) -> str:
    """The ledger's target for the outbox: the folder relative to the out dir."""
    return f"{report}/{period_key}"


def files(report: str, period_key: str) -> tuple[Path, Path]:
    base = folder(report, period_key)
    return base / PAYLOAD_FILE, base / f"{report}.md"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write(report: str, period_key: str, payload: dict, markdown: str) -> Path:
    payload_path, md_path = files(report, period_key)
    payload_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(payload_path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    _write_atomic(md_path, markdown)
    return payload_path.parent


def exists(report: str, period_key: str) -> bool:
    return all(p.exists() for p in files(report, period_key))
