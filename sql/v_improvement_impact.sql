-- one row per closed improvement × target KPI: its before/after impact as the latest review that measured it found it
drop view if exists v_improvement_impact;
create view v_improvement_impact as
with latest as (
    select
        issue_number,
        kpi_id,
        max(computed_at) as computed_at
    from improvement_impacts
    group by issue_number, kpi_id
),

final as (
    select
        m.issue_number,
        i.title,
        i.owner,
        m.kpi_id,
        d.better,
        m.close_day,
        m.window_days,
        m.before_first,
        m.before_last,
        m.after_first,
        m.after_last,
        m.before_value,
        m.after_value,
        m.change,
        m.change_pct,
        m.verdict,
        m.note,
        m.review_key,
        m.computed_at
    from improvement_impacts as m
    inner join latest as l
        on l.issue_number = m.issue_number and l.kpi_id = m.kpi_id and l.computed_at = m.computed_at
    left join raw_improvements as i
        on i.review_key = m.review_key and i.issue_number = m.issue_number
    left join kpi_definitions as d
        on d.kpi_id = m.kpi_id
)

select * from final;
