"""What a dashboard URL may ask for, checked before any query runs.

Every value a user can put in a URL is parsed here into a typed value or refused with a
400 that says why: dates are ``YYYY-MM-DD`` and nothing else, a segment is one of a fixed
set of rollup columns, ids match the registry's key pattern. The queries then bind the
values as parameters; column names come from :data:`SEGMENTS`, never from the URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MAX_DAYS = 366
DEFAULT_DAYS = 7
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_KEY = re.compile(r"^[A-Za-z0-9._:~\-]{1,128}\Z")
_SUB_KEY = re.compile(r"^[A-Za-z0-9_]{1,32}\Z")

SEGMENTS: dict[str, str] = {
    "country": "country",
    "device": "device_type",
    "partner": "partner_id",
    "channel": "channel",
    "os": "os",
    "sub": "sub",
}
"""Funnel segments: URL value -> column of ``agg_hourly``, or of the raw tables for the
ones no rollup holds (:data:`RAW_SEGMENTS`)."""
RAW_SEGMENTS = frozenset({"os", "sub"})
"""Splits read from the raw tables: ``os``, and ``sub`` (a sub-id, the key in ``sub=``)."""


class BadParameter(ValueError):
    """A URL parameter the dashboard refuses; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return self.start + timedelta(days=self.days)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def bounds(self) -> dict[str, datetime]:
        """Query parameters ``start`` / ``end`` (naive UTC, as ClickHouse DateTime binds)."""
        return {
            "start": self.start.replace(tzinfo=None),
            "end": self.end.replace(tzinfo=None),
        }

    def query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"

    def label(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()} ({self.days} days)"


def parse_date(name: str, raw: str) -> date:
    if not _DATE.match(raw):
        raise BadParameter(f"{name}: {raw[:40]!r} is not a date; use YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(f"{name}: {raw!r} is not a calendar date") from None


def period(params: Mapping[str, str], latest: date) -> Period:
    """The period a page shows: ``from``/``to`` as given (either may be left out), else
    the last :data:`DEFAULT_DAYS` days up to ``latest``, the last day with data."""
    raw_from, raw_to = params.get("from", ""), params.get("to", "")
    last = parse_date("to", raw_to) if raw_to else None
    first = parse_date("from", raw_from) if raw_from else None
    if last is None:
        last = latest if first is None else min(latest, first + timedelta(days=DEFAULT_DAYS - 1))
        last = max(last, first) if first is not None else last
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadParameter(f"from: {first} is after to: {last}")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadParameter(f"the period is longer than {MAX_DAYS} days")
    return Period(first, last)


def key(name: str, raw: str) -> str:
    """An id from the registry (campaign, partner, brand): refused unless it looks like one."""
    if not _KEY.match(raw):
        raise BadParameter(f"{name}: {raw[:40]!r} is not a valid id")
    return raw


def segment(raw: str) -> str | None:
    """The rollup column a funnel is split by, or None for no split."""
    if not raw:
        return None
    if raw not in SEGMENTS:
        raise BadParameter(f"segment: {raw[:40]!r} is not one of {', '.join(SEGMENTS)}")
    return SEGMENTS[raw]


def sub_key(raw: str) -> str:
    """The sub-id key a partner page breaks clicks down by (sub1 unless asked)."""
    raw = raw or "sub1"
    if not _SUB_KEY.match(raw):
        raise BadParameter(f"sub: {raw[:40]!r} is not a sub-id name (letters, digits, _)")
    return raw
