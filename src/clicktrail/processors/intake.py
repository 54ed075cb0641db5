"""Turn raw input (a JSON line, a request body item) into a valid event or a dead letter.

Every entry point (replay, HTTP intake, a Kafka topic of raw events) goes
through :class:`Intake`, so an event is accepted or refused for the same
reasons everywhere, and refusals keep the payload (redacted: see
:mod:`clicktrail.processors.redaction`) and a reason code. Whatever the input,
the answer is an event or a :class:`Rejection`, never an exception: a refused
input must not take its batch (or a replay) down with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from clicktrail.contracts import EVENT_ADAPTER, EVENT_TYPES, AnyEvent, DeadLetter
from clicktrail.contracts.common import printable
from clicktrail.processors.privacy import IpMode, ip_anonymizer
from clicktrail.processors.redaction import Redactor

MAX_DEAD_LETTER_PAYLOAD = 65_536
MAX_ERRORS_IN_MESSAGE = 4
MAX_DEPTH = 8
"""Deepest JSON nesting an event needs is 3 (event, user, segments); anything much deeper
is refused before validation, so no validator or serializer ever recurses on it."""

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


def nesting_exceeds(data: Any, limit: int) -> bool:
    """Whether JSON ``data`` nests deeper than ``limit`` (iterative: no recursion on it)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend(
                (item, depth + 1) for item in value.values() if isinstance(item, dict | list)
            )
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return False


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
        max_past: timedelta | None = None,
        ip_mode: IpMode = "truncate",
        ip_hash_key: str = "",
        known_partners: frozenset[str] | None = None,
        known_campaigns: frozenset[str] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``max_past``: older events are refused (None: only the contract's 2000-01-01
        bound, for offline tools replaying old data under a chosen clock).
        ``known_partners`` / ``known_campaigns``: when given, an event naming another
        id is refused (``unknown_partner`` / ``unknown_campaign``); None checks nothing."""
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be positive")
        if max_past is not None and max_past <= timedelta(0):
            raise ValueError("max_past must be positive")
        self.max_event_bytes = max_event_bytes
        self.max_future_skew = max_future_skew
        self.max_past = max_past
        self.known_partners = known_partners
        self.known_campaigns = known_campaigns
        self.clock = clock
        self._anonymize_ip = ip_anonymizer(ip_mode, ip_hash_key)
        self.redactor = Redactor(self._anonymize_ip)

    def parse(self, raw: bytes | str) -> AnyEvent | Rejection:
        """One JSON document (e.g. an NDJSON line)."""
        size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
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
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            shown = repr(event_type)[:64] if isinstance(event_type, str) else "a non-string"
            return Rejection(
                "unknown_type",
                f"unknown event type {shown}; expected one of {known}",
                event_type[:64] if isinstance(event_type, str) else None,
                event_id,
            )
        if nesting_exceeds(data, MAX_DEPTH):
            return Rejection(
                "invalid_field",
                f"event: nested deeper than {MAX_DEPTH} levels",
                event_type,
                event_id,
            )
        user = data.get("user")
        if isinstance(user, dict) and isinstance(ip := user.get("ip"), str):
            try:  # anonymize before the model exists: no raw address is ever held in one
                data = {**data, "user": {**user, "ip": self._anonymize_ip(ip)}}
            except ValueError:
                return Rejection(
                    "invalid_field", "user.ip: not an IPv4 or IPv6 address", event_type, event_id
                )
        try:
            event = EVENT_ADAPTER.validate_python(data)
        except ValidationError as error:
            reason = "invalid_field"
            if any(e["loc"][-1:] == ("schema_version",) for e in error.errors()):
                reason = "unsupported_schema_version"
            return Rejection(reason, describe_validation_error(error), event_type, event_id)
        now = self.clock()
        if event.ts > now + self.max_future_skew:
            return Rejection(
                "future_timestamp",
                f"ts {event.ts.isoformat()} is more than "
                f"{self.max_future_skew.total_seconds():.0f} s in the future",
                event_type,
                event_id,
            )
        if self.max_past is not None and event.ts < now - self.max_past:
            return Rejection(
                "past_timestamp",
                f"ts {event.ts.isoformat()} is more than {self.max_past.days} days old",
                event_type,
                event_id,
            )
        return self._known_ids(event) or event

    def _known_ids(self, event: AnyEvent) -> Rejection | None:
        partners, campaigns = self.known_partners, self.known_campaigns
        if partners is not None and event.partner_id and event.partner_id not in partners:
            return Rejection(
                "unknown_partner",
                f"partner_id {event.partner_id!r} is not in the registry",
                event.type,
                event.event_id,
            )
        if campaigns is not None and event.campaign_id and event.campaign_id not in campaigns:
            return Rejection(
                "unknown_campaign",
                f"campaign_id {event.campaign_id!r} is not in the registry",
                event.type,
                event.event_id,
            )
        return None

    def dead_letter(self, rejection: Rejection, payload: Any, source: str) -> DeadLetter:
        """The stored refusal: payload redacted (no raw address, no secret), every text
        field bounded and printable, whatever the input held."""
        redactor = self.redactor
        if isinstance(payload, bytes | str):
            raw = payload[: MAX_DEAD_LETTER_PAYLOAD * 2]
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            text = redactor.text(text)
        else:
            text = orjson.dumps(redactor.value(payload), default=str).decode()
        event_id = rejection.event_id
        return DeadLetter(
            received_at=self.clock(),
            source=printable(source)[:256],
            reason=printable(rejection.reason)[:256],
            message=redactor.text(rejection.message[:2048])[:2048],
            event_type=printable(rejection.event_type)[:256] if rejection.event_type else None,
            event_id=printable(event_id)[:256] if event_id else None,
            payload=text[:MAX_DEAD_LETTER_PAYLOAD],
        )
