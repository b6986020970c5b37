-- one row per PagerDuty incident, keyed by the incident id
create table if not exists raw_incidents (
    incident_id text primary key,
    incident_number integer not null,
    title text not null,
    service text not null,
    priority text,                      -- P0..P3, null when PagerDuty has none set
    urgency text,
    status text not null,               -- triggered, acknowledged, resolved (as extracted)
    triggered_at timestamptz not null,
    acknowledged_at timestamptz,
    resolved_at timestamptz,
    impact_start_at timestamptz,        -- when customer impact began (custom field)
    caused_by_deployment_id text,       -- GitHub deployment id (custom field), if any
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_incidents_triggered on raw_incidents (triggered_at);
