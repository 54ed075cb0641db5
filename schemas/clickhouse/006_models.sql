-- Per-action model outputs: every click's scores, and the strongest features of each model.

CREATE TABLE IF NOT EXISTS {db}.click_scores
(
    click_id        String                        COMMENT 'Click the scores were given to',
    ts              DateTime64(3, 'UTC')          COMMENT 'Click time',
    campaign_id     LowCardinality(String)        COMMENT 'Campaign of the click',
    partner_id      LowCardinality(String)        COMMENT 'Partner of the click',
    model           LowCardinality(String)        COMMENT 'Model kind and feature-set version',
    scores          Map(LowCardinality(String), Float64) COMMENT 'P(action | click) per target action, before the click was learned from',
    learned         Bool                          COMMENT 'False when a fraud verdict keeps the click out of training',
    src             LowCardinality(String)        COMMENT 'Message that produced the row: topic/partition, replay:<file> or run:<id>',
    src_offset      UInt64                        COMMENT 'Its offset (or line); each (src, offset) is written once'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (campaign_id, partner_id, ts, click_id)
SETTINGS non_replicated_deduplication_window = 10000;

ALTER TABLE {db}.model_quality
    ADD COLUMN IF NOT EXISTS top_features Array(String) COMMENT 'Strongest weights as feature:+0.123, largest magnitude first' AFTER base_rate;
