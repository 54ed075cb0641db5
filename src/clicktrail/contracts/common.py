"""Field types shared by every event and record.

Kept in one place so that an event time, an id or an amount means the same
thing in every model, every JSON Schema and every ClickHouse column.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

SCHEMA_VERSION = 1
"""Current version of the public event contract (``schema_version`` field)."""

EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: anything earlier is not epoch milliseconds
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01
FIRST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LAST_TIME = datetime(2100, 1, 1, tzinfo=UTC)

NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
"""Text without C0, DEL, C1 or Unicode line/paragraph separators: a CR/LF in a partner id
becomes a forged header or report row downstream, a NUL truncates it in C consumers."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x0a``): for diagnostics that quote input."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


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
    """UTC, and within 2000-2100 however it was written (strings like epoch numbers)."""
    if value.tzinfo is None:
        raise ValueError("event time needs a UTC offset")
    if not FIRST_TIME <= value < LAST_TIME:
        raise ValueError("event time must be between 2000-01-01 and 2100-01-01")
    return value.astimezone(UTC)


EventTime = Annotated[
    datetime,
    BeforeValidator(_parse_event_time, json_schema_input_type=datetime | int),
    AfterValidator(_to_utc),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": "^20[0-9]{2}-"},
                {"type": "number", "minimum": EPOCH_MS_MIN, "maximum": EPOCH_MS_MAX},
            ]
        },
        mode="validation",
    ),
    Field(
        description="Event time: RFC 3339 with offset, or epoch milliseconds; "
        "2000-01-01 to 2100-01-01. Stored in UTC."
    ),
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


def _no_control(value: Any) -> Any:
    """Checked before ``str_strip_whitespace``: a trailing CR/LF is refused, not trimmed."""
    if isinstance(value, str) and _CONTROL.search(value) is not None:
        raise ValueError("control characters (C0, DEL, C1, U+2028/9) are not allowed")
    return value


_TEXT = BeforeValidator(_no_control)
Text = Annotated[str, Field(max_length=2048, pattern=NO_CONTROL), _TEXT]
ShortText = Annotated[str, Field(max_length=256, pattern=NO_CONTROL), _TEXT]
IpAddress = Annotated[
    ShortText,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "ipv4"},
                {"type": "string", "format": "ipv6"},
            ],
            "description": "IPv4 or IPv6 address (with ip_mode hash, also the intake's own "
            "h: + 24 hex digits)",
        },
        mode="validation",
    ),
]
Diagnostic = Annotated[str, Field(max_length=2048)]
"""Text the pipeline writes itself (an error message, a delivery failure): may span lines."""

Money = Annotated[
    float,
    Field(ge=0, le=1e12, allow_inf_nan=False, description="Non-negative amount."),
]

CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
"""ISO 4217 codes. pycountry (pinned) ships the ISO tables and follows their revisions, and
it serves countries too, so one maintained dependency answers both; built once, a set
lookup per event."""
COUNTRIES = frozenset(country.alpha_2 for country in pycountry.countries)
"""ISO 3166-1 alpha-2 codes (pycountry, as above)."""


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


def _country(value: str) -> str:
    value = value.upper()
    if value not in COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency code, e.g. USD",
        json_schema_extra={"enum": sorted(CURRENCIES)},
    ),
    AfterValidator(_currency),
]

CountryCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 alpha-2 country code, either case (stored upper case)",
        json_schema_extra={"enum": sorted(COUNTRIES) + sorted(c.lower() for c in COUNTRIES)},
    ),
    AfterValidator(_country),
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
