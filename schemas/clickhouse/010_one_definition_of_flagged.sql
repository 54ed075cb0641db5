-- One definition of flagged, used by every view and by 'clicktrail fraud'.
--
-- A conversion is flagged when the latest version of its attributed row carries a fraud
-- verdict other than ok. It is REJECTED when that verdict is reject, or when it is
-- suspicious and its partner was rejected in the same hour (a partner window whose
-- verdict is reject, e.g. partner_fraud_share: a partner most of whose traffic is
-- suspicious is not given the benefit of the doubt on the rest); it is SUSPICIOUS
-- otherwise. Counts are weighted like the conversions beside them, so flagged never
-- exceeds conversions. Before this, 'clicktrail fraud' counted conversion verdicts
-- (unattributed ones and superseded versions included) and the reports counted
-- attributed rows: two numbers for one question.

ALTER TABLE {db}.agg_hourly
    ADD COLUMN IF NOT EXISTS fraud_suspicious_approved Float64
        COMMENT 'Of approved: those whose fraud verdict is suspicious (weighted)',
    ADD COLUMN IF NOT EXISTS fraud_suspicious_revenue Decimal(18, 6)
        COMMENT 'Of revenue: that of fraud-suspicious conversions',
    ADD COLUMN IF NOT EXISTS fraud_suspicious_payout Decimal(18, 6)
        COMMENT 'Of payout: that of fraud-suspicious conversions';

-- Like agg_hourly_fraud: each version adds its difference to the version before.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agg_hourly_suspicious TO {db}.agg_hourly AS
SELECT toStartOfHour(conversion_ts) AS hour, campaign_id, partner_id, channel, country,
       device_type, action,
       sum(weight * (status = 'approved' AND fraud_action = 'suspicious')
           - previous_weight
             * (previous_status = 'approved' AND previous_fraud_action = 'suspicious'))
           AS fraud_suspicious_approved,
       toDecimal128(sum(revenue * (fraud_action = 'suspicious')
                        - previous_revenue * (previous_fraud_action = 'suspicious')), 6)
           AS fraud_suspicious_revenue,
       toDecimal128(sum(payout * (fraud_action = 'suspicious')
                        - previous_payout * (previous_fraud_action = 'suspicious')), 6)
           AS fraud_suspicious_payout
FROM {db}.attributed_conversions
WHERE fraud_action = 'suspicious' OR previous_fraud_action = 'suspicious'
GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action;

-- Rows written before this migration: their latest versions, once.
INSERT INTO {db}.agg_hourly (hour, campaign_id, partner_id, channel, country, device_type,
       action, fraud_suspicious_approved, fraud_suspicious_revenue, fraud_suspicious_payout)
SELECT toStartOfHour(l.conversion_ts) AS hour, l.campaign_id, l.partner_id, l.channel,
       l.country, l.device_type, l.action,
       sumIf(l.weight * (l.status = 'approved'), l.fraud_action = 'suspicious'),
       toDecimal128(sumIf(l.revenue, l.fraud_action = 'suspicious'), 6),
       toDecimal128(sumIf(l.payout, l.fraud_action = 'suspicious'), 6)
FROM {db}.attributed_latest AS l
WHERE l.fraud_action = 'suspicious'
GROUP BY hour, l.campaign_id, l.partner_id, l.channel, l.country, l.device_type, l.action;

-- The hours in which a partner was rejected: every hour its rejected window overlaps.
-- A partner verdict's ts is its window's end; the width is fraud.window_seconds as the
-- runtime writing the figures is configured (report_settings), an hour by default.
CREATE OR REPLACE VIEW {db}.partner_rejected_hours AS
WITH ifNull((
    SELECT toFloat64OrNull(argMax(s.value, s.updated_at)) FROM {db}.report_settings AS s
    WHERE s.name = 'fraud.window_seconds'
), 3600) AS width
SELECT DISTINCT partner_id, hour
FROM
(
    SELECT v.partner_id AS partner_id,
           toStartOfHour(toDateTime(v.ts - toIntervalMillisecond(toInt64(width * 1000))))
               AS first_hour,
           toStartOfHour(toDateTime(v.ts - toIntervalMillisecond(1))) AS last_hour,
           arrayJoin(arrayMap(i -> first_hour + toIntervalHour(i),
                              range(toUInt64(dateDiff('hour', first_hour, last_hour)) + 1)))
               AS hour
    FROM {db}.fraud_verdicts AS v
    WHERE v.subject_type = 'partner' AND v.action = 'reject'
);

-- The rollups with the definition applied: what each figure loses to rejected traffic
-- (a conversion's own reject, or suspicious in a rejected partner hour) and what stays
-- merely suspicious. Every analyst view reads its fraud figures from here.
CREATE OR REPLACE VIEW {db}.agg_hourly_flagged AS
SELECT a.hour AS hour, a.campaign_id AS campaign_id, a.partner_id AS partner_id,
       a.channel AS channel, a.country AS country, a.device_type AS device_type,
       a.action AS action, a.impressions AS impressions, a.clicks AS clicks,
       a.conversions AS conversions, a.approved AS approved, a.revenue AS revenue,
       a.payout AS payout, a.cost AS cost,
       a.fraud_rejected_conversions + escalated * a.fraud_suspicious_conversions
           AS rejected_conversions,
       a.fraud_rejected_approved + escalated * a.fraud_suspicious_approved AS rejected_approved,
       a.fraud_rejected_revenue + escalated * a.fraud_suspicious_revenue AS rejected_revenue,
       a.fraud_rejected_payout + escalated * a.fraud_suspicious_payout AS rejected_payout,
       escalated * a.fraud_suspicious_conversions AS escalated_conversions,
       (1 - escalated) * a.fraud_suspicious_conversions AS suspicious_conversions
FROM
(
    SELECT hour, campaign_id, partner_id, channel, country, device_type, action,
           sum(impressions) AS impressions, sum(clicks) AS clicks,
           sum(conversions) AS conversions, sum(approved) AS approved,
           sum(revenue) AS revenue, sum(payout) AS payout, sum(cost) AS cost,
           sum(fraud_rejected_conversions) AS fraud_rejected_conversions,
           sum(fraud_rejected_approved) AS fraud_rejected_approved,
           sum(fraud_rejected_revenue) AS fraud_rejected_revenue,
           sum(fraud_rejected_payout) AS fraud_rejected_payout,
           sum(fraud_suspicious_conversions) AS fraud_suspicious_conversions,
           sum(fraud_suspicious_approved) AS fraud_suspicious_approved,
           sum(fraud_suspicious_revenue) AS fraud_suspicious_revenue,
           sum(fraud_suspicious_payout) AS fraud_suspicious_payout
    FROM {db}.agg_hourly
    GROUP BY hour, campaign_id, partner_id, channel, country, device_type, action
) AS a
LEFT JOIN
(
    SELECT partner_id, hour, toUInt8(1) AS escalated FROM {db}.partner_rejected_hours
) AS r ON a.partner_id = r.partner_id AND a.hour = r.hour;

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
       fraud_rejected_payout, fraud_suspicious_conversions, fraud_escalated_conversions,
       fraud_rejected_conversions + fraud_suspicious_conversions AS flagged_conversions,
       if(excluding, 'exclude', 'mark') AS flagged_traffic
FROM
(
    SELECT partner_id,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sum(a.conversions) - excluding * sum(a.rejected_conversions) AS conversions,
           sum(a.approved) - excluding * sum(a.rejected_approved) AS approved,
           sum(a.cost) AS spend,
           sum(a.revenue) - excluding * sum(a.rejected_revenue) AS revenue,
           sum(a.payout) - excluding * sum(a.rejected_payout) AS payout,
           sum(a.rejected_conversions) AS fraud_rejected_conversions,
           sum(a.rejected_approved) AS fraud_rejected_approved,
           sum(a.rejected_revenue) AS fraud_rejected_revenue,
           sum(a.rejected_payout) AS fraud_rejected_payout,
           sum(a.suspicious_conversions) AS fraud_suspicious_conversions,
           sum(a.escalated_conversions) AS fraud_escalated_conversions
    FROM {db}.agg_hourly_flagged AS a
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

CREATE OR REPLACE VIEW {db}.funnel_daily AS
WITH ifNull((
    SELECT argMax(s.value, s.updated_at) FROM {db}.report_settings AS s
    WHERE s.name = 'fraud.flagged_traffic'
), 'mark') = 'exclude' AS excluding
SELECT day, campaign_id, partner_id, channel, country, device_type,
       impressions, clicks, leads, signups, add_to_carts, purchases, installs, conversions,
       if(impressions > 0, clicks / impressions, NULL) AS ctr,
       if(clicks > 0, conversions / clicks, NULL) AS cvr,
       fraud_rejected_conversions, fraud_suspicious_conversions,
       if(excluding, 'exclude', 'mark') AS flagged_traffic
FROM
(
    SELECT toDate(hour) AS day, campaign_id, partner_id, channel, country, device_type,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sumIf(a.conversions - excluding * a.rejected_conversions, a.action = 'lead')
               AS leads,
           sumIf(a.conversions - excluding * a.rejected_conversions, a.action = 'signup')
               AS signups,
           sumIf(a.conversions - excluding * a.rejected_conversions, a.action = 'add_to_cart')
               AS add_to_carts,
           sumIf(a.conversions - excluding * a.rejected_conversions, a.action = 'purchase')
               AS purchases,
           sumIf(a.conversions - excluding * a.rejected_conversions, a.action = 'install')
               AS installs,
           sum(a.conversions - excluding * a.rejected_conversions) AS conversions,
           sum(a.rejected_conversions) AS fraud_rejected_conversions,
           sum(a.suspicious_conversions) AS fraud_suspicious_conversions
    FROM {db}.agg_hourly_flagged AS a
    GROUP BY day, campaign_id, partner_id, channel, country, device_type
);

-- Credit per partner and model, without rejected conversions (same definition) when so
-- configured.
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
WHERE NOT (
    excluding
    AND (l.fraud_action = 'reject'
         OR (l.fraud_action = 'suspicious'
             AND (l.partner_id, toStartOfHour(l.conversion_ts))
                 IN (SELECT partner_id, hour FROM {db}.partner_rejected_hours)))
)
GROUP BY model, partner_id, action;
