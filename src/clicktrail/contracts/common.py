"""Field types shared by every event and record.

Kept in one place so that an event time, an id or an amount means the same
thing in every model, every JSON Schema and every ClickHouse column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

SCHEMA_VERSION = 1
"""Current version of the public event contract (``schema_version`` field)."""

EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: anything earlier is not epoch milliseconds
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01


def _parse_event_time(value: Any) -> Any:
    """Accept RFC 3339 strings and epoch milliseconds; reject the ambiguous rest.

    Pydantic alone guesses seconds vs milliseconds from the magnitude of a
    number; a tracking contract must not guess, so numbers are always ms.
    """
    if isinstance(value, bool):
        raise ValueError("event time must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, int | float):
        if not EPOCH_MS_MIN <= value <= EPOCH_MS_MAX:
            raise ValueError(
                "epoch timestamp must be in milliseconds between 2000-01-01 and 2100-01-01"
            )
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError("event time must be RFC 3339, e.g. 2026-05-01T12:00:00Z") from None
        if parsed.tzinfo is None:
            raise ValueError("event time needs a UTC offset, e.g. 2026-05-01T12:00:00Z")
        return parsed
    return value


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("event time needs a UTC offset")
    return value.astimezone(UTC)


EventTime = Annotated[
    datetime,
    BeforeValidator(_parse_event_time, json_schema_input_type=datetime | int),
    AfterValidator(_to_utc),
    Field(description="Event time: RFC 3339 with offset, or epoch milliseconds. Stored in UTC."),
]

Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:~\-]+$",
        description="Identifier: 1-128 chars of letters, digits and . _ : ~ -",
    ),
]

Text = Annotated[str, Field(max_length=2048)]
ShortText = Annotated[str, Field(max_length=256)]

Money = Annotated[
    float,
    Field(ge=0, le=1e12, allow_inf_nan=False, description="Non-negative amount."),
]

CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code, e.g. USD"),
]

CountryCode = Annotated[
    str,
    Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 country code"),
    AfterValidator(str.upper),
]

ActionName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="Target action: lead, signup, add_to_cart, purchase, install or a custom one",
    ),
]


class Contract(BaseModel):
    """Base of every public model: strict about unknown fields, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        use_enum_values=True,
        validate_default=True,
    )
