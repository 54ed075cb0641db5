-- Exactly once into the rollups too. A retried batch carries the same insert token; the
-- raw and derived tables drop it as a duplicate, but each materialized view still pushes
-- its block into agg_hourly (deduplicate_blocks_in_dependent_materialized_views), where it
-- was added a second time: agg_hourly kept no deduplication log. With one, the view's block
-- (its token derived from the insert's) is dropped when it was already written, and
-- written when only the source table had it (a worker killed between the two).
ALTER TABLE {db}.agg_hourly MODIFY SETTING non_replicated_deduplication_window = 10000;
