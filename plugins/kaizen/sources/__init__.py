"""Sources: one module per system (``trading``, ``prometheus``, ``github``,
``pagerduty``, ``github_issues`` — post-mortem action items and post-mortems). Each has two transports returning the raw wire records (the demo files
or the real API/DB) and one parse + validation path, then the shared load step in
:mod:`kaizen.sources.base`::

    extract(day, engine, run_id, transport=None) -> list[ExtractResult]
"""

from __future__ import annotations

import importlib
from datetime import date

from kaizen.sources.base import ExtractResult, Reject, SourceError

SOURCES = ("trading", "prometheus", "github", "pagerduty", "github_issues")

__all__ = ["SOURCES", "ExtractResult", "Reject", "SourceError", "extract_range"]


def extract_range(first: date, last: date, engine, run_id: str, *, progress=None) -> list[ExtractResult]:
    """Extract every source for the trading days [first, last]: one fetch and one load
    (one transaction) per source for the whole range, not one per day."""
    results: list[ExtractResult] = []
    for i, name in enumerate(SOURCES, 1):
        module = importlib.import_module(f"kaizen.sources.{name}")
        results.extend(module.extract_range(first, last, engine, run_id))
        if progress:
            progress(i)
    return results
