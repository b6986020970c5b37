"""Deterministic demo sources in the real services' wire formats.

``generate(end, months, seed, out_dir)`` writes the layout of docs/contracts.md
("Demo directory layout"): the trading SQLite DB, Prometheus ``query_range`` bodies,
GitHub deployments/statuses/compare responses and post-mortem issues, PagerDuty incidents/alerts/log
entries/custom field values, plus ``manifest.json``. The same arguments give the same
bytes; nothing reads the clock.

Period: NSE trading days in [end − months, end]. Reliability, deployment and incident
data cover every minute from the first trading day's review window start (previous
trading day 16:00 IST) to the last trading day's 16:00 IST. Deliberately bad records
(one of each kind) sit in the last trading day's review window and are listed in
``manifest["bad_records"]``.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

from kaizen import config
from kaizen.demo import aws_cur, github, issues, pagerduty, prometheus, scenario, trading
from kaizen.demo import goals as demo_goals
from kaizen.demo import team as demo_team

__all__ = ["generate"]


def _reset(out_dir: Path) -> None:
    if out_dir.exists():
        entries = list(out_dir.iterdir())
        if entries and not (out_dir / "manifest.json").exists():
            raise FileExistsError(
                f"{out_dir} is not empty and holds no demo manifest.json; refusing to replace it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)


def _write_registry(path: Path, experiments: list[dict]) -> None:
    """The demo world's experiment registry, as a team would keep it in YAML (read by
    kaizen.experiments.registry with KAIZEN_SOURCES=demo)."""
    import yaml

    head = ("# The demo's A/B experiments (written by `python -m kaizen demo-data`): the registry\n"
            "# format of include/experiments.yaml; see README, 'Experiments: the registry'.\n")
    path.write_text(head + yaml.safe_dump({"experiments": experiments}, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")


def generate(end: date, months: int, seed: int, out_dir: Path, trades_per_day: int | None = None) -> dict:
    out_dir = Path(out_dir)
    period = scenario.build_period(end, months, seed)
    s = period.streams
    _reset(out_dir)

    # GitHub: deployments first (outages and incidents refer to them)
    plan = github.plan(period, s["github"])
    bad_dep = github.make_bad_status(plan, period)
    deps_by_id = {d.id: d for d in plan.deployments}
    rng_o = s["outages"]
    cands = [d for d in plan.deployments if d.caused_ok(period)]
    # the deployment that causes two incidents: in the second half of the period when possible
    late = [d for d in cands if d.finished >= (period.cov_start + period.cov_end) // 2] or cands
    forced = late[int(rng_o.integers(0, len(late)))] if late else None
    gap = scenario.plan_scrape_gap(period, rng_o)
    outages = scenario.plan_outages(period, plan.deployments, gap, rng_o, forced)

    # Prometheus
    prom = prometheus.PromData(period, outages, gap, s["prometheus"])
    bad_lat = prom.make_bad_sample(s["bad"])
    prom_files = prom.write(out_dir)

    # PagerDuty
    inc_plan = pagerduty.plan(period, outages, deps_by_id, forced, s["pagerduty"])
    pd_counts = pagerduty.write(inc_plan, out_dir)
    gh_counts = github.write(plan, out_dir, s["github"])
    # post-mortems and action items (GitHub issues): their own random stream, so every
    # other file is byte-identical to what the generator wrote before they existed
    issues.write(period, inc_plan.incidents, seed, out_dir)
    # the AWS bill (CUR 2.0 export): its own random stream too
    cost = aws_cur.write(period, seed, out_dir)
    # the OKRs tab and the improvement backlog (no random draws: nothing else changes)
    demo_goals.write(period, out_dir)
    # the team's on-call schedule, assignments, survey and Team tab: their own random stream
    team = demo_team.write(period, inc_plan.incidents, seed, out_dir)

    # Trading DB
    tr = trading.write(period, s["trading"], trades_per_day, out_dir / "trading.db")
    _write_registry(out_dir / "experiments.yaml", tr["experiments"])

    bad_records = tr["bad"] + [bad_lat, bad_dep, inc_plan.bad]
    alerts_t = [t for i in inc_plan.incidents for t in i.alert_times]
    per_window_prom = prom.window_stats()
    dep_w = scenario.window_counts(period, plan.created_times())
    inc_w = scenario.window_counts(period, [i.created for i in inc_plan.incidents])
    alert_w = scenario.window_counts(period, alerts_t)
    per_day = {}
    for d in period.days:
        k = d.isoformat()
        per_day[k] = {**tr["per_day"][k], **per_window_prom[k], "deployments": dep_w[k],
                      "incidents": inc_w[k], "alerts": alert_w[k]}
    manifest = {
        "end": end.isoformat(),
        "months": months,
        "seed": seed,
        "start": period.start.isoformat(),
        "first_trading_day": period.days[0].isoformat(),
        "last_trading_day": period.last_day.isoformat(),
        "trading_days": len(period.days),
        "coverage_start": scenario.iso_z(period.cov_start),
        "coverage_end": scenario.iso_z(period.cov_end),
        "capital_base_inr": config.capital_base_inr(),
        "github_repo": github.REPO,
        "trades_per_day": tr["trades_per_day"],
        "experiments": tr["experiments"],
        "conventions": {
            "trading_times": "ISO-8601 UTC text with milliseconds and Z, e.g. 2026-11-27T04:01:02.345Z",
            "prometheus_sample": "sample at t covers (t-60s, t] (outage from S shows 0 from S+60); per_day "
                                 "probe/latency/error figures count samples with t in [window start, end)",
            "pagerduty_ack": "acknowledged_at = created_at of the earliest acknowledge_log_entry",
            "pagerduty_custom_fields": "custom_fields/<id>.json is the custom_fields array of "
                                       "GET /incidents/{id}/custom_fields/values",
        },
        "outages": [{"start": scenario.iso_z(o.start), "minutes": o.minutes, "priority": o.priority,
                     "caused_by_deployment": str(o.deployment_id) if o.deployment_id else None}
                    for o in outages],
        "scrape_gap": {"first_missing_sample": scenario.iso_z(gap.start), "samples": gap.minutes},
        "double_incident_deployment": str(forced.id) if forced is not None else None,
        "totals": {"deployments": gh_counts["deployments"], "compare_files": gh_counts["compare_files"],
                   "incidents": pd_counts["incidents"], "alerts": pd_counts["alerts"],
                   "prometheus_files": prom_files["files"]},
        "bad_records": bad_records,
        "aws_cur": cost,  # the billing export; its deliberately bad lines in aws_cur.bad_records
        "team": team,  # on-call, assignments, survey, Team tab; their deliberately bad records in team.bad_records
        "per_day": per_day,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    return manifest
