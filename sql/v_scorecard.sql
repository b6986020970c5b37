-- one row per KPI × grain: the latest period of each grain beside its target, status
-- and trend (the shape of the source document's KPI tables: Metric, Target, Current, Trend)
drop view if exists v_scorecard;
create view v_scorecard as
with latest as (
    select
        grain,
        max(period_start) as period_start
    from kpi_values
    group by grain
),

final as (
    select
        v.grain,
        v.period_start,
        v.period_end,
        d.domain,
        v.kpi_id,
        d.name as metric,
        d.unit,
        d.comparator,
        v.target,
        v.value as current_value,
        v.status,
        v.trend,
        v.sample_size,
        v.is_complete
    from kpi_values as v
    inner join latest as l
        on l.grain = v.grain and l.period_start = v.period_start
    inner join kpi_definitions as d
        on d.kpi_id = v.kpi_id
)

select * from final;
