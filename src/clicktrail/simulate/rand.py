"""Fast draws and id text for the per-event path.

``random.randint`` and ``random.choice`` cost about a microsecond each, a real
share of a budget of twenty per event; these take one ``random()`` call.
``int(random() * n)`` is always below ``n``: ``random()`` is at most 1 - 2**-53,
and that product rounds below ``n`` for every ``n`` under 2**53.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high], both included."""
    return low + int(rng.random() * (high - low + 1))


def one_of(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def b64url(data: bytes) -> str:
    """Unpadded base64url, the alphabet of click ids and ad-platform click ids."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
