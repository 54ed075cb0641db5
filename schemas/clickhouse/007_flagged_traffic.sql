-- Flagged traffic in the figures. The tables and rollups keep every conversion; beside
-- the totals the rollups carry what the fraud verdicts rejected (or found suspicious),
-- so a figure without the rejected traffic is one subtraction. The analyst views follow
-- the registry's fraud.flagged_traffic: 'mark' (count everything, show the rejected share
-- beside it) or 'exclude' (leave fraud-rejected conversions out of conversions, revenue,
-- payout, CPA and ROAS). Each runtime writes the setting into report_settings when it
-- starts, so the views read the way the pipeline writing the figures is configured.

-- The strongest reason of a flagged conversion's verdict travels on its rows (like
-- Adjust's {rejection_reason}). Status updates keep the conversion's verdict; a verdict
-- that grows later (its click was convicted after the conversion was judged) comes as a
-- new version, so the rollups take off the previous verdict's share and add the new one.
ALTER TABLE {db}.attributed_conversions
    ADD COLUMN IF NOT EXISTS fraud_reason LowCardinality(String)
        COMMENT 'Strongest reason of the fraud verdict when fraud_action is not ok (forged_click_id, ctit_too_short, ...)'
        AFTER fraud_action,
    ADD COLUMN IF NOT EXISTS previous_fraud_action LowCardinality(String)
        COMMENT 'fraud_action before this version ('''' on version 1)'
        AFTER previous_payout;

-- A view's columns are fixed when it is created: again, so that it shows the new ones.
CREATE OR REPLACE VIEW {db}.attributed_latest AS
SELECT *
FROM {db}.attributed_conversions
ORDER BY version DESC
LIMIT 1 BY conversion_id, model, click_id;

ALTER TABLE {db}.agg_hourly
    ADD COLUMN IF NOT EXISTS fraud_rejected_conversions Float64
        COMMENT 'Of conversions: those whose fraud verdict is reject (weighted)',
    ADD COLUMN IF NOT EXISTS fraud_rejected_approved Float64
        COMMENT 'Of approved: those whose fraud verdict is reject (weighted)',
    ADD COLUMN IF NOT EXISTS fraud_rejected_revenue Decimal(18, 6)
        COMMENT 'Of revenue: that of fraud-rejected conversions',
    ADD COLUMN IF NOT EXISTS fraud_rejected_payout Decimal(18, 6)
        COMMENT 'Of payout: that of fraud-rejected conversions',
    ADD COLUMN IF NOT EXISTS fraud_suspicious_conversions Float64
        COMMENT 'Of conversions: those whose fraud verdict is suspicious (weighted)';

-- Like agg_hourly_conversions, each version adds only its difference: what it counts
-- under its verdict minus what the version before counted under the previous one.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_fraud TO {db}.agg_hourly AS
SELECT toStartOfHour(conversion_ts) AS hour, campaign_id, partner_id, channel, country,
       device_type, action,
       sum(weight * ((fraud_action = 'reject') - (previous_fraud_action = 'reject')))
           AS fraud_rejected_conversions,
       sum(weight * ((status = 'approved' AND fraud_action = 'reject')
                     - (previous_status = 'approved' AND previous_fraud_action = 'reject')))
           AS fraud_rejected_approved,
       toDecimal128(sum(revenue * (fraud_action = 'reject')
                        - previous_revenue * (previous_fraud_action = 'reject')), 6)
           AS fraud_rejected_revenue,
       toDecimal128(sum(payout * (fraud_action = 'reject')
                        - previous_payout * (previous_fraud_action = 'reject')), 6)
           AS fraud_rejected_payout,
       sum(weight * ((fraud_action = 'suspicious') - (previous_fraud_action = 'suspicious')))
           AS fraud_suspicious_conversions
FROM {db}.attributed_conversions
WHERE fraud_action != 'ok' OR previous_fraud_action IN ('suspicious', 'reject')
GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action;

-- Rows written before this migration, once (migrations run before a runtime writes).
-- Versions may have been merged away by now, but the differences of all versions of a
-- row add up to its latest version, so the latest versions are what the rollups get.
INSERT INTO {db}.agg_hourly (hour, campaign_id, partner_id, channel, country, device_type,
       action, fraud_rejected_conversions, fraud_rejected_approved, fraud_rejected_revenue,
       fraud_rejected_payout, fraud_suspicious_conversions)
SELECT toStartOfHour(l.conversion_ts) AS hour, l.campaign_id, l.partner_id, l.channel,
       l.country, l.device_type, l.action,
       sumIf(l.weight, l.fraud_action = 'reject'),
       sumIf(l.weight * (l.status = 'approved'), l.fraud_action = 'reject'),
       toDecimal128(sumIf(l.revenue, l.fraud_action = 'reject'), 6),
       toDecimal128(sumIf(l.payout, l.fraud_action = 'reject'), 6),
       sumIf(l.weight, l.fraud_action = 'suspicious')
FROM
(
    SELECT *
    FROM {db}.attributed_conversions
    ORDER BY version DESC
    LIMIT 1 BY conversion_id, model, click_id
) AS l
WHERE l.fraud_action != 'ok'
GROUP BY hour, l.campaign_id, l.partner_id, l.channel, l.country, l.device_type, l.action;

-- Settings of the registry that the views read; the latest value of a name wins.
CREATE TABLE IF NOT EXISTS {db}.report_settings
(
    name            LowCardinality(String)        COMMENT 'Registry key, e.g. fraud.flagged_traffic',
    value           String                        COMMENT 'Its value in the registry the runtime runs with',
    updated_at      DateTime64(3, 'UTC')          COMMENT 'When a runtime wrote it; the latest wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

-- Partner transparency, now with the fraud-rejected conversions beside the figures and the
-- figures themselves following fraud.flagged_traffic (flagged_traffic says which applied).
CREATE OR REPLACE VIEW {db}.partner_report AS
WITH ifNull((
    SELECT argMax(s.value, s.updated_at) FROM {db}.report_settings AS s
    WHERE s.name = 'fraud.flagged_traffic'
), 'mark') = 'exclude' AS excluding
SELECT t.partner_id AS partner_id, impressions, clicks, conversions, approved, spend, revenue,
       payout,
       if(conversions > 0, toFloat64(spend + payout) / conversions, NULL) AS cpa,
       if(spend + payout > 0, toFloat64(revenue) / toFloat64(spend + payout), NULL) AS roas,
       f.flagged_clicks AS flagged_clicks,
       if(clicks > 0, f.flagged_clicks / clicks, NULL) AS flagged_share,
       b.conflicts AS conflicts,
       fraud_rejected_conversions, fraud_rejected_approved, fraud_rejected_revenue,
       fraud_rejected_payout, fraud_suspicious_conversions,
       if(excluding, 'exclude', 'mark') AS flagged_traffic
FROM
(
    SELECT partner_id,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sum(a.conversions) - excluding * sum(a.fraud_rejected_conversions) AS conversions,
           sum(a.approved) - excluding * sum(a.fraud_rejected_approved) AS approved,
           sum(a.cost) AS spend,
           sum(a.revenue) - excluding * sum(a.fraud_rejected_revenue) AS revenue,
           sum(a.payout) - excluding * sum(a.fraud_rejected_payout) AS payout,
           sum(a.fraud_rejected_conversions) AS fraud_rejected_conversions,
           sum(a.fraud_rejected_approved) AS fraud_rejected_approved,
           sum(a.fraud_rejected_revenue) AS fraud_rejected_revenue,
           sum(a.fraud_rejected_payout) AS fraud_rejected_payout,
           sum(a.fraud_suspicious_conversions) AS fraud_suspicious_conversions
    FROM {db}.agg_hourly AS a
    GROUP BY partner_id
) AS t
LEFT JOIN
(
    SELECT v.partner_id AS partner_id, uniqExact(v.subject_id) AS flagged_clicks
    FROM {db}.fraud_verdicts AS v
    WHERE v.subject_type = 'click' AND v.action != 'ok'
    GROUP BY v.partner_id
) AS f ON t.partner_id = f.partner_id
LEFT JOIN
(
    SELECT c.offender_id AS partner_id, uniqExact(c.conflict_id) AS conflicts
    FROM {db}.brand_conflicts AS c
    WHERE c.offender_kind = 'partner'
    GROUP BY c.offender_id
) AS b ON t.partner_id = b.partner_id;

-- The funnel follows the same setting for its conversion counts.
CREATE OR REPLACE VIEW {db}.funnel_daily AS
WITH ifNull((
    SELECT argMax(s.value, s.updated_at) FROM {db}.report_settings AS s
    WHERE s.name = 'fraud.flagged_traffic'
), 'mark') = 'exclude' AS excluding
SELECT day, campaign_id, partner_id, channel, country, device_type,
       impressions, clicks, leads, signups, add_to_carts, purchases, installs, conversions,
       if(impressions > 0, clicks / impressions, NULL) AS ctr,
       if(clicks > 0, conversions / clicks, NULL) AS cvr,
       fraud_rejected_conversions,
       if(excluding, 'exclude', 'mark') AS flagged_traffic
FROM
(
    SELECT toDate(hour) AS day, campaign_id, partner_id, channel, country, device_type,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sumIf(a.conversions - excluding * a.fraud_rejected_conversions, a.action = 'lead')
               AS leads,
           sumIf(a.conversions - excluding * a.fraud_rejected_conversions, a.action = 'signup')
               AS signups,
           sumIf(a.conversions - excluding * a.fraud_rejected_conversions,
                 a.action = 'add_to_cart') AS add_to_carts,
           sumIf(a.conversions - excluding * a.fraud_rejected_conversions,
                 a.action = 'purchase') AS purchases,
           sumIf(a.conversions - excluding * a.fraud_rejected_conversions, a.action = 'install')
               AS installs,
           sum(a.conversions - excluding * a.fraud_rejected_conversions) AS conversions,
           sum(a.fraud_rejected_conversions) AS fraud_rejected_conversions
    FROM {db}.agg_hourly AS a
    GROUP BY day, campaign_id, partner_id, channel, country, device_type
);

-- Credit per partner and model, without fraud-rejected conversions when so configured.
CREATE OR REPLACE VIEW {db}.attribution_model_comparison AS
WITH ifNull((
    SELECT argMax(s.value, s.updated_at) FROM {db}.report_settings AS s
    WHERE s.name = 'fraud.flagged_traffic'
), 'mark') = 'exclude' AS excluding
SELECT model, partner_id, action,
       sum(l.weight) AS conversions,
       sum(l.revenue) AS revenue,
       sum(l.payout) AS payout
FROM {db}.attributed_latest AS l
WHERE NOT (excluding AND l.fraud_action = 'reject')
GROUP BY model, partner_id, action;
