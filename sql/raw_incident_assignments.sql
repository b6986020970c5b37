-- one row per user an incident was assigned to by a PagerDuty log entry (assign_log_entry or escalate_log_entry), keyed by log entry and user
create table if not exists raw_incident_assignments (
    assignment_key text primary key,    -- log_entry_id|user_id
    log_entry_id text not null,
    incident_id text not null,
    user_id text not null,              -- PagerDuty user id of the assignee
    user_name text not null,            -- the user's name as PagerDuty summarises it (untrusted text)
    type text not null,                 -- assign_log_entry (assigned on trigger or reassigned) or escalate_log_entry (escalated to the next level)
    assigned_at timestamptz not null,   -- UTC time of the log entry
    ist_day date not null,              -- IST date of assigned_at
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_incident_assignments_at on raw_incident_assignments (assigned_at);
create index if not exists ix_raw_incident_assignments_incident on raw_incident_assignments (incident_id);
