-- one row per billing period × UTC usage day × service × line item type × currency: the AWS CUR 2.0 line items summed per day
create table if not exists raw_cost_daily (
    billing_period date not null,       -- first day of the CUR billing period (bill_billing_period_start_date; the BILLING_PERIOD=YYYY-MM partition)
    usage_date date not null,           -- UTC date of the usage (line_item_usage_start_date; a line spanning days is spread over them by time)
    service text not null,              -- AWS service code (product_servicecode, else line_item_product_code), e.g. AmazonEC2
    line_item_type text not null,       -- line_item_line_item_type: Usage, Credit, Refund, Fee, RIFee, SavingsPlan…, Tax, …
    currency text not null,             -- line_item_currency_code (USD or INR)
    is_counted boolean not null,        -- counts as infrastructure cost (every type but Tax; see kaizen.sources.aws_cur)
    cost double precision not null,     -- Σ line_item_unblended_cost, in currency
    net_cost double precision not null, -- Σ line_item_net_unblended_cost where the export fills it, else the unblended cost, in currency
    inr_per_unit double precision not null, -- rupees per unit of currency used to convert (1 for INR; KAIZEN_COST_INR_PER_USD for USD)
    cost_inr double precision not null, -- cost × inr_per_unit (₹)
    line_items integer not null,        -- CUR line items that contributed to the row
    run_id text,
    loaded_at timestamptz not null,
    primary key (billing_period, usage_date, service, line_item_type, currency)
);
create index if not exists ix_raw_cost_daily_usage on raw_cost_daily (usage_date);
