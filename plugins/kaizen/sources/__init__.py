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

# what each source lands: the ``source`` of its loads, under which source_coverage
# records what has landed (a test keeps it equal to what each module loads)
LANDS = {
    "trading": ("trades", "orders"),
    "prometheus": ("probes", "latency", "errors"),
    "github": ("deployments",),
    "pagerduty": ("incidents", "alerts", "log_entries"),
    "github_issues": ("action_items",),
    "aws_cur": ("cost_exports", "cost_lines"),
    "oncall": ("oncall_spans", "assignments"),
    "team_sheets": ("satisfaction", "team_months"),
}

__all__ = ["LANDS", "SOURCES", "WINDOW_SOURCES", "ExtractResult", "Reject", "SourceError", "extract_range", "prepare_range",
           "prepare_window"]


def prepare_range(name: str, first: date, last: date) -> list:
    """Source ``name`` fetched and validated for the trading days [first, last]: its
    :class:`~kaizen.sources.base.TableLoad` list, nothing written."""
    return importlib.import_module(f"kaizen.sources.{name}").prepare_range(first, last)


# the sources whose records are instants of the whole time line (not trading sessions):
# a review extracts their tail up to its period's end itself (kaizen.pipeline.land_tail)
WINDOW_SOURCES = ("prometheus", "pagerduty", "github", "github_issues", "aws_cur", "oncall", "team_sheets")


def landed(name: str, spans: dict, start, end) -> bool:
    """Whether source ``name`` has landed all of [start, end) by the coverage ``spans``
    (:func:`kaizen.warehouse.coverage.spans`): every load of it that records coverage
    covers the window, and one at least does."""
    from kaizen.warehouse import coverage

    recorded = [spans[s] for s in LANDS[name] if spans.get(s)]
    return bool(recorded) and all(coverage.of_window(r, start, end)["is_covered"] for r in recorded)


def landed_to(name: str, spans: dict):
    """How far source ``name`` has landed by the coverage ``spans``: the earliest end of
    the last span of its loads that record coverage (None: it never landed)."""
    ends = [spans[s][-1][1] for s in LANDS[name] if spans.get(s)]
    return min(ends) if ends else None


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
