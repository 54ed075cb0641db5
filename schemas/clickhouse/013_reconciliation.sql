-- Reconciliation with the advertiser's sales: one row per (order, conversion) pair of an
-- import, replaced when the same pair is imported again (the newest import wins).
CREATE TABLE IF NOT EXISTS {db}.reconciliation
(
    import_id         String                        COMMENT 'Derived from the imported orders: the same file, the same id',
    advertiser_id     LowCardinality(String)        COMMENT 'Whose sales',
    pair_key          String                        COMMENT 'Conversion id, or order:<order id> for an order nothing tracked',
    outcome           LowCardinality(String)        COMMENT 'matched, amount_difference, currency_mismatch, refunded, tracked_not_sold, sold_not_tracked',
    match             LowCardinality(String)        COMMENT 'txid, user_time, or '''' when one side is missing',
    order_id          String                        COMMENT 'The shop''s order id ('''' for a conversion no order matched)',
    conversion_id     String                        COMMENT 'Tracked conversion ('''' for an order nothing tracked)',
    txid              String                        COMMENT 'The conversion''s transaction id',
    action            LowCardinality(String)        COMMENT 'The conversion''s action',
    partner_id        LowCardinality(String)        COMMENT 'Credited partner (highest weight)',
    campaign_id       LowCardinality(String)        COMMENT 'Credited campaign',
    sale_status       LowCardinality(String)        COMMENT 'The order''s status as a conversion status',
    tracked_status    LowCardinality(String)        COMMENT 'The status tracking reported',
    sold_amount       Decimal(18, 6)                COMMENT 'Order total',
    sold_currency     LowCardinality(String)        COMMENT 'ISO 4217',
    tracked_revenue   Decimal(18, 6)                COMMENT 'Revenue tracking reported',
    tracked_currency  LowCardinality(String)        COMMENT 'ISO 4217',
    payout            Decimal(18, 6)                COMMENT 'The conversion''s payout (at risk when not sold)',
    amount_difference Decimal(18, 6)                COMMENT 'sold - tracked, same currency only',
    order_ts          Nullable(DateTime64(3, 'UTC')) COMMENT 'Order time',
    conversion_ts     Nullable(DateTime64(3, 'UTC')) COMMENT 'Conversion time',
    ts                DateTime64(3, 'UTC')          COMMENT 'When the import ran: the newest replaces',
    updated           Bool                          COMMENT 'A status/amount update was sent for the conversion'
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (advertiser_id, pair_key);

-- Per advertiser, partner and currency, in the words of the reconciliation: sold and
-- tracked, refunded, tracked but not sold (payout at risk), sold but not tracked (the
-- tracking gap, in sales), and amount differences. Orders without a partner are the ones
-- nothing tracked (partner_id '').
CREATE OR REPLACE VIEW {db}.reconciliation_summary AS
SELECT
    advertiser_id,
    partner_id,
    if(sold_currency != '', sold_currency, tracked_currency) AS currency,
    countIf(outcome IN ('matched', 'amount_difference', 'currency_mismatch')) AS matched,
    countIf(outcome = 'refunded') AS refunded,
    countIf(outcome = 'tracked_not_sold') AS tracked_not_sold,
    sumIf(payout, outcome IN ('tracked_not_sold', 'refunded') AND tracked_status != 'rejected')
        AS payout_at_risk,
    countIf(outcome = 'sold_not_tracked' AND sale_status != 'rejected') AS sold_not_tracked,
    sumIf(sold_amount, outcome = 'sold_not_tracked' AND sale_status != 'rejected')
        AS untracked_amount,
    countIf(outcome = 'amount_difference') AS amount_differences,
    sumIf(amount_difference, outcome = 'amount_difference') AS amount_difference,
    countIf(outcome = 'currency_mismatch') AS currency_mismatches,
    max(ts) AS last_import
FROM {db}.reconciliation FINAL
GROUP BY advertiser_id, partner_id, currency;
