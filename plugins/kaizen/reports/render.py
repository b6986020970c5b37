"""The one Jinja environment every report renders with, and its filters.

- ``StrictUndefined``: a misspelt field is an error, never an empty string.
- Autoescape is off (the outputs are Markdown and JSON, not HTML). Untrusted text
  (incident titles, service names) is escaped explicitly by the template:
  ``slack_escape`` for Slack mrkdwn, ``md_escape`` for Markdown.
- JSON templates (``*.json.j2``) insert every string through ``json_str`` (user text:
  Slack-escaped, then JSON-quoted) or ``json_text`` (text the template composed, whose
  user parts were already Slack-escaped: JSON-quoted only); :func:`render_json` then
  ``json.loads`` the result, so a template can never emit invalid JSON silently.

Every filter is registered in :data:`FILTERS`, the only place they are named.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from functools import lru_cache

import jinja2

from kaizen import config

MINUS = "\u2212"  # typographic minus: "−₹1,234"

STATUS_MARKS = {
    "on_target": "✅",
    "off_target": "❌",
    "insufficient_data": "⚠️",
    "stale": "⚠️",
    "missing": "⚠️",  # no kpi_values row at all (see reports.daily)
    "no_events": "➖",
    None: "➖",  # no target to judge against
}

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks)
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_HEADER_TEXT = 150
SLACK_MAX_FALLBACK_TEXT = 3000  # kept short on purpose; Slack truncates at 40k


# ---------------------------------------------------------------- text escaping
def slack_escape(text) -> str:
    """Escape exactly ``&``, ``<`` and ``>`` (Slack's control characters), so user text
    can never form ``<!channel>``, ``<@U…>`` or a link. ``&`` first."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_SPECIAL = "\\`*_[]|#"


def md_escape(text) -> str:
    """User text for Markdown: HTML-significant characters as entities, Markdown
    punctuation backslash-escaped, newlines folded (a title stays one list item)."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)


def json_str(text) -> str:
    """A JSON string literal of Slack-escaped user text."""
    return json.dumps(slack_escape(text), ensure_ascii=False)


def json_text(text) -> str:
    """A JSON string literal of text the template composed (already escaped)."""
    return json.dumps(str(text), ensure_ascii=False)


def clip(text, limit: int, ellipsis: str = "…") -> str:
    """At most ``limit`` characters; clip *before* escaping so entities stay whole."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


# ---------------------------------------------------------------- numbers
def group_indian(n: int) -> str:
    """1234567 → '12,34,567' (lakh/crore grouping); non-negative integers."""
    s = str(n)
    if len(s) <= 3:
        return s
    head, tail = s[:-3], s[-3:]
    parts = []
    while len(head) > 2:
        parts.insert(0, head[-2:])
        head = head[:-2]
    if head:
        parts.insert(0, head)
    return ",".join(parts) + "," + tail


def signed(value: float, body: str, plus: bool) -> str:
    """``body`` (the magnitude, formatted) with the sign of ``value``: '−' below 0, '+'
    above it when ``plus``, none at 0."""
    if value < 0:
        return MINUS + body
    return ("+" + body) if plus and value > 0 else body


def inr(value, decimals: int = 0, plus: bool = False) -> str:
    """₹ with Indian digit grouping: 1234567 → '₹12,34,567', -1234 → '−₹1,234'."""
    v = float(value)
    q = round(abs(v), decimals)
    whole = int(q)
    body = "₹" + group_indian(whole)
    if decimals:
        body += f"{q - whole:.{decimals}f}"[1:]
    return signed(v if q else 0.0, body, plus)


def count(value) -> str:
    """An integer count with Indian grouping: 123456 → '1,23,456'."""
    v = float(value)
    n = int(round(abs(v)))
    return signed(v if n else 0.0, group_indian(n), False)


def number(value, decimals: int = 2) -> str:
    """A plain number, trailing zeros dropped: 55.0 → '55', 99.9 → '99.9'."""
    v = float(value)
    s = f"{abs(v):.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{abs(v):.0f}"
    whole, _, frac = s.partition(".")
    body = group_indian(int(whole)) + ("." + frac if frac else "")
    return signed(v if float(s) else 0.0, body, False)


def pct(value, decimals: int = 2) -> str:
    """A percentage (0–100) with a fixed number of decimals: '58.33 %'. A value below
    100 never prints as '100 %' (99.9996 → '99.99 %'), so a near-miss stays visible."""
    v = float(value)
    s = f"{v:.{decimals}f}"
    if v < 100 <= float(s):
        s = f"{math.floor(v * 10**decimals) / 10**decimals:.{decimals}f}"
    return (MINUS + s[1:] if s.startswith("-") else s) + " %"


def ms(value) -> str:
    """Milliseconds: '245 ms', '1,204 ms', '3.4 ms' (one decimal under 10 ms)."""
    v = float(value)
    if abs(v) < 10:
        return f"{v:.1f} ms".replace("-", MINUS)
    return count(v) + " ms"


def status_mark(status) -> str:
    return STATUS_MARKS.get(status, "⚠️")


# ---------------------------------------------------------------- lists within limits
def fit_lines(
    items: Iterable,
    render: Callable,
    limit: int = SLACK_MAX_SECTION_TEXT,
    more: str = "…and {n} more",
    prefix: str = "",
) -> str:
    """Render ``items`` one line each (``render`` is usually a template macro) and join
    as many as fit in ``limit`` characters including ``prefix`` and, when some are left
    out, the ``more`` line ("…and 17 more"). Items keep their order."""
    items = list(items)
    lines: list[str] = []
    used = len(prefix)
    for i, item in enumerate(items):
        line = str(render(item)).strip()
        rest = len(items) - i - 1
        reserve = len("\n" + more.format(n=rest + 1)) if rest else 0
        if used + len(line) + 1 + reserve > limit:
            lines.append(more.format(n=len(items) - i))
            break
        lines.append(line)
        used += len(line) + 1
    return prefix + "\n".join(lines)


def chunk_lines(
    lines: Iterable,
    limit: int = SLACK_MAX_SECTION_TEXT,
    max_chunks: int = 4,
    more: str = "…and {n} more",
) -> list[str]:
    """Pack ``lines`` into at most ``max_chunks`` texts of at most ``limit`` characters
    each (one Block Kit section each), in order; when they do not all fit, the last
    chunk ends with the ``more`` line ("…and 17 more"). A single over-long line is
    clipped. No lines → an empty list."""
    items = [clip(str(x).strip(), limit) for x in lines]
    chunks: list[list[str]] = [[]]
    sizes = [0]
    for i, line in enumerate(items):
        rest = len(items) - i - 1
        last = len(chunks) == max_chunks
        reserve = len("\n" + more.format(n=rest + 1)) if (rest and last) else 0
        need = len(line) + (1 if chunks[-1] else 0)
        if sizes[-1] + need + reserve > limit:
            if not last and chunks[-1]:
                chunks.append([line])
                sizes.append(len(line))
                continue
            chunks[-1].append(more.format(n=len(items) - i))
            break
        chunks[-1].append(line)
        sizes[-1] += need
    return ["\n".join(c) for c in chunks if c]


def sheet_text(text) -> str:
    """User text for a spreadsheet cell that can never become a formula: a leading
    ``= + - @`` (or tab/CR/LF) gets the apostrophe text prefix. The same rule as
    ``kaizen.delivery.sheets.inert_text`` (idempotent, so the sink applying it again
    changes nothing); reports cannot import delivery, hence the copy here."""
    s = "" if text is None else str(text)
    return "'" + s if s and s[0] in ("=", "+", "-", "@", "\t", "\r", "\n") else s


FILTERS: dict[str, Callable] = {
    "slack_escape": slack_escape,
    "md_escape": md_escape,
    "json_str": json_str,
    "json_text": json_text,
    "clip": clip,
    "inr": inr,
    "count": count,
    "number": number,
    "pct": pct,
    "ms": ms,
    "status_mark": status_mark,
    "fit_lines": fit_lines,
    "chunk_lines": chunk_lines,
    "sheet_text": sheet_text,
}


@lru_cache(maxsize=4)
def environment(templates_dir: str | None = None) -> jinja2.Environment:
    """The shared environment (one per templates folder)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir or str(config.TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render_text(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def render_json(template: str, **context) -> dict:
    """Render a ``*.json.j2`` template and parse it; a template that produced invalid
    JSON fails here, naming the template and the position."""
    text = render_text(template, **context)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"template {template} rendered invalid JSON: {exc}") from exc


# ---------------------------------------------------------------- checks and hashing
def check_block_kit(payload: dict) -> list[str]:
    """Violations of Slack's Block Kit limits in ``payload`` (empty when it is valid)."""
    problems = []
    blocks = payload.get("blocks") or []
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {SLACK_MAX_BLOCKS}")
    for i, b in enumerate(blocks):
        text = (b.get("text") or {}).get("text", "")
        if b.get("type") == "header" and len(text) > SLACK_MAX_HEADER_TEXT:
            problems.append(f"block {i}: header {len(text)} chars > {SLACK_MAX_HEADER_TEXT}")
        if b.get("type") == "section":
            if len(text) > SLACK_MAX_SECTION_TEXT:
                problems.append(f"block {i}: section text {len(text)} chars > {SLACK_MAX_SECTION_TEXT}")
            for f in b.get("fields") or []:
                if len(f.get("text", "")) > 2000:
                    problems.append(f"block {i}: field {len(f['text'])} chars > 2000")
    return problems


def render_thread(template: str, what: str, **context) -> tuple[dict, list[dict]]:
    """Render a ``{"headline": …, "thread": [...]}`` Slack template and check every
    payload against Block Kit's limits before anything is sent; ``what`` names the
    report in the error ("weekly_review 2026-W47 thread reply 2 breaks …")."""
    slack = render_json(template, **context)
    headline, thread = slack["headline"], slack["thread"]
    for i, payload in enumerate([headline, *thread]):
        problems = check_block_kit(payload)
        if problems:
            where = "headline" if i == 0 else f"thread reply {i}"
            raise ValueError(f"{what} {where} breaks Block Kit limits: {'; '.join(problems)}")
    return headline, thread


# Blocks whose block_id starts with this carry run metadata (run id), not content:
# a re-run with the same figures must hash the same and post nothing.
META_BLOCK_PREFIX = "kaizen_meta"


def content_hash(payload: dict) -> str:
    """sha256 of the payload's canonical JSON, leaving out metadata blocks."""
    blocks = [
        b for b in payload.get("blocks") or [] if not str(b.get("block_id", "")).startswith(META_BLOCK_PREFIX)
    ]
    canonical = json.dumps(
        {**payload, "blocks": blocks}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
