"""How records travel on topics: their JSON form, and back with the model their ``type`` names."""

from __future__ import annotations

import orjson
from pydantic import BaseModel

from clicktrail.bus.topics import INPUT_TOPICS
from clicktrail.contracts.catalog import RECORD_TYPES

_TOPIC_TYPES = {topic: record_type for record_type, topic in INPUT_TOPICS.items()}


def serialize(record: BaseModel) -> bytes:
    """The bytes a record travels as: its JSON form (UTC times, enum values)."""
    return orjson.dumps(record.model_dump(mode="json"))


def deserialize(topic: str, data: bytes) -> BaseModel:
    """The record back from a message value; its ``type`` field picks the model."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"message on {topic} is not JSON: {error}") from None
    kind = obj.get("type") if isinstance(obj, dict) else None
    model = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"message on {topic} has no known record type: {kind!r}")
    expected = _TOPIC_TYPES.get(topic)
    if expected is not None and kind != expected:
        raise ValueError(f"a {kind} record does not belong on {topic}")
    return model.model_validate(obj)
