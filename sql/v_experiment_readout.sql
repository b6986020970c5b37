-- one row per experiment × metric: its latest readout, control and test side by side
drop view if exists v_experiment_readout;
create view v_experiment_readout as
select
    e.experiment_id,
    e.scope,
    e.owner,
    e.planned_start,
    e.planned_end,
    r.as_of,
    r.status,
    r.final,
    r.metric,
    r.metric = e.primary_metric as is_primary,
    c.value as control_value,
    c.n as control_trades,
    t.value as test_value,
    t.n as test_trades,
    r.value as difference,
    r.ci_low,
    r.ci_high,
    r.p_value,
    r.improvement,
    r.verdict,
    r.method
from experiments e
join experiment_results r on r.experiment_id = e.experiment_id and r.arm = 'difference'
join experiment_results c on c.experiment_id = r.experiment_id and c.as_of = r.as_of and c.metric = r.metric
    and c.arm = 'control'
join experiment_results t on t.experiment_id = r.experiment_id and t.as_of = r.as_of and t.metric = r.metric
    and t.arm = 'test'
where r.as_of = (select max(x.as_of) from experiment_results x where x.experiment_id = e.experiment_id);
