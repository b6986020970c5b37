"""Artefacts between tasks (kaizen.artifacts): the render task writes its charts and
documents under KAIZEN_ARTIFACT_ROOT through ObjectStoragePath and hands on URLs; the
deliver task reads them back — also on another "host" (another out dir, the render's
gone), and a missing artefact fails with its URL and what to do."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from datetime import date

import pytest

from kaizen import artifacts, config, pipeline
from kaizen.errors import is_permanent

REPORT, PERIOD = "weekly_review", "2026-W47"


# ---------------------------------------------------------------------------- settings


def test_the_artifact_root_defaults_under_the_out_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("KAIZEN_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    assert config.artifact_root() == f"file://{tmp_path}/out/artifacts"
    assert config.artifact_root(tmp_path / "other") == f"file://{tmp_path}/other/artifacts"


@pytest.mark.parametrize(("value", "expected"), [
    ("s3://kaizen-artifacts/prod/", "s3://kaizen-artifacts/prod"),
    ("gs://bucket/k", "gs://bucket/k"),
    ("file:///srv/kaizen/artifacts", "file:///srv/kaizen/artifacts"),
    ("/srv/kaizen/artifacts", "file:///srv/kaizen/artifacts"),
])
def test_the_artifact_root_setting(monkeypatch, value, expected):
    monkeypatch.setenv("KAIZEN_ARTIFACT_ROOT", value)
    assert config.artifact_root() == expected


@pytest.mark.parametrize("value", ["artifacts", "s3://", "://x"])
def test_a_bad_artifact_root_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("KAIZEN_ARTIFACT_ROOT", value)
    with pytest.raises(ValueError, match=f"KAIZEN_ARTIFACT_ROOT={value!r}"):
        config.artifact_root()


def test_publish_settings_both_or_neither(monkeypatch):
    monkeypatch.delenv("KAIZEN_PUBLISH_ROOT", raising=False)
    monkeypatch.delenv("KAIZEN_PUBLISH_BASE_URL", raising=False)
    assert config.publish_settings() is None
    monkeypatch.setenv("KAIZEN_PUBLISH_ROOT", "s3://reports/kaizen")
    with pytest.raises(ValueError, match="KAIZEN_PUBLISH_ROOT is set but KAIZEN_PUBLISH_BASE_URL is not"):
        config.publish_settings()
    monkeypatch.setenv("KAIZEN_PUBLISH_BASE_URL", "reports.example.test")
    with pytest.raises(ValueError, match="is not an http"):
        config.publish_settings()
    monkeypatch.setenv("KAIZEN_PUBLISH_BASE_URL", "https://reports.example.test/kaizen/")
    monkeypatch.setenv("KAIZEN_PUBLISH_CONN_ID", "aws_reports")
    settings = config.publish_settings()
    assert settings == config.PublishSettings("s3://reports/kaizen", "https://reports.example.test/kaizen",
                                              "aws_reports")
    assert artifacts.published_url(settings, REPORT, PERIOD, "review.html") == (
        "https://reports.example.test/kaizen/weekly_review/2026-W47/review.html")


# ---------------------------------------------------------------------------- put / get


def test_put_and_get_by_url_with_deterministic_content_keys(tmp_path):
    root = (tmp_path / "store").as_uri()
    files = {"a.png": b"\x89PNG one", "review.md": "# Week ₹\n"}
    urls = artifacts.put_all(REPORT, PERIOD, files, root=root)
    # the digest by hand: sha256 over (name, NUL, sha256(bytes)) in name order
    h = hashlib.sha256()
    for name, data in (("a.png", b"\x89PNG one"), ("review.md", "# Week ₹\n".encode())):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    digest = h.hexdigest()[:16]
    assert urls == {name: f"{root}/{REPORT}/{PERIOD}/{digest}/{name}" for name in files}
    assert (tmp_path / "store" / REPORT / PERIOD / digest / "review.md").read_bytes() == "# Week ₹\n".encode()
    assert artifacts.get(urls["a.png"], what="a") == b"\x89PNG one"
    assert artifacts.get_text(urls["review.md"], what="md") == "# Week ₹\n"
    assert artifacts.put_all(REPORT, PERIOD, files, root=root) == urls  # a re-run: the same keys
    changed = artifacts.put_all(REPORT, PERIOD, {**files, "a.png": b"\x89PNG two"}, root=root)
    assert changed["a.png"] != urls["a.png"] and artifacts.get(urls["a.png"], what="a") == b"\x89PNG one"


def test_a_missing_artifact_names_its_url_and_the_fix(tmp_path):
    url = f"{(tmp_path / 'store').as_uri()}/{REPORT}/{PERIOD}/0000000000000000/incidents.png"
    with pytest.raises(artifacts.ArtifactMissing) as err:
        artifacts.get(url, what="chart 'incidents'")
    text = str(err.value)
    assert text.startswith(f"chart 'incidents': the artefact {url} is missing.")
    assert "KAIZEN_ARTIFACT_ROOT must name storage every worker shares" in text
    assert "Clear the render task of this run (render_review)" in text
    assert is_permanent(err.value) and isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(("url", "match"), [
    ("/tmp/out/weekly_review/2026-W47/incidents.png", "is not an artefact URL"),
    ("nosuchfs://bucket/x.png", "use file://, s3:// or gs://"),
])
def test_an_unusable_url_is_refused(url, match):
    with pytest.raises(artifacts.ArtifactError, match=match) as err:
        artifacts.get(url, what="chart 'incidents'")
    assert is_permanent(err.value)


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed: this would call S3")
def test_an_s3_root_without_its_filesystem_says_what_to_install(monkeypatch):
    monkeypatch.setenv("KAIZEN_ARTIFACT_ROOT", "s3://kaizen-artifacts/prod")
    monkeypatch.setenv("KAIZEN_ARTIFACT_CONN_ID", "aws_default")
    with pytest.raises(artifacts.ArtifactError, match=r"apache-airflow-providers-amazon\[s3fs\]") as err:
        artifacts.put_all(REPORT, PERIOD, {"a.png": b"x"})
    assert "s3://aws_default@kaizen-artifacts/prod/weekly_review/2026-W47/" in str(err.value)


@pytest.mark.parametrize("bad", ["../up", "a/b", ".hidden", ""])
def test_keys_are_plain_names(tmp_path, bad):
    with pytest.raises(artifacts.ArtifactError, match="plain name"):
        artifacts.put_all(REPORT, PERIOD, {bad: b"x"}, root=tmp_path.as_uri())
    with pytest.raises(artifacts.ArtifactError, match="plain name"):
        artifacts.put_all(REPORT, bad, {"a.png": b"x"}, root=tmp_path.as_uri())


# ---------------------------------------------------------------------------- render → deliver


@pytest.fixture
def empty_warehouse(monkeypatch, tmp_path):
    """An empty SQLite warehouse (every figure n/a, every chart "no data"): enough for
    the real render and deliver tasks; no Slack, no Sheets."""
    db = tmp_path / "w.db"
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    for name in ("AIRFLOW_CONN_KAIZEN_SLACK", "AIRFLOW_CONN_KAIZEN_GSHEETS", "KAIZEN_PUBLISH_ROOT",
                 "KAIZEN_PUBLISH_BASE_URL", "KAIZEN_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "experiments.yaml"
    path.write_text("experiments: []\n", encoding="utf-8")
    monkeypatch.setenv("KAIZEN_EXPERIMENTS_FILE", str(path))
    pipeline.prepare_warehouse()
    return pipeline.resolve_review_period("weekly", param_period_start=date(2026, 11, 16).isoformat())


def _strings(doc):
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)
    elif isinstance(doc, str):
        yield doc


def test_deliver_on_another_host_reads_what_render_wrote(empty_warehouse, monkeypatch, tmp_path):
    """render_review on "host A" (its out dir A), deliver_review on "host B" (out dir B)
    after A's disk is gone; only the artefact root is shared."""
    host_a, host_b, shared = tmp_path / "host_a", tmp_path / "host_b", tmp_path / "shared"
    monkeypatch.setenv("KAIZEN_ARTIFACT_ROOT", shared.as_uri())
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(host_a))
    xcom = json.loads(json.dumps(pipeline.render_review(empty_warehouse, "scheduled__a")))  # as XCom stores it
    assert "markdown" not in xcom and "html" not in xcom  # by URL only: the XCom stays small
    urls = [*xcom["charts"].values(), *xcom["documents"].values()]
    assert len(urls) == 6 and all(u.startswith(shared.as_uri() + f"/{REPORT}/{PERIOD}/") for u in urls)
    assert not [s for s in _strings(xcom) if s.startswith("/") or str(host_a) in s]  # no local path anywhere
    sent = {u.rsplit("/", 1)[1]: artifacts.get(u, what=u) for u in urls}
    shutil.rmtree(host_a, ignore_errors=True)

    monkeypatch.setenv("KAIZEN_OUT_DIR", str(host_b))
    result = pipeline.deliver_review(xcom, mode="outbox")
    assert result["outbox"]["action"] == "written" and result["outbox"]["path"] == str(host_b / REPORT / PERIOD)
    folder = host_b / REPORT / PERIOD
    assert sorted(p.name for p in folder.iterdir()) == sorted([*sent, "headline.json", "thread.json"])
    for name, data in sent.items():
        assert (folder / name).read_bytes() == data, name
    assert (folder / "review.md").read_text(encoding="utf-8").startswith("# 📈 Weekly Review")
    assert not host_a.exists()


def test_deliver_without_a_shared_root_fails_naming_the_artefact(empty_warehouse, monkeypatch, tmp_path):
    """The default root is under the render host's out dir: a deliver task on another
    host does not find it and says which artefact and what to do."""
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "host_a"))
    xcom = json.loads(json.dumps(pipeline.render_review(empty_warehouse, "scheduled__a")))
    first = next(iter(xcom["charts"]))
    shutil.rmtree(tmp_path / "host_a")
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "host_b"))
    with pytest.raises(artifacts.ArtifactMissing) as err:
        pipeline.deliver_review(xcom, mode="outbox")
    assert f"{REPORT} {PERIOD}: chart {first!r}: the artefact {xcom['charts'][first]} is missing" in str(err.value)
    assert not (tmp_path / "host_b" / REPORT).exists()  # nothing delivered half-way
