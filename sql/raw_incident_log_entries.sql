-- one row per PagerDuty log entry of an extracted incident, keyed by the log entry id
create table if not exists raw_incident_log_entries (
    log_entry_id text primary key,
    incident_id text not null,
    type text not null,                 -- PagerDuty log entry type: trigger_log_entry, acknowledge_log_entry, annotate_log_entry, resolve_log_entry, ...
    created_at timestamptz not null,
    summary text,                       -- the entry's summary; for notes also the note text (untrusted text)
    agent_type text,                    -- who made the entry: agent.type (user_reference: a person; service_reference, *_integration_reference: PagerDuty or a monitoring tool)
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_incident_log_entries_incident on raw_incident_log_entries (incident_id, created_at);
