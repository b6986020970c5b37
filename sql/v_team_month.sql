-- one row per month (IST) with team data: the satisfaction survey's responses and mean score, and the Team tab's figures (raw: the KPIs in kpi_values also apply min_sample)
drop view if exists v_team_month;
create view v_team_month as
with responses as (
    select
        survey_month as month,
        count(*) as responses,
        sum(score) as score_sum
    from raw_satisfaction_responses
    group by survey_month
),

months as (
    select month from responses
    union
    select month from raw_team_months
),

final as (
    select
        m.month,
        coalesce(r.responses, 0) as survey_responses,
        cast(r.score_sum as double precision) / r.responses as satisfaction_mean_score,
        t.team_size,
        cast(100 * coalesce(r.responses, 0) as double precision) / t.team_size as survey_response_rate_pct,
        t.documentation_coverage_pct,
        t.tech_talks,
        t.innovation_day_participants,
        cast(100 * t.innovation_day_participants as double precision) / t.team_size
            as innovation_days_participation_pct
    from months as m
    left join responses as r on r.month = m.month
    left join raw_team_months as t on t.month = m.month
)

select * from final;
