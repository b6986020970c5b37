"""The "Team" section of the monthly and quarterly reviews and the Sheet's "Team metrics"
tab (issue 17, Deliver 1 and 6), from the hand-made fixtures of team_wire.py: the KPI
table's team lines with targets and status, each month's survey and Team tab figures,
the on-call load per responder, what is missing, the quarantined rows; a section whose
data cannot be read says so and the review still goes out. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from kaizen.kpis import periods
from kaizen.reports import review
from kaizen.team import section as team_section
from test_team_measures import ist, loaded  # noqa: F401  (the fixture)


@pytest.fixture
def november(loaded, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("KAIZEN_ARTIFACT_ROOT", raising=False)
    from kaizen.kpis import catalog

    catalog.load_definitions(loaded)
    periods.compute_rollups(loaded, ["month"], date(2026, 11, 1), date(2026, 11, 1), "r", as_of=ist(date(2026, 12, 1)))
    return loaded


def test_the_monthly_review_has_the_team_section_and_tab(november, tmp_path):
    r = review.build_review(november, "monthly", date(2026, 11, 1), as_of=ist(date(2026, 12, 1)))
    t = r.team
    assert t is not None and t.error is None
    (m,) = t.months
    assert (m.month, m.team_size, m.responses, m.mean_score, m.documentation_coverage_pct, m.tech_talks,
            m.participants) == ("2026-11", 6, 4, 8.5, 91.5, 3, 4)
    assert m.cells == {"team_size": "6", "responses": "4", "rate": "67 %", "score": "8.5/10",
                       "documentation": "91.5 %", "talks": "3", "participation": "4 of 6 (67 %)"}
    # November (IST): 6 incidents first assigned ÷ 30/7 weeks
    assert t.team_incidents == 6 and t.per_week == pytest.approx(1.4)
    # responders: Asha I1, I3, I5 (Nov 23), I4 (30 Nov IST); Dev I5 (20 Nov), I2, I7; Meera I1;
    # their hours on call from the landed span (20 Nov 10:30Z) to 30 Nov 18:30Z
    assert [(p.name, p.incidents, p.oncall_hours) for p in t.responders] == [
        ("Dev Kapoor", 3, 66.0), ("Asha Rao", 4, 168.0), ("Meera Pillai", 1, 234.0)]
    assert t.notes == []
    assert "satisfaction: spreadsheet" not in " ".join(t.refused)
    assert any("month 2026-11 is already on row 3" in x for x in t.refused)
    md = review.render_review(r, run_id="t", out_dir=tmp_path / "out")
    text = md["markdown"]
    assert "#### Team Metrics" in text and "#### Team: survey, knowledge sharing, on-call load" in text
    assert "| **Team satisfaction (of 10)** | > 8 | 8.5 ✅ |" in text
    assert "| **Knowledge sharing (tech talks per month)** | ≥ 2 | 3 ✅ |" in text
    assert "| **On-call incidents per week** | < 5 | 1.4 ✅ |" in text
    assert "| Nov 2026 | 6 | 4 | 67 % | 8.5/10 | 91.5 % | 3 | 4 of 6 (67 %) |" in text
    assert "| Dev Kapoor | 66 h | 3 | 7.6 ❌ |" in text
    assert "6 incidents assigned in 4.3 weeks = 1.4 a week for the team" in text
    replies = [p for p in md["thread"] if p["text"].startswith("Team — ")]
    assert len(replies) == 1
    blob = str(replies[0]["blocks"])
    assert "Dev Kapoor: 3 incidents over 66 h on call → 7.6 a week ❌" in blob
    tab = md["sheet_rows"][team_section.SHEET_TAB]
    assert tab["header"][:4] == ["period_key", "row", "team_size", "survey_responses"]
    assert tab["rows"][0] == ["2026-11", "month 2026-11", 6, 4, 66.6667, 8.5, 91.5, 3, 66.6667, None, None, None]
    assert tab["rows"][-1] == ["2026-11", "team on-call", None, None, None, None, None, None, None, None, 6, 1.4]
    assert "Team" not in md["sheet_rows"]  # the hand-kept tab is read, never written


def test_a_month_without_entries_says_what_is_missing_never_0(november, tmp_path):
    with november.begin() as c:
        c.execute(sa.text("delete from raw_team_months"))
        c.execute(sa.text("delete from raw_satisfaction_responses where score <> 9"))
    r = review.build_review(november, "monthly", date(2026, 11, 1), as_of=ist(date(2026, 12, 1)))
    (m,) = r.team.months
    assert m.cells == {"team_size": "—", "responses": "1", "rate": "n/a", "score": "n/a (1 of 3 needed)",
                       "documentation": "n/a", "talks": "n/a", "participation": "n/a"}
    assert r.team.notes == [
        "Nov 2026: 1 survey response, fewer than 3: no satisfaction score.",
        "Nov 2026: no row in the Team tab — add one (month, team size, documentation coverage, tech talks, "
        "innovation-day participants).",
    ]
    with november.begin() as c:
        c.execute(sa.text("delete from raw_satisfaction_responses"))
    r = review.build_review(november, "monthly", date(2026, 11, 1), as_of=ist(date(2026, 12, 1)))
    (m,) = r.team.months
    assert (m.cells["responses"], m.cells["rate"], m.cells["score"]) == ("0", "n/a", "n/a (no responses)")


def test_a_team_section_that_cannot_be_read_says_so_and_the_review_goes_out(november, tmp_path, monkeypatch):
    def broken(conn, start, end):
        conn.execute(sa.text("select * from raw_oncall_spans_gone"))

    monkeypatch.setattr(team_section.tm, "responder_load", broken)
    r = review.build_review(november, "quarterly", date(2026, 10, 1), as_of=ist(date(2026, 12, 1)))
    assert r.team.error and "raw_oncall_spans_gone" in r.team.error
    out = review.render_review(r, run_id="t", out_dir=tmp_path / "out")
    assert "_⚠️ team data unavailable: " in out["markdown"]
    assert "team data unavailable" in str([p for p in out["thread"] if p["text"].startswith("Team — ")])
    assert team_section.SHEET_TAB not in out["sheet_rows"]


def test_the_weekly_review_has_no_team_section(november):
    r = review.build_review(november, "weekly", date(2026, 11, 23), as_of=ist(date(2026, 11, 30)))
    assert r.team is None


def test_the_team_queries_of_the_warehouse_doc_run(loaded):  # noqa: F811
    import re

    from kaizen import config

    doc = (config.REPO_ROOT / "docs" / "warehouse.md").read_text()
    section = doc[doc.index("## Team metrics, in SQL"):doc.index("## Schema")]
    blocks = re.findall(r"\*\*(.+?)\*\*(.*?)```sql\n(.+?)```", section, flags=re.S)
    assert len(blocks) == 5
    periods.compute_rollups(loaded, ["month"], date(2026, 11, 1), date(2026, 11, 1), "r", as_of=ist(date(2026, 12, 1)))
    ran = 0
    with loaded.connect() as c:
        for title, note, sql in blocks:
            if "PostgreSQL" in note and loaded.dialect.name != "postgresql":
                continue
            got = c.execute(sa.text(sql)).all()
            assert got, title
            ran += 1
    assert ran == (5 if loaded.dialect.name == "postgresql" else 4)
    with loaded.connect() as c:  # the view's November row, by hand: rows 2-5 of the response tab
        row = c.execute(sa.text("select * from v_team_month where month = '2026-11'")).mappings().one()
    assert (row["survey_responses"], row["satisfaction_mean_score"], row["team_size"],
            row["survey_response_rate_pct"], row["innovation_days_participation_pct"]) == (
        4, 8.5, 6, pytest.approx(400 / 6), pytest.approx(400 / 6))


def test_rendering_the_same_period_again_gives_the_same_content_so_nothing_is_posted_twice(november, tmp_path):
    """The delivery ledger posts a review once per content hash: the Team section must
    render the same bytes from the same data (its orders are fixed, no run time in it)."""
    hashes = []
    for run in ("first", "second"):
        r = review.build_review(november, "quarterly", date(2026, 10, 1), as_of=ist(date(2026, 12, 1)))
        out = review.render_review(r, run_id=run, out_dir=tmp_path / run)
        hashes.append((out["content_hash"], out["sheet_rows"][team_section.SHEET_TAB]))
    assert hashes[0] == hashes[1]
    from kaizen.sources import team_sheets
    from test_team_measures import sheets_transport

    team_sheets.extract_range(date(2026, 10, 1), date(2026, 12, 1), november, "late", sheets_transport())  # a re-run
    r = review.build_review(november, "quarterly", date(2026, 10, 1), as_of=ist(date(2026, 12, 1)))
    assert review.render_review(r, run_id="third", out_dir=tmp_path / "third")["content_hash"] == hashes[0][0]
