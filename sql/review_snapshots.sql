-- one row per review × goals source (okrs, improvements): the last read of the source for that review, and why the last attempt failed
create table if not exists review_snapshots (
    review_key text not null,           -- the review's period key (2026-11, 2026-Q4)
    source text not null,               -- okrs (the OKRs tab) or improvements (GitHub issues labelled improvement)
    location text,                      -- the tab, file or repository read
    read_at timestamptz,                -- UTC time of the last successful read (null: never read)
    extracted integer,                  -- rows or issues read (pull requests and blank rows left out)
    loaded integer,                     -- rows loaded into raw_okrs or raw_improvements
    quarantined integer,                -- rows or issues quarantined
    failed_at timestamptz,              -- UTC time of the last failed read (null: the last read succeeded)
    failure text,                       -- why it failed, as the review shows it
    run_id text,
    primary key (review_key, source)
);
