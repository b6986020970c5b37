-- one row per review × GitHub issue labelled improvement as the review read it (its snapshot; malformed issues are in quarantine, source improvements)
create table if not exists raw_improvements (
    review_key text not null,           -- the review whose snapshot this is: its period key (2026-11, 2026-Q4)
    issue_number integer not null,      -- GitHub issue number (the repository's issue #)
    title text not null,                -- issue title (untrusted text)
    priority text,                      -- high, medium or low from a 'priority: …' label; null when unprioritised
    owner text,                         -- login of the first assignee, null when unassigned
    state text not null,                -- GitHub issue state: open or closed
    state_reason text,                  -- GitHub state_reason: completed, not_planned, reopened or null
    votes integer not null,             -- 👍 reactions on the issue (reactions['+1'])
    created_at timestamptz not null,
    updated_at timestamptz,             -- UTC time of the issue's last update
    closed_at timestamptz,              -- UTC time the issue was closed (null while open)
    target_kpis text,                   -- KPI ids of the body line 'Target KPIs: …', comma-separated; null when none
    html_url text,                      -- link to the issue on GitHub
    read_at timestamptz not null,       -- UTC time the issues were listed
    run_id text,
    loaded_at timestamptz not null,
    primary key (review_key, issue_number)
);
