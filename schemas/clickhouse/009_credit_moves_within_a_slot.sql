-- Credit that moves within one row slot. A conversion's rows are keyed by (model, click_id):
-- every click has its own slot, while an orphan row and a view-through row share the one
-- slot without a click. When a late touch moves the credit inside that slot (from nobody to
-- a view, from one view to another), the version writes the row it leaves (weight 0) first
-- and the row it credits after it, under the same version: the table keeps the last row
-- written, and the latest view below prefers the credited row over the one it left.
CREATE OR REPLACE VIEW {db}.attributed_latest AS
SELECT *
FROM
(
    SELECT *
    FROM {db}.attributed_conversions
    ORDER BY version DESC, weight DESC
    LIMIT 1 BY conversion_id, model, click_id
)
WHERE weight > 0;
