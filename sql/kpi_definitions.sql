-- one row per KPI of the catalog (plugins/kaizen/kpis/catalog.yaml), reloaded every run
create table if not exists kpi_definitions (
    kpi_id text primary key,
    name text not null,
    domain text not null,               -- trading, reliability, delivery, team, cost
    unit text not null,                 -- pct, inr, ms, minutes, hours, days, count, ratio, per_day
    better text not null,               -- higher or lower
    target double precision,
    comparator text,                    -- >, >=, <, <= (null: no target)
    neutral_band_pct double precision not null,
    min_sample integer not null,
    formula text not null,
    conventions text,
    version integer not null,
    loaded_at timestamptz not null
);
