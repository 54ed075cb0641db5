-- Analyst views. Plain views over the tables: no FINAL needed, always current.

-- The latest version of every attributed conversion (status updates add versions).
CREATE VIEW IF NOT EXISTS {db}.attributed_latest AS
SELECT *
FROM {db}.attributed_conversions
ORDER BY version DESC
LIMIT 1 BY conversion_id, model, click_id;

-- Funnel per segment and day: impressions -> clicks -> conversions per action.
CREATE VIEW IF NOT EXISTS {db}.funnel_daily AS
SELECT toDate(hour) AS day, campaign_id, partner_id, channel, country, device_type,
       sum(impressions) AS impressions,
       sum(clicks) AS clicks,
       sumIf(conversions, action = 'lead') AS leads,
       sumIf(conversions, action = 'signup') AS signups,
       sumIf(conversions, action = 'add_to_cart') AS add_to_carts,
       sumIf(conversions, action = 'purchase') AS purchases,
       sumIf(conversions, action = 'install') AS installs,
       sum(conversions) AS conversions,
       if(sum(impressions) > 0, sum(clicks) / sum(impressions), NULL) AS ctr,
       if(sum(clicks) > 0, sum(conversions) / sum(clicks), NULL) AS cvr
FROM {db}.agg_hourly
GROUP BY day, campaign_id, partner_id, channel, country, device_type
SETTINGS prefer_column_name_to_alias = 1;

-- Partner transparency: spend, conversions, CPA, ROAS, flagged share and conflicts.
CREATE VIEW IF NOT EXISTS {db}.partner_report AS
SELECT partner_id,
       sum(impressions) AS impressions,
       sum(clicks) AS clicks,
       sum(conversions) AS conversions,
       sum(approved) AS approved,
       sum(cost) AS spend,
       sum(revenue) AS revenue,
       sum(payout) AS payout,
       if(sum(conversions) > 0, toFloat64(sum(cost) + sum(payout)) / sum(conversions), NULL) AS cpa,
       if(sum(cost) + sum(payout) > 0, toFloat64(sum(revenue)) / toFloat64(sum(cost) + sum(payout)), NULL) AS roas,
       if(sum(clicks) > 0, sum(fraud_flagged) / sum(clicks), NULL) AS flagged_share,
       sum(conflicts) AS conflicts
FROM {db}.agg_hourly
GROUP BY partner_id
SETTINGS prefer_column_name_to_alias = 1;

-- How the credit per partner changes with the attribution model (latest versions).
CREATE VIEW IF NOT EXISTS {db}.attribution_model_comparison AS
SELECT model, partner_id, action,
       sum(weight) AS conversions,
       sum(revenue) AS revenue,
       sum(payout) AS payout
FROM {db}.attributed_latest
GROUP BY model, partner_id, action
SETTINGS prefer_column_name_to_alias = 1;
