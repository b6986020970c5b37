"""A/B readouts from the warehouse (kaizen.experiments.readout) on SQLite and
PostgreSQL: which trades count, the per-arm figures computed by hand, the comparisons
equal to the statistics module's on the same trades, no verdict below the minimum
sample (with what is missing said), the interim warning, the final suggestion, and the
stored rows and analysts' view."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kaizen import warehouse
from kaizen.experiments import readout, stats
from kaizen.experiments.registry import Experiment, Registry

START, END = date(2026, 11, 2), date(2026, 11, 13)
CAPITAL = 10_000_000.0


def experiment(**kw) -> Experiment:
    base = dict(id="sl-2pct", hypothesis="A wider stop-loss wins more often", scope="mean_reversion",
                control_arm="sl15", test_arm="sl20", planned_start=START, planned_end=END, owner="Priya",
                decision_rule="roll out if win_rate better and max_drawdown not worse")
    return Experiment(**{**base, **kw})


def trade(i: int, arm: str | None, pnl: float, day: date, strategy: str = "mean_reversion") -> dict:
    exit_at = datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC) + timedelta(seconds=i)
    return {"trade_id": f"T{i:05d}", "trading_day": day, "symbol": "INFY", "side": "BUY", "quantity": 1, "entry_time": exit_at,
            "exit_time": exit_at, "entry_price_inr": 100.0, "exit_price_inr": 100.0, "fees_inr": 0.0,
            "net_pnl_inr": pnl, "strategy": strategy, "ab_arm": arm, "run_id": "t", "loaded_at": exit_at}


def load(engine, rows):
    with warehouse.writing(engine) as c:
        warehouse.insert_rows(c, "raw_trades", rows)


def planted(n: int, p_win_c: float, p_win_t: float):
    """n trades per arm over the experiment's days, wins spread evenly: exact counts."""
    rows, i = [], 0
    days = [START + timedelta(days=d) for d in range(12) if (START + timedelta(days=d)).weekday() < 5]
    for arm, p in (("sl15", p_win_c), ("sl20", p_win_t)):
        wins = round(n * p)
        for k in range(n):
            i += 1
            win = k * wins // n != (k + 1) * wins // n
            rows.append(trade(i, arm, 900.0 + (k % 7) * 10 if win else -1000.0 - (k % 5) * 10, days[k % len(days)]))
    return rows


def test_which_trades_count_and_the_figures_per_arm(engine):
    e = experiment()
    load(engine, [
        trade(1, "sl15", 100.0, START), trade(2, "sl15", -300.0, START), trade(3, "sl20", 50.0, START),
        trade(4, "sl20", 250.0, START + timedelta(days=1)),
        trade(5, "sl20", 999.0, START, strategy="momentum_breakout"),  # another strategy
        trade(6, "other", 999.0, START),  # another experiment's arm
        trade(7, "sl20", 999.0, START - timedelta(days=1)),  # before the planned start
        trade(8, "sl20", 999.0, END + timedelta(days=1)),  # after the planned end
    ])
    with engine.connect() as c:
        r = readout.read_out(c, e, END + timedelta(days=3), capital=1000.0)
    assert (r.status, r.final, r.as_of) == ("ended", True, END)
    assert (r.control.trades, r.control.wins, r.control.net_pnl) == (2, 1, -200.0)
    assert (r.test.trades, r.test.wins, r.test.net_pnl) == (2, 2, 300.0)
    assert r.control.win_rate == 50.0 and r.test.win_rate == 100.0 and r.test.avg_profit == 150.0
    # control's path on 1,000: 1,100 then 800: (1,100 − 800) ÷ 1,100 = 27.27 %
    assert r.control.max_drawdown == pytest.approx(300 / 1100 * 100) and r.test.max_drawdown == 0.0
    # 2 trades an arm: no verdict, and the readout says what is missing
    assert [m.outcome for m in r.metrics] == ["insufficient"] * 3
    assert r.verdict == ("insufficient sample: control (sl15) needs 98 more trades; test (sl20) needs 98 more "
                         "trades to reach the minimum of 100 per arm")
    assert r.suggestion.action is None and "insufficient sample" in r.suggestion.text


def test_a_planted_effect_is_significant_and_suggests_a_roll_out(engine):
    e = experiment()
    load(engine, planted(300, 0.50, 0.65))
    with engine.connect() as c:
        running = readout.read_out(c, e, END - timedelta(days=1), capital=CAPITAL)
        final = readout.read_out(c, e, END + timedelta(days=1), capital=CAPITAL)
    assert running.status == "running" and running.suggestion is None
    assert "final only at the planned end (13 Nov 2026)" in running.warning
    assert final.warning is None and final.shortfall.reached
    wr = final.primary
    expected = stats.win_rate(150, 300, 195, 300)
    assert wr.comparison == expected and wr.outcome == "better" and wr.comparison.p_value < 1e-3
    assert wr.improvement == pytest.approx(15.0)
    assert final.verdict == "significant improvement in win rate"
    # control: 150 wins of ~₹930 and 150 losses of ~₹1,020 → −₹45 a trade; test: +₹248.6
    assert [(m.metric, m.outcome) for m in final.metrics] == [
        ("win_rate", "better"), ("avg_profit", "better"), ("max_drawdown", "better")]
    assert (final.control.avg_profit, final.test.avg_profit) == (pytest.approx(-45.0), pytest.approx(248.6))
    assert final.suggestion.text == ("Suggestion for Priya: roll out — win rate significantly better; "
                                     "max drawdown significantly better.")


def test_no_effect_is_no_significant_difference_and_iterate(engine):
    e = experiment(decision_rule="roll out if win_rate better")
    load(engine, planted(200, 0.55, 0.55))
    with engine.connect() as c:
        r = readout.read_out(c, e, END + timedelta(days=1), capital=CAPITAL)
    assert r.primary.outcome == "no_difference" and r.primary.comparison.diff == 0.0
    assert r.verdict == "no significant difference in win rate"
    assert r.suggestion.action == "iterate"


def test_stored_rows_and_the_view(engine):
    e = experiment()
    load(engine, planted(120, 0.5, 0.6))
    registry = Registry([e], [], "yaml", "test", END + timedelta(days=1))
    readouts = readout.read_out_all(engine, registry, END + timedelta(days=1))
    assert readout.store(engine, registry, readouts, "run-1") == 9  # 3 metrics × (control, test, difference)
    assert readout.store(engine, registry, readouts, "run-2") == 9  # replaced, not added
    with engine.connect() as c:
        assert c.exec_driver_sql("select count(*) from experiment_results").scalar() == 9
        view = {r.metric: r for r in c.exec_driver_sql("select * from v_experiment_readout").all()}
    assert set(view) == {"win_rate", "avg_profit", "max_drawdown"}
    wr = view["win_rate"]
    assert (wr.control_value, wr.test_value, wr.control_trades, wr.test_trades) == (50.0, 60.0, 120, 120)
    assert wr.difference == pytest.approx(10.0) and bool(wr.is_primary) and bool(wr.final)
    assert wr.p_value == pytest.approx(stats.win_rate(60, 120, 72, 120).p_value)
    assert wr.verdict == "no significant difference" and wr.status == "ended"


@pytest.fixture(scope="module")
def demo_readouts(tmp_path_factory):
    """The demo world's two experiments read out from its trades, as the daily run on
    its last day does: the registry the generator wrote, the trades extracted by the
    trading source into a fresh warehouse."""
    from kaizen.demo import generate
    from kaizen.experiments import registry
    from kaizen.sources import trading

    root = tmp_path_factory.mktemp("demo-ab")
    end = date(2026, 11, 27)
    manifest = generate(end=end, months=2, seed=42, out_dir=root / "demo", trades_per_day=400)
    engine = warehouse.get_engine(f"sqlite:///{root / 'w.db'}")
    warehouse.apply_ddl(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAIZEN_SOURCES", "demo")
        mp.setenv("KAIZEN_DEMO_DIR", str(root / "demo"))
        mp.delenv("KAIZEN_EXPERIMENTS_FILE", raising=False)
        trading.extract_range(date.fromisoformat(manifest["first_trading_day"]), end, engine, "demo")
        reg = registry.load(today=end)
    return manifest, reg, {r.experiment.id: r for r in readout.read_out_all(engine, reg, end)}


def test_the_demo_experiments_give_their_planted_verdicts(demo_readouts):
    manifest, reg, readouts = demo_readouts
    assert reg.source == "yaml" and reg.refused == []
    assert [e["id"] for e in manifest["experiments"]] == ["sl-2pct", "entry-filter"] == [e.id for e in reg.experiments]
    sl, ef = readouts["sl-2pct"], readouts["entry-filter"]
    assert sl.final and ef.final and sl.shortfall.reached and ef.shortfall.reached
    # sl-2pct: planted win probabilities 53 % vs 63 %: significant, and the rule suggests a roll-out
    assert sl.verdict == "significant improvement in win rate" and sl.primary.comparison.p_value < 1e-3
    assert 5 < sl.primary.comparison.diff < 15
    assert sl.suggestion.action == "roll out"
    # entry-filter: no planted effect: no significant difference, and the rule says iterate
    assert ef.verdict == "no significant difference in win rate" and ef.primary.comparison.p_value > 0.05
    assert ef.suggestion.action == "iterate"
