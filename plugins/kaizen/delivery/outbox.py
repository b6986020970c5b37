"""The outbox sink, used when no Slack connection is configured: what would have been
sent, written to ``<out_dir>/<report>/<period_key>/`` — ``slack_payload.json`` (the
exact Block Kit payload) and ``<report>.md`` (a readable preview).

Review reports (:mod:`kaizen.delivery.reviews`) write their own set of files into the
same folder with :func:`write_files`, and the Sheets stand-in ``<out_dir>/sheets/<tab>.json``
with :func:`upsert_sheet_tab` (rows merged by key, like the Sheets sync)."""

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


def _write_atomic(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
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


def _plain_file_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"outbox file names must be plain names, got {name!r}")
    return name


def json_text(doc) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def write_files(report: str, period_key: str, contents: dict[str, str | bytes]) -> Path:
    """Write ``{file name: text or bytes}`` into the report's folder (each file atomically)."""
    base = folder(report, period_key)
    base.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        _write_atomic(base / _plain_file_name(name), data)
    return base


def files_exist(report: str, period_key: str, names) -> bool:
    base = folder(report, period_key)
    return all((base / _plain_file_name(n)).exists() for n in names)


SHEETS_FOLDER = "sheets"


def sheet_file(tab: str) -> Path:
    """``<out_dir>/sheets/<tab>.json`` (the Sheets stand-in)."""
    return config.out_dir() / SHEETS_FOLDER / (_plain_file_name(tab) + ".json")


def upsert_sheet_tab(
    tab: str,
    header: list,
    rows: list[list],
    *,
    key_columns: int,
    number_formats: dict | None,
    last_sync_ist: str,
    key_of,
) -> Path:
    """Merge ``rows`` (cells as they would go on the wire) into ``sheets/<tab>.json``
    like the Sheets sync: a row whose key (``key_of(row)``, the first ``key_columns``
    cells) is in the file is overwritten in place, a new key is appended, other rows
    are kept; ``key_columns=0`` replaces the rows."""
    path = sheet_file(tab)
    if key_columns == 0:
        merged = [list(r) for r in rows]
    else:
        old_rows = (json.loads(path.read_text(encoding="utf-8")).get("rows") or []) if path.exists() else []
        merged = [list(r) for r in old_rows]
        where: dict = {}
        for i, row in enumerate(merged):
            where.setdefault(key_of(row), i)
        seen: set = set()
        for row in rows:
            key = key_of(row)
            if key in seen:
                raise ValueError(f"tab {tab!r}: key {key} appears twice in the rows to write")
            seen.add(key)
            if key in where:
                merged[where[key]] = list(row)
            else:
                where[key] = len(merged)
                merged.append(list(row))
    doc = {
        "tab": tab,
        "header": list(header),
        "key_columns": key_columns,
        "number_formats": dict(number_formats or {}),
        "last_sync_ist": last_sync_ist,
        "rows": merged,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json_text(doc))
    return path
