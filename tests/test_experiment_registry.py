"""The experiment registry (kaizen.experiments.registry): every field's bad values
refused with the row and field named while the other experiments are still read, the
"Experiments" tab of the Sheet read over real HTTP from the local fake Sheets API, the
Sheet winning over the YAML, the YAML file's selection, the decision-rule grammar,
``suggest()`` for every outcome combination, and the status by date."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime

import pytest

from fakes.sheets import FakeSheetsServer
from kaizen import config
from kaizen.delivery import sheets as S
from kaizen.experiments import registry as R

SID = "1kaizenExperimentsSheet"
CONN_ENV = "AIRFLOW_CONN_KAIZEN_GSHEETS"


@pytest.fixture(autouse=True)
def no_registry_settings(monkeypatch, tmp_path):
    """No Sheet, no registry setting, live sources, an empty demo folder."""
    monkeypatch.delenv(CONN_ENV, raising=False)
    monkeypatch.delenv(R.ENV_EXPERIMENTS_FILE, raising=False)
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(tmp_path / "demo"))


def good(i: str, **overrides) -> dict:
    """A valid registry row for experiment ``i`` with its own arms, as text."""
    row = {
        "id": f"exp-{i}",
        "hypothesis": f"Hypothesis {i}",
        "scope": "mean_reversion",
        "control_arm": f"{i}-control",
        "test_arm": f"{i}-test",
        "metrics": "win_rate, avg_profit, max_drawdown",
        "primary_metric": "win_rate",
        "min_sample_per_arm": "100",
        "planned_start": "2027-01-04",
        "planned_end": "2027-01-15",
        "decision_rule": "roll out if win_rate better and max_drawdown not worse",
        "owner": "Priya",
        "alpha": "0.05",
    }
    row.update(overrides)
    return row


def write_yaml(tmp_path, entries, monkeypatch=None, name="experiments.yaml"):
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump({"experiments": entries}, sort_keys=False), encoding="utf-8")
    if monkeypatch is not None:
        monkeypatch.setenv(R.ENV_EXPERIMENTS_FILE, str(path))
    return path


# ---------------------------------------------------------------------------- every field's bad values

# (overrides of the middle row "exp-b", the field refused, the message after "experiment 2 (exp-b): ")
BAD_FIELDS = [
    ({"id": ""}, "id", "id is missing"),
    ({"id": "SL 2%"}, "id", "id 'SL 2%' is not a slug (lowercase letters, digits, '-' and '_')"),
    ({"id": "Exp-B"}, "id", "id 'Exp-B' is not a slug"),
    ({"id": "-exp"}, "id", "id '-exp' is not a slug"),
    ({"hypothesis": ""}, "hypothesis", "hypothesis is missing"),
    ({"scope": "   "}, "scope", "scope is missing"),
    ({"control_arm": ""}, "control_arm", "control_arm is missing"),
    ({"test_arm": None}, "test_arm", "test_arm is missing"),
    ({"test_arm": "b-control"}, "test_arm", "test_arm 'b-control' is the same as control_arm"),
    ({"test_arm": ["x"]}, "test_arm", "test_arm must be text, got a list"),
    ({"owner": ""}, "owner", "owner is missing"),
    ({"owner": True}, "owner", "owner True is a yes/no value, not text (quote it)"),
    (
        {"metrics": "win_rate, sharpe"},
        "metrics",
        "metrics: 'sharpe' is not one of win_rate, avg_profit, max_drawdown",
    ),
    ({"metrics": ["win_rate", "win_rate"]}, "metrics", "metrics names win_rate twice"),
    ({"metrics": {"a": 1}}, "metrics", "metrics must be a list or comma-separated text"),
    (
        {"primary_metric": "sharpe"},
        "primary_metric",
        "primary_metric 'sharpe' is not one of win_rate, avg_profit, max_drawdown",
    ),
    (
        {"metrics": "win_rate", "primary_metric": "max_drawdown", "decision_rule": ""},
        "primary_metric",
        "primary_metric max_drawdown is not among metrics (win_rate)",
    ),
    (
        {"metrics": "avg_profit", "primary_metric": "", "decision_rule": ""},
        "primary_metric",
        "primary_metric win_rate (the default) is not among metrics (avg_profit)",
    ),
    ({"min_sample_per_arm": "0"}, "min_sample_per_arm", "min_sample_per_arm 0 is not a whole number ≥ 1"),
    ({"min_sample_per_arm": -3}, "min_sample_per_arm", "min_sample_per_arm -3 is not a whole number ≥ 1"),
    ({"min_sample_per_arm": 12.5}, "min_sample_per_arm", "min_sample_per_arm 12.5 is not a whole number ≥ 1"),
    ({"min_sample_per_arm": "many"}, "min_sample_per_arm", "min_sample_per_arm many is not a whole number ≥ 1"),
    ({"min_sample_per_arm": True}, "min_sample_per_arm", "min_sample_per_arm True is not a whole number ≥ 1"),
    ({"planned_start": ""}, "planned_start", "planned_start is missing"),
    ({"planned_start": "2027-02-30"}, "planned_start", "planned_start 2027-02-30 is not a date (YYYY-MM-DD)"),
    ({"planned_start": "04/01/2027"}, "planned_start", "planned_start 04/01/2027 is not a date (YYYY-MM-DD)"),
    ({"planned_end": "next friday"}, "planned_end", "planned_end next friday is not a date (YYYY-MM-DD)"),
    (
        {"planned_start": "2027-01-15", "planned_end": "2027-01-04"},
        "planned_end",
        "planned_end 2027-01-04 is before planned_start 2027-01-15",
    ),
    (
        {"decision_rule": "ship it if win_rate better"},
        "decision_rule",
        "decision_rule 'ship it if win_rate better' is not a decision rule: it must start with \"roll out if\"",
    ),
    (
        {"decision_rule": "roll out if avg_profit better"},
        "decision_rule",
        "decision_rule 'roll out if avg_profit better' tests avg_profit, but primary_metric is win_rate",
    ),
    (
        {"metrics": "win_rate, avg_profit"},
        "decision_rule",
        "decision_rule 'roll out if win_rate better and max_drawdown not worse': guardrail max_drawdown "
        "is not among metrics (win_rate, avg_profit)",
    ),
    ({"alpha": "0.5"}, "alpha", "alpha 0.5 must be above 0 and below 0.5 (e.g. 0.05)"),
    ({"alpha": 0}, "alpha", "alpha 0 must be above 0 and below 0.5"),
    ({"alpha": "-0.1"}, "alpha", "alpha -0.1 must be above 0 and below 0.5"),
    ({"alpha": "five percent"}, "alpha", "alpha five percent is not a number (e.g. 0.05)"),
]


@pytest.mark.parametrize(("overrides", "field", "fragment"), BAD_FIELDS, ids=[f"{c[1]}:{c[2][:40]}" for c in BAD_FIELDS])
def test_a_bad_field_refuses_its_row_naming_row_and_field_and_the_others_still_load(
    tmp_path, monkeypatch, overrides, field, fragment
):
    path = write_yaml(tmp_path, [good("a"), good("b", **overrides), good("c")], monkeypatch)
    reg = R.load(today=date(2027, 1, 10))
    assert (reg.source, reg.location) == ("yaml", str(path))
    assert [e.id for e in reg.experiments] == ["exp-a", "exp-c"]
    assert [(e.row, e.source) for e in reg.experiments] == [(1, "yaml"), (3, "yaml")]
    assert len(reg.refused) == 1, [r.message for r in reg.refused]
    refused = reg.refused[0]
    assert (refused.source, refused.row, refused.field) == ("yaml", 2, field)
    label = " ".join(str(overrides.get("id", "exp-b")).split()) or None
    assert refused.experiment_id == label
    where = f"{path} experiment 2" + (f" ({label})" if label else "")
    assert refused.message.startswith(f"{where}: {fragment}"), refused.message


def test_the_brief_example_an_impossible_unquoted_yaml_date_refuses_one_row_not_the_file(tmp_path, monkeypatch):
    # Unquoted, YAML would read 2026-13-01 as a timestamp and fail the whole file.
    path = tmp_path / "experiments.yaml"
    text = write_yaml(tmp_path, [good("a"), good("b", id="sl-2pct", planned_end="PLACEHOLDER")]).read_text()
    path.write_text(text.replace("planned_end: PLACEHOLDER", "planned_end: 2026-13-01"), encoding="utf-8")
    assert "planned_end: 2026-13-01\n" in path.read_text()
    monkeypatch.setenv(R.ENV_EXPERIMENTS_FILE, str(path))
    reg = R.load(today=date(2027, 1, 10))
    assert [e.id for e in reg.experiments] == ["exp-a"]
    assert [r.message for r in reg.refused] == [
        f"{path} experiment 2 (sl-2pct): planned_end 2026-13-01 is not a date (YYYY-MM-DD)"
    ]
    # an unquoted valid date is read as a date all the same
    assert reg.experiments[0].planned_end == date(2027, 1, 15)


def test_every_problem_of_a_row_is_named_once_per_field(tmp_path, monkeypatch):
    write_yaml(
        tmp_path,
        [good("a", owner="", alpha="1", planned_start="2027-1-32", metrics="win_rate, sortino")],
        monkeypatch,
    )
    reg = R.load(today=date(2027, 1, 10))
    assert reg.experiments == []
    assert [(r.row, r.field) for r in reg.refused] == [
        (1, "owner"),
        (1, "metrics"),
        (1, "planned_start"),
        (1, "alpha"),
    ]
    assert {r.experiment_id for r in reg.refused} == {"exp-a"}


def test_defaults_text_values_and_key_spelling(tmp_path, monkeypatch, caplog):
    minimal = {k: v for k, v in good("a").items() if k in R.REQUIRED}
    spelled = {"ID": "exp-b", "Control Arm": "b-control", "test-arm": "b-test", "Notes": "ignored", **{
        k: v for k, v in good("b").items() if k in ("hypothesis", "scope", "planned_start", "planned_end", "owner")
    }}
    spelled.update(metrics=["max_drawdown", "Win Rate"], min_sample_per_arm="1,00,000", alpha="10%",
                   decision_rule="Roll out if win rate better and max drawdown not worse.")
    write_yaml(tmp_path, [minimal, spelled], monkeypatch)
    caplog.set_level(logging.WARNING, logger=R.__name__)
    reg = R.load(today=date(2027, 1, 10))
    assert reg.refused == []
    a, b = reg.experiments
    assert a.metrics == ("win_rate", "avg_profit", "max_drawdown")
    assert a.primary_metric == "win_rate" and a.min_sample_per_arm == 100 and a.alpha == 0.05
    assert a.decision_rule == R.DecisionRule("win_rate") and str(a.decision_rule) == "roll out if win_rate better"
    assert (a.planned_start, a.planned_end) == (date(2027, 1, 4), date(2027, 1, 15))
    assert (b.id, b.control_arm, b.test_arm) == ("exp-b", "b-control", "b-test")
    assert b.metrics == ("win_rate", "max_drawdown")  # report order, whatever the order written
    assert b.min_sample_per_arm == 100_000 and b.alpha == pytest.approx(0.10)
    assert b.decision_rule == R.DecisionRule("win_rate", ("max_drawdown",))
    assert "unknown column(s) Notes ignored" in caplog.text


def test_a_duplicate_id_refuses_the_later_row(tmp_path, monkeypatch):
    path = write_yaml(tmp_path, [good("a"), good("b"), good("c", id="exp-a")], monkeypatch)
    reg = R.load(today=date(2027, 1, 10))
    assert [e.id for e in reg.experiments] == ["exp-a", "exp-b"]
    assert [(r.row, r.field, r.experiment_id, r.message) for r in reg.refused] == [
        (3, "id", "exp-a", f"{path} experiment 3 (exp-a): id exp-a is already used by {path} experiment 1")
    ]


def test_an_arm_belongs_to_one_experiment_while_planned_dates_overlap(tmp_path, monkeypatch):
    entries = [
        good("a"),  # 4–15 Jan 2027
        good("b", control_arm="a-test", planned_start="2027-01-15", planned_end="2027-01-29"),  # overlaps on 15 Jan
        good("c", test_arm="a-control", planned_start="2027-01-18", planned_end="2027-01-29"),  # after: reuse allowed
        good("d", control_arm="a-control", planned_start="2027-01-20", planned_end="2027-02-05"),  # overlaps c
    ]
    path = write_yaml(tmp_path, entries, monkeypatch)
    reg = R.load(today=date(2027, 1, 10))
    assert [e.id for e in reg.experiments] == ["exp-a", "exp-c"]
    assert [(r.row, r.field) for r in reg.refused] == [(2, "control_arm"), (4, "control_arm")]
    assert reg.refused[0].message == (
        f"{path} experiment 2 (exp-b): control_arm 'a-test' is already an arm of experiment exp-a "
        f"({path} experiment 1), whose planned dates overlap (2027-01-04 – 2027-01-15): "
        "give this experiment its own arm values"
    )
    assert "already an arm of experiment exp-c" in reg.refused[1].message


def test_an_entry_that_is_not_a_mapping_is_refused_and_the_others_read(tmp_path, monkeypatch):
    path = write_yaml(tmp_path, ["just a sentence", good("b")], monkeypatch)
    reg = R.load(today=date(2027, 1, 10))
    assert [e.id for e in reg.experiments] == ["exp-b"]
    (r,) = reg.refused
    assert (r.row, r.field, r.experiment_id) == (1, None, None)
    assert r.message.startswith(f"{path} experiment 1: expected a mapping of id, hypothesis")


def test_constructing_an_experiment_validates_it():
    e = R.Experiment(
        id="sl-2pct", hypothesis="h", scope="mean_reversion", control_arm="c", test_arm="t",
        planned_start="2027-01-04", planned_end=date(2027, 1, 15), owner="Priya",
        decision_rule="roll out if win_rate better and avg_profit not worse",
    )
    assert e.planned_start == date(2027, 1, 4) and e.arms == ("c", "t")
    assert e.decision_rule == R.DecisionRule("win_rate", ("avg_profit",))
    assert (e.source, e.row, e.min_sample_per_arm) == ("yaml", 0, 100)
    with pytest.raises(ValueError) as info:
        R.Experiment(
            id="x", hypothesis="h", scope="s", control_arm="c", test_arm="c",
            planned_start="2027-01-04", planned_end="2027-01-01", owner="o", source="csv",
        )
    assert str(info.value) == (
        "experiment 'x': test_arm 'c' is the same as control_arm; planned_end 2027-01-01 is before "
        "planned_start 2027-01-04; source 'csv' is not one of sheet, yaml"
    )


# ---------------------------------------------------------------------------- the Sheet, over HTTP

HEADER = ["ID", " Hypothesis ", "scope", "Control_Arm", "test_arm", "metrics", "primary_metric",
          "min_sample_per_arm", "planned_start", "planned_end", "decision_rule", "owner", "alpha", "notes"]


def sheet_row(row: dict, notes: str = "") -> list:
    return [row[_key(h)] for h in HEADER[:-1]] + [notes]


def _key(header: str) -> str:
    return header.strip().lower()


@pytest.fixture
def fake(monkeypatch):
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID, sheets=(("Scorecard", 1000, 26), ("Experiments", 1000, 26)))
        monkeypatch.setenv(
            CONN_ENV,
            json.dumps({"conn_type": "google_sheets", "extra": {"spreadsheet_id": SID, "base_url": server.base_url}}),
        )
        # Resolve the connection once now: the first lookup imports Airflow, whose logging
        # set-up would otherwise replace the handler a test's caplog installed.
        assert config.get_connection(config.GSHEETS_CONN_ID).extra["spreadsheet_id"] == SID
        yield server


def put_rows(fake: FakeSheetsServer, rows: list[list], tab: str = "Experiments") -> None:
    sheet = fake.sheet(SID, tab)
    with fake.lock:
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value not in ("", None):
                    sheet.cells[(r, c)] = value


def test_the_sheet_tab_is_read_over_http_row_by_row(fake, caplog):
    rows = [
        HEADER,
        sheet_row(good("a", planned_start="04/01/2027", planned_end="15/01/2027", min_sample_per_arm=150, alpha=0.1)),
        [],  # a blank row is skipped, its number kept
        sheet_row(good("b", id="sl-2pct", planned_end="2026-13-01")),
        ["", "  ", ""],  # blanks only
        sheet_row(good("c", metrics="win_rate,avg_profit", decision_rule=""), notes="the analyst's note"),
    ]
    put_rows(fake, rows)
    caplog.set_level(logging.INFO, logger=R.__name__)
    reg = R.load(today=date(2027, 1, 20))
    assert (reg.source, reg.location) == ("sheet", f"spreadsheet {SID} tab 'Experiments'")
    a, c = reg.experiments
    assert (a.id, a.source, a.row) == ("exp-a", "sheet", 2)
    assert (a.planned_start, a.planned_end) == (date(2027, 1, 4), date(2027, 1, 15))  # en_IN: day first
    assert (a.min_sample_per_arm, a.alpha) == (150, 0.1)
    assert a.decision_rule == R.DecisionRule("win_rate", ("max_drawdown",))
    assert (c.id, c.row, c.metrics) == ("exp-c", 6, ("win_rate", "avg_profit"))
    assert c.decision_rule == R.DecisionRule("win_rate")
    assert [(r.source, r.row, r.experiment_id, r.field, r.message) for r in reg.refused] == [
        (
            "sheet", 4, "sl-2pct", "planned_end",
            "Experiments!row 4 (sl-2pct): planned_end 2026-13-01 is not a date (YYYY-MM-DD or DD/MM/YYYY)",
        )
    ]
    assert "unknown column(s) notes ignored" in caplog.text
    assert reg.with_status("ended") == [a, c] and reg.with_status("running", "planned") == []
    # three reads: open the spreadsheet, list its tabs, read the tab's formatted values
    assert [c["op"] for c in fake.calls()] == ["get", "get", "values.get"]
    assert fake.calls("values.get")[0]["query"]["valueRenderOption"] == ["FORMATTED_VALUE"]


def test_a_tab_without_a_required_column_is_refused_whole(fake):
    header = [h for h in HEADER if _key(h) not in ("owner", "test_arm")]
    put_rows(fake, [header, ["exp-a", "h", "s", "c", "", "", "", "2027-01-04", "2027-01-15"]])
    reg = R.load(today=date(2027, 1, 10))
    assert (reg.source, reg.experiments) == ("sheet", [])
    (r,) = reg.refused
    assert (r.source, r.row, r.experiment_id, r.field) == ("sheet", 1, None, "header")
    assert r.message.startswith("Experiments!row 1: missing column(s) test_arm, owner; the tab is not read.")


def test_the_optional_columns_may_be_left_out(fake):
    header = [c for c in R.COLUMNS if c in R.REQUIRED]
    put_rows(fake, [header, [good("a")[c] for c in header]])
    reg = R.load(today=date(2027, 1, 10))
    assert reg.refused == []
    (e,) = reg.experiments
    assert (e.metrics, e.primary_metric, e.min_sample_per_arm, e.alpha) == (R.METRICS, "win_rate", 100, 0.05)
    assert str(e.decision_rule) == "roll out if win_rate better" and reg.status(e) == "running"


def test_an_empty_tab_is_refused_naming_every_required_column(fake):
    reg = R.load(today=date(2027, 1, 10))
    assert reg.source == "sheet" and reg.experiments == []
    assert reg.refused[0].message.startswith(
        "Experiments!row 1: missing column(s) id, hypothesis, scope, control_arm, test_arm, planned_start, "
        "planned_end, owner;"
    )


def test_a_column_written_twice_refuses_the_tab(fake):
    put_rows(fake, [[*HEADER, "Owner"], sheet_row(good("a"))])
    reg = R.load(today=date(2027, 1, 10))
    assert reg.experiments == []
    assert reg.refused[0].message.startswith("Experiments!row 1: column(s) owner appear twice; the tab is not read.")


def test_the_sheet_wins_over_the_yaml(fake, tmp_path, monkeypatch):
    write_yaml(tmp_path, [good("yaml-only")], monkeypatch)
    put_rows(fake, [HEADER, sheet_row(good("from-sheet"))])
    reg = R.load(today=date(2027, 1, 10))
    assert reg.source == "sheet"
    assert [e.id for e in reg.experiments] == ["exp-from-sheet"]


def test_a_spreadsheet_without_the_tab_leaves_the_yaml(fake, tmp_path, monkeypatch):
    with fake.lock:
        ss = fake.spreadsheets[SID]
        ss.sheets = [s for s in ss.sheets if s.title != "Experiments"]
    path = write_yaml(tmp_path, [good("a")], monkeypatch)
    reg = R.load(today=date(2027, 1, 10))
    assert (reg.source, reg.location, [e.id for e in reg.experiments]) == ("yaml", str(path), ["exp-a"])
    assert "values.get" not in [c["op"] for c in fake.calls()]


def test_a_tab_titled_in_another_case_is_the_registry(fake):
    with fake.lock:
        fake.sheet(SID, "Experiments").title = "experiments"
    put_rows(fake, [HEADER, sheet_row(good("a"))], tab="experiments")
    reg = R.load(today=date(2027, 1, 10))
    assert reg.location == f"spreadsheet {SID} tab 'experiments'"
    assert [e.id for e in reg.experiments] == ["exp-a"]


@pytest.mark.parametrize(
    ("status", "ops", "error", "fragment"),
    [
        (403, None, S.SheetsAuthError, "Editor access"),
        (404, None, S.SheetsNotFoundError, "spreadsheet_id"),
        (403, ["values.get"], S.SheetsAuthError, "values.get"),
        (429, ["values.get"], S.SheetsQuotaError, "was still rate-limited (HTTP 429"),
    ],
)
def test_a_sheet_that_cannot_be_read_raises_naming_the_connection(fake, status, ops, error, fragment):
    put_rows(fake, [HEADER, sheet_row(good("a"))])
    fake.fail(status, times=None, ops=ops, retry_after="0.01" if status == 429 else None)
    with pytest.raises(error) as info:
        R.load(today=date(2027, 1, 10))
    message = str(info.value)
    assert message.startswith("Reading the experiment registry (tab 'Experiments' of connection 'kaizen_gsheets'): ")
    assert fragment in message and "kaizen_gsheets" in message.split("): ", 1)[1]
    assert info.value.transient is (status == 429)


def test_a_month_first_locale_reads_month_first():
    values = [HEADER[:-1], sheet_row(good("a", planned_start="1/4/2027", planned_end="2027/01/15"))[:-1],
              sheet_row(good("b", planned_start="13/01/2027"))[:-1]]
    experiments, refused = R._parse_sheet(values, "Experiments", day_first=False)
    assert [(e.id, e.planned_start, e.planned_end) for e in experiments] == [
        ("exp-a", date(2027, 1, 4), date(2027, 1, 15))
    ]
    assert [r.message for r in refused] == [
        "Experiments!row 3 (exp-b): planned_start 13/01/2027 is not a date (YYYY-MM-DD or MM/DD/YYYY)"
    ]


# ---------------------------------------------------------------------------- which YAML file


def test_the_setting_names_the_file(tmp_path, monkeypatch):
    path = write_yaml(tmp_path, [good("a")], monkeypatch, name="team.yaml")
    assert R.registry_file() == (path, True)
    reg = R.load(today=date(2027, 1, 10))
    assert (reg.source, reg.location, [e.id for e in reg.experiments]) == ("yaml", str(path), ["exp-a"])


def test_a_setting_naming_a_missing_file_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(R.ENV_EXPERIMENTS_FILE, str(tmp_path / "nope.yaml"))
    with pytest.raises(R.RegistryError, match=r"KAIZEN_EXPERIMENTS_FILE=.*nope\.yaml: no such file"):
        R.load()


def test_the_demo_folder_has_the_demo_registry_in_demo_mode_only(tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    demo.mkdir()
    demo_file = write_yaml(demo, [good("demo")])
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    assert R.registry_file() == (demo_file, False)
    assert [e.id for e in R.load(today=date(2027, 1, 10)).experiments] == ["exp-demo"]
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    assert R.registry_file() == (R.DEFAULT_FILE, False)
    demo_file.unlink()
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    assert R.registry_file() == (R.DEFAULT_FILE, False)


def test_the_repository_example_is_valid_and_only_planned(monkeypatch):
    reg = R.load(today=date(2026, 11, 27))
    assert (reg.source, reg.location, reg.refused) == ("yaml", "include/experiments.yaml", [])
    (e,) = reg.experiments
    assert e.id == "example-stop-loss-2pct" and e.scope == "mean_reversion"
    assert e.arms == ("example-sl-1.5pct", "example-sl-2.0pct")
    assert (e.planned_start, e.planned_end, e.min_sample_per_arm) == (date(2027, 1, 4), date(2027, 1, 15), 100)
    assert e.decision_rule == R.DecisionRule("win_rate", ("max_drawdown",))
    assert reg.with_status("running", "ended") == [] and reg.with_status("planned") == [e]


def test_no_file_anywhere_is_an_empty_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "DEFAULT_FILE", tmp_path / "missing.yaml")
    reg = R.load(today=date(2027, 1, 10))
    assert (reg.source, reg.experiments, reg.refused) == ("none", [], [])
    assert reg.location == str(tmp_path / "missing.yaml") and reg.today == date(2027, 1, 10)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("experiments:\n  - id: [unclosed\n", "is not valid YAML"),
        ("- id: a\n", "expected a mapping with an 'experiments:' list"),
        ("experiments: {id: a}\n", "'experiments' must be a list of experiments, got dict"),
    ],
)
def test_a_file_that_does_not_parse_raises_naming_it(tmp_path, monkeypatch, text, fragment):
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(R.ENV_EXPERIMENTS_FILE, str(path))
    with pytest.raises(R.RegistryError) as info:
        R.load()
    assert str(info.value).startswith(f"experiment registry {path}") and fragment in str(info.value)
    assert not info.value.transient


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "experiments:\n", "experiments: []\n"])
def test_an_empty_file_is_an_empty_registry(tmp_path, monkeypatch, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(R.ENV_EXPERIMENTS_FILE, str(path))
    reg = R.load()
    assert (reg.source, reg.experiments, reg.refused) == ("yaml", [], [])


# ---------------------------------------------------------------------------- the decision rule


@pytest.mark.parametrize(
    ("text", "primary", "guardrails"),
    [
        ("roll out if win_rate better", "win_rate", ()),
        ("roll out if win_rate better and max_drawdown not worse", "win_rate", ("max_drawdown",)),
        (
            "Roll out if Win Rate better and avg profit not worse and max_drawdown not worse.",
            "win_rate",
            ("avg_profit", "max_drawdown"),
        ),
        ("  roll   out if\tavg_profit  better ", "avg_profit", ()),
        ("roll out if max_drawdown better and win_rate not worse", "max_drawdown", ("win_rate",)),
    ],
)
def test_good_rules_parse(text, primary, guardrails):
    rule = R.parse_rule(text)
    assert (rule.primary, rule.guardrails) == (primary, guardrails)
    assert R.parse_rule(str(rule)) == rule  # the canonical sentence reads back the same


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "it is empty"),
        ("roll back if win_rate worse", 'it must start with "roll out if"'),
        ("rollout if win_rate better", 'it must start with "roll out if"'),
        ("roll out if win_rate improves", "expected \"<metric> better\" after \"roll out if\", got 'win_rate improves'"),
        ("roll out if win_rate better or max_drawdown not worse", 'expected "<metric> better"'),
        ("roll out if win_rate better and", 'expected "<metric> better"'),
        ("roll out if sharpe better", "unknown metric 'sharpe' (one of win_rate, avg_profit, max_drawdown)"),
        ("roll out if win_rate better and max_drawdown better", "expected \"<metric> not worse\" after \"and\", got 'max_drawdown better'"),
        ("roll out if win_rate better and sharpe not worse", "unknown metric 'sharpe'"),
        ("roll out if win_rate better and win_rate not worse", "win_rate is both the primary metric and a guardrail"),
        (
            "roll out if win_rate better and max_drawdown not worse and max_drawdown not worse",
            "a guardrail is named twice: max_drawdown, max_drawdown",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_grammar(text, fragment):
    with pytest.raises(R.RuleError) as info:
        R.parse_rule(text)
    message = str(info.value)
    assert message.startswith(f"{text.strip()!r} is not a decision rule: ")
    assert fragment in message
    assert message.endswith('write "roll out if <metric> better", optionally followed by "and <metric> not worse" (repeated)')


# ---------------------------------------------------------------------------- suggest()

RULE = R.DecisionRule("win_rate", ("max_drawdown",))
B, W, N, SHORT = "better", "worse", "no_difference", "insufficient"


@pytest.mark.parametrize(
    ("primary", "guard", "action"),
    [
        (B, B, "roll out"),
        (B, N, "roll out"),
        (B, W, "roll back"),
        (B, SHORT, None),
        (N, B, "iterate"),
        (N, N, "iterate"),
        (N, W, "roll back"),
        (N, SHORT, None),
        (W, B, "roll back"),
        (W, N, "roll back"),
        (W, W, "roll back"),
        (W, SHORT, None),
        (SHORT, B, None),
        (SHORT, N, None),
        (SHORT, W, None),
        (SHORT, SHORT, None),
    ],
)
def test_suggest_for_every_outcome_combination(primary, guard, action):
    # avg_profit is outside the rule: its outcome never matters
    got = R.suggest(RULE, {"win_rate": primary, "max_drawdown": guard, "avg_profit": W})
    assert got.action == action
    assert got.label == (action or "insufficient sample")


@pytest.mark.parametrize(
    ("outcomes", "text"),
    [
        (
            {"win_rate": B, "max_drawdown": N},
            "Suggestion for Priya: roll out — win rate significantly better; max drawdown not significantly worse.",
        ),
        (
            {"win_rate": B, "max_drawdown": W},
            "Suggestion for Priya: roll back — win rate significantly better; max drawdown significantly worse.",
        ),
        (
            {"win_rate": N, "max_drawdown": B},
            "Suggestion for Priya: iterate — no significant difference in win rate; max drawdown significantly better.",
        ),
        (
            {"win_rate": W, "max_drawdown": N},
            "Suggestion for Priya: roll back — win rate significantly worse; max drawdown not significantly worse.",
        ),
        ({"win_rate": SHORT, "max_drawdown": SHORT}, "No suggestion for Priya yet: insufficient sample for win rate and max drawdown."),
        ({"win_rate": B, "max_drawdown": SHORT}, "No suggestion for Priya yet: insufficient sample for max drawdown."),
    ],
)
def test_the_suggestion_is_worded_for_the_owner(outcomes, text):
    got = R.suggest(RULE, outcomes, owner="Priya")
    assert got.text == text and str(got) == text


def test_a_rule_without_guardrails_and_the_experiment_shortcut():
    e = R.Experiment(
        id="x", hypothesis="h", scope="s", control_arm="c", test_arm="t", metrics=["avg_profit"],
        primary_metric="avg_profit", planned_start="2027-01-04", planned_end="2027-01-15", owner="Arjun",
    )
    assert e.decision_rule == R.DecisionRule("avg_profit")
    assert e.suggest({"avg_profit": B}).text == "Suggestion for Arjun: roll out — average profit per trade significantly better."
    assert e.suggest({"avg_profit": N}).action == "iterate"
    assert e.suggest({"avg_profit": W}).action == "roll back"
    assert R.suggest(e.decision_rule, {"avg_profit": SHORT}).text == (
        "No suggestion for the experiment's owner yet: insufficient sample for average profit per trade."
    )


def test_suggest_refuses_missing_or_unknown_outcomes():
    with pytest.raises(ValueError, match="no outcome for max_drawdown, which the rule 'roll out if win_rate better and max_drawdown not worse' needs"):
        R.suggest(RULE, {"win_rate": B})
    with pytest.raises(ValueError, match="outcome 'significant' for win_rate is not one of better, worse, no_difference, insufficient"):
        R.suggest(RULE, {"win_rate": "significant", "max_drawdown": N})


# ---------------------------------------------------------------------------- status by date

EXP = R.Experiment(
    id="sl", hypothesis="h", scope="s", control_arm="c", test_arm="t",
    planned_start=date(2027, 1, 4), planned_end=date(2027, 1, 15), owner="o",
)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 12, 31), "planned"),
        (date(2027, 1, 3), "planned"),
        (date(2027, 1, 4), "running"),
        (date(2027, 1, 10), "running"),
        (date(2027, 1, 15), "running"),
        (date(2027, 1, 16), "ended"),
        (datetime(2027, 1, 3, 18, 29, tzinfo=UTC), "planned"),  # 23:59 IST on 3 Jan
        (datetime(2027, 1, 3, 18, 30, tzinfo=UTC), "running"),  # 00:00 IST on 4 Jan
        (datetime(2027, 1, 15, 18, 29, tzinfo=UTC), "running"),  # 23:59 IST on 15 Jan
        (datetime(2027, 1, 15, 18, 30, tzinfo=UTC), "ended"),  # 00:00 IST on 16 Jan
    ],
)
def test_status_by_ist_date(today, expected):
    assert R.status(EXP, today) == expected
    assert EXP.status(today) == expected


def test_status_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="has no time zone"):
        R.status(EXP, datetime(2027, 1, 10, 12, 0))


def test_the_registry_takes_statuses_on_its_day(tmp_path, monkeypatch):
    write_yaml(
        tmp_path,
        [good("a"), good("b", planned_start="2027-01-18", planned_end="2027-01-29"),
         good("c", planned_start="2026-12-01", planned_end="2026-12-14")],
        monkeypatch,
    )
    reg = R.load(today=datetime(2027, 1, 10, 4, 0, tzinfo=UTC))
    assert reg.today == date(2027, 1, 10)
    assert [(e.id, reg.status(e)) for e in reg.experiments] == [
        ("exp-a", "running"), ("exp-b", "planned"), ("exp-c", "ended")
    ]
    assert [e.id for e in reg.with_status("running", "ended")] == ["exp-a", "exp-c"]
    assert reg.get("exp-b").row == 2 and reg.get("nope") is None
