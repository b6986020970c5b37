-- one row per IST day × PagerDuty responder: minutes on call (first escalation level, and summed over levels) and incidents first assigned to the responder that day
drop view if exists v_oncall_load_day;
create view v_oncall_load_day as
with oncall as (
    select
        ist_day,
        user_id,
        max(user_name) as user_name,
        sum(case when escalation_level = 1 then minutes else 0 end) as primary_oncall_minutes,
        sum(minutes) as oncall_minutes
    from raw_oncall_spans
    group by ist_day, user_id
),

first_assigned as (
    select
        incident_id,
        user_id,
        max(user_name) as user_name,
        min(ist_day) as ist_day
    from raw_incident_assignments
    group by incident_id, user_id
),

assigned as (
    select
        ist_day,
        user_id,
        max(user_name) as user_name,
        count(*) as incidents_assigned
    from first_assigned
    group by ist_day, user_id
),

responder_days as (
    select ist_day, user_id from oncall
    union
    select ist_day, user_id from assigned
),

final as (
    select
        k.ist_day,
        k.user_id,
        coalesce(o.user_name, a.user_name) as user_name,
        coalesce(o.primary_oncall_minutes, 0) as primary_oncall_minutes,
        coalesce(o.oncall_minutes, 0) as oncall_minutes,
        coalesce(a.incidents_assigned, 0) as incidents_assigned
    from responder_days as k
    left join oncall as o on o.ist_day = k.ist_day and o.user_id = k.user_id
    left join assigned as a on a.ist_day = k.ist_day and a.user_id = k.user_id
)

select * from final;
