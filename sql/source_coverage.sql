-- one row per source and continuous span of time it has landed (spans that touch are merged)
create table if not exists source_coverage (
    source text not null,               -- trades, orders, probes, latency, errors, deployments, incidents, action_items
    covered_from timestamptz not null,  -- UTC start of the span (inclusive)
    covered_to timestamptz not null,    -- UTC end of the span (exclusive)
    run_id text,
    loaded_at timestamptz not null,
    primary key (source, covered_from)
);
