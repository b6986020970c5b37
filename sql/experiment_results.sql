-- one row per experiment × day read out × arm (control, test, difference) × metric: the A/B readout as of that day
create table if not exists experiment_results (
    experiment_id text not null,        -- experiments.experiment_id
    as_of date not null,                -- last IST day of trades counted (the planned end once it has ended)
    arm text not null,                  -- control, test, or difference (test − control)
    metric text not null,               -- win_rate (%), avg_profit (₹ per trade), max_drawdown (% below peak)
    value double precision,             -- the arm's value, or the difference; null: too few trades
    n integer not null,                 -- trades of the arm (difference: of both arms)
    ci_low double precision,            -- difference: lower bound of its (1 − alpha) confidence interval
    ci_high double precision,           -- difference: upper bound
    p_value double precision,           -- difference: two-sided p-value (null for the drawdown's bootstrap)
    verdict text,                       -- difference: significant improvement, significant deterioration, no significant difference, insufficient sample
    method text,                        -- difference: the test used, in words
    improvement double precision,       -- difference: the source document's Improvement column (points, or % for avg_profit; better is positive)
    status text not null,               -- running (interim figures) or ended (final)
    final boolean not null,             -- true once the experiment has ended: the verdict is final
    computed_at timestamptz not null,
    run_id text,
    primary key (experiment_id, as_of, arm, metric)
);
