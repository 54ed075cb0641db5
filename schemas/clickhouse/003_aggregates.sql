-- Hourly rollups. One row per (hour, campaign, partner, channel, country, device, action);
-- action is '' on impression/click rows and the conversion action on conversion rows, so
-- CTR, CVR per action, CPA and ROAS are one GROUP BY with sum()/sumIf().
-- Filled by materialized views from the raw and attributed tables, which are written
-- exactly once, so the rollups can never disagree with them.
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
    conversions     Float64                       COMMENT 'Attributed conversions (weighted, by conversion time)',
    approved        Float64                       COMMENT 'Attributed approved conversions (weighted)',
    revenue         Decimal(18, 6)                COMMENT 'Attributed revenue (latest amounts)',
    payout          Decimal(18, 6)                COMMENT 'Attributed payout (latest amounts)',
    cost            Decimal(18, 6)                COMMENT 'Media cost (impressions + clicks)'
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, campaign_id, partner_id, channel, country, device_type, action);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_impressions TO {db}.agg_hourly AS
SELECT toStartOfHour(ts) AS hour, campaign_id, partner_id, channel, country, device_type,
       '' AS action, count() AS impressions, toDecimal128(sum(ifNull(cost, 0)), 6) AS cost
FROM {db}.impressions
GROUP BY hour, campaign_id, partner_id, channel, country, device_type;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_clicks TO {db}.agg_hourly AS
SELECT toStartOfHour(ts) AS hour, campaign_id, partner_id, channel, country, device_type,
       '' AS action, count() AS clicks, toDecimal128(sum(ifNull(cost, 0)), 6) AS cost
FROM {db}.clicks
GROUP BY hour, campaign_id, partner_id, channel, country, device_type;

-- Each status/amount update adds only its difference, so sums stay right across versions.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_conversions TO {db}.agg_hourly AS
SELECT toStartOfHour(conversion_ts) AS hour, campaign_id, partner_id, channel, country,
       device_type, action,
       sum(if(version = 1, weight, 0)) AS conversions,
       sum(weight * ((status = 'approved') - (previous_status = 'approved'))) AS approved,
       toDecimal128(sum(revenue - previous_revenue), 6) AS revenue,
       toDecimal128(sum(payout - previous_payout), 6) AS payout
FROM {db}.attributed_conversions
GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action;
