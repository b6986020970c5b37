"""Artefacts: the bytes one task writes for the next (chart PNGs, the rendered review
documents), and the published copies of review documents that people open.

Tasks may run on different hosts (two Celery workers), so nothing passes between them
as a local path: a task writes with :func:`put_all` under ``KAIZEN_ARTIFACT_ROOT`` and
hands on the URLs (strings, in its XCom); the next task reads them with :func:`get`.
Both go through :class:`airflow.sdk.ObjectStoragePath` (the common-io provider):

- ``file://<KAIZEN_OUT_DIR>/artifacts`` by default — readable by tasks on this host or
  on hosts sharing that volume only;
- ``s3://bucket/prefix`` or ``gs://bucket/prefix`` by configuration, with the Airflow
  connection ``KAIZEN_ARTIFACT_CONN_ID`` (the URLs handed on carry it, as
  ``s3://<conn_id>@bucket/…``; the filesystem package, s3fs or gcsfs, must be installed).

Keys are deterministic: ``<report>/<period_key>/<digest>/<name>``, the digest taken over
the names and bytes of everything the render wrote. A re-run with the same content
writes the same keys with the same bytes; a revision writes new keys, so a deliver task
still holding the previous render's URLs reads that render's bytes. Old keys are not
removed (a few hundred kB per revision; expire them with the store's lifecycle rules).

Publishing (``KAIZEN_PUBLISH_ROOT`` + ``KAIZEN_PUBLISH_BASE_URL``, see
:func:`kaizen.config.publish_settings`): :func:`publish` writes a review's documents
under ``<root>/<report>/<period_key>/`` with fixed names, overwritten by a revision, so
:func:`published_url` — what the Slack headline links — stays the same.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from kaizen import config
from kaizen.errors import PermanentError

DIGEST_CHARS = 16  # of the sha256 in an artefact key: 64 bits, per report and period


class ArtifactError(PermanentError, ValueError):
    """An artefact URL or store that cannot be used; the message says what to fix."""


class ArtifactMissing(PermanentError, FileNotFoundError):
    """An artefact the previous task wrote is not there (any more)."""


def _plain(part: str, what: str) -> str:
    if not part or "/" in part or "\\" in part or part in (".", "..") or part.startswith("."):
        raise ArtifactError(f"{what} must be a plain name (no '/', not starting with '.'), got {part!r}")
    return part


def _path(url: str, conn_id: str | None = None):
    from airflow.sdk import ObjectStoragePath

    try:
        return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)
    except ValueError as exc:  # an fsspec protocol nobody registered
        raise ArtifactError(f"{url}: {exc}; use file://, s3:// or gs:// (with its Airflow provider)") from exc


def _is_local(path) -> bool:
    return path.protocol in ("file", "local")


def _write(path, data: bytes, setting: str) -> None:
    try:
        if _is_local(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except ImportError as exc:  # s3fs / gcsfs not installed
        raise ArtifactError(f"cannot write {path} ({setting}): {exc}. Install the provider of that store "
                            "(apache-airflow-providers-amazon[s3fs] or -google) or use a file:// root") from exc


def digest_of(files: dict[str, bytes]) -> str:
    """sha256 (first :data:`DIGEST_CHARS` hex digits) over the names and bytes of ``files``."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:DIGEST_CHARS]


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def put_all(report: str, period_key: str, files: dict[str, bytes | str], *, root: str | None = None,
            out_dir=None) -> dict[str, str]:
    """Write ``{name: bytes or text}`` under ``<root>/<report>/<period_key>/<digest>/``
    and return ``{name: URL}``. ``root`` defaults to :func:`kaizen.config.artifact_root`
    (``out_dir`` standing in for the out dir there)."""
    _plain(report, "report")
    _plain(period_key, "period key")
    data = {_plain(name, "artefact name"): _bytes(b) for name, b in files.items()}
    base_url = root or config.artifact_root(out_dir)
    base = _path(base_url, config.artifact_conn_id()) / report / period_key / digest_of(data)
    urls = {}
    for name, content in data.items():
        path = base / name
        _write(path, content, config.ENV_ARTIFACT_ROOT)
        urls[name] = str(path)
    return urls


def is_url(value) -> bool:
    return isinstance(value, str) and "://" in value


def get(url: str, *, what: str) -> bytes:
    """The bytes at artefact ``url`` (``what`` names it in errors: "chart 'incidents'")."""
    if not is_url(url):
        raise ArtifactError(
            f"{what}: {url!r} is not an artefact URL. Tasks hand artefacts on as URLs under "
            f"{config.ENV_ARTIFACT_ROOT} (kaizen.artifacts), never as local paths, which another worker cannot "
            "read: clear the render task of this run so that it renders again with this version.")
    path = _path(url)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactMissing(
            f"{what}: the artefact {url} is missing. The render task wrote it and it is gone, or it was written "
            f"where this worker cannot read ({config.ENV_ARTIFACT_ROOT} must name storage every worker shares: "
            "an s3:// or gs:// URL, or a file:// path on a shared volume). Clear the render task of this run "
            "(render_review) so that it writes it again, then this task reads it.") from exc
    except ImportError as exc:
        raise ArtifactError(f"{what}: cannot read {url}: {exc}. Install the provider of that store on this "
                            "worker") from exc


def get_text(url: str, *, what: str) -> str:
    return get(url, what=what).decode("utf-8")


# ---------------------------------------------------------------------------- publishing


def published_url(settings: config.PublishSettings, report: str, period_key: str, name: str) -> str:
    """The http(s) address of a published document: ``<base_url>/<report>/<period_key>/<name>``."""
    parts = (_plain(report, "report"), _plain(period_key, "period key"), _plain(name, "document name"))
    return settings.base_url + "/" + "/".join(quote(p, safe="") for p in parts)


def _published(settings: config.PublishSettings, report: str, period_key: str):
    return _path(settings.root, settings.conn_id) / _plain(report, "report") / _plain(period_key, "period key")


def publish(settings: config.PublishSettings, report: str, period_key: str, files: dict[str, bytes | str]) -> dict:
    """Write ``files`` under ``<root>/<report>/<period_key>/`` (a revision overwrites
    them: same names, same addresses); the HTML last, once what it stands beside is
    there. Returns ``{name: http(s) URL}``."""
    folder = _published(settings, report, period_key)
    order = sorted(files, key=lambda n: (n.endswith(".html"), n))
    for name in order:
        _write(folder / _plain(name, "document name"), _bytes(files[name]), config.ENV_PUBLISH_ROOT)
    return {name: published_url(settings, report, period_key, name) for name in order}


def published_intact(settings: config.PublishSettings, report: str, period_key: str,
                     files: dict[str, bytes | str]) -> bool:
    """Whether every one of ``files`` is published with these bytes (a file deleted or
    edited in the store is published again)."""
    folder = _published(settings, report, period_key)
    for name, data in files.items():
        path = folder / _plain(name, "document name")
        try:
            if path.read_bytes() != _bytes(data):
                return False
        except FileNotFoundError:
            return False
    return True
