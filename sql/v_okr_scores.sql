-- one row per key result of each quarter, as the latest review that scored the quarter scored it, with its objective's score (the mean of its scored key results)
drop view if exists v_okr_scores;
create view v_okr_scores as
with reviews as (
    select
        quarter,
        review_key,
        max(computed_at) as computed_at
    from okr_scores
    group by quarter, review_key
),

latest as (
    select
        r.quarter,
        r.review_key
    from reviews as r
    where r.computed_at = (select max(x.computed_at) from reviews as x where x.quarter = r.quarter)
),

final as (
    select
        s.quarter,
        s.objective,
        s.key_result,
        s.owner,
        s.kind,
        s.kpi_id,
        s.better,
        s.baseline,
        s.target,
        s.value,
        s.value_status,
        s.score,
        case
            when s.score is null then 'not scored'
            when s.score >= 0.7 then 'on track'
            when s.score >= 0.4 then 'behind'
            else 'off track'
        end as grade,
        avg(s.score) over (partition by s.review_key, s.quarter, s.objective) as objective_score,
        s.review_key,
        s.computed_at
    from okr_scores as s
    inner join latest as l
        on l.quarter = s.quarter and l.review_key = s.review_key
)

select * from final;
