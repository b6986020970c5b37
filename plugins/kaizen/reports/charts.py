"""PNG charts for the review documents (matplotlib, Agg backend, imported lazily so
importing this module costs nothing at DAG-parse time).

Every chart takes plain Python lists (the review model's series) and makes one PNG:
written to ``path`` (and the path returned), or, with ``path=None``, returned as bytes
(what the review puts in the artefact store, :mod:`kaizen.artifacts`). The bytes are
deterministic: fixed figure size and dpi, no "Software" metadata, no
timestamps, and the same data always gives the same file. Empty data gives a chart
that says "no data" instead of raising.
"""

from __future__ import annotations

import io
import math
from datetime import date
from pathlib import Path

FIGSIZE = (8.0, 3.6)
DPI = 100
PRIORITY_COLOURS = {"P0": "#b2182b", "P1": "#ef8a62", "P2": "#67a9cf", "P3": "#bdbdbd"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "kaizen",
        }
    )
    return plt


def _save(fig, path: Path | None) -> Path | bytes:
    import matplotlib.pyplot as plt

    try:
        if path is None:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
            return buf.getvalue()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
        return path
    finally:
        plt.close(fig)


def _no_data(plt, title: str, path: Path | None) -> Path | bytes:
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.set_title(title)
    ax.text(
        0.5, 0.5, "no data", ha="center", va="center", fontsize=14, color="#777777", transform=ax.transAxes
    )
    ax.set_axis_off()
    return _save(fig, path)


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def _date_axis(ax, days: list[date]) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    span = (days[-1] - days[0]).days if days else 0
    if span <= 10:
        ax.xaxis.set_major_locator(mdates.DayLocator())
    else:
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10))


def equity_drawdown(
    days: list[date],
    equity: list[float],
    drawdown_pct: list[float],
    path: Path | None = None,
    *,
    highlight: tuple[date, date] | None = None,
) -> Path | bytes:
    """End-of-day equity (top) and drawdown below the running peak (bottom, shaded),
    with the review period highlighted."""
    plt = _plt()
    title = "Equity curve and drawdown"
    if not days:
        return _no_data(plt, title, path)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(FIGSIZE[0], 4.8), dpi=DPI, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    ax1.plot(days, [e / 1e5 for e in equity], color="#2166ac", linewidth=1.4)
    ax1.set_ylabel("equity (₹ lakh)")
    ax1.set_title(title)
    ax2.fill_between(days, drawdown_pct, 0, color="#d6604d", alpha=0.45, step=None)
    ax2.plot(days, drawdown_pct, color="#b2182b", linewidth=0.8)
    ax2.set_ylabel("drawdown (%)")
    if highlight:
        for ax in (ax1, ax2):
            ax.axvspan(highlight[0], highlight[1], color="#fee08b", alpha=0.35, linewidth=0)
    _date_axis(ax2, days)
    fig.tight_layout()
    return _save(fig, path)


def uptime_latency(
    days: list[date], uptime_pct: list, p95_ms: list, path: Path | None = None, *, latency_target_ms=500
) -> Path | bytes:
    """Uptime per day (top, with the 99.9 % SLO) and p95 API latency per day (bottom)."""
    plt = _plt()
    title = "Uptime and p95 latency per day"
    if not days or all(v is None for v in [*uptime_pct, *p95_ms]):
        return _no_data(plt, title, path)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(FIGSIZE[0], 4.8), dpi=DPI, sharex=True)
    ax1.plot(days, [_nan(v) for v in uptime_pct], marker="o", markersize=3, color="#1a9850", linewidth=1.2)
    ax1.axhline(99.9, color="#777777", linestyle="--", linewidth=0.8)
    lowest = min([v for v in uptime_pct if v is not None] or [100.0])
    ax1.set_ylim(min(99.5, lowest - 0.1), 100.05)  # uptime never exceeds 100 %: no headroom above it
    ax1.set_ylabel("uptime (%)")
    ax1.set_title(title)
    ax2.plot(days, [_nan(v) for v in p95_ms], marker="o", markersize=3, color="#762a83", linewidth=1.2)
    if latency_target_ms is not None:
        ax2.axhline(latency_target_ms, color="#777777", linestyle="--", linewidth=0.8)
    ax2.set_ylabel("p95 latency (ms)")
    _date_axis(ax2, days)
    fig.tight_layout()
    return _save(fig, path)


def deployments(
    labels: list[str], deployed: list, failed: list, path: Path | None = None, *, per: str = "day"
) -> Path | bytes:
    """Successful deployments and failed changes per day or week (grouped bars)."""
    plt = _plt()
    title = f"Deployments and failed changes per {per}"
    if not labels or not any((v or 0) for v in [*deployed, *failed]):
        return _no_data(plt, title, path)
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], [v or 0 for v in deployed], width=0.4, color="#4393c3", label="deployments")
    ax.bar(
        [x + 0.2 for x in xs], [v or 0 for v in failed], width=0.4, color="#d6604d", label="failed changes"
    )
    ax.set_xticks(
        xs, labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center"
    )
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def incidents_by_severity(
    labels: list[str], counts: dict[str, list[int]], path: Path | None = None
) -> Path | bytes:
    """Incidents triggered per day or week, stacked by priority (P0–P3)."""
    plt = _plt()
    title = "Incidents by severity"
    if not labels or not any(sum(v) for v in counts.values()):
        return _no_data(plt, title, path)
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    xs = list(range(len(labels)))
    bottom = [0] * len(labels)
    for prio, values in counts.items():
        ax.bar(xs, values, bottom=bottom, color=PRIORITY_COLOURS.get(prio, "#999999"), label=prio, width=0.6)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(
        xs, labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center"
    )
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    ax.legend(frameon=False, ncol=len(counts))
    fig.tight_layout()
    return _save(fig, path)
