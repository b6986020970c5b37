-- one row per improvement issue of the latest backlog read: open ones ranked by votes (ties: priority high → none, then the older issue); the top 3 are next month's focus
drop view if exists v_improvement_backlog;
create view v_improvement_backlog as
with latest as (
    select review_key
    from review_snapshots
    where source = 'improvements'
        and read_at = (select max(x.read_at) from review_snapshots as x where x.source = 'improvements')
),

ranked as (
    select
        i.issue_number,
        i.title,
        i.priority,
        i.owner,
        i.state,
        i.state_reason,
        i.votes,
        i.created_at,
        i.closed_at,
        i.target_kpis,
        i.html_url,
        i.review_key,
        i.read_at,
        row_number() over (
            partition by i.state
            order by
                i.votes desc,
                case i.priority when 'high' then 0 when 'medium' then 1 when 'low' then 2 else 3 end,
                i.issue_number
        ) as rank_in_state
    from raw_improvements as i
    inner join latest as l
        on l.review_key = i.review_key
),

final as (
    select
        issue_number,
        title,
        priority,
        owner,
        state,
        state_reason,
        votes,
        case when state = 'open' then rank_in_state end as vote_rank,
        case when state = 'open' and rank_in_state <= 3 then 1 else 0 end as is_focus,
        created_at,
        closed_at,
        target_kpis,
        html_url,
        review_key,
        read_at
    from ranked
)

select * from final;
