-- the version of the DDL this warehouse holds (one row): runs apply DDL only when it differs
create table if not exists kaizen_schema (
    version text not null               -- digest of the DDL files and column comments (kaizen.warehouse.schema_version)
);
