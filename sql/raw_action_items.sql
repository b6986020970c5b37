-- one row per GitHub issue labelled postmortem-action (an action item) or postmortem (a published post-mortem), keyed by the issue number; latest known state
create table if not exists raw_action_items (
    issue_number integer primary key,
    kind text not null,                 -- action_item (label postmortem-action) or postmortem (label postmortem)
    title text not null,                -- issue title (untrusted text)
    priority text,                      -- P0..P3 from the issue's P0..P3 label; null for post-mortems
    incident_id text not null,          -- PagerDuty incident id from the body line 'Incident: <id>'
    owner text,                         -- login of the first assignee, null when unassigned
    state text not null,                -- GitHub issue state: open or closed
    state_reason text,                  -- GitHub state_reason: completed, not_planned, reopened or null
    created_at timestamptz not null,
    updated_at timestamptz not null,    -- UTC time of the issue's last update (places it in an extract's review window)
    closed_at timestamptz,              -- UTC time the issue was closed (null while open)
    due_at timestamptz,                 -- SLA due time: created + 7 d (P0), 30 d (P1), 90 d (P2); null for P3 (best effort) and post-mortems
    html_url text,                      -- link to the issue on GitHub
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_action_items_due on raw_action_items (due_at);
create index if not exists ix_raw_action_items_incident on raw_action_items (incident_id);
