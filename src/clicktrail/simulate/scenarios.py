"""Named scenarios and run options.

A scenario only scales what the world plants (fraud volume, brand bidding,
delivery noise); the world itself is the same, so results from different
scenarios of one seed can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clicktrail.simulate.variants import Variant

DEFAULT_START = datetime(2026, 3, 1, tzinfo=UTC)
DEFAULT_EVENTS = 100_000
DEFAULT_DAYS = 7.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """Multipliers on the planted patterns; 0 switches a family off."""

    name: str
    description: str
    fraud: float = 1.0
    brand: float = 1.0
    duplicates: float = 0.004
    delayed: float = 0.01
    late_clicks: float = 0.05


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "every planted fraud and brand-bidding pattern at moderate volume"),
        Scenario(
            "clean",
            "no fraud, no unauthorized brand bidding: the false-positive baseline",
            fraud=0.0,
            brand=0.0,
        ),
        Scenario("fraud-heavy", "three times the fraud volume of 'default'", fraud=3.0),
        Scenario("brand-heavy", "unauthorized brand bidders in most brand auctions", brand=2.0),
    )
}


@dataclass(frozen=True, slots=True)
class Options:
    """Everything that determines the output: same options, same bytes."""

    out: Path
    events: int = DEFAULT_EVENTS
    seed: int = 1
    start: datetime = DEFAULT_START
    days: float = DEFAULT_DAYS
    scenario: str = "default"
    variant: int = 0
    """0: the reference world; any other number draws every planted pattern's
    parameters from wide ranges (see ``variants``)."""

    def __post_init__(self) -> None:
        if self.variant < 0:
            raise ValueError("--variant must be 0 or more")
        if self.events < 1:
            raise ValueError("--events must be at least 1")
        if not 0 < self.days <= 366:
            raise ValueError("--days must be more than 0 and at most 366")
        if self.scenario not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            raise ValueError(f"unknown scenario {self.scenario!r}; choose one of {known}")
        if self.start.tzinfo is None:
            raise ValueError("--start needs a UTC offset, e.g. 2026-03-01T00:00:00Z")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.days * 86_400_000)

    @property
    def spec(self) -> Scenario:
        return SCENARIOS[self.scenario]

    @property
    def params(self) -> Variant:
        return Variant.draw(self.variant)
