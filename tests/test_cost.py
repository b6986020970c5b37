"""Infrastructure cost from the AWS Cost and Usage Report 2.0: a small export in the real
Data Exports layout (Manifest.json + gzip CSV data files, CUR 2.0 column names) read
through ``file://`` ObjectStoragePaths; every line quarantined with its reason; the daily
rows, the cost KPIs, the review's cost section and the "Cost" Sheet tab checked against
figures computed by hand; SQLite and PostgreSQL give identical results; re-runs change
nothing; the demo's weekly review holds numbers, not "no cost data"."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from kaizen.cost import measures as cost_measures
from kaizen.cost import section as cost_section
from kaizen.kpis import periods
from kaizen.period import Period
from kaizen.sources import SourceError, aws_cur

EXPORT = "desk-cur"
BP = date(2026, 11, 1)
AS_OF = datetime(2026, 11, 5, 0, 0, tzinfo=UTC)
HEADER = ["identity_line_item_id", "bill_billing_period_start_date", "line_item_usage_start_date",
          "line_item_usage_end_date", "line_item_line_item_type", "line_item_product_code", "product_servicecode",
          "line_item_unblended_cost", "line_item_net_unblended_cost", "line_item_currency_code",
          "line_item_resource_id", "resource_tags"]


def line(lid, start, end, kind="Usage", service="AmazonEC2", cost="10.0", currency="USD", period="2026-11-01",
         net=""):
    return {"identity_line_item_id": lid, "bill_billing_period_start_date": f"{period}T00:00:00.000Z",
            "line_item_usage_start_date": start, "line_item_usage_end_date": end, "line_item_line_item_type": kind,
            "line_item_product_code": service, "product_servicecode": service, "line_item_unblended_cost": cost,
            "line_item_net_unblended_cost": net, "line_item_currency_code": currency,
            "line_item_resource_id": "i-0abc", "resource_tags": "{}"}


def day(d: str) -> tuple[str, str]:
    """A daily line's usage span: [d 00:00Z, d+1 00:00Z)."""
    a = date.fromisoformat(d)
    b = date.fromordinal(a.toordinal() + 1)
    return f"{a}T00:00:00.000Z", f"{b}T00:00:00.000Z"


GOOD = [
    line("L1", *day("2026-11-02"), cost="10.0"),
    line("L2", *day("2026-11-02"), cost="2.5", net="2.25"),
    line("L3", *day("2026-11-02"), kind="Credit", cost="-2.0"),
    line("L4", "2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z", kind="Tax", cost="30.0"),  # $1 a day
    # 2.5 days: 24 h on 1 and 2 Nov, 12 h on 3 Nov → $2, $2, $1
    line("L5", "2026-11-01T00:00:00.000Z", "2026-11-03T12:00:00.000Z", service="AmazonRoute53", cost="5.0"),
    line("L6", *day("2026-11-03"), service="AmazonS3", cost="100", currency="INR"),
    line("L7", *day("2026-11-04"), cost="6.0"),  # the newest usage day: still growing
]
BAD = {
    "B1": (line("B1", "2026-11-03T00:00:00.000Z", "2026-11-02T22:00:00.000Z"),
           "usage ends 2026-11-02T22:00:00+00:00 before it starts 2026-11-03T00:00:00+00:00"),
    "B2": (line("B2", *day("2026-11-03"), cost="abc"), "line_item_unblended_cost 'abc' is not a number"),
    "B3": (line("B3", *day("2026-11-03"), kind="Mystery"),
           "unknown line_item_line_item_type 'Mystery': add it to COUNTED_TYPES or EXCLUDED_TYPES in "
           "kaizen.sources.aws_cur"),
    "B4": (line("B4", *day("2026-11-03"), currency="EUR"),
           "currency EUR: only INR and USD (at KAIZEN_COST_INR_PER_USD) are converted to rupees"),
    "B5": (line("B5", *day("2026-11-03"), period="2026-10-01"),
           "a line of billing period 2026-10 in the BILLING_PERIOD=2026-11 partition"),
    "B6": (line("B6", *day("2026-11-03"), service=""),
           "missing service (product_servicecode and line_item_product_code are empty)"),
    "B7": (line("B7", *day("2026-11-06")),
           "line_item_usage_start_date 2026-11-06T00:00:00Z is after the as-of 2026-11-05T00:00:00Z (the "
           "extraction's clock, 5 min tolerance): usage in the future"),
    "B8": (line("B8", "", "2026-11-03T00:00:00.000Z"), "missing line_item_usage_start_date"),
}
RATE = 84.0


def _gz(rows, header=HEADER) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return gzip.compress(buf.getvalue().encode(), mtime=0)


def write_export(root: Path, bp: date, files: list[list[dict]], header=HEADER, execution="exec-1") -> Path:
    """An export folder as Data Exports writes it (overwrite mode), under ``root``."""
    part = f"BILLING_PERIOD={bp:%Y-%m}"
    uris = []
    for n, rows in enumerate(files, start=1):
        name = f"{root.name}-{n:05d}.csv.gz"
        p = root / "data" / part / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_gz(rows, header))
        uris.append(f"s3://desk-billing/cur/{root.name}/data/{part}/{name}")
    m = root / "metadata" / part / f"{root.name}-Manifest.json"
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(json.dumps({"executionId": execution, "exportArn": "arn:aws:bcm-data-exports:us-east-1:1:export/x",
                             "columns": [{"name": h, "type": "string"} for h in header], "dataFiles": uris}))
    return root


@pytest.fixture
def export(tmp_path):
    rows = GOOD + [b for b, _ in BAD.values()]
    return write_export(tmp_path / EXPORT, BP, [rows[:8], rows[8:]])


@pytest.fixture
def live_rate(monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv("KAIZEN_COST_INR_PER_USD", str(RATE))


def transport(root: Path):
    return aws_cur.storage_transport(root.as_uri())


# ---------------------------------------------------------------- parsing (pure)
def test_daily_rows_by_hand(export, live_rate):
    loads = aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4), transport(export), as_of=AS_OF)
    exports, cost = loads
    got = {(str(r["usage_date"]), r["service"], r["line_item_type"]): r for r in cost.rows}
    usage = {k: v for k, v in got.items() if k[2] != "Tax"}
    assert {k: (round(v["cost"], 12), v["cost_inr"] == pytest.approx(v["cost"] * v["inr_per_unit"], abs=0),
                v["line_items"], v["is_counted"]) for k, v in usage.items()} == {
        ("2026-11-01", "AmazonRoute53", "Usage"): (2.0, True, 1, True),
        ("2026-11-02", "AmazonEC2", "Usage"): (12.5, True, 2, True),
        ("2026-11-02", "AmazonEC2", "Credit"): (-2.0, True, 1, True),
        ("2026-11-02", "AmazonRoute53", "Usage"): (2.0, True, 1, True),
        ("2026-11-03", "AmazonRoute53", "Usage"): (1.0, True, 1, True),
        ("2026-11-03", "AmazonS3", "Usage"): (100.0, True, 1, True),
        ("2026-11-04", "AmazonEC2", "Usage"): (6.0, True, 1, True),
    }
    assert got[("2026-11-02", "AmazonEC2", "Usage")]["cost_inr"] == 12.5 * 84  # ₹1,050
    assert got[("2026-11-02", "AmazonEC2", "Usage")]["net_cost"] == 12.25  # L2's net, L1's unblended
    assert got[("2026-11-03", "AmazonS3", "Usage")]["inr_per_unit"] == 1.0  # INR as it is
    tax = [v for k, v in got.items() if k[2] == "Tax"]
    assert len(tax) == 30 and all(not v["is_counted"] and v["cost"] == pytest.approx(1.0) for v in tax)
    assert cost.extracted == len(cost.rows) + len(cost.rejects) == 37 + 8
    assert {r.record_key: r.reason for r in cost.rejects} == {k: f"BILLING_PERIOD=2026-11: {why}"
                                                             for k, (_, why) in BAD.items()}
    (e,) = exports.rows
    assert (e["billing_period"], e["execution_id"], e["data_files"], e["line_items"], e["line_items_rejected"],
            e["currencies"], e["inr_per_usd"], e["billed_through"]) == (BP, "exec-1", 2, 15, 8, "INR,USD", 84.0,
                                                                         date(2026, 11, 3))
    assert e["usage_from"] == datetime(2026, 11, 1, tzinfo=UTC) and e["last_usage_at"] == datetime(2026, 11, 4,
                                                                                                    tzinfo=UTC)


@pytest.mark.parametrize(("last_usage", "through"), [
    ("2026-11-04", date(2026, 11, 3)),    # the newest day still grows
    ("2026-11-30", date(2026, 11, 30)),   # the billing period's last day ends it
    ("2026-11-01", None),                 # only the first day, still growing
])
def test_billed_through(last_usage, through):
    assert aws_cur.billed_through(BP, datetime.fromisoformat(last_usage).replace(tzinfo=UTC)) == through


def test_spread_over_days():
    a, b = datetime(2026, 11, 1, 18, tzinfo=UTC), datetime(2026, 11, 3, 6, tzinfo=UTC)  # 36 h: 6 + 24 + 6
    assert aws_cur.spread(a, b) == [(date(2026, 11, 1), pytest.approx(1 / 6)), (date(2026, 11, 2), pytest.approx(2 / 3)),
                                    (date(2026, 11, 3), pytest.approx(1 / 6))]
    assert aws_cur.spread(a, a) == [(date(2026, 11, 1), 1.0)]  # a zero-length line: all on its day


def test_billing_periods_read_by_an_extract():
    as_of = datetime(2026, 12, 31, tzinfo=UTC)
    assert aws_cur.billing_periods(date(2026, 12, 10), date(2026, 12, 10), as_of) == [date(2026, 11, 1),
                                                                                      date(2026, 12, 1)]
    assert aws_cur.billing_periods(date(2026, 12, 16), date(2026, 12, 16), as_of) == [date(2026, 12, 1)]
    # never a billing period after the as-of
    assert aws_cur.billing_periods(date(2026, 11, 20), date(2026, 12, 20), datetime(2026, 11, 30, tzinfo=UTC)) == [
        date(2026, 11, 1)]


def test_usd_without_a_rate_names_the_setting(export, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.delenv("KAIZEN_COST_INR_PER_USD", raising=False)
    with pytest.raises(SourceError, match="KAIZEN_COST_INR_PER_USD is not set") as err:
        aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4), transport(export), as_of=AS_OF)
    assert not err.value.transient
    monkeypatch.setenv("KAIZEN_COST_INR_PER_USD", "eighty")
    with pytest.raises(SourceError, match="'eighty' is not a positive number of rupees per US dollar"):
        aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4), transport(export), as_of=AS_OF)


def test_a_missing_column_is_refused_by_name(tmp_path, live_rate):
    header = [h for h in HEADER if h != "line_item_currency_code"]
    root = write_export(tmp_path / EXPORT, BP, [GOOD], header=header)
    with pytest.raises(SourceError, match="lacks the CUR 2.0 column\\(s\\) line_item_currency_code: add them"):
        aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4), transport(root), as_of=AS_OF)


def test_the_root_must_be_the_export_folder(tmp_path, live_rate):
    write_export(tmp_path / EXPORT, BP, [GOOD])
    with pytest.raises(SourceError, match="no metadata/ folder under .*must be the export's folder"):
        aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4), transport(tmp_path), as_of=AS_OF)


def test_a_billing_period_not_delivered_is_neither_read_nor_replaced(export, live_rate):
    # 10 Dec reads November (restatement window) and December; December has no manifest
    loads = aws_cur.prepare_range(date(2026, 12, 10), date(2026, 12, 10), transport(export),
                                  as_of=datetime(2026, 12, 10, tzinfo=UTC))
    assert [tl.where_params for tl in loads] == [{"bp0": BP}, {"bp0": BP}]


def test_live_settings(export, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.delenv("KAIZEN_CUR_ROOT", raising=False)
    assert aws_cur.cur_root() is None
    assert aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4)) == []  # not configured: nothing, no error
    monkeypatch.setenv("KAIZEN_CUR_ROOT", "bucket/cur")
    with pytest.raises(SourceError, match="is not a URL"):
        aws_cur.cur_root()
    monkeypatch.setenv("KAIZEN_CUR_ROOT", export.as_uri() + "/")
    monkeypatch.setenv("KAIZEN_CUR_CONN_ID", "aws_billing")
    assert aws_cur.cur_root() == (export.as_uri(), "aws_billing")


# ---------------------------------------------------------------- load and KPIs (both dialects)
TRADES = {  # fct_trading_day: trades, net P&L (₹)
    date(2026, 11, 2): (100, 5000.0),
    date(2026, 11, 3): (50, -1300.5),
    date(2026, 11, 4): (80, 999.0),  # not billed yet: left out of every cost figure
}


def add_trading_days(engine, days=TRADES):
    with engine.begin() as c:
        for d, (n, pnl) in days.items():
            c.execute(sa.text(
                "insert into fct_trading_day (trading_day, trades, wins, losses, net_pnl_inr, net_pnl_rest_inr, "
                "gross_profit_inr, gross_profit_rest_inr, gross_loss_inr, gross_loss_rest_inr) "
                "values (:d, :n, 0, 0, :p, 0, 0, 0, 0, 0)"), {"d": d.isoformat(), "n": n, "p": pnl})


def load_export(engine, export, run_id="r1"):
    return aws_cur.extract(date(2026, 11, 4), engine, run_id, transport(export), as_of=AS_OF)


def week(as_of):
    return periods.scope_of(Period.of("week", date(2026, 11, 2)), as_of)


# hand-computed over the billed days 2 and 3 Nov (the export is billed through 3 Nov):
# 2 Nov: EC2 ₹1,050 − credit ₹168 + Route 53 ₹168; 3 Nov: Route 53 ₹84 + S3 ₹100 → ₹1,234
COST, DAYS, N_TRADES, PNL = 1234.0, 2, 150, 3699.5


def test_load_and_kpis_by_hand(engine, export, live_rate):
    res = load_export(engine, export)
    assert {r.source: (r.extracted, r.loaded, r.quarantined) for r in res} == {
        "cost_lines": (45, 37, 8), "cost_exports": (1, 1, 0)}
    add_trading_days(engine)
    with engine.connect() as c:
        got = cost_measures.cost_figures(c, week(datetime(2026, 11, 5, 12, tzinfo=UTC)))
        assert cost_measures.cost_figures(c, periods.day_scope(date(2026, 11, 4))) == {}  # no day grain
    assert got["infra_cost_inr"] == {"value": pytest.approx(COST, abs=1e-9), "sample_size": DAYS, "stale": False}
    per_day = got["infra_cost_per_day_inr"]
    assert (per_day["value"], per_day["denominator"], per_day["sample_size"]) == (
        pytest.approx(COST / DAYS, abs=1e-9), 2.0, 2)
    per_trade = got["infra_cost_per_trade_inr"]
    assert (per_trade["value"], per_trade["denominator"], per_trade["no_events"]) == (
        pytest.approx(COST / N_TRADES, abs=1e-12), 150.0, False)
    roi = got["roi"]
    assert (roi["value"], roi["numerator"], roi["denominator"]) == (
        pytest.approx(PNL / COST, abs=1e-12), PNL, pytest.approx(COST, abs=1e-9))


def test_stale_when_a_due_day_is_not_billed(engine, export, live_rate):
    load_export(engine, export)
    add_trading_days(engine)
    with engine.connect() as c:
        # as of 7 Nov 12:00 UTC, 4 and 5 Nov are due (ended ≥ 24 h before) and not billed
        w = cost_measures.window_of(c, *(lambda s: (s.start, s.end))(week(datetime(2026, 11, 7, 12, tzinfo=UTC))))
        got = cost_measures.figures(w)
    assert w.stale_days == (date(2026, 11, 4), date(2026, 11, 5))
    assert got["infra_cost_inr"]["stale"] and got["infra_cost_inr"]["value"] == pytest.approx(COST, abs=1e-9)


def test_no_export_is_insufficient_data_never_zero(engine):
    with engine.connect() as c:
        got = cost_measures.cost_figures(c, week(datetime(2026, 11, 5, 12, tzinfo=UTC)))
    assert got == {k: {"value": None, "sample_size": 0} for k in cost_measures.KPI_IDS}


def test_rerun_changes_nothing(engine, export, live_rate):
    from source_wire import snapshot

    load_export(engine, export)
    first = snapshot(engine)
    with engine.connect() as c:
        exports = c.execute(sa.text("select billing_period, line_items, billed_through from cost_exports")).all()
    load_export(engine, export)  # the same run again (snapshot() compares run ids too)
    assert snapshot(engine) == first
    with engine.connect() as c:
        assert c.execute(sa.text("select billing_period, line_items, billed_through from cost_exports")).all() == exports
        assert c.execute(sa.text("select count(*) from quarantine where source = 'cost_lines'")).scalar() == 8
        assert c.execute(sa.text("select count(*) from raw_cost_daily")).scalar() == 37


def test_bad_lines_are_quarantined_once_on_the_latest_extract(engine, export, live_rate):
    """Every daily extract of November reads its billing period again: its bad lines stay
    once, under the billing period's first day (as extracting the range at once leaves them)."""
    for d in (date(2026, 11, 3), date(2026, 11, 4)):
        aws_cur.extract(d, engine, "r1", transport(export), as_of=AS_OF)
    with engine.connect() as c:
        days = c.execute(sa.text("select extract_day, count(*) from quarantine where source = 'cost_lines' "
                                 "group by extract_day")).all()
    assert [(str(d)[:10], n) for d, n in days] == [("2026-11-01", 8)]  # under the billing period's first day
    aws_cur.extract_range(date(2026, 11, 2), date(2026, 11, 4), engine, "r1", transport(export), as_of=AS_OF)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from quarantine where source = 'cost_lines' "
                                 "and extract_day = '2026-11-01'")).scalar() == 8


def test_the_review_tail_reads_the_bill_again(engine, export, live_rate):
    """A review due before the next daily run (kaizen.pipeline.land_tail): the tail from
    Tue 3 Nov 16:00 IST is loaded on Wed 4 Nov, the trading day whose window holds it."""
    from kaizen.sources.base import load

    start, end = datetime(2026, 11, 3, 10, 30, tzinfo=UTC), datetime(2026, 11, 4, 18, 30, tzinfo=UTC)
    loads = aws_cur.prepare_window(start, end, transport(export), as_of=AS_OF)
    assert loads[0].where_params == {"bp0": BP}
    load(engine, (date(2026, 11, 4), date(2026, 11, 4)), "tail", loads)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from raw_cost_daily")).scalar() == 37
        days = c.execute(sa.text("select extract_day, count(*) from quarantine where source = 'cost_lines' "
                                 "group by extract_day")).all()
    assert [(str(d)[:10], n) for d, n in days] == [("2026-11-01", 8)]


def test_a_demo_folder_without_a_bill_reads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(tmp_path))  # written before the demo had a bill
    assert aws_cur.cur_root() is None
    assert aws_cur.prepare_range(date(2026, 11, 4), date(2026, 11, 4)) == []


def test_kpi_rows_and_view(engine, export, live_rate):
    """Through the rollup: kpi_values rows of the week, and v_cost_daily."""
    load_export(engine, export)
    add_trading_days(engine)
    periods.compute_rollups(engine, ["week"], date(2026, 11, 2), date(2026, 11, 2), "r",
                            as_of=datetime(2026, 11, 5, 12, tzinfo=UTC))
    with engine.connect() as c:
        got = {r.kpi_id: r for r in c.execute(sa.text(
            "select kpi_id, value, numerator, denominator, sample_size, status from kpi_values "
            "where grain = 'week' and kpi_id in ('infra_cost_inr', 'infra_cost_per_day_inr', "
            "'infra_cost_per_trade_inr', 'roi')"))}
        view = c.execute(sa.text("select usage_date, service, cost_inr, credits_inr from v_cost_daily "
                                 "where usage_date = '2026-11-02' order by service")).all()
    assert {k: (round(r.value, 6), r.status) for k, r in got.items()} == {
        "infra_cost_inr": (1234.0, "on_target"), "infra_cost_per_day_inr": (617.0, "on_target"),
        "infra_cost_per_trade_inr": (round(1234 / 150, 6), "on_target"),
        "roi": (round(3699.5 / 1234, 6), "on_target")}
    assert [(str(d)[:10], s, round(cost, 6), round(cr, 6)) for d, s, cost, cr in view] == [
        ("2026-11-02", "AmazonEC2", 882.0, -168.0), ("2026-11-02", "AmazonRoute53", 168.0, 0.0)]


def test_sqlite_and_postgres_identical(tmp_path, pg_url, export, live_rate):
    """The same export on both dialects: the same daily rows and KPI figures, bit for bit."""
    from kaizen import warehouse

    out = []
    for url in (f"sqlite:///{tmp_path / 'w.db'}", pg_url):
        eng = sa.create_engine(url)
        warehouse.apply_ddl(eng)
        with eng.begin() as c:
            for t in ("raw_cost_daily", "cost_exports", "quarantine", "fct_trading_day"):
                c.exec_driver_sql(f"delete from {t}")
        load_export(eng, export)
        add_trading_days(eng)
        with eng.connect() as c:
            rows = sorted((str(r[0])[:10], str(r[1])[:10], r[2], r[3], r[4], bool(r[5]), float(r[6]), float(r[7]),
                           float(r[8]), int(r[9])) for r in c.execute(sa.text(
                "select billing_period, usage_date, service, line_item_type, currency, is_counted, cost, net_cost, "
                "cost_inr, line_items from raw_cost_daily")))
            figs = cost_measures.cost_figures(c, week(datetime(2026, 11, 5, 12, tzinfo=UTC)))
        out.append((rows, figs))
        eng.dispose()
    assert out[0] == out[1]


# ---------------------------------------------------------------- the review section and the Sheet tab
def test_section_and_sheet_tab_by_hand(engine, export, live_rate):
    load_export(engine, export)
    add_trading_days(engine)
    s = cost_section.build_cost_section(engine, "weekly", Period.of("week", date(2026, 11, 2)),
                                        datetime(2026, 11, 5, 12, tzinfo=UTC))
    assert s.available and not s.warnings
    assert (s.total_text, s.per_day_text, s.per_trade_text, s.roi_text, s.net_pnl_text, s.net_after_cost_text) == (
        "₹1,234", "₹617", "₹8.23", "3.00×", "₹3,700", "₹2,466")
    # the week before: only 1 Nov billed (Route 53 ₹168), no trade
    assert (s.previous_total_text, s.previous_per_day_text, s.previous_per_trade_text, s.previous_roi_text) == (
        "₹168", "₹168", "n/a", "n/a")
    assert s.change_per_day_text == "+₹449 (+267.3 %)"
    assert (s.credits_text, s.tax_text) == ("−₹168", "₹168")  # Tax: $1 a day for 2 days
    assert [(x.service, x.cost_text, x.share_text, x.change_text) for x in s.services] == [
        ("AmazonEC2", "₹882", "71.5 %", "new"), ("AmazonRoute53", "₹252", "20.4 %", "−25 %"),
        ("AmazonS3", "₹100", "8.1 %", "new")]
    assert s.note == "2–3 Nov 2026: 2 of 4 days to date billed"
    tab = cost_section.sheet_tab(s, "week")
    assert tab["rows"][0][:4] == ["2026-W45", "week", "(total)", pytest.approx(1234.0)]
    assert tab["rows"][0][8:] == [2, 150, pytest.approx(1234 / 150), pytest.approx(3699.5), pytest.approx(3699.5 / 1234),
                                  "2026-11-03"]
    assert [r[2] for r in tab["rows"][1:]] == ["AmazonEC2", "AmazonRoute53", "AmazonS3"]
    assert len(tab["header"]) == len(tab["rows"][0])


def test_section_without_an_export_says_so(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.delenv("KAIZEN_CUR_ROOT", raising=False)
    s = cost_section.build_cost_section(engine, "weekly", Period.of("week", date(2026, 11, 2)),
                                        datetime(2026, 11, 5, 12, tzinfo=UTC))
    assert not s.available and "no billing export is configured. Set KAIZEN_CUR_ROOT" in s.note
    assert cost_section.sheet_tab(s, "week") is None


def test_section_names_an_unavailable_export(engine, export, live_rate):
    load_export(engine, export)
    with engine.begin() as c:
        c.execute(sa.text(
            "insert into source_outages (source, day, reason, transient, attempts, first_failed_at, last_failed_at) "
            "values ('aws_cur', '2026-11-04', 'S3 timed out', true, 2, :t, :t)"), {"t": "2026-11-04 10:30:00+00:00"})
    s = cost_section.build_cost_section(engine, "weekly", Period.of("week", date(2026, 11, 2)),
                                        datetime(2026, 11, 5, 12, tzinfo=UTC))
    assert s.available and s.warnings == [
        "unavailable: aws_cur since 2026-11-04 (S3 timed out) — figures as last landed"]


# ---------------------------------------------------------------- the demo
def test_demo_export_quarantines_its_bad_lines(range_demo, monkeypatch, tmp_path):
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(range_demo))
    monkeypatch.delenv("KAIZEN_COST_INR_PER_USD", raising=False)
    manifest = json.loads((range_demo / "manifest.json").read_text())
    last = date.fromisoformat(manifest["last_trading_day"])
    loads = aws_cur.prepare_range(last, last, as_of=datetime(2026, 10, 9, 10, 30, tzinfo=UTC))
    cost = loads[1]
    bad = {b["key"]: b["reason"] for b in manifest["aws_cur"]["bad_records"]}
    assert {r.record_key for r in cost.rejects} == set(bad)
    for r in cost.rejects:
        assert bad[r.record_key].split(" ")[0] in r.reason
    assert {r["inr_per_unit"] for r in cost.rows} == {aws_cur.DEMO_INR_PER_USD}


def test_the_demo_bill_answers_as_of_the_demo_clock(range_demo, monkeypatch):
    """A rehearsal at an earlier demo clock reads the bill as AWS had delivered it then:
    no later usage (never quarantined as 'in the future'), billed through the day before."""
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(range_demo))
    monkeypatch.setenv("KAIZEN_DEMO_NOW", "2026-10-05T10:30:00+00:00")
    exports, cost = aws_cur.prepare_range(date(2026, 10, 5), date(2026, 10, 5))
    assert cost.rejects == []  # the demo's bad lines are on 9 Oct, after the clock
    assert max(r["usage_date"] for r in cost.rows if r["line_item_type"] != "Tax" and r["service"] == "AmazonEC2"
               ) == date(2026, 10, 5)
    assert [e["billed_through"] for e in exports.rows] == [date(2026, 9, 30), date(2026, 10, 4)]


def test_demo_weekly_review_cost_section_holds_numbers(rebuilt):
    """The acceptance line: the weekly review's cost section holds numbers (the demo,
    rebuilt 21 Sep – 9 Oct 2026), equal to the week's cost KPIs."""
    from kaizen import warehouse
    from kaizen.reports import review

    engine = warehouse.get_engine()
    r = review.build_review(engine, "weekly", date(2026, 9, 28), as_of=datetime(2026, 10, 9, 10, 30, tzinfo=UTC))
    from kaizen.reports import render

    markdown = render.render_text(review.MARKDOWN_TEMPLATE, r=r, run_id="t", chart_titles=review.CHART_TITLES,
                                  charts=review.CHARTS)
    section = markdown.split("### Cost analysis", 1)[1].split("\n## ", 1)[0]
    assert "No cost data" not in section and "| **Total** | ₹" in section and "| **ROI** (net P&L ÷ cost) |" in section
    with engine.connect() as c:
        kpi = dict(c.execute(sa.text("select kpi_id, value from kpi_values where grain = 'week' "
                                     "and period_start = '2026-09-28' and kpi_id like 'infra_cost%'")).all())
    assert r.cost.total_inr == pytest.approx(kpi["infra_cost_inr"], rel=1e-12)
    assert r.cost.per_day_inr == pytest.approx(kpi["infra_cost_per_day_inr"], rel=1e-12)
    assert r.cost.per_trade_inr == pytest.approx(kpi["infra_cost_per_trade_inr"], rel=1e-12)
    assert f"| **Total** | {r.cost.total_text} |" in section
    assert review.sheet_rows(r)["Cost"]["rows"][0][2] == "(total)"


def test_demo_monthly_and_quarterly_reviews_show_roi_and_the_deep_dive(rebuilt, tmp_path):
    """Monthly: "Cost efficiency" with ROI, and the alert-tuning deep dive; quarterly: the
    "ROI analysis"; each a Slack reply within Block Kit's limits (render_review checks)."""
    from kaizen import warehouse
    from kaizen.reports import review

    engine = warehouse.get_engine()
    as_of = datetime(2026, 10, 9, 10, 30, tzinfo=UTC)
    month = review.build_review(engine, "monthly", date(2026, 9, 1), as_of=as_of)
    out = review.render_review(month, run_id="t", out_dir=tmp_path)
    md = out["markdown"]
    assert "### Cost efficiency" in md and f"| **ROI** (net P&L ÷ cost) | {month.cost.roi_text} |" in md
    assert month.cost.roi == pytest.approx(month.cost.net_pnl_inr / month.cost.total_inr)
    assert "## 2. Deep Dive (30 min)\n\n### Alert tuning" in md and month.alert_tuning.alerts > 0
    texts = [p["text"] for p in out["thread"]]
    assert "Infrastructure cost — 2026-09" in texts and "Deep dive: alert tuning — 2026-09" in texts
    quarter = review.build_review(engine, "quarterly", date(2026, 7, 1), as_of=as_of)
    qmd = review.render_review(quarter, run_id="t", out_dir=tmp_path)["markdown"]
    roi = qmd.split("### ROI analysis", 1)[1].split("\n## ", 1)[0]
    assert f"| **ROI** | **{quarter.cost.roi_text}** |" in roi and "no cost data" not in roi.lower()
    assert quarter.alert_tuning is None and "### Alert tuning" not in qmd
