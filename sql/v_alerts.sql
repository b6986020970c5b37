-- one row per PagerDuty alert: its rule, its incident's priority, acknowledgement and resolution, and whether it opened the incident (the alert-tuning deep dive's input)
drop view if exists v_alerts;
create view v_alerts as
with alerts as (
    select
        alert_id,
        incident_id,
        created_at,
        service,
        coalesce(alert_rule, summary) as alert_rule,
        severity,
        priority
    from raw_alerts
),

openers as (
    select
        incident_id,
        min(created_at) as opened_at
    from alerts
    group by incident_id
),

final as (
    select
        a.alert_id,
        a.incident_id,
        a.created_at,
        a.service,
        a.alert_rule,
        a.severity,
        a.priority,
        i.incident_number,
        i.status as incident_status,
        i.acknowledged_at,
        i.resolved_at,
        (
            select l.agent_type
            from raw_incident_log_entries as l
            where l.incident_id = a.incident_id and l.type = 'resolve_log_entry'
            order by l.created_at desc, l.log_entry_id desc
            limit 1
        ) as resolved_by,
        a.alert_id = (
            select min(x.alert_id)
            from alerts as x
            where x.incident_id = a.incident_id and x.created_at = o.opened_at
        ) as is_opening_alert
    from alerts as a
    left join openers as o on o.incident_id = a.incident_id
    left join raw_incidents as i on i.incident_id = a.incident_id
)

select * from final;
