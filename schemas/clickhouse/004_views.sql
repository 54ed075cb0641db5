-- Analyst views. Plain views over the tables: no FINAL needed, always current.
-- Sums are taken in an inner query and ratios computed outside, so no alias shadows a column.

-- The latest version of every attributed conversion (status updates add versions).
CREATE VIEW IF NOT EXISTS {db}.attributed_latest AS
SELECT *
FROM {db}.attributed_conversions
ORDER BY version DESC
LIMIT 1 BY conversion_id, model, click_id;

-- Funnel per segment and day: impressions -> clicks -> conversions per action.
CREATE VIEW IF NOT EXISTS {db}.funnel_daily AS
SELECT day, campaign_id, partner_id, channel, country, device_type,
       impressions, clicks, leads, signups, add_to_carts, purchases, installs, conversions,
       if(impressions > 0, clicks / impressions, NULL) AS ctr,
       if(clicks > 0, conversions / clicks, NULL) AS cvr
FROM
(
    SELECT toDate(hour) AS day, campaign_id, partner_id, channel, country, device_type,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sumIf(a.conversions, a.action = 'lead') AS leads,
           sumIf(a.conversions, a.action = 'signup') AS signups,
           sumIf(a.conversions, a.action = 'add_to_cart') AS add_to_carts,
           sumIf(a.conversions, a.action = 'purchase') AS purchases,
           sumIf(a.conversions, a.action = 'install') AS installs,
           sum(a.conversions) AS conversions
    FROM {db}.agg_hourly AS a
    GROUP BY day, campaign_id, partner_id, channel, country, device_type
);

-- Partner transparency: spend, conversions, CPA, ROAS, flagged share and brand conflicts.
CREATE VIEW IF NOT EXISTS {db}.partner_report AS
SELECT t.partner_id AS partner_id, impressions, clicks, conversions, approved, spend, revenue,
       payout,
       if(conversions > 0, toFloat64(spend + payout) / conversions, NULL) AS cpa,
       if(spend + payout > 0, toFloat64(revenue) / toFloat64(spend + payout), NULL) AS roas,
       f.flagged_clicks AS flagged_clicks,
       if(clicks > 0, f.flagged_clicks / clicks, NULL) AS flagged_share,
       b.conflicts AS conflicts
FROM
(
    SELECT partner_id,
           sum(a.impressions) AS impressions,
           sum(a.clicks) AS clicks,
           sum(a.conversions) AS conversions,
           sum(a.approved) AS approved,
           sum(a.cost) AS spend,
           sum(a.revenue) AS revenue,
           sum(a.payout) AS payout
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

-- How the credit per partner changes with the attribution model (latest versions).
CREATE VIEW IF NOT EXISTS {db}.attribution_model_comparison AS
SELECT model, partner_id, action,
       sum(l.weight) AS conversions,
       sum(l.revenue) AS revenue,
       sum(l.payout) AS payout
FROM {db}.attributed_latest AS l
GROUP BY model, partner_id, action;
