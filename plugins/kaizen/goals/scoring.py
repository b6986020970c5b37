"""OKR scoring (Google style, 0.0–1.0, 0.7 = on track). Pure functions.

**A key result's score** is its progress from the baseline to the target:

- higher is better: ``(value − baseline) ÷ (target − baseline)``;
- lower is better (the mirror): ``(baseline − value) ÷ (baseline − target)``;
- clamped to [0.0, 1.0]: overshooting the target scores 1.0, sliding back past the
  baseline 0.0;
- **without a baseline**: met or not met, 1.0 or 0.0 (met: value ≥ target when higher
  is better, value ≤ target when lower is better) — enter a baseline for partial credit.

"Better" is the KPI's ``better`` in the catalog for a KPI-linked KR; for a manual KR
entered by value it is the direction from its baseline to its target. A manual KR
entered as a score keeps that score. A KR without a value (its KPI has too little
data, ``insufficient_data``) has no score, never 0.

**An objective's score** is the mean of its key results' scores; key results without
a score are left out (the review says how many were scored); none scored → no score.

**Grades:** ≥ 0.7 on track; 0.4 to < 0.7 behind; < 0.4 off track.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

ON_TRACK = 0.7
BEHIND = 0.4
HIGHER, LOWER = "higher", "lower"


def progress(value: float, target: float, baseline: float | None, better: str) -> float:
    """The score of a KR whose current value is ``value`` (see the module docstring)."""
    if better not in (HIGHER, LOWER):
        raise ValueError(f"better must be {HIGHER!r} or {LOWER!r}, got {better!r}")
    if baseline is None:
        met = value >= target if better == HIGHER else value <= target
        return 1.0 if met else 0.0
    span = target - baseline if better == HIGHER else baseline - target
    if span <= 0:
        raise ValueError(f"target {target:g} is not {'above' if better == HIGHER else 'below'} baseline "
                         f"{baseline:g} for a {better}-is-better key result")
    moved = value - baseline if better == HIGHER else baseline - value
    return min(1.0, max(0.0, moved / span))


def manual_better(target: float, baseline: float) -> str:
    """The direction of a manual KR entered by value: from its baseline to its target."""
    if target == baseline:
        raise ValueError("target equals baseline: no direction to progress in")
    return HIGHER if target > baseline else LOWER


def objective_score(scores: Iterable[float | None]) -> float | None:
    """Mean of the scored key results (None ones left out); None when none is scored."""
    got = [float(s) for s in scores if s is not None and not math.isnan(float(s))]
    return math.fsum(got) / len(got) if got else None


def grade(score: float | None) -> str:
    if score is None:
        return "not scored"
    if score >= ON_TRACK:
        return "on track"
    return "behind" if score >= BEHIND else "off track"


def mark(score: float | None) -> str:
    if score is None:
        return "⚠️"
    if score >= ON_TRACK:
        return "✅"
    return "🟡" if score >= BEHIND else "❌"


def score_text(score: float | None) -> str:
    """``0.72`` (two decimals), or ``n/a``."""
    return "n/a" if score is None else f"{score:.2f}"
