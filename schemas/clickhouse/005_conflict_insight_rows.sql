-- Auction-insights rows behind a conflict: a domain seen only in the advertiser's exports has
-- no impressions or clicks of its own in the stream, and this is its volume.
ALTER TABLE {db}.brand_conflicts
    ADD COLUMN IF NOT EXISTS insight_rows UInt64 DEFAULT 0
    COMMENT 'Auction-insights rows (day x keyword x account) showing the offender' AFTER clicks;
