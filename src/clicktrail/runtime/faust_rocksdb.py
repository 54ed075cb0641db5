"""Faust's RocksDB table store, without a full garbage collection per table and rebalance.

faust-streaming's store (0.15) calls ``gc.collect()`` in ``revoke_partitions``, which
every table runs at every rebalance, also when nothing is revoked, and in ``stop``. The
revoke runs inside the partitions-assigned callback, and aiokafka sends no heartbeats
until that callback returns. With one collection per table (twenty-odd here) over a
worker's heap, on a loaded machine the callback outlasts the session timeout: the
coordinator drops the member, which logs "Worker ready", works a few seconds with its
commits refused, is told at its next heartbeat that its member id is unknown, rejoins,
and spends as long in the callback again. The group then makes no progress at all.

The collection was there so a database handle dropped at a revoke releases its lock
before the same partition is opened again in this process. Reference counting releases
it at once; only a handle in a reference cycle waits for the collector, so this store
collects when an open finds its partition locked, and not otherwise.
"""

from __future__ import annotations

import gc
from typing import Any

from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb

ALIAS = "rocksdb"


class Store(faust_rocksdb.Store):
    def revoke_partitions(self, table: Any, tps: Any) -> None:
        """Drop the handles of revoked partitions (Faust's, less the collection)."""
        for tp in tps:
            mine = tp.topic in table.changelog_topic.topics
            if mine and self._dbs.pop(tp.partition, None) is not None:
                self.logger.info(f"closing db {tp.topic} partition {tp.partition}")

    async def stop(self) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()

    def _open_for_partition(self, partition: int) -> Any:
        try:
            return super()._open_for_partition(partition)
        except Exception as error:  # the drivers raise their own IO error types
            if "lock" not in repr(error).lower():
                raise
        gc.collect()  # a handle dropped at a revoke may wait in a cycle, holding the lock
        return super()._open_for_partition(partition)


def use_for_rocksdb_urls() -> None:
    """Tables with a ``rocksdb://`` store get this store."""
    STORES.aliases[ALIAS] = f"{__name__}:{Store.__name__}"
