"""The demo world's AWS bill: a CUR 2.0 export (AWS Data Exports, CSV gzip, daily time
granularity, "overwrite" delivery) under ``<demo dir>/aws_cur/kaizen-cur/``, laid out
as Data Exports writes it to S3 and read by :mod:`kaizen.sources.aws_cur` through a
``file://`` ObjectStoragePath::

    aws_cur/kaizen-cur/metadata/BILLING_PERIOD=2026-11/kaizen-cur-Manifest.json
    aws_cur/kaizen-cur/data/BILLING_PERIOD=2026-11/kaizen-cur-00001.csv.gz   (≤ 250 lines a file)

One AWS account in ap-south-1 (Mumbai), billed in USD: the trading stack's EC2
instances, EBS volumes and NAT gateway, a Multi-AZ RDS database, data transfer out
(more on trading days), CloudWatch, S3, a load balancer, and a Route 53 hosted zone
whose monthly charge spans its billing period (spread over the days). A $40
promotional credit lands mid-history; a Tax (IGST 18 %) line per service and billing
period is in the file but is not infrastructure cost. The order router is rightsized
(c6i.2xlarge → c6i.xlarge) on the first day of the last billing period, so the latest
month costs less per day than the one before. The last day is billed only up to the
demo's "now" (16:00 IST), as a live export mid-day would be.

Two deliberately bad lines, on the last day, are listed in ``manifest["aws_cur"]
["bad_records"]`` with their quarantine reason. Draws come from their own random stream
(a spawn key of their own), so every other demo file is unchanged by this one.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from kaizen import calendar as cal
from kaizen.demo.scenario import Period

EXPORT = "kaizen-cur"
BUCKET_URI = f"s3://kaizen-billing-exports/cur/{EXPORT}"
ACCOUNT = "418273645501"
EXPORT_ARN = f"arn:aws:bcm-data-exports:us-east-1:{ACCOUNT}:export/{EXPORT}-6f1c2a9e-3b7d-4e15-a8c0-52d9e7b4f310"
LINES_PER_FILE = 250
SPAWN_KEY = (0xC057,)  # the cost stream: independent of the other demo streams
TAX_RATE = 0.18  # IGST on AWS services in India

COLUMNS = (
    ("identity_line_item_id", "string"), ("identity_time_interval", "string"), ("bill_bill_type", "string"),
    ("bill_billing_entity", "string"), ("bill_billing_period_end_date", "timestamp"),
    ("bill_billing_period_start_date", "timestamp"), ("bill_invoicing_entity", "string"),
    ("bill_payer_account_id", "string"), ("line_item_currency_code", "string"),
    ("line_item_line_item_description", "string"), ("line_item_line_item_type", "string"),
    ("line_item_net_unblended_cost", "double"), ("line_item_operation", "string"),
    ("line_item_product_code", "string"), ("line_item_resource_id", "string"),
    ("line_item_unblended_cost", "double"), ("line_item_unblended_rate", "string"),
    ("line_item_usage_account_id", "string"), ("line_item_usage_amount", "double"),
    ("line_item_usage_end_date", "timestamp"), ("line_item_usage_start_date", "timestamp"),
    ("line_item_usage_type", "string"), ("pricing_public_on_demand_cost", "double"),
    ("product_region_code", "string"), ("product_servicecode", "string"), ("resource_tags", "map<string,string>"),
)
HEADER = [c for c, _ in COLUMNS]

# (service, usage type, operation, resource id, tag, rate USD per hour, description)
INSTANCES = (
    ("APS3-BoxUsage:c6i.xlarge", "i-0a41c9e2d7b3f5a10", "trading-api", 0.204),
    ("APS3-BoxUsage:c6i.xlarge", "i-0b7e1d4c92a6f3e21", "trading-api", 0.204),
    ("APS3-BoxUsage:c6i.2xlarge", "i-0c93f0a1b5d2e7c42", "order-router", 0.408),
    ("APS3-BoxUsage:m6i.xlarge", "i-0d2a6b8e4f1c9d053", "market-data", 0.192),
)
RIGHTSIZED = ("i-0c93f0a1b5d2e7c42", "APS3-BoxUsage:c6i.xlarge", 0.204)


def stream(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=SPAWN_KEY))


def ts(t: datetime) -> str:
    """CUR 2.0 CSV timestamps: ISO-8601 UTC with milliseconds and Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time(), tzinfo=UTC)


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    y, m = divmod(d.month, 12)
    return date(d.year + y, m + 1, 1)


def _id(rng: np.random.Generator) -> str:
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz234567"))
    return "".join(alphabet[rng.integers(0, len(alphabet), 52)])


def _amount(x: float) -> str:
    return f"{x:.10f}".rstrip("0").rstrip(".") if x else "0.0"


class _Bill:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.lines: dict[date, list[dict]] = {}

    def add(self, bp: date, start: datetime, end: datetime, kind: str, service: str, usage_type: str,
            operation: str, resource: str, amount: float, rate: float, description: str, tag: str | None = None,
            product: str | None = None) -> dict:
        cost = round(amount * rate, 10)
        row = {
            "identity_line_item_id": _id(self.rng),
            "identity_time_interval": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}",
            "bill_bill_type": "Anniversary",
            "bill_billing_entity": "AWS",
            "bill_billing_period_end_date": ts(midnight(next_month(bp))),
            "bill_billing_period_start_date": ts(midnight(bp)),
            "bill_invoicing_entity": "Amazon Web Services, Inc.",
            "bill_payer_account_id": ACCOUNT,
            "line_item_currency_code": "USD",
            "line_item_line_item_description": description,
            "line_item_line_item_type": kind,
            "line_item_net_unblended_cost": "",  # no negotiated discount on this account
            "line_item_operation": operation,
            "line_item_product_code": product or service,
            "line_item_resource_id": resource,
            "line_item_unblended_cost": _amount(cost),
            "line_item_unblended_rate": _amount(rate),
            "line_item_usage_account_id": ACCOUNT,
            "line_item_usage_amount": _amount(amount),
            "line_item_usage_end_date": ts(end),
            "line_item_usage_start_date": ts(start),
            "line_item_usage_type": usage_type,
            "pricing_public_on_demand_cost": _amount(cost) if kind == "Usage" else "0.0",
            "product_region_code": "ap-south-1" if kind in ("Usage", "Credit") and service != "AmazonRoute53" else "",
            "product_servicecode": service,
            "resource_tags": json.dumps({"user_service": tag}) if tag else "{}",
        }
        self.lines.setdefault(bp, []).append(row)
        return row


def plan(period: Period, seed: int, now: datetime) -> tuple[_Bill, list[dict]]:
    """Every line of every billing period from the demo's first day to its last, billed
    up to ``now``; and the bad lines."""
    rng = stream(seed)
    bill = _Bill(rng)
    first, last = period.start, period.end
    rightsize_from = month_start(last)  # the order router is rightsized then
    credit_day = first + (last - first) // 2
    d = first
    usage_by_service: dict[tuple[date, str], float] = {}
    while d <= last:
        bp = month_start(d)
        start, end = midnight(d), midnight(d + timedelta(days=1))
        hours = 24.0 if end <= now else max(0.0, (now - start).total_seconds() / 3600.0)
        busy = cal.is_trading_day(d)
        lines = []
        for usage_type, resource, tag, rate in INSTANCES:
            if d >= rightsize_from and resource == RIGHTSIZED[0]:
                usage_type, rate = RIGHTSIZED[1], RIGHTSIZED[2]
            size = usage_type.split(":")[1]
            lines.append(bill.add(bp, start, end, "Usage", "AmazonEC2", usage_type, "RunInstances", resource, hours,
                                  rate, f"${rate} per On Demand Linux {size} Instance Hour", tag))
        gb_months = 400.0 * hours / 24.0 / 30.0
        lines.append(bill.add(bp, start, end, "Usage", "AmazonEC2", "APS3-EBS:VolumeUsage.gp3", "CreateVolume-Gp3",
                              "vol-0e5b7c3a9d1f24e68", gb_months, 0.0912, "$0.0912 per GB-month of General Purpose "
                              "(gp3) provisioned storage - Asia Pacific (Mumbai)", "trading-api"))
        lines.append(bill.add(bp, start, end, "Usage", "AmazonEC2", "APS3-NatGateway-Hours", "NatGateway",
                              "nat-04f2b8e6c1a9d3e57", hours, 0.056, "$0.056 per NAT Gateway Hour"))
        nat_gb = (float(rng.uniform(20, 40)) if busy else float(rng.uniform(3, 6))) * hours / 24.0
        lines.append(bill.add(bp, start, end, "Usage", "AmazonEC2", "APS3-NatGateway-Bytes", "NatGateway",
                              "nat-04f2b8e6c1a9d3e57", nat_gb, 0.056, "$0.056 per GB Data Processed by NAT Gateways"))
        lines.append(bill.add(bp, start, end, "Usage", "AmazonRDS", "APS3-Multi-AZUsage:db.r6g.large",
                              "CreateDBInstance:0014", "arn:aws:rds:ap-south-1:418273645501:db:trading-db", hours,
                              0.52, "$0.52 per RDS db.r6g.large Multi-AZ instance hour (or partial hour) running "
                              "PostgreSQL", "trading-db"))
        lines.append(bill.add(bp, start, end, "Usage", "AmazonRDS", "APS3-RDS:Multi-AZ-GP3-Storage",
                              "CreateDBInstance:0014", "arn:aws:rds:ap-south-1:418273645501:db:trading-db",
                              200.0 * hours / 24.0 / 30.0, 0.252, "$0.252 per GB-month of Multi-AZ gp3 storage",
                              "trading-db"))
        out_gb = (float(rng.uniform(15, 30)) if busy else float(rng.uniform(2, 4))) * hours / 24.0
        lines.append(bill.add(bp, start, end, "Usage", "AWSDataTransfer", "APS3-DataTransfer-Out-Bytes",
                              "RunInstances", "", out_gb, 0.1093, "$0.1093 per GB - first 10 TB / month data "
                              "transfer out beyond the global free tier", product="AmazonEC2"))
        lines.append(bill.add(bp, start, end, "Usage", "AmazonCloudWatch", "APS3-CW:MetricMonitorUsage",
                              "MetricStorage", "", 120.0 * hours / 24.0 / 30.0, 0.30, "$0.30 per metric-month "
                              "for the first 10,000 metrics"))
        logs_gb = (float(rng.uniform(1.2, 2.4)) if busy else float(rng.uniform(0.3, 0.6))) * hours / 24.0
        lines.append(bill.add(bp, start, end, "Usage", "AmazonCloudWatch", "APS3-DataProcessing-Bytes",
                              "PutLogEvents", "", logs_gb, 0.57, "$0.57 per GB custom log data ingested"))
        lines.append(bill.add(bp, start, end, "Usage", "AmazonS3", "APS3-TimedStorage-ByteHrs", "StandardStorage",
                              "kaizen-desk-archive", 550.0 * hours / 24.0 / 30.0, 0.025,
                              "$0.025 per GB - first 50 TB / month of storage used", "archive"))
        lines.append(bill.add(bp, start, end, "Usage", "AWSELB", "APS3-LoadBalancerUsage", "LoadBalancing:Application",
                              "arn:aws:elasticloadbalancing:ap-south-1:418273645501:loadbalancer/app/trading-api/"
                              "4c1f9e8a2b7d6053", hours, 0.0239, "$0.0239 per Application LoadBalancer-hour (or "
                              "partial hour)", "trading-api"))
        for row in lines:
            key = (bp, row["product_servicecode"])
            usage_by_service[key] = usage_by_service.get(key, 0.0) + float(row["line_item_unblended_cost"])
        if d == credit_day:
            bill.add(bp, start, end, "Credit", "AmazonEC2", "APS3-BoxUsage:c6i.xlarge", "RunInstances", "", 1.0,
                     -40.0, "AWS Activate promotional credit")
        if d == bp or d == first:  # the hosted zone's monthly charge covers its whole billing period
            bill.add(bp, midnight(bp), midnight(next_month(bp)), "Usage", "AmazonRoute53", "HostedZone",
                     "", "arn:aws:route53:::hostedzone/Z04827153C7QKZ5T2HJNA", 1.0, 0.50,
                     "$0.50 per Hosted Zone for the first 25 Hosted Zones")
        d += timedelta(days=1)
    for (bp, service), usage in sorted(usage_by_service.items()):
        through = min(midnight(next_month(bp)), midnight(last + timedelta(days=1)))
        bill.add(bp, midnight(bp), through, "Tax", service, "", "", "", 1.0, round(usage * TAX_RATE, 6),
                 "Tax for product code " + service + " (IGST)")
    # two bad lines on the last day, as a broken re-export might carry them
    bp = month_start(last)
    s, e = midnight(last), midnight(last + timedelta(days=1))
    bad_order = bill.add(bp, s, e, "Usage", "AmazonEC2", "APS3-BoxUsage:c6i.xlarge", "RunInstances",
                         "i-0f00dd1e5a7b3c911", 2.0, 0.204, "$0.204 per On Demand Linux c6i.xlarge Instance Hour")
    bad_order["line_item_usage_end_date"] = ts(s - timedelta(hours=2))
    bad_cost = bill.add(bp, s, e, "Usage", "AmazonS3", "APS3-Requests-Tier1", "PutObject", "kaizen-desk-archive",
                        1000.0, 0.000005, "$0.005 per 1,000 PUT requests")
    bad_cost["line_item_unblended_cost"] = "N/A"
    bad = [  # quarantined under their billing period's first day (kaizen.sources.aws_cur)
        {"source": "cost_lines", "key": bad_order["identity_line_item_id"], "day": bp.isoformat(),
         "reason": "usage ends before it starts"},
        {"source": "cost_lines", "key": bad_cost["identity_line_item_id"], "day": bp.isoformat(),
         "reason": "line_item_unblended_cost is not a number"},
    ]
    return bill, bad


def _csv_gz(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return gzip.compress(buf.getvalue().encode("utf-8"), mtime=0)


def write(period: Period, seed: int, out_dir: Path) -> dict:
    """Write the export; returns the manifest's ``aws_cur`` part."""
    now = datetime.fromtimestamp(period.cov_end, UTC)  # the demo's "now": the last day's 16:00 IST
    bill, bad = plan(period, seed, now)
    root = Path(out_dir) / "aws_cur" / EXPORT
    periods = []
    for bp, rows in sorted(bill.lines.items()):
        part = f"BILLING_PERIOD={bp:%Y-%m}"
        chunks = [rows[i:i + LINES_PER_FILE] for i in range(0, len(rows), LINES_PER_FILE)]
        files = []
        for n, chunk in enumerate(chunks, start=1):
            name = f"{EXPORT}-{n:05d}.csv.gz"
            path = root / "data" / part / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_csv_gz(chunk))
            files.append(f"{BUCKET_URI}/data/{part}/{name}")
        manifest = {
            "executionId": f"{bp:%Y%m}" + _id(bill.rng)[:24],
            "exportArn": EXPORT_ARN,
            "columns": [{"name": c, "type": t} for c, t in COLUMNS],
            "dataFiles": files,
        }
        mpath = root / "metadata" / part / f"{EXPORT}-Manifest.json"
        mpath.parent.mkdir(parents=True, exist_ok=True)
        mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        periods.append({"billing_period": bp.isoformat(), "line_items": len(rows), "data_files": len(files)})
    return {"export": EXPORT, "root": f"aws_cur/{EXPORT}", "currency": "USD", "billing_periods": periods,
            "bad_records": bad}
