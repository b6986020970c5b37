-- one row per big landing series and IST calendar month: the month's rows reduced to the arrays the KPI measures read (numpy .npz), a cache the warehouse's own triggers (triggers.<dialect>.sql) drop whenever a row of that month is written, so a quarter-to-date rollup reads its past months from here, not their rows
create table if not exists series_months (
    kind text not null,                 -- series: trades, orders, probes, latency or errors (kaizen.kpis.series)
    month date not null,                -- first day of the IST calendar month
    rows integer not null,              -- entries in the reduced series
    series bytea not null,              -- the reduced arrays, numpy .npz without pickles
    primary key (kind, month)
);
