"""Kafka administration with kafka-python: topics with the partitions the tables need.

Every topic of a pipeline must have the same number of partitions: a key's partition
decides which worker's table holds its state, and Faust requires each table's
changelog topic to have as many partitions as the topics feeding it. A topic that
already exists with another count is therefore an error, not something to keep
quietly: the workers would stop at their first table write (Faust's
``PartitionsMismatch``). Kafka can add partitions (:func:`grow_topics`) but never
remove them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from clicktrail.bus.topics import ALL_TOPICS


class TopicPartitionsError(Exception):
    """Topics exist with another partition count than the one asked for."""

    def __init__(self, partitions: int, found: Mapping[str, int]) -> None:
        self.partitions = partitions
        self.found = dict(found)
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(self.found.items()))
        super().__init__(f"topics with other than {partitions} partitions: {listed}")

    @property
    def fewer(self) -> bool:
        return any(count < self.partitions for count in self.found.values())

    @property
    def more(self) -> bool:
        return any(count > self.partitions for count in self.found.values())


def _admin(bootstrap: str, timeout_s: float) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="clicktrail-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )


def _counts(admin: Any, names: Iterable[str]) -> dict[str, int]:
    """Partitions of each of ``names`` that exists."""
    existing = set(admin.list_topics())
    present = [name for name in names if name in existing]
    if not present:
        return {}
    return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(present)}


def partition_counts(
    bootstrap: str, topics: Iterable[str] = ALL_TOPICS, *, timeout_s: float = 15.0
) -> dict[str, int]:
    """Partitions of each of ``topics`` that exists (missing ones are left out)."""
    admin = _admin(bootstrap, timeout_s)
    try:
        return _counts(admin, topics)
    finally:
        admin.close()


def check_partitions(
    bootstrap: str, partitions: int, topics: Iterable[str], *, timeout_s: float = 15.0
) -> None:
    """Raise :class:`TopicPartitionsError` when one of ``topics`` that exists has another
    partition count."""
    found = partition_counts(bootstrap, topics, timeout_s=timeout_s)
    other = {name: count for name, count in found.items() if count != partitions}
    if other:
        raise TopicPartitionsError(partitions, other)


def create_topics(
    bootstrap: str,
    partitions: int,
    retention: timedelta | None = None,
    *,
    topics: Iterable[str] = ALL_TOPICS,
    replication_factor: int = 1,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create the missing ones of ``topics``; returns the names created. Raises
    :class:`TopicPartitionsError`, creating nothing, when any of them exists with another
    partition count.

    Source topics must exist before Faust workers join, with the partition
    count of the tables that use them; auto-creation would give them one.
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    names = list(topics)
    config = {}
    if retention is not None:
        config["retention.ms"] = str(int(retention.total_seconds() * 1000))
    admin = _admin(bootstrap, timeout_s)
    try:
        found = _counts(admin, names)
        other = {name: count for name, count in found.items() if count != partitions}
        if other:
            raise TopicPartitionsError(partitions, other)
        created = []
        for name in (name for name in names if name not in found):
            topic = NewTopic(name, partitions, replication_factor, topic_configs=config)
            try:
                admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
                created.append(name)
            except TopicAlreadyExistsError:  # created meanwhile, by another edge or worker
                pass
        return created
    finally:
        admin.close()


def grow_topics(
    bootstrap: str,
    partitions: int,
    *,
    topics: Iterable[str] = ALL_TOPICS,
    timeout_s: float = 15.0,
) -> dict[str, int]:
    """Add partitions to the existing ones of ``topics`` that have fewer than
    ``partitions``; returns their previous counts. Missing topics are left to
    :func:`create_topics`; topics with more are left as they are (Kafka cannot remove
    partitions).

    The new partitions start empty and keys hash over the new count, so most keys move
    to another partition: records of one key written before and after the change sit
    in two partitions, read by two workers in no common order, and the workers' table
    state (split by the old partitions) no longer meets the keys it belongs to. Grow
    only a drained pipeline (edges stopped, workers caught up), and start the workers
    on fresh state (README, "Scale-out on Kafka").
    """
    from kafka.admin import NewPartitions

    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    admin = _admin(bootstrap, timeout_s)
    try:
        fewer = {n: count for n, count in _counts(admin, topics).items() if count < partitions}
        if fewer:
            admin.create_partitions(
                {name: NewPartitions(partitions) for name in fewer},
                timeout_ms=int(timeout_s * 1000),
            )
        return fewer
    finally:
        admin.close()
