"""Kafka administration with kafka-python: topics with the partitions the tables need."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from clicktrail.bus.topics import ALL_TOPICS


def create_topics(
    bootstrap: str,
    partitions: int,
    retention: timedelta | None = None,
    *,
    topics: Iterable[str] = ALL_TOPICS,
    replication_factor: int = 1,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create clicktrail's topics (existing ones are left alone); returns the names created.

    Source topics must exist before Faust workers join, with the partition
    count of the tables that use them; auto-creation would give them one.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    config = {}
    if retention is not None:
        config["retention.ms"] = str(int(retention.total_seconds() * 1000))
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="clicktrail-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in topics if name not in existing]
        created = []
        for name in wanted:
            topic = NewTopic(name, partitions, replication_factor, topic_configs=config)
            try:
                admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
