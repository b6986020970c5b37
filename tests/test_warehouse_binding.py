"""How a DataFrame column is bound on SQLite (kaizen.warehouse._column): vectorised,
and value for value what binding each Python value would give."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from kaizen.calendar import utc_text
from kaizen.warehouse import _column, bind_value


def test_timestamps_spell_as_utc_text_over_every_year():
    rng = np.random.default_rng(7)
    us = rng.integers(-62_135_596_800_000_000, 253_402_300_799_999_999, 200_000)  # 0001 … 9999
    edges = [-62_135_596_800_000_000, 253_402_300_799_999_999, 0, -1, 951_782_400_000_000]  # … 2000-02-29
    col = pd.Series(pd.to_datetime(np.concatenate([us, edges]), unit="us", utc=True))
    assert _column(col) == [utc_text(t) for t in col.dt.to_pydatetime()]


def test_missing_naive_and_other_zones_bind_as_before():
    col = pd.Series(pd.to_datetime(["2026-10-01 09:15:00.000001", None], format="ISO8601"))  # naive: UTC
    assert _column(col) == ["2026-10-01 09:15:00.000001+00:00", None]
    ist = col.dt.tz_localize("Asia/Kolkata")
    assert _column(ist) == ["2026-10-01 03:45:00.000001+00:00", None]


def test_dates_floats_and_text():
    days = pd.Series([date(2026, 10, 1), None, date(2026, 10, 1), date(1999, 12, 31)], dtype=object)
    assert _column(days) == ["2026-10-01", None, "2026-10-01", "1999-12-31"]
    assert _column(pd.Series([1.5, np.nan, -0.0])) == [1.5, None, -0.0]
    assert _column(pd.Series([1.5, 2.0])) == [1.5, 2.0]
    mixed = pd.Series(["a", None, 3, date(2026, 1, 2)], dtype=object)
    assert _column(mixed) == [bind_value(v) for v in mixed.tolist()]
