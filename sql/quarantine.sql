-- one row per source record that failed validation, per extract of a trading day
create table if not exists quarantine (
    source text not null,               -- trades, orders, probes, latency, errors, deployments, incidents, alerts, log_entries, action_items
    extract_day date not null,          -- the trading day whose extract met the record
    record_key text not null,           -- the record's natural key as far as it could be read
    reason text not null,
    payload text not null,              -- the raw record as received (JSON)
    run_id text,
    quarantined_at timestamptz not null
);
create index if not exists ix_quarantine_day on quarantine (source, extract_day);
