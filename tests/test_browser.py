"""Live, in a browser: headless Chromium (Debian's ``chromium``, driven by Playwright
through ``executable_path``; no browser is ever downloaded) against the session's
stack (tests/live/fixtures.py), after the other live tests have run their DAGs.

- Sign in through Airflow's login page, open "Kaizen" in the navigation and read the
  scorecard in its frame: each grain's latest period and every KPI's status and value
  as the warehouse holds them (read here with our own SQL from ``kpi_values``).
- Trigger ``kaizen_backfill`` from its form with the end before the start: the toast
  on screen carries the reason, and no run is created.

Without /usr/bin/chromium the tests skip with a message; under CI=true they fail
(``.ci/run`` installs it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["live.fixtures"]
pytestmark = pytest.mark.live

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (the browser tests never download one)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, live):
    """A new browser context, signed in to Airflow through its login page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    stack = live.stack
    pg.goto(f"{stack.base}/")
    pg.get_by_label("Username").fill(stack.user)
    pg.get_by_label("Password").fill(stack.password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))
    try:
        yield pg
    finally:
        context.close()


def _latest_kpis(pg_url: str) -> dict[str, tuple[str, dict[str, tuple]]]:
    """{grain: (latest period_start, {kpi_id: (value, status)})} straight from kpi_values."""
    import sqlalchemy as sa

    eng = sa.create_engine(pg_url)
    try:
        with eng.connect() as c:
            rows = c.execute(sa.text(
                "select v.grain, v.period_start, v.kpi_id, v.value, v.status from kpi_values v"
                " join (select grain, max(period_start) as latest from kpi_values group by grain) l"
                " on l.grain = v.grain and l.latest = v.period_start"
            )).all()
    finally:
        eng.dispose()
    out: dict = {}
    for grain, start, kpi_id, value, status in rows:
        out.setdefault(grain, (start, {}))[1][kpi_id] = (value, status)
    return out


def _has_day(pg_url: str, day) -> bool:
    import sqlalchemy as sa

    eng = sa.create_engine(pg_url)
    try:
        with eng.connect() as c:
            return bool(c.execute(sa.text(
                "select count(*) from kpi_values where grain = 'day' and period_start = :d"), {"d": day}).scalar())
    except sa.exc.ProgrammingError:  # no kpi_values table yet
        return False
    finally:
        eng.dispose()


def test_the_kaizen_page_in_the_airflow_ui_shows_the_warehouse_scorecard(page, live):
    from playwright.sync_api import expect

    from kaizen.period import Period
    from live.fixtures import DEMO_END, run_ok

    if not _has_day(live.pg_url, DEMO_END):  # run alone, without the other live tests' runs
        run, _ = run_ok(live, "daily_review", {"day": DEMO_END.isoformat(), "deliver": "none"})
        assert run["state"] == "success", run
    live.stack.wait_idle(timeout=300)  # the scheduler's own runs too: the warehouse holds still
    expected = _latest_kpis(live.pg_url)
    assert set(expected) >= {"day", "week", "month", "quarter"}, expected.keys()

    page.get_by_role("link", name="Kaizen").click()  # the nav entry: the page in a frame
    frame = page.frame_locator("iframe").first
    expect(frame.locator("h1")).to_have_text("Kaizen")
    counted = []
    for grain, (start, kpis) in expected.items():
        card = frame.locator(f"#scorecard-{grain}")
        expect(card).to_have_attribute("data-period", Period.of(grain, start).key)
        for kpi_id, (value, status) in kpis.items():
            row = card.locator(f"tr[data-kpi={kpi_id}]")
            expect(row).to_have_attribute("data-status", status)
            if value is None:
                expect(row).not_to_have_attribute("data-value", re.compile(".*"))
            else:
                assert float(row.get_attribute("data-value")) == pytest.approx(value), (grain, kpi_id)
        trades = kpis.get("trades_count", (None, None))[0]
        if trades:
            shown = card.locator("tr[data-kpi=trades_count] td.value")
            expect(shown).to_be_visible()
            assert re.sub(r"\D", "", shown.inner_text()) == str(int(trades)), (grain, shown.inner_text())
            counted.append((grain, int(trades)))
    # the demo's trades are on the page, not only empty periods
    assert counted, "no grain's latest period has demo trades"


def test_a_refused_backfill_form_shows_its_reason_in_the_toast_and_creates_no_run(page, live):
    from playwright.sync_api import expect

    stack = live.stack
    runs_before = stack.api("GET", "/dags/kaizen_backfill/dagRuns").json()["total_entries"]
    page.goto(f"{stack.base}/dags/kaizen_backfill")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog]", has=page.locator("#element_start"))
    dialog.locator("#element_start").fill("2026-11-27")
    dialog.locator("#element_end").fill("2026-11-20")
    with page.expect_response(lambda r: r.url.endswith("/dags/kaizen_backfill/dagRuns")
                              and r.request.method == "POST") as answer:
        dialog.get_by_role("button", name="Trigger").last.click()
    assert 400 <= answer.value.status < 500
    toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text="Failed to Trigger Dag")
    reason = "end: 2026-11-20 is before start 2026-11-27"
    expect(toast.filter(has_text=reason).first).to_be_visible()
    expect(toast.filter(has_text=reason).first).to_be_in_viewport()
    assert stack.api("GET", "/dags/kaizen_backfill/dagRuns").json()["total_entries"] == runs_before
