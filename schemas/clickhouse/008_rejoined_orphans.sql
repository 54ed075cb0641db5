-- Credit that moves. A conversion that left as an orphan (its click had not arrived within
-- the grace period: a late click, a backlog read conversions first) is credited to its click
-- when the click comes, in a new version. The click's row is new in that version
-- (previous_weight 0); the orphan row comes again with weight 0 (previous_weight 1). The
-- rollups therefore add weight - previous_weight rather than counting version 1 rows, and
-- every other figure takes the previous version's share off by previous_weight.
ALTER TABLE {db}.attributed_conversions
    ADD COLUMN IF NOT EXISTS previous_weight Float64 DEFAULT 0
        COMMENT 'Share of credit of this row in the version before (0: new in this version; a row that lost its credit comes again with weight 0)'
        AFTER previous_fraud_action;

-- The current credit: a row whose latest version took its credit away is left out.
CREATE OR REPLACE VIEW {db}.attributed_latest AS
SELECT *
FROM
(
    SELECT *
    FROM {db}.attributed_conversions
    ORDER BY version DESC
    LIMIT 1 BY conversion_id, model, click_id
)
WHERE weight > 0;

-- The rollup views, with the differences above. Rows written before this migration were
-- rolled up by the views they met; rows from now on carry previous_weight.
DROP VIEW IF EXISTS {db}.agg_hourly_conversions;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_conversions TO {db}.agg_hourly AS
SELECT toStartOfHour(conversion_ts) AS hour, campaign_id, partner_id, channel, country,
       device_type, action,
       sum(weight - previous_weight) AS conversions,
       sum(weight * (status = 'approved') - previous_weight * (previous_status = 'approved'))
           AS approved,
       toDecimal128(sum(revenue - previous_revenue), 6) AS revenue,
       toDecimal128(sum(payout - previous_payout), 6) AS payout
FROM {db}.attributed_conversions
GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action;

DROP VIEW IF EXISTS {db}.agg_hourly_fraud;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_fraud TO {db}.agg_hourly AS
SELECT toStartOfHour(conversion_ts) AS hour, campaign_id, partner_id, channel, country,
       device_type, action,
       sum(weight * (fraud_action = 'reject')
           - previous_weight * (previous_fraud_action = 'reject')) AS fraud_rejected_conversions,
       sum(weight * (status = 'approved' AND fraud_action = 'reject')
           - previous_weight * (previous_status = 'approved' AND previous_fraud_action = 'reject'))
           AS fraud_rejected_approved,
       toDecimal128(sum(revenue * (fraud_action = 'reject')
                        - previous_revenue * (previous_fraud_action = 'reject')), 6)
           AS fraud_rejected_revenue,
       toDecimal128(sum(payout * (fraud_action = 'reject')
                        - previous_payout * (previous_fraud_action = 'reject')), 6)
           AS fraud_rejected_payout,
       sum(weight * (fraud_action = 'suspicious')
           - previous_weight * (previous_fraud_action = 'suspicious'))
           AS fraud_suspicious_conversions
FROM {db}.attributed_conversions
WHERE fraud_action != 'ok' OR previous_fraud_action IN ('suspicious', 'reject')
GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action;
