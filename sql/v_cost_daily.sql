-- one row per UTC usage day × service: infrastructure cost in rupees (Tax excluded), as the cost KPIs count it
drop view if exists v_cost_daily;
create view v_cost_daily as
with counted as (
    select
        usage_date,
        service,
        cost_inr,
        case when line_item_type in ('Credit', 'Refund') then cost_inr else 0 end as credits_inr,
        line_items
    from raw_cost_daily
    where is_counted
),

final as (
    select
        usage_date,
        service,
        sum(cost_inr) as cost_inr,
        sum(credits_inr) as credits_inr,
        sum(line_items) as line_items
    from counted
    group by usage_date, service
)

select * from final;
