"""The trading system's SQLite database: ``orders`` and ``trades``.

Calibration (by construction): the session net P&L of day *d* is
``12,500 + 110,000·z_d`` where ``z`` is standardised over the period, so the period's
mean daily P&L is ≈ ₹12,500 and its annualised Sharpe ≈ 1.8 on ₹1 crore; each trade's
P&L is a win/loss draw (≈58 % wins) re-centred so that the trades of a day sum to the
day's P&L. Exit prices are rounded to the NSE tick (₹0.05) and ``net_pnl`` is recomputed
from the rounded prices, so ``net_pnl = (exit − entry)·qty·(+1 long/−1 short) − fees``
holds to the paisa.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from kaizen.demo.scenario import Period, session_bounds

# NIFTY 50 constituents with an indicative price (₹)
NIFTY50 = {
    "ADANIENT": 2400, "ADANIPORTS": 1450, "APOLLOHOSP": 7500, "ASIANPAINT": 2500, "AXISBANK": 1200,
    "BAJAJ-AUTO": 8800, "BAJFINANCE": 1000, "BAJAJFINSV": 2050, "BEL": 410, "BHARTIARTL": 2050,
    "CIPLA": 1500, "COALINDIA": 385, "DRREDDY": 1250, "EICHERMOT": 7000, "ETERNAL": 320,
    "GRASIM": 2800, "HCLTECH": 1550, "HDFCBANK": 990, "HDFCLIFE": 760, "HINDALCO": 800,
    "HINDUNILVR": 2450, "ICICIBANK": 1380, "INDIGO": 5700, "INFY": 1500, "ITC": 410,
    "JIOFIN": 310, "JSWSTEEL": 1150, "KOTAKBANK": 2100, "LT": 3900, "M&M": 3600,
    "MARUTI": 16000, "MAXHEALTH": 1150, "NESTLEIND": 1250, "NTPC": 335, "ONGC": 245,
    "POWERGRID": 290, "RELIANCE": 1480, "SBILIFE": 2000, "SBIN": 950, "SHRIRAMFIN": 750,
    "SUNPHARMA": 1700, "TATACONSUM": 1150, "TATASTEEL": 170, "TCS": 3100, "TECHM": 1450,
    "TITAN": 3800, "TMPV": 400, "TRENT": 4700, "ULTRACEMCO": 12000, "WIPRO": 245,
}
SYMBOLS = list(NIFTY50)
STRATEGIES = ["momentum_breakout", "mean_reversion", "pairs_stat_arb", "vwap_reversion"]
STRATEGY_WEIGHTS = [0.35, 0.30, 0.20, 0.15]

@dataclass(frozen=True)
class DemoExperiment:
    """An A/B experiment planted in the demo's trades: trades of ``scope`` closed on the
    trading days [``first``, ``last``) counted from the end of the period are split 50/50
    between the arms, with the win probabilities given (``None``: the strategy's own)."""

    id: str
    hypothesis: str
    scope: str
    control_arm: str
    test_arm: str
    first: int  # trading days before the period's end the experiment starts
    last: int  # … and ends (exclusive)
    p_win_control: float | None
    p_win_test: float | None
    decision_rule: str
    owner: str


# Two experiments (issue: A/B readouts): the source document's stop-loss example, with a
# real effect that is significant once both arms pass the 100-trade minimum, and an
# entry filter with no effect at all, which a readout must call "no significant difference".
EXPERIMENTS = (
    DemoExperiment("sl-2pct", "Increasing the stop-loss from 1.5 % to 2.0 % will improve the win rate",
                   "mean_reversion", "sl-1.5pct", "sl-2.0pct", 30, 10, 0.53, 0.63,
                   "roll out if win_rate better and max_drawdown not worse", "Priya (trading lead)"),
    DemoExperiment("entry-filter", "Skipping entries in the first 5 minutes of the session will improve the "
                   "win rate", "pairs_stat_arb", "ef-off", "ef-on", 25, 5, None, None,
                   "roll out if win_rate better", "Arjun (quant)"),
)


def experiment_days(e: DemoExperiment, nd: int) -> tuple[int, int]:
    """The experiment's trading-day indices [start, stop) in a period of ``nd`` days."""
    return max(0, nd - e.first), max(0, nd - e.last)
WIN_RATE = 0.58
MEAN_DAILY_PNL = 12_500.0
STD_DAILY_PNL = 110_000.0
LAT_MU, LAT_SIGMA = np.log(245.0) - 0.45**2 / 2, 0.45  # lognormal ms, mean 245
DEFAULT_TRADES_PER_DAY = 800

DDL = [
    """create table orders (
    order_id text, trade_id text null, symbol text, side text, quantity integer, status text,
    submitted_at text, filled_at text null, fill_price real null)""",
    """create table trades (
    trade_id text, symbol text, side text, quantity integer, entry_time text, exit_time text,
    entry_price real, exit_price real, fees real, net_pnl real null, strategy text, ab_arm text null)""",
]
# the extract selects by time range, as a trading system's database is indexed for:
# without them every month of a long rebuild scans the whole history
INDEXES = [
    "create index ix_orders_submitted_at on orders (submitted_at)",
    "create index ix_trades_exit_time on trades (exit_time)",
]


def tick(x: np.ndarray) -> np.ndarray:
    return np.round(np.round(x * 20.0) / 20.0, 2)


def iso_ms(ms: np.ndarray) -> list[str]:
    """Epoch milliseconds → ISO-8601 UTC text with ``Z`` (e.g. 2026-11-27T04:01:02.345Z)."""
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()


def _lat(rng, n):
    return np.clip(np.round(rng.lognormal(LAT_MU, LAT_SIGMA, n)), 20, 5000).astype(np.int64)


def generate(period: Period, rng: np.random.Generator, trades_per_day: int | None):
    tpd = int(trades_per_day or DEFAULT_TRADES_PER_DAY)
    days = period.days
    nd = len(days)
    counts = np.maximum(20, np.round(tpd * rng.uniform(0.85, 1.15, nd))).astype(np.int64)
    z = rng.standard_t(6, nd)
    z = (z - z.mean()) / z.std(ddof=1) if nd > 1 else np.zeros(nd)
    day_pnl = MEAN_DAILY_PNL + STD_DAILY_PNL * z
    # symbol price paths: ±1.4 % a day
    drift = rng.normal(0, 0.014, (nd, len(SYMBOLS)))
    base = np.array([NIFTY50[s] for s in SYMBOLS], dtype=float)
    day_price = base * np.exp(np.cumsum(drift, axis=0) - drift.sum(axis=0))  # ends near today's level
    n = int(counts.sum())
    day_of = np.repeat(np.arange(nd), counts)
    sym = rng.integers(0, len(SYMBOLS), n)
    strat = rng.choice(len(STRATEGIES), n, p=STRATEGY_WEIGHTS)
    is_long = rng.random(n) < 0.55
    sign = np.where(is_long, 1.0, -1.0)
    entry = tick(day_price[day_of, sym] * (1 + rng.normal(0, 0.006, n)))
    notional_target = rng.lognormal(np.log(200_000), 0.45, n)
    qty = np.maximum(1, np.round(notional_target / entry)).astype(np.int64)
    notional = qty * entry
    fees = np.round(47.2 + 0.000375 * notional, 2)
    # A/B arms: each planted experiment's strategy on its trading days, split 50/50
    ab = np.full(n, None, dtype=object)
    arm_test = rng.random(n) < 0.5
    p_win = np.full(n, WIN_RATE)
    for e in EXPERIMENTS:
        start, stop = experiment_days(e, nd)
        inside = (strat == STRATEGIES.index(e.scope)) & (day_of >= start) & (day_of < stop)
        ab[inside & ~arm_test] = e.control_arm
        ab[inside & arm_test] = e.test_arm
        if e.p_win_control is not None:
            p_win[inside & ~arm_test] = e.p_win_control
        if e.p_win_test is not None:
            p_win[inside & arm_test] = e.p_win_test
    win = rng.random(n) < p_win
    ret = rng.lognormal(np.log(0.0035), 0.6, n)
    loss_scale = WIN_RATE / (1 - WIN_RATE)
    raw = np.where(win, ret, -ret * loss_scale) * notional
    # re-centre per day so the day's trades sum exactly to its P&L
    sums = np.bincount(day_of, weights=raw, minlength=nd)
    net_target = raw - (sums / counts)[day_of] + (day_pnl / counts)[day_of]
    gross = net_target + fees
    exit_ = tick(entry + sign * gross / qty)
    exit_ = np.maximum(exit_, 0.05)
    net = np.round(sign * (exit_ - entry) * qty - fees, 2)
    # times (epoch ms): submit ≥ 09:15:00, fills before 15:30:00 IST
    opens = np.array([session_bounds(d)[0] for d in days], dtype=np.int64) * 1000
    closes = np.array([session_bounds(d)[1] for d in days], dtype=np.int64) * 1000
    hold = np.clip(rng.lognormal(np.log(6 * 60_000), 0.9, n), 20_000, 90 * 60_000).astype(np.int64)
    lat_e, lat_x = _lat(rng, n), _lat(rng, n)
    room = (closes - opens)[day_of] - hold - lat_e - lat_x - 2_000
    entry_sub = opens[day_of] + (rng.random(n) * room).astype(np.int64)
    entry_fill = entry_sub + lat_e
    exit_sub = entry_fill + hold
    exit_fill = exit_sub + lat_x
    # order of trades inside a day: by entry time
    order = np.lexsort((entry_sub, day_of))
    cols = dict(day_of=day_of, sym=sym, strat=strat, is_long=is_long, entry=entry, exit=exit_, qty=qty,
                fees=fees, net=net, ab=ab, entry_sub=entry_sub, entry_fill=entry_fill, exit_sub=exit_sub,
                exit_fill=exit_fill)
    cols = {k: v[order] for k, v in cols.items()}
    # failed orders: ≈0.6 % of submitted orders
    n_fail_day = rng.poisson(2 * counts * 0.006 / 0.994)
    nf = int(n_fail_day.sum())
    f_day = np.repeat(np.arange(nd), n_fail_day)
    f = dict(
        day_of=f_day, sym=rng.integers(0, len(SYMBOLS), nf), is_buy=rng.random(nf) < 0.5,
        qty=np.maximum(1, rng.integers(5, 400, nf)),
        status=rng.choice(np.array(["REJECTED", "ERRORED", "CANCELLED"]), nf, p=[0.6, 0.15, 0.25]),
        sub=opens[f_day] + (rng.random(nf) * (closes - opens)[f_day]).astype(np.int64),
    )
    return dict(tpd=tpd, counts=counts, day_pnl=day_pnl, t=cols, f=f)


def write(period: Period, rng: np.random.Generator, trades_per_day: int | None, path: Path) -> dict:
    g = generate(period, rng, trades_per_day)
    t, f, counts = g["t"], g["f"], g["counts"]
    days = period.days
    n = len(t["qty"])
    ymd = [d.strftime("%Y%m%d") for d in days]
    # ids: T<yyyymmdd>-<seq> per day; orders O<yyyymmdd>-<seq> by submission time
    first_idx = np.concatenate([[0], np.cumsum(counts)[:-1]])
    seq = np.arange(n) - first_idx[t["day_of"]] + 1
    trade_ids = [f"T{ymd[d]}-{s:06d}" for d, s in zip(t["day_of"].tolist(), seq.tolist(), strict=True)]
    side = np.where(t["is_long"], "BUY", "SELL")
    opp = np.where(t["is_long"], "SELL", "BUY")
    sym = np.array(SYMBOLS, dtype=object)[t["sym"]]
    strat = np.array(STRATEGIES, dtype=object)[t["strat"]]
    entry_time = iso_ms(t["entry_fill"])
    exit_time = iso_ms(t["exit_fill"])
    trades = list(zip(trade_ids, sym.tolist(), side.tolist(), t["qty"].tolist(), entry_time, exit_time,
                      t["entry"].tolist(), t["exit"].tolist(), t["fees"].tolist(), t["net"].tolist(),
                      strat.tolist(), t["ab"].tolist(), strict=True))
    # orders: entry + exit per trade, then failed ones; sorted by (day, submitted)
    o_day = np.concatenate([t["day_of"], t["day_of"], f["day_of"]])
    o_sub = np.concatenate([t["entry_sub"], t["exit_sub"], f["sub"]])
    o_fill = np.concatenate([t["entry_fill"], t["exit_fill"], np.zeros(len(f["sub"]), np.int64)])
    o_trade = np.array(trade_ids + trade_ids + [None] * len(f["sub"]), dtype=object)
    o_sym = np.concatenate([sym, sym, np.array(SYMBOLS, dtype=object)[f["sym"]]])
    o_side = np.concatenate([side, opp, np.where(f["is_buy"], "BUY", "SELL")])
    o_qty = np.concatenate([t["qty"], t["qty"], f["qty"]])
    o_status = np.concatenate([np.full(2 * n, "FILLED"), f["status"]])
    o_price = np.concatenate([t["entry"], t["exit"], np.zeros(len(f["sub"]))])
    oo = np.lexsort((o_sub, o_day))
    o_day, o_sub, o_fill, o_trade = o_day[oo], o_sub[oo], o_fill[oo], o_trade[oo]
    o_sym, o_side, o_qty, o_status, o_price = o_sym[oo], o_side[oo], o_qty[oo], o_status[oo], o_price[oo]
    o_counts = np.bincount(o_day, minlength=len(days))
    o_first = np.concatenate([[0], np.cumsum(o_counts)[:-1]])
    o_seq = np.arange(len(o_day)) - o_first[o_day] + 1
    order_ids = [f"O{ymd[d]}-{s:07d}" for d, s in zip(o_day.tolist(), o_seq.tolist(), strict=True)]
    filled = o_status == "FILLED"
    sub_txt = iso_ms(o_sub)
    fill_txt = iso_ms(o_fill)
    orders = [
        (oid, tid, s, sd, q, st, su, fi if ok else None, pr if ok else None)
        for oid, tid, s, sd, q, st, su, fi, pr, ok in zip(
            order_ids, o_trade.tolist(), o_sym.tolist(), o_side.tolist(), o_qty.tolist(), o_status.tolist(),
            sub_txt, fill_txt, o_price.tolist(), filled.tolist(), strict=True)
    ]
    bad = _inject_bad(period, rng, trades, orders, counts, o_counts)
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        for stmt in DDL:
            con.execute(stmt)
        con.executemany("insert into orders values (?,?,?,?,?,?,?,?,?)", orders)
        con.executemany("insert into trades values (?,?,?,?,?,?,?,?,?,?,?,?)", trades)
        for stmt in INDEXES:
            con.execute(stmt)
        con.commit()
    finally:
        con.close()
    per_day = {}
    last = len(days) - 1
    for i, d in enumerate(days):
        per_day[d.isoformat()] = {
            "trades": int(counts[i]) + (1 if i == last else 0),  # rows, incl. the duplicate on the last day
            "orders": int(o_counts[i]),
            "orders_filled": 2 * int(counts[i]),
            "net_pnl_inr": round(float(g["day_pnl"][i]), 2),
        }
    return {"per_day": per_day, "bad": bad, "trades_per_day": g["tpd"], "experiments": registry(days)}


def registry(days: list) -> list[dict]:
    """The planted experiments as registry rows (kaizen.experiments.registry), for the
    experiments whose days fall in the period."""
    out = []
    for e in EXPERIMENTS:
        start, stop = experiment_days(e, len(days))
        if stop <= start:
            continue
        out.append({"id": e.id, "hypothesis": e.hypothesis, "scope": e.scope, "control_arm": e.control_arm,
                    "test_arm": e.test_arm, "metrics": "win_rate, avg_profit, max_drawdown",
                    "primary_metric": "win_rate", "min_sample_per_arm": 100,
                    "planned_start": days[start].isoformat(), "planned_end": days[stop - 1].isoformat(),
                    "decision_rule": e.decision_rule, "owner": e.owner})
    return out


def _inject_bad(period: Period, rng, trades: list, orders: list, counts, o_counts) -> list[dict]:
    """Bad rows on the last trading day: a duplicated trade id, a NULL net P&L, an exit
    before its entry, and an order filled before it was submitted."""
    day = period.last_day.isoformat()
    n_last = int(counts[-1])
    lo = len(trades) - n_last
    picks = lo + rng.permutation(n_last)[:3]
    dup_i, null_i, swap_i = (int(x) for x in picks)
    bad = []
    dup = trades[dup_i]
    trades.insert(dup_i + 1, dup)  # the feed repeats a row
    bad.append({"source": "trades", "key": dup[0], "reason": "duplicate trade id", "day": day})
    null_i += 1 if null_i > dup_i else 0
    swap_i += 1 if swap_i > dup_i else 0
    r = list(trades[null_i])
    r[9] = None
    trades[null_i] = tuple(r)
    bad.append({"source": "trades", "key": r[0], "reason": "NULL net P&L on a filled trade", "day": day})
    r = list(trades[swap_i])
    r[4], r[5] = r[5], r[4]  # exit_time now precedes entry_time
    trades[swap_i] = tuple(r)
    bad.append({"source": "trades", "key": r[0], "reason": "exit time before entry time", "day": day})
    o_lo = len(orders) - int(o_counts[-1])
    for j in o_lo + rng.permutation(int(o_counts[-1])):
        o = list(orders[int(j)])
        if o[5] == "FILLED" and o[1] not in (dup[0], trades[null_i][0], trades[swap_i][0]):
            # filled_at := submitted_at − 180 ms
            sub = datetime.fromisoformat(o[6])
            o[7] = (sub - timedelta(milliseconds=180)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            orders[int(j)] = tuple(o)
            bad.append({"source": "orders", "key": o[0], "reason": "order filled before it was submitted",
                        "day": day})
            break
    return bad
