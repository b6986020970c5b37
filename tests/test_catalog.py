"""The KPI catalog: the file validates, covers DESIGN.md's KPIs with the source
document's targets, and loads into kpi_definitions idempotently on both dialects."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import yaml

from kaizen.kpis import catalog
from kaizen.kpis.day import build_rows

DESIGN_KPIS = {
    # trading
    "trades_count", "win_rate_pct", "net_pnl_inr", "avg_daily_pnl_inr", "largest_win_inr",
    "largest_loss_inr", "profit_factor", "sharpe_ratio", "max_drawdown_pct",
    "execution_success_pct", "avg_execution_ms", "p95_execution_ms",
    # reliability
    "uptime_pct", "session_uptime_pct", "downtime_minutes", "error_budget_remaining_pct",
    "sli_p95_latency_ms", "errors_count", "alerts_per_day", "alerts_per_day_p0",
    "alerts_per_day_p1", "alerts_per_day_p2", "mttr_minutes", "mttr_p50_minutes",
    "mttd_minutes", "mtbf_days",
    # delivery
    "deployments_per_day", "lead_time_hours", "lead_time_p90_hours", "change_failure_rate_pct",
    "recovery_time_minutes", "action_items_on_time_pct", "postmortems_on_time_pct",
}  # fmt: skip

# The source document's targets (continuous-improvement-framework.md, "Metrics and KPIs").
TARGETS = {
    "win_rate_pct": (">", 55),
    "avg_daily_pnl_inr": (">=", 10000),
    "sharpe_ratio": (">", 1.5),
    "max_drawdown_pct": ("<", 15),
    "execution_success_pct": (">", 99),
    "avg_execution_ms": ("<", 500),
    "uptime_pct": (">=", 99.9),
    "session_uptime_pct": (">=", 99.9),
    "error_budget_remaining_pct": (">", 0),
    "sli_p95_latency_ms": ("<", 500),
    "alerts_per_day": ("<", 10),
    "mttr_minutes": ("<", 30),
    "mttd_minutes": ("<", 5),
    "mtbf_days": (">", 30),
    "deployments_per_day": (">=", 1),
    "lead_time_hours": ("<", 24),
    "change_failure_rate_pct": ("<", 15),
    "action_items_on_time_pct": (">", 90),
    "team_satisfaction_score": (">", 8),
    "documentation_coverage_pct": (">", 90),
    "tech_talks_count": (">=", 2),
    "tech_talks_per_month": (">=", 2),
    "innovation_days_participation_pct": (">", 50),
    "oncall_incidents_per_week": ("<", 5),
}


def test_catalog_covers_design_and_targets():
    cat = catalog.read_catalog()
    assert DESIGN_KPIS <= set(cat.kpis)
    for kpi_id, (comparator, target) in TARGETS.items():
        k = cat[kpi_id]
        assert (k.comparator, k.target) == (comparator, target), kpi_id
    assert {k.domain for k in cat.kpis.values()} == {"trading", "reliability", "delivery", "team", "cost"}
    planned = {k.id for k in cat.kpis.values() if k.status == "planned"}
    team = {k.id for k in cat.kpis.values() if k.domain == "team"}  # the team metrics (kaizen.team)
    assert team == {"team_satisfaction_score", "team_satisfaction_responses_count",
                    "team_satisfaction_response_rate_pct", "documentation_coverage_pct", "tech_talks_count",
                    "tech_talks_per_month", "innovation_days_participation_pct", "oncall_incidents_per_week"}
    assert not team & planned and cat["team_satisfaction_score"].min_sample == 3
    assert cat["oncall_incidents_per_week"].grains == ("week", "month", "quarter")
    assert (cat["tech_talks_count"].grains, cat["tech_talks_per_month"].grains) == (("month",), ("quarter",))
    cost = {k.id for k in cat.kpis.values() if k.domain == "cost"}  # from the AWS bill (kaizen.sources.aws_cur)
    assert cost == {"infra_cost_inr", "infra_cost_per_day_inr", "infra_cost_per_trade_inr", "roi"}
    assert all(cat[k].active and cat[k].grains == ("week", "month", "quarter") for k in cost)
    assert cat["sharpe_ratio"].min_sample == 20
    assert cat.convention("risk_free_rate_annual") == 0.0
    for key in ("capital_base_inr", "annualisation", "slo", "mtbf_failure", "review_window"):
        assert cat.convention(key), key
    assert all(k.neutral_band_pct == 5 for k in cat.kpis.values())
    assert cat["max_drawdown_pct"].better == "lower" and cat["win_rate_pct"].better == "higher"


def test_every_active_day_kpi_is_computed():
    """kpis.day computes exactly the catalog's active day-grain KPIs (build_rows raises
    for a catalog KPI it has no measure for)."""
    cat = catalog.read_catalog()
    with pytest.raises(KeyError, match="trades_count"):
        build_rows(None, {}, cat, {}, is_complete=True)


def _doc():
    return yaml.safe_load(catalog.CATALOG_FILE.read_text(encoding="utf-8"))


def _mutate(fn):
    doc = copy.deepcopy(_doc())
    fn(doc)
    return doc


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda d: d["kpis"].append(dict(d["kpis"][0])), "defined twice"),
        (lambda d: d["kpis"][0].pop("formula"), "missing formula"),
        (lambda d: d["kpis"][1].update(comparator="=="), "comparator"),
        (lambda d: d["kpis"][1].update(target=None), "both set or both null"),
        (lambda d: d["kpis"][1].update(unit="ratio"), "must have unit 'pct'"),
        (lambda d: d["kpis"][0].update(better="up"), "better"),
        (lambda d: d["kpis"][0].update(domain="ops"), "domain"),
        (lambda d: d["kpis"][0].update(grains=["year"]), "grains"),
        (lambda d: d["kpis"][0].update(min_sample=-1), "min_sample"),
        (lambda d: d["kpis"][0].update(neutral_band_pct="five"), "neutral_band_pct"),
        (lambda d: d["kpis"][0].update(status="draft"), "status"),
        (lambda d: d["kpis"][0].update(colour="red"), "unknown field"),
        (lambda d: d["kpis"][1].update(target="55"), "target must be a number"),
        (lambda d: d["conventions"].update(risk_free_rate_annual="x"), "risk_free_rate_annual"),
        (lambda d: d.pop("kpis"), "'kpis' list"),
    ],
)
def test_invalid_catalog_is_refused(mutation, message):
    with pytest.raises(catalog.CatalogError, match=message):
        catalog.parse_catalog(_mutate(mutation))


def test_defaults():
    cat = catalog.parse_catalog(
        {"kpis": [{"id": "x_count", "name": "X", "domain": "trading", "unit": "count", "better": "higher",
                   "formula": "f"}]}
    )  # fmt: skip
    k = cat["x_count"]
    assert (k.neutral_band_pct, k.min_sample, k.grains, k.status, k.version) == (
        5.0, 1, ("day", "week", "month", "quarter"), "active", 1,
    )  # fmt: skip
    assert k.target is None and k.comparator is None


def test_load_definitions_is_idempotent(engine):
    t1 = datetime(2026, 3, 11, 10, 30, tzinfo=UTC)
    n = catalog.load_definitions(engine, loaded_at=t1)
    cat = catalog.load_catalog()
    assert n == len(cat.kpis)
    with engine.connect() as c:
        first = c.execute(sa.text("select * from kpi_definitions order by kpi_id")).fetchall()
        row = (
            c.execute(sa.text("select * from kpi_definitions where kpi_id = 'win_rate_pct'")).mappings().one()
        )
    assert len(first) == n
    assert (row["target"], row["comparator"], row["unit"], row["better"], row["min_sample"]) == (
        55,
        ">",
        "pct",
        "higher",
        1,
    )
    # Reloading the unchanged catalog later leaves the table identical (loaded_at kept).
    catalog.load_definitions(engine, loaded_at=datetime(2026, 3, 12, 10, 30, tzinfo=UTC))
    with engine.connect() as c:
        second = c.execute(sa.text("select * from kpi_definitions order by kpi_id")).fetchall()
    assert first == second
    # A changed definition is rewritten; a KPI dropped from the catalog is deleted.
    doc = _doc()
    doc["kpis"] = [k for k in doc["kpis"] if k["id"] != "profit_factor"]
    for k in doc["kpis"]:
        if k["id"] == "win_rate_pct":
            k["target"] = 60
    catalog.load_definitions(engine, catalog.parse_catalog(doc), loaded_at=datetime(2026, 3, 13, tzinfo=UTC))
    with engine.connect() as c:
        ids = {r[0] for r in c.execute(sa.text("select kpi_id from kpi_definitions"))}
        target = c.execute(
            sa.text("select target from kpi_definitions where kpi_id = 'win_rate_pct'")
        ).scalar()
    assert "profit_factor" not in ids and len(ids) == n - 1
    assert target == 60
