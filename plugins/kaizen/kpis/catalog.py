"""The KPI catalog: ``catalog.yaml`` beside this module, validated into one
:class:`Kpi` per KPI, and loaded into table ``kpi_definitions``.

Light imports only (yaml, sqlalchemy): the catalog is read by every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from kaizen.errors import PermanentError
from kaizen.period import GRAINS

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"

DOMAINS = ("trading", "reliability", "delivery", "team", "cost")
UNITS = ("pct", "inr", "ms", "minutes", "hours", "days", "count", "ratio", "per_day")
BETTER = ("higher", "lower")
COMPARATORS = (">", ">=", "<", "<=")
STATUSES = ("active", "planned")
# id suffix → unit it must carry (the warehouse contract: "_pct values are percentages" …)
SUFFIX_UNITS = {
    "_pct": "pct",
    "_inr": "inr",
    "_ms": "ms",
    "_minutes": "minutes",
    "_hours": "hours",
    "_days": "days",
    "_count": "count",
}
DEFAULT_NEUTRAL_BAND_PCT = 5.0
REQUIRED = ("id", "name", "domain", "unit", "better", "formula")
KNOWN_FIELDS = set(REQUIRED) | {
    "target",
    "comparator",
    "neutral_band_pct",
    "min_sample",
    "grains",
    "conventions",
    "status",
    "version",
}


class CatalogError(PermanentError, ValueError):
    """The catalog file is invalid; the message names the KPI and the field."""


@dataclass(frozen=True)
class Kpi:
    id: str
    name: str
    domain: str
    unit: str
    better: str
    target: float | None
    comparator: str | None
    neutral_band_pct: float
    min_sample: int
    grains: tuple[str, ...]
    formula: str
    conventions: str | None
    status: str
    version: int

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class Catalog:
    version: int
    conventions: dict
    kpis: dict[str, Kpi]  # in file order

    def __getitem__(self, kpi_id: str) -> Kpi:
        return self.kpis[kpi_id]

    def active(self, grain: str | None = None) -> list[Kpi]:
        return [k for k in self.kpis.values() if k.active and (grain is None or grain in k.grains)]

    def convention(self, key: str, default=None):
        return self.conventions.get(key, default)


def _kpi(doc: dict, catalog_version: int) -> Kpi:
    kid = doc.get("id")
    where = f"KPI {kid!r}" if kid else "a KPI without id"
    missing = [f for f in REQUIRED if doc.get(f) in (None, "")]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    unknown = set(doc) - KNOWN_FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if not str(kid).replace("_", "").isalnum() or str(kid) != str(kid).lower():
        raise CatalogError(f"{where}: id must be lower_snake_case")

    def one_of(field, allowed, value):
        if value not in allowed:
            raise CatalogError(f"{where}: {field} {value!r} is not one of {', '.join(allowed)}")

    one_of("domain", DOMAINS, doc["domain"])
    one_of("unit", UNITS, doc["unit"])
    one_of("better", BETTER, doc["better"])
    for suffix, unit in SUFFIX_UNITS.items():
        if kid.endswith(suffix) and doc["unit"] != unit:
            raise CatalogError(
                f"{where}: an id ending in {suffix} must have unit {unit!r}, not {doc['unit']!r}"
            )
    target, comparator = doc.get("target"), doc.get("comparator")
    if (target is None) != (comparator is None):
        raise CatalogError(f"{where}: target and comparator must be both set or both null")
    if comparator is not None:
        one_of("comparator", COMPARATORS, comparator)
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise CatalogError(f"{where}: target must be a number, got {target!r}")
    band = doc.get("neutral_band_pct", DEFAULT_NEUTRAL_BAND_PCT)
    if isinstance(band, bool) or not isinstance(band, int | float) or band < 0:
        raise CatalogError(f"{where}: neutral_band_pct must be a number ≥ 0, got {band!r}")
    min_sample = doc.get("min_sample", 1)
    if isinstance(min_sample, bool) or not isinstance(min_sample, int) or min_sample < 0:
        raise CatalogError(f"{where}: min_sample must be an integer ≥ 0, got {min_sample!r}")
    grains = doc.get("grains", list(GRAINS))
    if not isinstance(grains, list) or not grains or any(g not in GRAINS for g in grains):
        raise CatalogError(f"{where}: grains must be a non-empty list of {', '.join(GRAINS)}, got {grains!r}")
    status = doc.get("status", "active")
    one_of("status", STATUSES, status)
    version = doc.get("version", catalog_version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CatalogError(f"{where}: version must be an integer ≥ 1, got {version!r}")
    return Kpi(
        id=kid,
        name=str(doc["name"]),
        domain=doc["domain"],
        unit=doc["unit"],
        better=doc["better"],
        target=None if target is None else float(target),
        comparator=comparator,
        neutral_band_pct=float(band),
        min_sample=min_sample,
        grains=tuple(g for g in GRAINS if g in grains),
        formula=str(doc["formula"]).strip(),
        conventions=(str(doc["conventions"]).strip() or None) if doc.get("conventions") else None,
        status=status,
        version=version,
    )


def parse_catalog(doc: dict) -> Catalog:
    """Validate a parsed catalog document (raises :class:`CatalogError`)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("kpis"), list):
        raise CatalogError("catalog: expected a mapping with a 'kpis' list")
    version = doc.get("catalog_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CatalogError(f"catalog: catalog_version must be an integer ≥ 1, got {version!r}")
    conventions = doc.get("conventions") or {}
    if not isinstance(conventions, dict):
        raise CatalogError("catalog: 'conventions' must be a mapping")
    rf = conventions.get("risk_free_rate_annual", 0.0)
    if isinstance(rf, bool) or not isinstance(rf, int | float):
        raise CatalogError(f"catalog: conventions.risk_free_rate_annual must be a number, got {rf!r}")
    kpis: dict[str, Kpi] = {}
    for item in doc["kpis"]:
        if not isinstance(item, dict):
            raise CatalogError(f"catalog: every KPI must be a mapping, got {item!r}")
        k = _kpi(item, version)
        if k.id in kpis:
            raise CatalogError(f"KPI {k.id!r}: defined twice")
        kpis[k.id] = k
    return Catalog(version=version, conventions=dict(conventions), kpis=kpis)


def read_catalog(path: Path | str | None = None) -> Catalog:
    import yaml

    p = Path(path) if path else CATALOG_FILE
    return parse_catalog(yaml.safe_load(p.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The repository's catalog (cached; the file does not change during a run)."""
    return read_catalog(CATALOG_FILE)


def definition_rows(cat: Catalog, loaded_at: datetime) -> list[dict]:
    """``kpi_definitions`` rows for every KPI (planned ones included, marked in
    ``conventions`` so the Definitions tab shows what is coming)."""
    rows = []
    for k in cat.kpis.values():
        notes = []
        if k.status == "planned":
            notes.append("[planned: not computed yet]")
        if k.conventions:
            notes.append(k.conventions)
        notes.append("grains: " + ", ".join(k.grains))
        rows.append(
            {
                "kpi_id": k.id,
                "name": k.name,
                "domain": k.domain,
                "unit": k.unit,
                "better": k.better,
                "target": k.target,
                "comparator": k.comparator,
                "neutral_band_pct": k.neutral_band_pct,
                "min_sample": k.min_sample,
                "formula": k.formula,
                "conventions": " ".join(notes),
                "version": k.version,
                "loaded_at": loaded_at,
            }
        )
    return rows


def load_definitions(engine, cat: Catalog | None = None, loaded_at: datetime | None = None) -> int:
    """Upsert every catalog KPI into ``kpi_definitions`` and delete rows of KPIs no
    longer in the catalog (one transaction). Returns the number of KPIs.

    ``loaded_at`` is only rewritten for rows whose definition changed, so reloading
    an unchanged catalog leaves the table identical."""
    import sqlalchemy as sa

    from kaizen import warehouse

    cat = cat or load_catalog()
    loaded_at = loaded_at or datetime.now(UTC)
    rows = definition_rows(cat, loaded_at)
    compare = [c for c in rows[0] if c != "loaded_at"] if rows else []
    with warehouse.writing(engine) as conn:
        existing = {
            r["kpi_id"]: r
            for r in (dict(m) for m in conn.execute(sa.text("select * from kpi_definitions")).mappings())
        }
        changed = [
            r
            for r in rows
            if r["kpi_id"] not in existing or any(_differs(r[c], existing[r["kpi_id"]][c]) for c in compare)
        ]
        warehouse.upsert(conn, "kpi_definitions", changed, key=("kpi_id",))
        gone = sorted(set(existing) - set(cat.kpis))
        if gone:
            conn.execute(
                sa.text("delete from kpi_definitions where kpi_id in :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": gone},
            )
    return len(rows)


def _differs(a, b) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) != float(b)
    return str(a) != str(b)
