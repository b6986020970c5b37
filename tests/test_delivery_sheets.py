"""The Google Sheets sink, driven by the real gspread client over HTTP against the
local Sheets API v4 server in ``tests/fakes/sheets.py``."""

from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from decimal import Decimal

import gspread
import pytest

from fakes.sheets import QUOTA_MESSAGES, FakeSheetsServer
from kaizen import config
from kaizen.delivery import sheets as S

SID = "1kaizenTestSpreadsheetId"
FAST = S.RetryPolicy(max_attempts=5, max_wait_s=5.0, base_delay_s=0.05, max_delay_s=0.2)

TAB_NAMES = [
    "Daily",
    "Weekly",
    "Monthly",
    "Quarterly",
    "Scorecard",
    "Incidents",
    "Action items",
    "Definitions",
]
PERIOD_HEADER = [
    "period",
    "period_start",
    "trades_count",
    "win_rate_pct",
    "net_pnl_inr",
    "sharpe_ratio",
    "status",
]
PERIOD_FORMATS = {"trades_count": "int", "win_rate_pct": "pct", "net_pnl_inr": "inr", "sharpe_ratio": "float"}


@pytest.fixture
def fake():
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID)
        yield server


def conn_for(fake: FakeSheetsServer, **extra) -> config.Conn:
    return config.Conn(
        config.GSHEETS_CONN_ID,
        conn_type="google_sheets",
        extra={"spreadsheet_id": SID, "base_url": fake.base_url, **extra},
    )


@pytest.fixture
def sheet(fake):
    return S.open_spreadsheet(conn_for(fake), retry=FAST)


def period_tab(name: str, rows: list[list]) -> S.SheetTab:
    return S.SheetTab(name, PERIOD_HEADER, rows, key_columns=1, number_formats=PERIOD_FORMATS)


def all_tabs(daily_rows: list[list]) -> list[S.SheetTab]:
    return [
        period_tab("Daily", daily_rows),
        period_tab("Weekly", []),
        period_tab("Monthly", []),
        period_tab("Quarterly", []),
        S.SheetTab(
            "Scorecard",
            ["Metric", "Target", "Current", "Trend"],
            [["Win rate", "> 55 %", 57.2, "improving"], ["Sharpe ratio", "> 1.5", 1.1, "declining"]],
            key_columns=0,
        ),
        S.SheetTab("Incidents", ["incident_id", "priority", "title", "status"], [], key_columns=1),
        S.SheetTab(
            "Action items",
            ["item_id", "incident_id", "title", "owner", "due_ist", "status"],
            [],
            key_columns=1,
        ),
        S.SheetTab(
            "Definitions",
            ["kpi_id", "name", "unit", "target", "formula"],
            [["win_rate_pct", "Win rate", "%", "> 55", "wins / closed trades"]],
            key_columns=1,
        ),
    ]


def formulas(fake: FakeSheetsServer) -> list:
    ss = fake.spreadsheets[SID]
    return [(s.title, k, v) for s in ss.sheets for k, v in s.cells.items() if isinstance(v, dict)]


def written_cells(fake: FakeSheetsServer) -> list:
    return [
        v
        for call in fake.calls("values.batchUpdate")
        for d in call["body"]["data"]
        for row in d["values"]
        for v in row
    ]


# ---------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1", "'+1"),
        ("-x", "'-x"),
        ("@me", "'@me"),
        ("\tfoo", "'\tfoo"),
        ("\rfoo", "'\rfoo"),
        ("\nfoo", "'\nfoo"),
        ("'=already inert", "'=already inert"),
        ("mean-reversion", "mean-reversion"),
        ("a = b", "a = b"),
        ("", ""),
        ("₹ 1,234", "₹ 1,234"),
    ],
)
def test_inert_text(text, expected):
    assert S.inert_text(text) == expected
    assert S.inert_text(S.inert_text(text)) == expected  # idempotent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1234.5, -1234.5),
        (-7, -7),
        (0, 0),
        (True, True),
        (Decimal("-12.25"), -12.25),
        (float("nan"), ""),
        (float("inf"), ""),
        (None, ""),
        (date(2026, 11, 27), "2026-11-27"),
        ("-x", "'-x"),
        ("2026-W48", "2026-W48"),
    ],
)
def test_cell_values_keep_their_type(value, expected):
    out = S._cell(value)
    assert out == expected and type(out) is type(expected)


def test_sheet_tab_validation():
    with pytest.raises(ValueError, match="unknown column"):
        S.SheetTab("Daily", ["a"], [], 1, {"b": "inr"})
    with pytest.raises(ValueError, match="number format"):
        S.SheetTab("Daily", ["a"], [], 1, {"a": "money"})
    with pytest.raises(ValueError, match="cells for 1 columns"):
        S.SheetTab("Daily", ["a"], [[1, 2]], 1)
    with pytest.raises(ValueError, match="key_columns"):
        S.SheetTab("Daily", ["a"], [], 2)
    with pytest.raises(ValueError, match="duplicate"):
        S.SheetTab("Daily", ["a", "a"], [], 1)


def test_a1_helpers():
    assert [S.col_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert S.a1("Action items", 1, 0, 5, 6) == "'Action items'!A2:F5"
    assert S.quote_title("Bob's") == "'Bob''s'"


# ---------------------------------------------------------------------------- structure


def test_sync_creates_every_tab_on_an_empty_spreadsheet(fake, sheet):
    before = len(fake.calls())
    result = S.sync(
        sheet,
        all_tabs([["2026-11-27", "2026-11-27", 120, 56.5, -1234.5, None, "on_target"]]),
        "2026-11-27 16:00 IST",
    )

    ss = fake.spreadsheets[SID]
    titles = [s.title for s in sorted(ss.sheets, key=lambda s: s.index)]
    assert titles == ["Sheet1", *TAB_NAMES, "About"]
    assert result.tabs_created == [*TAB_NAMES, "About"]
    # spreadsheets.get, one structural batchUpdate, one values.batchUpdate: nothing to read yet.
    ops = [c["op"] for c in fake.calls()[before:]]
    assert ops == ["get", "batchUpdate", "values.batchUpdate"]
    assert result.request_count == 3 and result.write_request_count == 2 and result.retries == 0

    daily = fake.sheet(SID, "Daily")
    assert daily.frozen_rows == 1
    assert fake.values(SID, "Daily") == [
        PERIOD_HEADER,
        ["2026-11-27", "2026-11-27", 120, 56.5, -1234.5, "", "on_target"],
    ]
    assert fake.values(SID, "About") == [["last sync (IST)", "2026-11-27 16:00 IST"]]
    bold = [f for f in daily.formats if f["fields"] == "userEnteredFormat.textFormat.bold"]
    assert bold and bold[0]["range"] == {"sheetId": daily.sheet_id, "startRowIndex": 0, "endRowIndex": 1}
    number = {
        f["range"]["startColumnIndex"]: f["cell"]["userEnteredFormat"]["numberFormat"]
        for f in daily.formats
        if f["fields"] == "userEnteredFormat.numberFormat"
    }
    assert number[PERIOD_HEADER.index("net_pnl_inr")] == {
        "type": "CURRENCY",
        "pattern": "[$₹-4009]#,##,##0.00",
    }
    assert number[PERIOD_HEADER.index("win_rate_pct")] == {"type": "NUMBER", "pattern": '0.00"%"'}
    assert number[PERIOD_HEADER.index("trades_count")]["type"] == "NUMBER"
    assert fake.sheet(SID, "Scorecard").frozen_rows == 1

    # The same content again: nothing structural, nothing but the sync time is written.
    before = len(fake.calls())
    again = S.sync(
        sheet,
        all_tabs([["2026-11-27", "2026-11-27", 120, 56.5, -1234.5, None, "on_target"]]),
        "2026-11-27 16:05 IST",
    )
    assert [c["op"] for c in fake.calls()[before:]] == ["get", "values.batchGet", "values.batchUpdate"]
    assert again.write_request_count == 1
    assert (again.rows_updated, again.rows_appended) == (0, 0)
    assert again.tabs_written == ["About"]
    assert fake.calls("values.batchUpdate")[-1]["body"]["data"] == [
        {
            "range": "'About'!A1:B1",
            "values": [["last sync (IST)", "2026-11-27 16:05 IST"]],
            "majorDimension": "ROWS",
        }
    ]
    # One batchGet for all existing tabs, unformatted so numbers come back as numbers.
    get = fake.calls("values.batchGet")[-1]
    assert len(get["query"]["ranges"]) == len(TAB_NAMES) + 1
    assert get["query"]["valueRenderOption"] == ["UNFORMATTED_VALUE"]


def test_existing_tabs_are_reused_and_user_tabs_left_alone(fake):
    fake.create_spreadsheet(SID, sheets=(("Notes", 50, 5), ("Daily", 100, 10)))
    fake.spreadsheets[SID].sheets[0].cells[(0, 0)] = "hand-written note"
    sheet = S.open_spreadsheet(conn_for(fake), retry=FAST)
    S.sync(
        sheet, [period_tab("Daily", [["2026-11-27", "2026-11-27", 1, 100.0, 50.0, None, "on_target"]])], "t1"
    )
    titles = [s.title for s in fake.spreadsheets[SID].sheets]
    assert titles.count("Daily") == 1 and "Notes" in titles
    assert fake.values(SID, "Notes") == [["hand-written note"]]
    assert fake.values(SID, "Daily")[1][0] == "2026-11-27"


# ---------------------------------------------------------------------------- upserts


def trading_days(n: int, start=date(2025, 12, 1)) -> list[date]:
    days, d = [], start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def daily_row(day: date, version: int) -> list:
    # Alternating-sign P&L so negatives are exercised; values depend on the version.
    pnl = round((-1) ** day.toordinal() * (1000 + day.toordinal() % 97) + version * 0.5, 2)
    return [
        day.isoformat(),
        day.isoformat(),
        100 + version,
        50 + (day.day % 10) + version / 100,
        pnl,
        None if version < 3 else 1.25,
        "on_target" if pnl > 0 else "off_target",
    ]


def test_a_year_of_syncs_leaves_one_row_per_period_with_the_latest_values(fake, sheet):
    days = trading_days(250)
    expected: dict[str, list] = {}
    week_expected: dict[str, list] = {}
    writes_per_sync = []
    for i, day in enumerate(days):
        # Each run re-sends the last 5 trading days (to-date revisions change values)
        # and the week to date.
        window = days[max(0, i - 4) : i + 1]
        rows = [daily_row(d, version=i) for d in window]
        for r in rows:
            expected[r[0]] = r
        iso = day.isocalendar()
        week_key = f"{iso.year}-W{iso.week:02d}"
        week_row = [
            week_key,
            (day - timedelta(days=day.weekday())).isoformat(),
            500 + i,
            55.0,
            -10_000.5 + i,
            None,
            "to date",
        ]
        week_expected[week_key] = week_row
        before = len(fake.calls())
        S.sync(sheet, [period_tab("Daily", rows), period_tab("Weekly", [week_row])], f"{day} 16:00 IST")
        ops = [c["op"] for c in fake.calls()[before:]]
        assert ops.count("values.batchUpdate") == 1, ops
        writes_per_sync.append(ops.count("values.batchUpdate") + ops.count("batchUpdate"))

    # A full re-sync of the year with changed values overwrites in place.
    final = [daily_row(d, version=999) for d in days]
    result = S.sync(sheet, [period_tab("Daily", final)], "2026-12-31 16:00 IST")
    for r in final:
        expected[r[0]] = r
    assert result.rows_appended == 0 and result.rows_updated == 250

    values = fake.values(SID, "Daily")
    assert values[0] == PERIOD_HEADER
    keys = [r[0] for r in values[1:]]
    assert len(keys) == len(set(keys)) == 250
    assert keys == [d.isoformat() for d in days]  # appended in order, never twice
    for r in values[1:]:
        want = [("" if v is None else v) for v in expected[r[0]]]
        while want and want[-1] == "":
            want.pop()
        assert r == want
    weekly = fake.values(SID, "Weekly")[1:]
    assert [r[0] for r in weekly] == list(week_expected)
    assert all(r[4] == week_expected[r[0]][4] for r in weekly)
    assert max(writes_per_sync) <= 2 and sum(writes_per_sync) < 1.1 * len(days)
    assert formulas(fake) == []


def test_rows_for_absent_keys_are_kept_and_changed_rows_overwritten_in_place(fake, sheet):
    rows = [[f"2026-01-0{d}", f"2026-01-0{d}", d, 50.0, 100.0 * d, None, "on_target"] for d in range(1, 6)]
    S.sync(sheet, [period_tab("Daily", rows)], "t1")
    # A human adds a note in a spare row below the table; the next sync must keep it.
    fake.spreadsheets[SID].sheet("Daily").cells[(7, 0)] = "note by analyst"

    result = S.sync(
        sheet,
        [
            period_tab(
                "Daily",
                [
                    ["2026-01-03", "2026-01-03", 3, 51.0, -300.0, None, "off_target"],
                    ["2026-01-06", "2026-01-06", 6, 50.0, 600.0, None, "on_target"],
                ],
            )
        ],
        "t2",
    )
    assert (result.rows_updated, result.rows_appended) == (1, 1)
    values = fake.values(SID, "Daily")
    assert [(r[0] if r else "") for r in values[1:]] == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
        "2026-01-04",
        "2026-01-05",
        "",
        "note by analyst",
        "2026-01-06",
    ]
    assert values[3] == ["2026-01-03", "2026-01-03", 3, 51, -300, "", "off_target"]
    assert values[-1][0] == "2026-01-06"
    # Only the changed row and the new row were sent.
    ranges = [d["range"] for d in fake.calls("values.batchUpdate")[-1]["body"]["data"]]
    assert ranges == ["'Daily'!A4:G4", "'Daily'!A9:G9", "'About'!A1:B1"]


def test_an_analysts_column_right_of_the_header_is_kept(fake, sheet):
    S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    fake.spreadsheets[SID].sheet("Daily").cells[(1, 9)] = "checked by RK"
    S.sync(sheet, [period_tab("Daily", [["d1", "d1", 2, 50.0, 1.0, None, "ok"]])], "t2")
    assert fake.values(SID, "Daily")[1] == ["d1", "d1", 2, 50, 1, "", "ok", "", "", "checked by RK"]


def test_duplicate_keys_in_one_sync_are_refused_before_any_write(fake, sheet):
    rows = [
        ["2026-01-01", "2026-01-01", 1, 50.0, 1.0, None, "x"],
        ["2026-01-01", "2026-01-01", 2, 50.0, 2.0, None, "y"],
    ]
    before = len(fake.calls("values.batchUpdate"))
    with pytest.raises(ValueError, match="appears twice"):
        S.sync(sheet, [period_tab("Daily", rows)], "t1")
    assert len(fake.calls("values.batchUpdate")) == before
    with pytest.raises(ValueError, match="empty key"):
        S.sync(sheet, [period_tab("Daily", [[None, "x", 1, 50.0, 1.0, None, "x"]])], "t1")
    assert len(fake.calls("values.batchUpdate")) == before


def test_replace_mode_blanks_rows_that_are_gone(fake, sheet):
    card = ["Metric", "Target", "Current", "Trend"]
    S.sync(
        sheet,
        [S.SheetTab("Scorecard", card, [["a", 1, 2, "up"], ["b", 1, 2, "up"], ["c", 1, 2, "up"]], 0)],
        "t1",
    )
    S.sync(sheet, [S.SheetTab("Scorecard", card, [["a", 1, 3, "down"]], 0)], "t2")
    assert fake.values(SID, "Scorecard") == [card, ["a", 1, 3, "down"]]


def test_new_column_rewrites_header_and_reapplies_formats(fake, sheet):
    S.sync(
        sheet,
        [S.SheetTab("Daily", ["period", "net_pnl_inr"], [["d1", 1.5]], 1, {"net_pnl_inr": "inr"})],
        "t1",
    )
    n_formats = len(fake.sheet(SID, "Daily").formats)
    S.sync(
        sheet,
        [
            S.SheetTab(
                "Daily",
                ["period", "net_pnl_inr", "win_rate_pct"],
                [["d1", 1.5, 60.0]],
                1,
                {"net_pnl_inr": "inr", "win_rate_pct": "pct"},
            )
        ],
        "t2",
    )
    assert fake.values(SID, "Daily") == [["period", "net_pnl_inr", "win_rate_pct"], ["d1", 1.5, 60]]
    assert len(fake.sheet(SID, "Daily").formats) > n_formats


# ---------------------------------------------------------------------------- values


def test_numbers_stay_numbers_and_user_text_is_inert(fake, sheet):
    nasty = ['=HYPERLINK("http://x","y")', "+1", "-x", "@me", "\tfoo", "=1+1", "\r=cmd"]
    rows = [[f"s{i}", name, -1234.5, -7, 0.25] for i, name in enumerate(nasty)]
    S.sync(
        sheet,
        [
            S.SheetTab(
                "Strategies", ["id", "strategy", "pnl_inr", "trades", "ratio"], rows, 1, {"pnl_inr": "inr"}
            )
        ],
        "2026-11-27 16:00 IST",
    )

    body = fake.calls("values.batchUpdate")[-1]["body"]
    assert body["valueInputOption"] == "RAW"
    for v in written_cells(fake):
        if isinstance(v, str):
            assert not v.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), v
    stored = fake.values(SID, "Strategies")[1:]
    assert [r[1] for r in stored] == ["'" + n for n in nasty]  # the exact inert strings
    for r in stored:
        assert r[2] == -1234.5 and isinstance(r[2], float)
        assert r[3] == -7 and isinstance(r[3], int)
    assert formulas(fake) == []
    # On the wire the numbers are JSON numbers, not strings.
    raw = json.dumps(body)
    assert "-1234.5, -7, 0.25" in raw


def test_inert_text_stays_text_even_under_user_entered(fake, sheet):
    """The fake parses USER_ENTERED like Sheets: raw dangerous text becomes a formula
    (so the fake can catch a regression), inert text does not."""
    sheet.values_batch_update(
        {
            "valueInputOption": "USER_ENTERED",
            "data": [
                {"range": "'Sheet1'!A1:B1", "values": [['=HYPERLINK("http://x","y")', "-x"]]},
                {
                    "range": "'Sheet1'!A2:B2",
                    "values": [[S.inert_text('=HYPERLINK("http://x","y")'), S.inert_text("-x")]],
                },
            ],
        }
    )
    cells = fake.sheet(SID, "Sheet1").cells
    assert cells[(0, 0)] == {"formula": '=HYPERLINK("http://x","y")'} and isinstance(cells[(0, 1)], dict)
    assert cells[(1, 0)] == '=HYPERLINK("http://x","y")' and cells[(1, 1)] == "-x"


# ---------------------------------------------------------------------------- grid


def test_writing_past_the_grid_resizes_first(fake):
    fake.create_spreadsheet(SID, sheets=(("Daily", 10, 3),))
    sheet = S.open_spreadsheet(conn_for(fake), retry=FAST)
    # The fake enforces the grid like the API does.
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        sheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "'Daily'!A11", "values": [[1]]}]}
        )

    rows = [[f"d{i:04d}", f"d{i:04d}", i, 50.0, -i * 1.5, None, "ok"] for i in range(1200)]
    result = S.sync(sheet, [period_tab("Daily", rows)], "t1")
    daily = fake.sheet(SID, "Daily")
    assert daily.row_count >= 1201 and daily.column_count >= len(PERIOD_HEADER)
    assert len(fake.values(SID, "Daily")) == 1201 and result.rows_appended == 1200
    resize = [r for r in fake.calls("batchUpdate")[-1]["body"]["requests"] if "updateSheetProperties" in r]
    assert resize and "gridProperties.rowCount" in resize[0]["updateSheetProperties"]["fields"]
    # The number formats were re-applied to the grown grid in the same request.
    assert any("repeatCell" in r for r in fake.calls("batchUpdate")[-1]["body"]["requests"])

    # Growing again past the headroom resizes again; still one values write.
    more = rows + [[f"e{i:04d}", f"e{i:04d}", i, 50.0, 1.0, None, "ok"] for i in range(400)]
    before = len(fake.calls("values.batchUpdate"))
    S.sync(sheet, [period_tab("Daily", more)], "t2")
    assert len(fake.calls("values.batchUpdate")) == before + 1
    assert len(fake.values(SID, "Daily")) == 1601


# ---------------------------------------------------------------------------- failures


def test_429_with_retry_after_is_retried_then_succeeds(fake, sheet):
    fake.fail(429, times=1, retry_after=1, ops=["values.batchUpdate"])
    t0 = time.monotonic()
    result = S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.0  # Retry-After honoured
    assert result.retries == 1
    assert [c["status"] for c in fake.calls("values.batchUpdate")] == [429, 200]
    assert fake.values(SID, "Daily")[1][0] == "d1"


def test_5xx_is_retried_with_backoff(fake, sheet):
    fake.fail(503, times=2, ops=["values.batchGet"])
    S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    result = S.sync(sheet, [period_tab("Daily", [["d1", "d1", 2, 50.0, 1.0, None, "ok"]])], "t2")
    assert result.retries == 2 and result.rows_updated == 1


def test_a_lost_response_retried_never_appends_twice(fake, sheet):
    S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    # The write is applied but the answer is a 500: the retry sends the same ranges again.
    fake.fail(500, times=1, ops=["values.batchUpdate"], after_apply=True)
    S.sync(sheet, [period_tab("Daily", [["d2", "d2", 1, 50.0, 1.0, None, "ok"]])], "t2")
    assert [r[0] for r in fake.values(SID, "Daily")[1:]] == ["d1", "d2"]


def test_a_lost_add_sheet_response_is_recovered(fake, sheet):
    fake.fail(503, times=1, ops=["batchUpdate"], after_apply=True)
    result = S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    assert [s.title for s in fake.spreadsheets[SID].sheets].count("Daily") == 1
    assert fake.values(SID, "Daily")[1][0] == "d1"
    assert result.retries >= 1


def test_permanent_429_fails_within_the_bound_with_a_clear_message(fake, sheet):
    policy = S.RetryPolicy(max_attempts=5, max_wait_s=2.5, base_delay_s=0.5, max_delay_s=1.0)
    sheet.client.retry = policy
    fake.fail(429, times=None, retry_after=1, ops=["values.batchUpdate"])
    t0 = time.monotonic()
    with pytest.raises(S.SheetsQuotaError) as info:
        S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")
    elapsed = time.monotonic() - t0
    assert elapsed < policy.max_wait_s + 1.5
    message = str(info.value)
    assert SID in message and "values.batchUpdate" in message
    assert "60 write requests per minute per user" in message and "re-run" in message
    assert 2 <= len(fake.calls("values.batchUpdate")) <= policy.max_attempts


def test_a_read_quota_429_quotes_the_read_quota_not_the_write_one(fake, sheet):
    S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, 1.0, None, "ok"]])], "t1")  # the tab exists
    slept = []
    sheet.client.sleep = slept.append
    fake.fail(429, times=None, retry_after=2, ops=["values.batchGet"], message=QUOTA_MESSAGES["read"])
    with pytest.raises(S.SheetsQuotaError) as info:
        S.sync(sheet, [period_tab("Daily", [["d1", "d1", 2, 50.0, 1.0, None, "ok"]])], "t2")
    message = str(info.value)
    assert "Google Sheets values.batchGet on spreadsheet" in message
    assert "limit 'Read requests per minute per user'" in message  # Google's own words
    assert f"The Sheets API allows {S.READ_QUOTA_TEXT}" in message and "what else reads" in message
    assert "write requests" not in message and "connection 'kaizen_gsheets'" in message
    assert info.value.transient is True
    # FAST allows 5 s of waiting: 2 s, 2 s, and a third 2 s would pass it — three tries
    assert len(fake.calls("values.batchGet")) == 3 and slept == [2.0, 2.0]


def test_a_long_retry_after_is_not_slept_past_the_bound(fake, sheet):
    fake.fail(429, times=None, retry_after=3600)
    t0 = time.monotonic()
    with pytest.raises(S.SheetsQuotaError, match="HTTP 429"):
        S.sync(sheet, [period_tab("Daily", [])], "t1")
    assert time.monotonic() - t0 < 1.0
    assert len(fake.calls("get")) == 2  # the open, and one attempt of the sync's first request


def test_default_policy_is_bounded():
    policy = S.RetryPolicy()
    assert policy.max_attempts == 5 and policy.max_wait_s == 60.0
    assert sum(policy.backoff(a) for a in range(1, policy.max_attempts)) < policy.max_wait_s


def test_403_fails_at_once_naming_the_connection(fake):
    fake.fail(403, times=None)
    with pytest.raises(S.SheetsAuthError) as info:
        S.open_spreadsheet(conn_for(fake), retry=FAST)
    assert "kaizen_gsheets" in str(info.value) and "Editor access" in str(info.value)
    assert len(fake.calls()) == 1  # never retried


def test_403_during_sync_fails_at_once(fake, sheet):
    fake.fail(403, times=None, ops=["values.batchUpdate"])
    with pytest.raises(S.SheetsAuthError, match="kaizen_gsheets"):
        S.sync(sheet, [period_tab("Daily", [])], "t1")
    assert len(fake.calls("values.batchUpdate")) == 1


def test_404_names_the_spreadsheet_id(fake):
    conn = config.Conn(
        config.GSHEETS_CONN_ID, extra={"spreadsheet_id": "wrong-id", "base_url": fake.base_url}
    )
    with pytest.raises(S.SheetsNotFoundError, match="wrong-id.*spreadsheet_id"):
        S.open_spreadsheet(conn, retry=FAST)


def test_unreachable_server_fails_within_the_bound(fake):
    url = fake.base_url
    fake.stop()
    conn = config.Conn(config.GSHEETS_CONN_ID, extra={"spreadsheet_id": SID, "base_url": url})
    t0 = time.monotonic()
    with pytest.raises(S.SheetsUnavailableError, match="ConnectionError"):
        S.open_spreadsheet(conn, retry=FAST)
    assert time.monotonic() - t0 < FAST.max_wait_s


# ---------------------------------------------------------------------------- connection


def _service_account_key(token_uri: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "kaizen-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "kaizen-sheets@kaizen-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def test_service_account_key_from_the_airflow_connection_env(monkeypatch, caplog):
    with FakeSheetsServer(require_token="ya29.test-token") as fake:
        fake.create_spreadsheet(SID)
        key = _service_account_key(fake.token_uri)
        monkeypatch.setenv(
            "AIRFLOW_CONN_KAIZEN_GSHEETS",
            json.dumps(
                {
                    "conn_type": "google_sheets",
                    "extra": {
                        "spreadsheet_id": SID,
                        "base_url": fake.base_url,
                        "keyfile_dict": json.dumps(key),
                    },
                }
            ),
        )
        caplog.set_level(logging.DEBUG)
        sheet = S.open_spreadsheet(retry=FAST)
        fake.fail(429, times=1, retry_after=0, ops=["values.batchUpdate"])
        S.sync(sheet, [period_tab("Daily", [["d1", "d1", 1, 50.0, -1.0, None, "ok"]])], "t1")
        assert fake.token_requests, "the key was exchanged for a token at token_uri"
        assert {c["authorization"] for c in fake.calls()} == {"Bearer ya29.test-token"}
        assert fake.values(SID, "Daily")[1][4] == -1
        secret = key["private_key"].splitlines()[1]
        assert secret not in caplog.text

        # A refused key: 403 names the connection and the service account's e-mail.
        fake.fail(403, times=None)
        with pytest.raises(S.SheetsAuthError) as info:
            S.sync(sheet, [period_tab("Daily", [])], "t2")
        assert "kaizen_gsheets" in str(info.value) and key["client_email"] in str(info.value)
        assert secret not in str(info.value)


def test_a_revoked_key_fails_with_a_clear_message(fake):
    fake.refuse_tokens = True
    key = _service_account_key(fake.token_uri)
    with pytest.raises(S.SheetsAuthError) as info:
        S.open_spreadsheet(conn_for(fake, keyfile_dict=key), retry=FAST)
    assert "kaizen_gsheets" in str(info.value) and "new key" in str(info.value)
    assert key["private_key"].splitlines()[1] not in str(info.value)


def test_bad_key_and_missing_settings_are_clear(fake, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
    with pytest.raises(LookupError, match="kaizen_gsheets"):
        S.open_spreadsheet()
    with pytest.raises(ValueError, match="spreadsheet_id"):
        S.open_spreadsheet(config.Conn(config.GSHEETS_CONN_ID, extra={"base_url": fake.base_url}))
    bad = {
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n",
        "client_email": "x@y",
        "token_uri": fake.token_uri,
    }
    with pytest.raises(S.SheetsAuthError) as info:
        S.open_spreadsheet(conn_for(fake, keyfile_dict=bad))
    assert "SECRETSECRET" not in str(info.value) and "keyfile_dict" in str(info.value)
    with pytest.raises(S.SheetsAuthError, match="keyfile_dict"):
        S.open_spreadsheet(config.Conn(config.GSHEETS_CONN_ID, extra={"spreadsheet_id": SID}))


def test_about_tab_is_reserved(sheet):
    with pytest.raises(ValueError, match="About"):
        S.sync(sheet, [S.SheetTab("About", ["x"], [], 0)], "t1")


# ---------------------------------------------------------------------------- read_tabs (the sources' reader)


def test_read_tabs_reads_one_tab_with_values_get_and_several_with_one_batch_get(fake):
    fake.create_spreadsheet("1readTabs", sheets=(("OKRs", 10, 5), (" team ", 10, 5), ("Other", 10, 5)))
    fake.sheet("1readTabs", "OKRs").cells[(0, 0)] = "quarter"
    fake.sheet("1readTabs", " team ").cells[(1, 1)] = "x"
    conn = config.Conn(config.GSHEETS_CONN_ID, extra={"spreadsheet_id": "1readTabs", "base_url": fake.base_url})

    one = S.read_tabs(conn, ["okrs"], "the OKRs", any_case=True)
    assert (one.values, one.titles) == ({"okrs": [["quarter"]]}, {"okrs": "OKRs"})
    assert one.location("okrs") == "spreadsheet 1readTabs tab 'OKRs'"
    assert (one.properties["locale"], one.properties["timeZone"]) == ("en_IN", "Asia/Calcutta")
    assert [c["op"] for c in fake.calls()] == ["get", "get", "values.get"]

    several = S.read_tabs(conn, ["OKRs", "Team", "Gone"], "the tabs", any_case=True)
    assert several.values == {"OKRs": [["quarter"]], "Team": [[], ["", "x"]]}
    assert several.titles == {"OKRs": "OKRs", "Team": " team "}
    assert [c["op"] for c in fake.calls()][3:] == ["get", "get", "values.batchGet"]
    # without any_case only the exact title is the tab
    assert S.read_tabs(conn, ["Team"], "the Team tab").values == {}


def test_read_tabs_says_what_was_being_read(fake):
    with fake.lock:
        fake.spreadsheets[SID].sheets[0].title = "A"
    fake.fail(403, times=None, ops=["values.get"])
    with pytest.raises(S.SheetsAuthError) as info:
        S.read_tabs(conn_for(fake), ["A", "Sheet2"], "the team's tabs")
    # only one of the two tabs exists, so it is read with values.get
    assert str(info.value).startswith("Reading the team's tabs (tabs 'A', 'Sheet2' of connection 'kaizen_gsheets'): "
                                      f"Google Sheets values.get on spreadsheet '{SID}' was refused (HTTP 403")
    assert info.value.transient is False
