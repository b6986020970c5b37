"""Sources: one module per system (``trading``, ``prometheus``, ``github``,
``pagerduty``, ``github_issues`` — post-mortem action items and post-mortems,
``aws_cur`` — the AWS bill, CUR 2.0, ``oncall`` — PagerDuty on-calls and incident assignments,
``team_sheets`` — the team's survey responses and Team tab). Each has two transports returning the raw wire records (the demo files
or the real API/DB) and one parse + validation path, then the shared load step in
:mod:`kaizen.sources.base`::

    extract(day, engine, run_id, transport=None) -> list[ExtractResult]
"""

from __future__ import annotations

import importlib
from datetime import date

from kaizen.sources.base import ExtractResult, Reject, SourceError

SOURCES = ("trading", "prometheus", "github", "pagerduty", "github_issues", "aws_cur", "oncall", "team_sheets")

__all__ = ["SOURCES", "WINDOW_SOURCES", "ExtractResult", "Reject", "SourceError", "extract_range", "prepare_range",
           "prepare_window"]


def prepare_range(name: str, first: date, last: date) -> list:
    """Source ``name`` fetched and validated for the trading days [first, last]: its
    :class:`~kaizen.sources.base.TableLoad` list, nothing written."""
    return importlib.import_module(f"kaizen.sources.{name}").prepare_range(first, last)


# the sources whose records are instants of the whole time line (not trading sessions):
# a review extracts their tail up to its period's end itself (kaizen.pipeline.land_tail)
WINDOW_SOURCES = ("prometheus", "pagerduty", "github", "github_issues", "aws_cur", "oncall", "team_sheets")


def prepare_window(name: str, start, end) -> list:
    """Window source ``name`` fetched and validated for the instants [start, end)."""
    return importlib.import_module(f"kaizen.sources.{name}").prepare_window(start, end)


def extract_range(first: date, last: date, engine, run_id: str, *, progress=None) -> list[ExtractResult]:
    """Extract every source for the trading days [first, last]: one fetch and one load
    (one transaction) per source for the whole range, not one per day."""
    from kaizen.sources.base import load

    results: list[ExtractResult] = []
    for i, name in enumerate(SOURCES, 1):
        results.extend(load(engine, (first, last), run_id, prepare_range(name, first, last)))
        if progress:
            progress(i)
    return results
