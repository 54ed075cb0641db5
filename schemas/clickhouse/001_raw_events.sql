-- Raw events exactly as accepted by the intake (after validation and IP anonymization).
-- One row per unique event_id. Sort keys favour "one campaign/partner over a time range".
-- Re-delivered batches are dropped by insert deduplication tokens (see README, "Exactly once").

CREATE DATABASE IF NOT EXISTS {db};

CREATE TABLE IF NOT EXISTS {db}.impressions
(
    event_id        String                        COMMENT 'Unique event id (dedup key)',
    ts              DateTime64(3, 'UTC')          COMMENT 'Event time',
    received_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the row was written',
    schema_version  UInt8                         COMMENT 'Event contract version',
    impression_id   String                        COMMENT 'Impression id',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign that paid for the ad',
    advertiser_id   LowCardinality(String)        COMMENT 'Advertiser account ('''' if unknown)',
    partner_id      LowCardinality(String)        COMMENT 'Publisher / affiliate / contractor',
    channel         LowCardinality(String)        COMMENT 'search, display, social, affiliate, email, ...',
    keyword         String                        COMMENT 'Search term, if any',
    ad_domain       String                        COMMENT 'Display URL domain of the ad',
    landing_url     String                        COMMENT 'Landing page URL',
    placement       String                        COMMENT 'Placement / site / app',
    creative_id     String                        COMMENT 'Creative id',
    cost            Nullable(Decimal(18, 6))      COMMENT 'Cost of this impression, if known',
    cpc_bid         Nullable(Decimal(18, 6))      COMMENT 'CPC bid in the auction, if known',
    position        Nullable(Float32)             COMMENT 'Ad position (search), if known',
    user_id         String                        COMMENT 'Hashed cookie / device id',
    ip              String                        COMMENT 'Truncated or hashed IP (never raw)',
    user_agent      String                        COMMENT 'User agent',
    country         LowCardinality(String)        COMMENT 'ISO 3166-1 alpha-2',
    device_type     LowCardinality(String)        COMMENT 'desktop, mobile, tablet, ctv, other',
    os              LowCardinality(String)        COMMENT 'Operating system',
    segments        Array(LowCardinality(String)) COMMENT 'Audience segments',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (campaign_id, partner_id, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.clicks
(
    event_id        String                        COMMENT 'Unique event id (dedup key)',
    ts              DateTime64(3, 'UTC')          COMMENT 'Event time',
    received_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the row was written',
    schema_version  UInt8                         COMMENT 'Event contract version',
    click_id        String                        COMMENT 'Signed click id minted by the edge',
    impression_id   String                        COMMENT 'Impression clicked ('''' if unknown)',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign',
    advertiser_id   LowCardinality(String)        COMMENT 'Advertiser account',
    partner_id      LowCardinality(String)        COMMENT 'Partner that sent the click',
    channel         LowCardinality(String)        COMMENT 'Channel',
    sub_ids         Map(String, String)           COMMENT 'Partner sub ids (sub1..sub10, ...)',
    keyword         String                        COMMENT 'Search term, if any',
    ad_domain       String                        COMMENT 'Display URL domain of the ad',
    landing_url     String                        COMMENT 'Landing URL after macro expansion',
    referrer        String                        COMMENT 'HTTP referrer',
    placement       String                        COMMENT 'Placement / site / app',
    creative_id     String                        COMMENT 'Creative id',
    paid_click_ids  Map(String, String)           COMMENT 'gclid / msclkid / fbclid / ttclid found on the landing URL',
    cost            Nullable(Decimal(18, 6))      COMMENT 'Cost of this click, if known',
    user_id         String                        COMMENT 'Hashed cookie / device id',
    ip              String                        COMMENT 'Truncated or hashed IP (never raw)',
    user_agent      String                        COMMENT 'User agent',
    country         LowCardinality(String)        COMMENT 'ISO 3166-1 alpha-2',
    device_type     LowCardinality(String)        COMMENT 'desktop, mobile, tablet, ctv, other',
    os              LowCardinality(String)        COMMENT 'Operating system',
    segments        Array(LowCardinality(String)) COMMENT 'Audience segments',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (campaign_id, partner_id, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.conversions
(
    event_id        String                        COMMENT 'Unique event id (dedup key)',
    ts              DateTime64(3, 'UTC')          COMMENT 'Event time',
    received_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the row was written',
    schema_version  UInt8                         COMMENT 'Event contract version',
    conversion_id   String                        COMMENT 'Conversion id (event_id if not given)',
    txid            String                        COMMENT 'Advertiser transaction id',
    click_id        String                        COMMENT 'Click id from the postback ('''' if none)',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign, when the sender knows it',
    advertiser_id   LowCardinality(String)        COMMENT 'Advertiser account',
    partner_id      LowCardinality(String)        COMMENT 'Partner, when the sender knows it',
    action          LowCardinality(String)        COMMENT 'lead, signup, add_to_cart, purchase, install, custom',
    status          LowCardinality(String)        COMMENT 'pending, approved, rejected',
    revenue         Decimal(18, 6)                COMMENT 'Revenue for the advertiser',
    currency        LowCardinality(String)        COMMENT 'ISO 4217',
    payout          Decimal(18, 6)                COMMENT 'Payout owed to the partner',
    user_id         String                        COMMENT 'Hashed cookie / device id',
    ip              String                        COMMENT 'Truncated or hashed IP (never raw)',
    user_agent      String                        COMMENT 'User agent',
    country         LowCardinality(String)        COMMENT 'ISO 3166-1 alpha-2',
    device_type     LowCardinality(String)        COMMENT 'desktop, mobile, tablet, ctv, other',
    os              LowCardinality(String)        COMMENT 'Operating system',
    segments        Array(LowCardinality(String)) COMMENT 'Audience segments',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (action, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    received_at     DateTime64(3, 'UTC')          COMMENT 'When the input was refused',
    source          String                        COMMENT 'replay:<file>:<line>, edge:<endpoint>, topic:<name>',
    reason          LowCardinality(String)        COMMENT 'Machine-readable reason code (invalid_json, invalid_field, ...)',
    message         String                        COMMENT 'Human-readable explanation',
    event_type      LowCardinality(String)        COMMENT 'Event type, if it could be read',
    event_id        String                        COMMENT 'Event id, if it could be read',
    payload         String                        COMMENT 'The raw input (first 64 KiB)',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (reason, received_at)
SETTINGS non_replicated_deduplication_window = 10000;
