-- one row per AWS CUR 2.0 billing period loaded: the export delivery read and how far its usage reaches
create table if not exists cost_exports (
    billing_period date primary key,    -- first day of the billing period (the BILLING_PERIOD=YYYY-MM partition)
    execution_id text,                  -- Manifest.json executionId of the delivery read
    export_arn text,                    -- Manifest.json exportArn
    data_files integer not null,        -- data files the manifest lists (all read)
    line_items integer not null,        -- CUR line items read
    line_items_rejected integer not null, -- line items quarantined (source cost_lines)
    currencies text,                    -- line_item_currency_code values seen, comma-separated
    inr_per_usd double precision,       -- rupees per US dollar applied to USD lines (null: no USD line)
    usage_from timestamptz,             -- earliest line_item_usage_start_date of a usage line
    last_usage_at timestamptz,          -- latest line_item_usage_start_date of a usage line (the newest usage billed)
    billed_through date,                -- last UTC day whose cost is taken as complete (the latest usage day counts only when it ends the billing period)
    run_id text,
    loaded_at timestamptz not null
);
