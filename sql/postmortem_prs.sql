-- one row per repository × incident: the pull request that carries the incident's post-mortem draft (kaizen.delivery.github_prs)
create table if not exists postmortem_prs (
    repo text not null,                 -- owner/name the pull request lives in (KAIZEN_POSTMORTEM_REPO)
    incident_id text not null,          -- PagerDuty incident id of the draft
    pr_number integer not null,         -- the pull request's number in the repository
    pr_url text not null,               -- the pull request's web page (html_url)
    pr_state text not null,             -- open, closed or merged, as last seen; Kaizen never writes to a closed or merged one
    branch text not null,               -- head branch, kaizen/postmortem-<incident id>
    base_branch text not null,          -- branch the pull request merges into
    path text not null,                 -- the draft's path in the repository, post-mortems/YYYYMMDD_incident_name.md
    file_sha text,                      -- git blob sha of the file Kaizen last wrote on the branch (the proof a later file is still Kaizen's)
    content_sha256 text,                -- sha256 of the bytes Kaizen last wrote
    status text not null,               -- last run: opened, updated, unchanged, skipped (edited by a person), closed, merged
    reason text,                        -- why the last run wrote nothing, in words (null when it wrote or had nothing to change)
    title text not null,                -- the pull request's title as Kaizen opened it
    due_at timestamptz not null,        -- the post-mortem's due time: resolution + 48 h
    opened_at timestamptz not null,     -- UTC time Kaizen opened (or first found) the pull request
    updated_at timestamptz not null,    -- UTC time of the last run that looked at it
    run_id text,
    primary key (repo, incident_id)
);
