"""Source retention (issue: operated day after day). Prometheus keeps 15 days by
default; a backfill over older days gets less — or nothing — back. Such a re-extract
must not replace the stored minutes with nothing: the stored rows, their facts and
their quarantine rows are kept, and the log and the run summary say so."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from kaizen import config
from kaizen.sources import prometheus

DAY = date(2026, 11, 26)


def _counts(engine) -> dict:
    with engine.connect() as c:
        return {t: c.execute(sa.text(f"select count(*) from {t}")).scalar()
                for t in ("raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes", "fct_probe_slot")}


@pytest.fixture
def loaded(engine, tmp_path_factory):
    from kaizen.demo import generate

    demo = tmp_path_factory.mktemp("demo")
    generate(end=DAY, months=1, seed=5, out_dir=demo, trades_per_day=20)
    prometheus.extract_range(DAY, DAY, engine, "first", prometheus.demo_transport(demo))
    return engine, demo


def _empty(start, end):
    return {name: [{"status": "success", "data": {"resultType": "matrix", "result": []}}]
            for name in prometheus.QUERIES}


def test_an_empty_re_extract_past_retention_keeps_the_stored_minutes(loaded, caplog, monkeypatch):
    engine, _ = loaded
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "7")
    before = _counts(engine)
    assert before["raw_probe_minutes"] >= 1440
    with caplog.at_level(logging.WARNING):
        results = prometheus.extract_range(DAY, DAY, engine, "again", _empty)
    assert _counts(engine) == before
    assert {r.table: r.kept for r in results} == {
        "raw_probe_minutes": before["raw_probe_minutes"], "raw_latency_buckets": before["raw_latency_buckets"],
        "raw_error_minutes": before["raw_error_minutes"]}
    assert all(r.loaded == 0 and "7-day retention" in r.warning for r in results)
    assert sum("the stored rows are kept" in m for m in caplog.messages) == 3


def test_within_retention_an_empty_answer_fails_and_keeps_the_stored_minutes(loaded, monkeypatch):
    """Inside the retention window Prometheus answering no series at all is a fault
    (a relabelled job, a wrong selector), not a day without probes: the extract fails
    naming the query and the setting, and nothing stored is replaced (issue 14: an
    empty answer and an unreachable source end in the same state)."""
    from kaizen.sources.base import SourceError

    engine, _ = loaded
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", str((date.today() - DAY).days + 30))
    before = _counts(engine)
    with pytest.raises(SourceError, match=r"no series matched min_over_time\(probe_success.*"
                                          r"setting KAIZEN_PROM_PROBE_SELECTOR") as info:
        prometheus.extract_range(DAY, DAY, engine, "again", _empty)
    assert not info.value.transient
    assert _counts(engine) == before


def test_a_full_re_extract_past_retention_replaces_as_usual(loaded, monkeypatch):
    engine, demo = loaded
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "1")
    before = _counts(engine)
    results = prometheus.extract_range(DAY, DAY, engine, "again", prometheus.demo_transport(demo))
    assert _counts(engine) == before and all(r.kept == 0 and r.loaded > 0 for r in results)


@pytest.mark.parametrize(("text", "expected"), [("", timedelta(days=15)), ("0", None), ("30", timedelta(days=30))])
def test_the_retention_setting(monkeypatch, text, expected):
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", text)
    assert config.retention("prometheus") == expected
    assert config.retention("github") is None


@pytest.mark.parametrize("text", ["x", "-3", "1.5"])
def test_a_wrong_retention_setting_names_it(monkeypatch, text):
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", text)
    with pytest.raises(ValueError, match="KAIZEN_RETENTION_PROMETHEUS_DAYS"):
        config.retention("prometheus")
