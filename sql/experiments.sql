-- one row per registered A/B experiment, as the registry (Sheet tab or YAML) last read it
create table if not exists experiments (
    experiment_id text primary key,     -- the registry's id (slug)
    hypothesis text not null,           -- what the experiment expects to improve (untrusted text)
    scope text not null,                -- the strategy whose trades it covers (raw_trades.strategy)
    control_arm text not null,          -- raw_trades.ab_arm of the control group
    test_arm text not null,             -- raw_trades.ab_arm of the test group
    metrics text not null,              -- compared metrics, comma-separated: win_rate, avg_profit, max_drawdown
    primary_metric text not null,       -- the metric the decision rule turns on
    min_sample_per_arm integer not null,  -- trades each arm needs before any verdict
    planned_start date not null,        -- first IST day of the experiment
    planned_end date not null,          -- last IST day; the verdict is final the day after
    decision_rule text not null,        -- e.g. "roll out if win_rate better and max_drawdown not worse"
    owner text not null,                -- who decides; Kaizen only suggests
    alpha double precision not null,    -- significance level (CIs are 1 − alpha)
    registry_source text not null,      -- sheet or yaml
    registry_row integer not null,      -- the Sheet row or YAML position the experiment was read from
    loaded_at timestamptz not null
);
