"""Turn raw input (a JSON line, a request body item) into a valid event or a dead letter.

Every entry point (replay, HTTP intake, a Kafka topic of raw events) goes
through :class:`Intake`, so an event is accepted or refused for the same
reasons everywhere, and refusals keep the payload and a reason code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from clicktrail.contracts import EVENT_ADAPTER, EVENT_TYPES, AnyEvent, DeadLetter
from clicktrail.processors.privacy import IpMode, ip_anonymizer

MAX_DEAD_LETTER_PAYLOAD = 65_536
MAX_ERRORS_IN_MESSAGE = 4

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input was refused: a stable code for machines, a sentence for people."""

    reason: str
    message: str
    event_type: str | None = None
    event_id: str | None = None


def describe_validation_error(error: ValidationError) -> str:
    """Condense pydantic errors into ``field: problem; field: problem``."""
    parts = []
    for item in error.errors()[:MAX_ERRORS_IN_MESSAGE]:
        loc = [str(p) for p in item["loc"]]
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # drop the discriminator tag pydantic puts first
        field = ".".join(loc) or "event"
        parts.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    extra = len(error.errors()) - MAX_ERRORS_IN_MESSAGE
    if extra > 0:
        parts.append(f"... and {extra} more")
    return "; ".join(parts)


class Intake:
    """Parse, validate, bound and anonymize one input.

    Returns the event, or a :class:`Rejection`. ``dead_letter`` turns a
    rejection into the record stored in the dead-letter topic/table.
    """

    def __init__(
        self,
        *,
        max_event_bytes: int = 65_536,
        max_future_skew: timedelta = timedelta(hours=1),
        ip_mode: IpMode = "truncate",
        ip_hash_key: str = "",
        clock: Clock = utc_now,
    ) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be positive")
        self.max_event_bytes = max_event_bytes
        self.max_future_skew = max_future_skew
        self.clock = clock
        self._anonymize_ip = ip_anonymizer(ip_mode, ip_hash_key)

    def parse(self, raw: bytes | str) -> AnyEvent | Rejection:
        """One JSON document (e.g. an NDJSON line)."""
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > self.max_event_bytes:
            return Rejection(
                "payload_too_large", f"event is {size} bytes; the limit is {self.max_event_bytes}"
            )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            return Rejection("invalid_json", f"not valid JSON: {error}")
        return self.validate(data)

    def validate(self, data: Any) -> AnyEvent | Rejection:
        """An already-decoded JSON value."""
        if not isinstance(data, dict):
            return Rejection("not_an_object", "an event must be a JSON object")
        event_type = data.get("type")
        event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        if event_type is None:
            return Rejection("missing_type", "field 'type' is required", None, event_id)
        if event_type not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            return Rejection(
                "unknown_type",
                f"unknown event type {event_type!r}; expected one of {known}",
                str(event_type)[:64],
                event_id,
            )
        user = data.get("user")
        if isinstance(user, dict) and isinstance(ip := user.get("ip"), str):
            try:  # anonymize before the model exists: no raw address is ever held in one
                data = {**data, "user": {**user, "ip": self._anonymize_ip(ip)}}
            except ValueError:
                return Rejection(
                    "invalid_field",
                    f"user.ip: {ip[:64]!r} is not an IPv4 or IPv6 address",
                    event_type,
                    event_id,
                )
        try:
            event = EVENT_ADAPTER.validate_python(data)
        except ValidationError as error:
            reason = "invalid_field"
            if any(e["loc"][-1:] == ("schema_version",) for e in error.errors()):
                reason = "unsupported_schema_version"
            return Rejection(reason, describe_validation_error(error), event_type, event_id)
        limit = self.clock() + self.max_future_skew
        if event.ts > limit:
            return Rejection(
                "future_timestamp",
                f"ts {event.ts.isoformat()} is more than "
                f"{self.max_future_skew.total_seconds():.0f} s in the future",
                event_type,
                event_id,
            )
        return event

    def dead_letter(self, rejection: Rejection, payload: Any, source: str) -> DeadLetter:
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="replace")
        elif isinstance(payload, str):
            text = payload
        else:
            text = orjson.dumps(payload, default=str).decode()
        return DeadLetter(
            received_at=self.clock(),
            source=source[:256],
            reason=rejection.reason,
            message=rejection.message[:2048],
            event_type=rejection.event_type,
            event_id=rejection.event_id[:256] if rejection.event_id else None,
            payload=text[:MAX_DEAD_LETTER_PAYLOAD],
        )
