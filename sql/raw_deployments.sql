-- one row per production deployment (GitHub Deployments API), keyed by deployment id
create table if not exists raw_deployments (
    deployment_id text primary key,
    environment text not null,
    sha text not null,
    ref text,
    created_at timestamptz not null,
    finished_at timestamptz,            -- time of the final status (success/failure/error)
    status text not null,               -- last status state: success, failure, error, in_progress, ...
    is_rollback boolean not null,       -- this deployment rolled back to an earlier sha
    rolled_back boolean not null,       -- a later deployment rolled this one back
    first_commit_at timestamptz,        -- earliest commit carried by the deployment
    commit_count integer not null,
    pull_requests text,                 -- comma-separated PR numbers carried
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_deployments_created on raw_deployments (created_at);
