-- one row per Google Forms response of the team satisfaction survey (a row of the form's response tab), keyed by its timestamp and its rank among responses with that timestamp
create table if not exists raw_satisfaction_responses (
    response_key text primary key,      -- submitted_at as ISO UTC text and '#n', n the response's rank among responses with that timestamp (sheet order)
    submitted_at timestamptz not null,  -- the Forms Timestamp, read in the form's time zone and stored in UTC
    survey_month text not null,         -- IST month of submitted_at, YYYY-MM (the month whose KPIs count the response)
    score integer not null,             -- the answer to the 1–10 satisfaction question
    sheet_row integer not null,         -- row of the response tab when read (1 is the header); shifts if rows are deleted
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_satisfaction_responses_submitted on raw_satisfaction_responses (submitted_at);
