-- Records derived by the processors: attribution, fraud verdicts, brand conflicts,
-- alert deliveries and model quality. Public names: dashboards depend on them.

CREATE TABLE IF NOT EXISTS {db}.attributed_conversions
(
    conversion_id   String                        COMMENT 'Conversion id',
    txid            String                        COMMENT 'Advertiser transaction id',
    action          LowCardinality(String)        COMMENT 'Target action',
    status          LowCardinality(String)        COMMENT 'Current status: pending, approved, rejected',
    original_status LowCardinality(String)        COMMENT 'Status first reported',
    revenue         Decimal(18, 6)                COMMENT 'Revenue x weight',
    payout          Decimal(18, 6)                COMMENT 'Payout x weight',
    currency        LowCardinality(String)        COMMENT 'ISO 4217',
    conversion_ts   DateTime64(3, 'UTC')          COMMENT 'Conversion event time',
    touch           LowCardinality(String)        COMMENT 'click, view, or none (orphan)',
    click_id        String                        COMMENT 'Credited click ('''' for view-through / orphan)',
    impression_id   String                        COMMENT 'Credited impression, if known',
    click_ts        Nullable(DateTime64(3, 'UTC')) COMMENT 'Time of the credited touch',
    campaign_id     LowCardinality(String)        COMMENT 'Credited campaign',
    advertiser_id   LowCardinality(String)        COMMENT 'Advertiser',
    partner_id      LowCardinality(String)        COMMENT 'Credited partner',
    channel         LowCardinality(String)        COMMENT 'Channel of the credited touch',
    country         LowCardinality(String)        COMMENT 'Country of the credited touch',
    device_type     LowCardinality(String)        COMMENT 'Device type of the credited touch',
    model           LowCardinality(String)        COMMENT 'Attribution model (last_click, linear, ...)',
    weight          Float64                       COMMENT 'Share of credit (1 for single-touch models)',
    ctit_seconds    Nullable(Float64)             COMMENT 'Click (or view) to conversion time, seconds',
    fraud_action    LowCardinality(String)        COMMENT 'ok, suspicious, reject',
    version         UInt64                        COMMENT 'Increases with each status/amount update',
    previous_status LowCardinality(String)        COMMENT 'Status before this update ('''' on version 1)',
    previous_revenue Decimal(18, 6)               COMMENT 'Revenue x weight before this update',
    previous_payout Decimal(18, 6)                COMMENT 'Payout x weight before this update',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(conversion_ts)
ORDER BY (conversion_id, model, click_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.fraud_verdicts
(
    verdict_id      String                        COMMENT 'Verdict id',
    ts              DateTime64(3, 'UTC')          COMMENT 'Event time of the judged subject',
    subject_type    LowCardinality(String)        COMMENT 'impression, click, conversion, partner',
    subject_id      String                        COMMENT 'Id of the judged subject',
    partner_id      LowCardinality(String)        COMMENT 'Partner responsible',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign',
    score           Float64                       COMMENT 'Fraud score 0..1',
    reasons         Array(LowCardinality(String)) COMMENT 'Reason codes (click_flood, ctit_injection, bot_ua, ...)',
    action          LowCardinality(String)        COMMENT 'ok, suspicious, reject',
    rule_version    LowCardinality(String)        COMMENT 'Version of the rule set',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (partner_id, ts, verdict_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.brand_conflicts
(
    conflict_id     String                        COMMENT 'Stable id per (brand, offender, keyword)',
    brand_id        LowCardinality(String)        COMMENT 'Brand from the registry',
    official_campaign_id LowCardinality(String)   COMMENT 'Official campaign bidding on the same keyword',
    offender_kind   LowCardinality(String)        COMMENT 'partner, advertiser, campaign, domain',
    offender_id     String                        COMMENT 'Who bid on the brand',
    offender_domain String                        COMMENT 'Display domain of the offending ad',
    channel         LowCardinality(String)        COMMENT 'Channel',
    signal          LowCardinality(String)        COMMENT 'term, misspelled_term, domain, paid_click_id, serp_referrer, auction_insights',
    keywords        Array(String)                 COMMENT 'Keywords involved',
    first_seen      DateTime64(3, 'UTC')          COMMENT 'First evidence',
    last_seen       DateTime64(3, 'UTC')          COMMENT 'Latest evidence',
    impressions     UInt64                        COMMENT 'Offending impressions seen',
    clicks          UInt64                        COMMENT 'Offending clicks seen',
    head_to_head    Bool                          COMMENT 'Official campaign was in the same auctions',
    est_cpc_inflation Nullable(Float64)           COMMENT 'Official CPC with vs without offender, minus 1',
    cost_impact     Nullable(Decimal(18, 6))      COMMENT 'Estimated extra spend of the official campaign',
    severity        LowCardinality(String)        COMMENT 'info, warning, critical',
    evidence_ids    Array(String)                 COMMENT 'Event ids backing the conflict',
    version         UInt64                        COMMENT 'Increases with each update',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (brand_id, conflict_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id        String                        COMMENT 'Alert id (same for every attempt)',
    ts              DateTime64(3, 'UTC')          COMMENT 'Attempt time',
    kind            LowCardinality(String)        COMMENT 'brand_conflict, fraud_share, anomaly',
    dedup_key       String                        COMMENT 'brand|offender|keyword or partner key',
    route           LowCardinality(String)        COMMENT 'Route that selected the destination',
    destination     LowCardinality(String)        COMMENT 'Destination name from the config',
    severity        LowCardinality(String)        COMMENT 'info, warning, critical',
    status          LowCardinality(String)        COMMENT 'sent, failed, retrying, suppressed',
    attempt         UInt16                        COMMENT 'Attempt number, from 1',
    error           String                        COMMENT 'Error of a failed attempt',
    payload         String                        COMMENT 'JSON body sent',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (kind, ts, alert_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.model_quality
(
    ts              DateTime64(3, 'UTC')          COMMENT 'Event time of the measurement',
    action          LowCardinality(String)        COMMENT 'Target action',
    model           LowCardinality(String)        COMMENT 'Model name and feature-set version',
    examples        UInt64                        COMMENT 'Examples learned so far',
    positives       UInt64                        COMMENT 'Positive examples so far',
    auc             Nullable(Float64)             COMMENT 'Progressive ROC AUC',
    log_loss        Nullable(Float64)             COMMENT 'Progressive log loss',
    calibration_error Nullable(Float64)           COMMENT 'Expected calibration error',
    base_rate       Nullable(Float64)             COMMENT 'Share of positives',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
ORDER BY (action, ts)
SETTINGS non_replicated_deduplication_window = 10000;
