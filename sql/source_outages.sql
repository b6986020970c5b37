-- one row per source and trading day whose review window the source could not deliver (unreachable, refused, or answered nothing); kept as history once the window lands
create table if not exists source_outages (
    source text not null,                   -- trading, prometheus, github, pagerduty, github_issues
    day date not null,                      -- trading day whose daily review window failed
    reason text not null,                   -- the last failed attempt's error as the task log shows it (never a secret)
    transient boolean not null,             -- true: a retry may succeed; false: fix the configuration or the source first
    attempts integer not null,              -- failed attempts
    first_failed_at timestamptz not null,   -- UTC time of the first failed attempt
    last_failed_at timestamptz not null,    -- UTC time of the last failed attempt
    run_id text,
    recovered_at timestamptz,               -- UTC time the window landed after all (null: still unavailable)
    recovered_run_id text,                  -- run that landed it (the day's re-run, or a later day's run)
    primary key (source, day)
);
