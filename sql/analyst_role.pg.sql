-- a read-only role for analysts on the PostgreSQL warehouse (run once by an admin:
-- psql "$WAREHOUSE_URL" -f sql/analyst_role.pg.sql); idempotent
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'kaizen_analyst') then
        create role kaizen_analyst nologin;
    end if;
    execute format('grant connect on database %I to kaizen_analyst', current_database());
end
$$;
grant usage on schema public to kaizen_analyst;
grant select on all tables in schema public to kaizen_analyst;
alter default privileges in schema public grant select on tables to kaizen_analyst;
revoke create on schema public from kaizen_analyst;
