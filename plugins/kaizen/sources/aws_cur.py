"""Infrastructure cost from the AWS Cost and Usage Report 2.0 (AWS Data Exports, CSV
gzip), into ``raw_cost_daily`` (one row per billing period × UTC usage day × service ×
line item type × currency) and ``cost_exports`` (one row per billing period read).

The export, as AWS delivers it to S3 (docs.aws.amazon.com/cur/latest/userguide/
dataexports-export-delivery.html), under ``KAIZEN_CUR_ROOT`` = the export's folder
``s3://<bucket>/<prefix>/<export-name>`` (read through
:class:`airflow.sdk.ObjectStoragePath`, with the Airflow connection
``KAIZEN_CUR_CONN_ID`` when set; the demo's is ``file://<demo dir>/aws_cur/kaizen-cur``)::

    metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json   executionId, exportArn,
                                                                  columns, dataFiles
    data/BILLING_PERIOD=YYYY-MM/[<executionId>/]<export-name>-00001.csv.gz

The manifest is written after every data file of a refresh, so it says what to read:
exactly its ``dataFiles`` (located under the root by their part after ``/data/``), never
a folder listing (an "overwrite" export may be mid-refresh, a "create new" one keeps
every refresh). A billing period without a manifest has not been delivered: nothing is
read or replaced for it. Parquet exports are refused (choose CSV, gzip).

Columns read (CUR 2.0 names; the export's query must select them):
``bill_billing_period_start_date``, ``line_item_usage_start_date``,
``line_item_usage_end_date``, ``line_item_line_item_type``,
``line_item_unblended_cost``, ``line_item_currency_code``, and ``product_servicecode``
or ``line_item_product_code`` (the service); optional: ``line_item_net_unblended_cost``
(kept beside the unblended cost), ``identity_line_item_id`` (the quarantine key).
``line_item_resource_id`` and ``resource_tags`` are not used.

The cost rule (what the cost KPIs count, :mod:`kaizen.cost.measures`):
- cost = ``line_item_unblended_cost``: what AWS bills on the invoice, before tax.
  Credits, refunds, fees, RI and Savings Plans fees count as billed
  (``SavingsPlanCoveredUsage`` and its ``SavingsPlanNegation`` cancel out; the
  commitment is in ``SavingsPlanRecurringFee``); discounts count where the export has
  them as line items ("manual discount compatibility"). ``Tax`` (GST) is kept but not
  counted (``is_counted`` false): it is reclaimed as input tax credit. The net
  unblended cost is stored too (``net_cost``) for analysts; the KPIs do not use it.
- A line item type outside :data:`COUNTED_TYPES` and :data:`EXCLUDED_TYPES` is
  quarantined with its name, never guessed.
- Currency: INR as it is; USD × ``KAIZEN_COST_INR_PER_USD`` (rupees per dollar, e.g.
  84.0; required in live mode as soon as a USD line is read — a permanent error naming
  the setting; the demo uses :data:`DEMO_INR_PER_USD`); any other currency is
  quarantined. The rate used is stored on every row (``inr_per_unit``) and per billing
  period (``cost_exports.inr_per_usd``).
- Days: a line counts on the UTC date of its usage; a line spanning several days (a
  monthly fee) is spread over them in proportion to its hours in each.
- How far the data reaches (``cost_exports.billed_through``): the latest usage day of
  a billing period (the newest start of a usage line) is taken as still growing (AWS
  refreshes at least daily), so the last complete day is the one before it — or that
  day itself when it ends the billing period.

Quarantined (source ``cost_lines``, with the reason): an unparseable or missing date or
cost, usage ending before it starts, a row of another billing period than its
partition, a missing line item type, service or currency, an unknown line item type, a
currency other than INR and USD, usage starting after the extraction's as-of.

Which billing periods an extract reads: those overlapping [first day − 15 days, last
day] (AWS may still restate a billing period during the two weeks after it ends), up
to the as-of; each is replaced whole (``billing_period`` slice), with its quarantine:
a billing period is read again by every daily extract of its month, so its bad lines
are kept under the billing period's first day (``quarantine.extract_day``; the reason
starts with the partition, ``BILLING_PERIOD=YYYY-MM:``), each once, whichever extract
read it last. Re-running a day or a range, or extracting a range instead of its days
one at a time, leaves the same rows. An extract's ``extracted`` counts the daily rows
the lines sum into plus the lines rejected (``cost_exports`` holds the lines read).

A review due before the next daily run reads the export again first (the source is one
of the review tail's, :func:`prepare_window`): the weekly review on Monday morning shows
the weekend as far as AWS has billed it.

Not configured (live mode without ``KAIZEN_CUR_ROOT``, or a demo folder without
``aws_cur/``): nothing is read and nothing fails; the reviews' cost sections say so.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from kaizen import config
from kaizen.sources.base import (
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    extraction_clock,
    future_reason,
    load,
    read_ts,
)

log = logging.getLogger(__name__)

ENV_ROOT = "KAIZEN_CUR_ROOT"  # the export's folder: s3://bucket/prefix/export-name
ENV_CONN_ID = "KAIZEN_CUR_CONN_ID"  # Airflow connection for the store (e.g. aws_default)
ENV_INR_PER_USD = "KAIZEN_COST_INR_PER_USD"  # rupees per US dollar for USD exports
DEMO_EXPORT = "kaizen-cur"
DEMO_INR_PER_USD = 84.0  # the demo's rate (KAIZEN_SOURCES=demo without the setting)
RESTATEMENT = timedelta(days=15)  # AWS may update a billing period until two weeks after it ends

SOURCE = "cost_lines"  # quarantine source of the line items
USAGE_TYPES = frozenset({"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"})
# every billed line item type but Tax (see the module's docstring)
COUNTED_TYPES = frozenset({
    "Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee",
    "SavingsPlanUpfrontFee", "RIFee", "Fee", "Credit", "Refund", "BundledDiscount", "Discount", "EdpDiscount",
    "PrivateRateDiscount", "SppDiscount", "DistributorDiscount",
})
EXCLUDED_TYPES = frozenset({"Tax"})
CURRENCIES = ("INR", "USD")
REQUIRED = ("bill_billing_period_start_date", "line_item_usage_start_date", "line_item_usage_end_date",
            "line_item_line_item_type", "line_item_unblended_cost", "line_item_currency_code")
SERVICE_COLUMNS = ("product_servicecode", "line_item_product_code")


# ---------------------------------------------------------------- settings
def cur_root() -> tuple[str, str | None] | None:
    """(export folder URL, Airflow connection id or None) the cost source reads, or None
    when no export is configured (live mode without ``KAIZEN_CUR_ROOT``; a demo folder
    written without a bill, by a generator from before it had one)."""
    if config.sources_mode() == "demo":
        root = config.demo_dir().resolve() / "aws_cur" / DEMO_EXPORT
        return (root.as_uri(), None) if root.exists() else None
    raw = os.environ.get(ENV_ROOT, "").strip()
    if not raw:
        return None
    if "://" not in raw:
        raise SourceError(f"{ENV_ROOT}={raw!r} is not a URL: set it to the export's folder, "
                          "s3://<bucket>/<prefix>/<export-name> (or file:///path for a local copy)")
    return raw.rstrip("/"), os.environ.get(ENV_CONN_ID, "").strip() or None


def inr_per_usd() -> float | None:
    """``KAIZEN_COST_INR_PER_USD`` (rupees per US dollar), :data:`DEMO_INR_PER_USD` in
    demo mode when unset, else None. A value that is not a positive number raises."""
    rate = config.env_number(ENV_INR_PER_USD, valid=lambda r: 0 < r < math.inf, error=SourceError,
                             refusal=" is not a positive number of rupees per US dollar (e.g. 84.0)")
    if rate is None:
        return DEMO_INR_PER_USD if config.sources_mode() == "demo" else None
    return rate


# ---------------------------------------------------------------- transport
@dataclass
class DataFile:
    name: str  # the manifest's data file URI (for messages and quarantine keys)
    rows: Iterable[dict]  # the CSV rows as dicts (header → text)
    header: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """One billing period's latest export delivery: its manifest and data files."""

    billing_period: date
    manifest: dict
    files: list[DataFile]


# A transport returns the delivery of a billing period (its first day), or None when
# that billing period has not been delivered (no manifest).
Transport = Callable[[date], "Delivery | None"]


def partition(bp: date) -> str:
    return f"BILLING_PERIOD={bp:%Y-%m}"


def _rows(raw: bytes) -> tuple[list[str], Iterator[dict]]:
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    return list(reader.fieldnames or []), iter(reader)


def read_data_file(data: bytes, name: str) -> DataFile:
    """A CUR 2.0 CSV data file's bytes (gzip-compressed when its name ends in .gz)."""
    if name.endswith(".parquet"):
        raise SourceError(f"{name}: Parquet exports are not read; set the export's format to CSV (gzip)")
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(f"{name} is not a readable gzip file ({exc}): the export may be mid-refresh",
                              transient=True) from exc
    header, rows = _rows(data)
    return DataFile(name, rows, header)


def storage_transport(root_url: str, conn_id: str | None = None) -> Transport:
    """The export under ``root_url`` (``s3://bucket/prefix/export-name``, ``file://…``)
    read through :class:`airflow.sdk.ObjectStoragePath`."""
    from airflow.sdk import ObjectStoragePath

    try:
        root = ObjectStoragePath(root_url, conn_id=conn_id) if conn_id else ObjectStoragePath(root_url)
    except ValueError as exc:  # no filesystem registered for the scheme
        raise SourceError(f"{ENV_ROOT}={root_url!r}: {exc}; for s3:// install "
                          "apache-airflow-providers-amazon[s3fs]") from exc
    export = root.name

    def read_bytes(path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except PermissionError as exc:
            raise SourceError(f"no permission to read {path} ({what}): {exc}; grant s3:GetObject to the "
                              f"connection {conn_id or '(default credentials)'}") from exc
        except FileNotFoundError as exc:
            raise SourceError(f"{path} ({what}) is missing: the export is being refreshed; retry later",
                              transient=True) from exc
        except OSError as exc:
            raise SourceError(f"reading {path} ({what}) failed: {exc}", transient=True) from exc

    def fetch(bp: date) -> Delivery | None:
        try:
            if not (root / "metadata").exists():
                raise SourceError(f"no metadata/ folder under {root_url}: {ENV_ROOT} must be the export's folder "
                                  "s3://<bucket>/<prefix>/<export-name> (Data Exports writes metadata/ and data/ there)")
            manifest_path = root / "metadata" / partition(bp) / f"{export}-Manifest.json"
            if not manifest_path.exists():
                return None
        except OSError as exc:
            raise SourceError(f"listing {root_url} failed: {exc}", transient=True) from exc
        try:
            manifest = json.loads(read_bytes(manifest_path, "manifest"))
        except ValueError as exc:
            raise SourceError(f"{manifest_path} is not JSON ({exc}): the export may be mid-refresh",
                              transient=True) from exc
        files = []
        for uri in manifest.get("dataFiles") or []:
            _, sep, rel = str(uri).partition(f"/{export}/data/")
            if not sep:
                raise SourceError(f"{manifest_path}: data file {uri} is not under {export}/data/; is {ENV_ROOT} "
                                  "the folder of the export that wrote it?")
            files.append(read_data_file(read_bytes(root / "data" / rel, "data file"), str(uri)))
        return Delivery(bp, manifest, files)

    return fetch


def _starts_after(row: dict, clock: datetime) -> bool:
    start, reason = read_ts(row.get("line_item_usage_start_date") or None, "line_item_usage_start_date")
    return reason is None and start is not None and start > clock


def as_delivered_at(fetch: Transport, clock: datetime) -> Transport:
    """The export as AWS had delivered it at ``clock``: without the lines of usage that
    starts after it (the demo files hold the whole demo span; a rehearsal at an earlier
    demo clock must not read its future as bad lines)."""

    def at(bp: date) -> Delivery | None:
        dv = fetch(bp)
        if dv is not None:
            for f in dv.files:
                f.rows = [r for r in f.rows if not _starts_after(r, clock)]
        return dv

    return at


def default_transport() -> Transport | None:
    root = cur_root()
    if root is None:
        return None
    fetch = storage_transport(*root)
    return as_delivered_at(fetch, extraction_clock()) if config.sources_mode() == "demo" else fetch


# ---------------------------------------------------------------- parsing
def _number(text, column: str) -> tuple[float | None, str | None]:
    if text is None or str(text).strip() == "":
        return None, f"missing {column}"
    try:
        v = float(str(text).strip())
    except ValueError:
        return None, f"{column} {text!r} is not a number"
    if not math.isfinite(v):
        return None, f"{column} {text!r} is not a finite number"
    return v, None


def spread(start: datetime, end: datetime) -> list[tuple[date, float]]:
    """The UTC dates of [start, end) with the share of the span in each (a zero-length
    span: all on its start date)."""
    if end <= start:
        return [(start.date(), 1.0)]
    total = (end - start).total_seconds()
    out, d = [], start.date()
    while True:
        lo = max(start, datetime.combine(d, datetime.min.time(), tzinfo=UTC))
        hi = min(end, datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
        if hi > lo:
            out.append((d, (hi - lo).total_seconds() / total))
        d += timedelta(days=1)
        if datetime.combine(d, datetime.min.time(), tzinfo=UTC) >= end:
            return out


@dataclass
class _Group:
    cost: list = field(default_factory=list)
    net: list = field(default_factory=list)
    lines: int = 0


@dataclass
class Parsed:
    rows: list[dict]  # raw_cost_daily rows
    rejects: list[Reject]
    exports: list[dict]  # cost_exports rows
    line_items: int  # lines read


def check_line(row: dict, bp: date, as_of: datetime | None) -> tuple[dict | None, str | None]:
    """One CUR line → (its fields, None) or (None, the reason to quarantine it)."""
    period, reason = read_ts(row.get("bill_billing_period_start_date") or None, "bill_billing_period_start_date")
    if reason or period is None:
        return None, reason or "missing bill_billing_period_start_date"
    if period.date() != bp:
        return None, f"a line of billing period {period:%Y-%m} in the {partition(bp)} partition"
    start, reason = read_ts(row.get("line_item_usage_start_date") or None, "line_item_usage_start_date")
    if reason or start is None:
        return None, reason or "missing line_item_usage_start_date"
    end, reason = read_ts(row.get("line_item_usage_end_date") or None, "line_item_usage_end_date")
    if reason or end is None:
        return None, reason or "missing line_item_usage_end_date"
    if end < start:
        return None, f"usage ends {end.isoformat()} before it starts {start.isoformat()}"
    kind = (row.get("line_item_line_item_type") or "").strip()
    if not kind:
        return None, "missing line_item_line_item_type"
    if kind not in COUNTED_TYPES and kind not in EXCLUDED_TYPES:
        return None, (f"unknown line_item_line_item_type {kind!r}: add it to COUNTED_TYPES or EXCLUDED_TYPES "
                      "in kaizen.sources.aws_cur")
    service = next((str(row[c]).strip() for c in SERVICE_COLUMNS if str(row.get(c) or "").strip()), "")
    if not service:
        return None, "missing service (product_servicecode and line_item_product_code are empty)"
    cost, reason = _number(row.get("line_item_unblended_cost"), "line_item_unblended_cost")
    if reason:
        return None, reason
    net_text = row.get("line_item_net_unblended_cost")
    net = cost
    if net_text not in (None, ""):
        net, reason = _number(net_text, "line_item_net_unblended_cost")
        if reason:
            return None, reason
    currency = (row.get("line_item_currency_code") or "").strip().upper()
    if not currency:
        return None, "missing line_item_currency_code"
    if currency not in CURRENCIES:
        return None, f"currency {currency}: only INR and USD (at {ENV_INR_PER_USD}) are converted to rupees"
    future = future_reason("line_item_usage_start_date", start, as_of, "usage")
    if future:
        return None, future
    return {"start": start, "end": end, "type": kind, "service": service, "cost": cost, "net": net,
            "currency": currency}, None


def parse(deliveries: Iterable[Delivery], *, as_of: datetime | None = None,
          usd_rate: Callable[[], float | None] = inr_per_usd) -> Parsed:
    """Validate and sum the line items of ``deliveries`` per billing period × usage day
    × service × line item type × currency (see the module's docstring)."""
    rows, rejects, exports, n_lines = [], [], [], 0
    rate_usd: float | None = None
    for dv in deliveries:
        bp = dv.billing_period
        groups: dict[tuple, _Group] = {}
        read = rejected = 0
        currencies: set[str] = set()
        usage_from = usage_last = None
        for f in dv.files:
            missing = [c for c in REQUIRED if c not in f.header]
            if not any(c in f.header for c in SERVICE_COLUMNS):
                missing.append(" or ".join(SERVICE_COLUMNS))
            if missing:
                raise SourceError(f"{f.name} lacks the CUR 2.0 column(s) {', '.join(missing)}: add them to the "
                                  "export's query (Data Exports → the export → edit the columns selected)")
            for i, raw in enumerate(f.rows, start=2):  # line 1 is the header
                read += 1
                line, reason = check_line(raw, bp, as_of)
                if line is None:
                    rejected += 1
                    key = raw.get("identity_line_item_id") or f"{f.name.rsplit('/', 1)[-1]}:{i}"
                    rejects.append(Reject(SOURCE, str(key), f"{partition(bp)}: {reason}", raw, day=bp))
                    continue
                if line["currency"] == "USD" and rate_usd is None:
                    rate_usd = usd_rate()
                    if rate_usd is None:
                        raise SourceError(f"{f.name} bills in USD but {ENV_INR_PER_USD} is not set: set it to the "
                                          "rupees per US dollar to convert at (e.g. 84.0)")
                currencies.add(line["currency"])
                if line["type"] in USAGE_TYPES:
                    usage_from = min(usage_from or line["start"], line["start"])
                    usage_last = max(usage_last or line["start"], line["start"])
                for day, share in spread(line["start"], line["end"]):
                    g = groups.setdefault((day, line["service"], line["type"], line["currency"]), _Group())
                    g.cost.append(line["cost"] * share)
                    g.net.append(line["net"] * share)
                    g.lines += 1
        n_lines += read
        for (day, service, kind, currency), g in sorted(groups.items()):
            unit = 1.0 if currency == "INR" else rate_usd
            cost = math.fsum(g.cost)
            rows.append({
                "billing_period": bp, "usage_date": day, "service": service, "line_item_type": kind,
                "currency": currency, "is_counted": kind in COUNTED_TYPES, "cost": cost, "net_cost": math.fsum(g.net),
                "inr_per_unit": unit, "cost_inr": cost * unit, "line_items": g.lines,
            })
        exports.append({
            "billing_period": bp,
            "execution_id": dv.manifest.get("executionId"),
            "export_arn": dv.manifest.get("exportArn"),
            "data_files": len(dv.files),
            "line_items": read,
            "line_items_rejected": rejected,
            "currencies": ",".join(sorted(currencies)) or None,
            "inr_per_usd": rate_usd if "USD" in currencies else None,
            "usage_from": usage_from,
            "last_usage_at": usage_last,
            "billed_through": billed_through(bp, usage_last),
        })
    return Parsed(rows, rejects, exports, n_lines)


def period_end(bp: date) -> date:
    """The last day of the billing period (month) starting on ``bp``."""
    y, m = divmod(bp.month, 12)
    return date(bp.year + y, m + 1, 1) - timedelta(days=1)


def billed_through(bp: date, last_usage_at: datetime | None) -> date | None:
    """The last UTC day of billing period ``bp`` taken as complete: the day before the
    latest usage day (the day of the newest usage line's start: a monthly line that
    spans the whole period does not count as usage of its last day), or that day itself
    when it is the period's last (None: no usage)."""
    if last_usage_at is None:
        return None
    last = last_usage_at.date()
    end = period_end(bp)
    if last >= end:
        return end
    through = last - timedelta(days=1)
    return through if through >= bp else None


# ---------------------------------------------------------------- loads
def billing_periods(first: date, last: date, as_of: datetime | None = None) -> list[date]:
    """First days of the billing periods an extract of [first, last] reads: those
    overlapping [first − :data:`RESTATEMENT`, last], none after ``as_of``'s."""
    lo = (first - RESTATEMENT).replace(day=1)
    hi = last if as_of is None else min(last, as_of.astimezone(UTC).date())
    out, bp = [], lo
    while bp <= hi:
        out.append(bp)
        bp = period_end(bp) + timedelta(days=1)
    return out


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None, through: date | None = None) -> list[TableLoad]:
    """The billing periods an extract of the trading days ``first``..``last`` reads
    (:func:`billing_periods`; up to ``through`` when later), validated: what to load
    (nothing when no export is configured, or none of them has been delivered). The
    bad lines of each billing period read replace the ones quarantined before, under
    its first day."""
    transport = transport or default_transport()
    if transport is None:
        log.info("cost: %s is not set: no AWS billing export configured, nothing to extract", ENV_ROOT)
        return []
    as_of = as_of or extraction_clock()
    deliveries = []
    for bp in billing_periods(first, max(last, through or last), as_of):
        dv = transport(bp)
        if dv is None:
            log.info("cost: billing period %s not delivered (no manifest): nothing read", bp.strftime("%Y-%m"))
            continue
        deliveries.append(dv)
    if not deliveries:
        return []
    parsed = parse(deliveries, as_of=as_of)
    params = {f"bp{i}": dv.billing_period for i, dv in enumerate(deliveries)}
    where = f"billing_period in ({', '.join(':' + k for k in params)})"
    # the bad lines these billing periods had before (whatever extract quarantined them),
    # deleted before the cost rows' load quarantines them again
    prefixes = {f"q{i}": f"{partition(dv.billing_period)}:" for i, dv in enumerate(deliveries)}
    earlier = (f"delete from quarantine where source = :source "
               f"and substr(reason, 1, {len(prefixes['q0'])}) in ({', '.join(':' + k for k in prefixes)})",
               {"source": SOURCE, **prefixes})
    return [
        TableLoad("cost_exports", "cost_exports", where, params, len(parsed.exports), parsed.exports,
                  extra_sql=(earlier,)),
        TableLoad(SOURCE, "raw_cost_daily", where, params, len(parsed.rows) + len(parsed.rejects),
                  parsed.rows, parsed.rejects),
    ]


def prepare_window(start: datetime, end: datetime, transport: Transport | None = None, *,
                   as_of: datetime | None = None) -> list[TableLoad]:
    """A review's tail (:func:`kaizen.pipeline.land_tail`, loaded on the trading day whose
    window holds ``start``): the billing periods up to ``end``'s IST date read again, so a
    review due before the next daily run shows the bill as AWS has refreshed it since."""
    from kaizen import calendar as cal
    from kaizen.period import window_day

    day = window_day(start)
    return prepare_range(day, day, transport, as_of=as_of, through=cal.ist_date(end - timedelta(microseconds=1)))


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str, transport: Transport | None = None,
                  *, as_of: datetime | None = None) -> list[ExtractResult]:
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    """The billing periods trading day ``day``'s extract reads, replaced."""
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)
