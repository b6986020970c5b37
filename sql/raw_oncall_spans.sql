-- one row per PagerDuty on-call (user × escalation policy × level × schedule) cut at IST midnights and at the daily review windows' edges, keyed by who, where and its start
create table if not exists raw_oncall_spans (
    span_key text primary key,          -- escalation_policy_id|escalation_level|schedule_id (or -)|user_id|start_at as ISO UTC text
    user_id text not null,              -- PagerDuty user id of the responder on call
    user_name text not null,            -- the user's name as PagerDuty summarises it (untrusted text)
    escalation_policy_id text not null, -- PagerDuty escalation policy id
    escalation_policy text,             -- the policy's name (untrusted text)
    escalation_level integer not null,  -- escalation rule level: 1 is the first responder paged
    schedule_id text,                   -- PagerDuty schedule id; null for a permanent on-call (a user named in the rule)
    schedule text,                      -- the schedule's name (untrusted text)
    start_at timestamptz not null,      -- UTC start of this piece of the on-call
    end_at timestamptz not null,        -- UTC end of this piece (exclusive)
    ist_day date not null,              -- IST date the piece lies in
    minutes double precision not null,  -- end_at − start_at in minutes
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_oncall_spans_start on raw_oncall_spans (start_at);
