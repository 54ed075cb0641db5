-- Hourly rollups. One row per (hour, campaign, partner, channel, country, device, action);
-- action is '' on impression/click rows and the conversion action on conversion rows, so
-- CTR, CVR per action, CPA and ROAS are one GROUP BY with sum()/sumIf().
-- SummingMergeTree folds rows in the background: always read with sum() ... GROUP BY.

CREATE TABLE IF NOT EXISTS {db}.agg_hourly
(
    hour            DateTime('UTC')               COMMENT 'Start of the hour (event time)',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign',
    partner_id      LowCardinality(String)        COMMENT 'Partner',
    channel         LowCardinality(String)        COMMENT 'Channel',
    country         LowCardinality(String)        COMMENT 'Country',
    device_type     LowCardinality(String)        COMMENT 'Device type',
    action          LowCardinality(String)        COMMENT 'Conversion action ('''' on traffic rows)',
    impressions     UInt64                        COMMENT 'Impressions',
    clicks          UInt64                        COMMENT 'Clicks',
    conversions     Float64                       COMMENT 'Attributed conversions (weighted)',
    approved        Float64                       COMMENT 'Attributed approved conversions (weighted)',
    revenue         Decimal(18, 6)                COMMENT 'Attributed revenue',
    payout          Decimal(18, 6)                COMMENT 'Attributed payout',
    cost            Decimal(18, 6)                COMMENT 'Media cost (impressions + clicks)',
    fraud_flagged   UInt64                        COMMENT 'Events with a suspicious/reject verdict',
    conflicts       UInt64                        COMMENT 'Brand-conflict evidence events'
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, campaign_id, partner_id, channel, country, device_type, action)
SETTINGS non_replicated_deduplication_window = 10000;
