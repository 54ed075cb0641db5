-- Alerts announce verdict changes: a brand key is (brand, offender), a daily digest is a
-- kind of its own, and a change held for a digest is stored as digested.
ALTER TABLE {db}.alerts
    COMMENT COLUMN kind 'brand_conflict, fraud_share, anomaly, digest',
    COMMENT COLUMN dedup_key 'brand|offender, fraud_share|partner, anomaly|partner or digest|route|destination|day',
    COMMENT COLUMN status 'sent, failed, retrying, digested (held for a daily digest); suppressed in older rows',
    COMMENT COLUMN payload 'JSON body sent (or held for the digest); its change: new, escalated, resolved';
