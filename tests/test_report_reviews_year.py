"""Every weekly, monthly and quarterly review of a year of demo data renders within
Block Kit's limits (≤ 50 blocks, section text ≤ 3,000, header ≤ 150), names no period
wrongly and keeps Sheet text inert. The year is a year of incidents, alerts,
deployments, action items and trades — the sources that make messages long; the
per-minute Prometheus series only change figures, not sizes, and are left out to keep
the fixture to a couple of minutes."""

from __future__ import annotations

import importlib
import json
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.kpis import catalog, periods
from kaizen.period import Period, review_window_utc
from kaizen.reports import render, review

END = date(2026, 11, 27)
AS_OF = review_window_utc(END)[1]
SOURCES = ("trading", "github", "pagerduty", "github_issues")


@pytest.fixture(scope="module")
def year_db(tmp_path_factory):
    from kaizen.demo import generate

    base = tmp_path_factory.mktemp("year")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAIZEN_SOURCES", "demo")
        mp.setenv("KAIZEN_DEMO_DIR", str(base / "demo"))
        manifest = generate(end=END, months=12, seed=11, out_dir=base / "demo", trades_per_day=10)
        engine = sa.create_engine(f"sqlite:///{base / 'w.db'}")
        warehouse.apply_ddl(engine)
        catalog.load_definitions(engine)
        first = date.fromisoformat(manifest["first_trading_day"])
        for d in cal.trading_days(first, END):
            for name in SOURCES:
                importlib.import_module(f"kaizen.sources.{name}").extract(d, engine, "year")
        periods.compute_rollups(engine, periods.ROLLUP_GRAINS, first, END, "year", as_of=AS_OF)
    yield engine, first
    engine.dispose()


def test_every_review_of_a_year_fits_block_kit(year_db, tmp_path):
    engine, first = year_db
    todo = []
    for kind, grain in review.KINDS.items():
        d = Period.of(grain, first).start
        while datetime.combine(d, datetime.min.time(), tzinfo=cal.IST) < AS_OF:
            todo.append((kind, d))
            d = Period.of(grain, d).next().start
    counts = {k: sum(1 for kind, _ in todo if kind == k) for k in review.KINDS}
    assert counts["weekly"] >= 52 and counts["monthly"] >= 12 and counts["quarterly"] >= 4, counts
    problems, longest = [], 0
    for kind, ps in todo:
        name = f"{kind} {review.period_key(kind, ps)}"
        try:
            out = review.render_review(
                review.build_review(engine, kind, ps, as_of=AS_OF), run_id="year", out_dir=tmp_path
            )
        except Exception as exc:  # name the failing period, keep checking the others
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for i, p in enumerate([out["headline"], *out["thread"]]):
            longest = max(longest, len(p.get("blocks", [])))
            problems += [f"{name} payload {i}: {msg}" for msg in render.check_block_kit(p)]
        assert out["period_key"] == review.period_key(kind, ps)
        json.dumps(out)
    assert not problems, "\n".join(problems)
    assert longest <= 50
