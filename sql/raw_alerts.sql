-- one row per PagerDuty alert, keyed by the alert id
create table if not exists raw_alerts (
    alert_id text primary key,
    incident_id text,
    priority text,                      -- P0..P3 (from the incident's priority), null if unset
    severity text,                      -- critical, error, warning, info
    service text,
    summary text,
    alert_rule text,                    -- the alert rule: body.details.alertname, else body.cef_details.event_class, else the summary without its [FIRING:n] prefix
    created_at timestamptz not null,
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_alerts_created on raw_alerts (created_at);
