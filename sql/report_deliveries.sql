-- one row per report × period × sink × target: the delivery ledger
create table if not exists report_deliveries (
    report text not null,               -- daily_review, weekly_review, ...
    period_key text not null,           -- e.g. 2026-11-27, 2026-W48, 2026-11, 2026-Q4
    sink text not null,                 -- slack, sheets, outbox
    target text not null,               -- Slack channel id, spreadsheet id or outbox folder
    content_hash text not null,
    channel_id text,
    message_ts text,
    sheet_range text,
    version integer not null,
    status text not null,               -- delivered, failed
    error text,
    first_delivered_at timestamptz,
    updated_at timestamptz not null,
    thread_state text,                  -- review reports: JSON of the Slack thread (reply ts and hashes, uploaded charts)
    summary text,                       -- review reports: one-line summary of the delivered content (the next revision note compares with it)
    primary key (report, period_key, sink, target)
);
