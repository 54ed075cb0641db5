"""The true conversion model: P(action | context) as a logistic function with seeded weights.

Only what a click event shows enters the model (campaign, partner, placement,
keyword, country, device, os, hour of week, segments), with main effects only,
so an online logistic regression on those features can in principle reach the
oracle AUC that the truth file allows to compute.
"""

from __future__ import annotations

import math
import random

from clicktrail.simulate.users import COUNTRIES, FARM_COUNTRIES, OS_BY_DEVICE, SEGMENTS, User
from clicktrail.simulate.world import ACTIONS, World

BASE_LOGIT = {"lead": -3.3, "signup": -3.1, "add_to_cart": -2.5, "purchase": -3.9, "install": -2.7}
KEYWORD_SHIFT = {"brand": 1.0, "misspelled": 0.5, "generic": -0.4}
SEARCH_PLACEMENTS = ("google-search", "bing-search")
_N = len(ACTIONS)
_ZERO = (0.0,) * _N


def hour_of_week(ts_ms: int) -> int:
    """0 = Monday 00:00 UTC (1970-01-01 was a Thursday)."""
    hours = ts_ms // 3_600_000
    return (hours + 72) % 168


class TrueModel:
    """Seeded weights; ``probabilities`` is the ground truth written for every clean click."""

    def __init__(self, seed: int, world: World, users: list[User]) -> None:
        rng = random.Random(f"model:{seed}")

        def weights(scale: float, shift: float = 0.0) -> tuple[float, ...]:
            return tuple(shift + rng.gauss(0.0, scale) for _ in ACTIONS)

        self.base = tuple(BASE_LOGIT[a] for a in ACTIONS)
        self.campaign = {key: weights(0.45) for key in world.campaigns}
        self.partner = {key: weights(0.6) for key in world.partners}
        self.keyword = {
            text: weights(0.45, KEYWORD_SHIFT[kw.kind]) for text, kw in world.keywords.items()
        }
        places = [p for group in world.placements.values() for p in group]
        self.placement = {p: weights(0.45) for p in [*places, *SEARCH_PLACEMENTS]}
        country = {c: weights(0.45) for c, _ in COUNTRIES} | {
            c: weights(0.3) for c in FARM_COUNTRIES
        }
        device = {d: weights(0.45) for d in OS_BY_DEVICE}
        system = {o: weights(0.3) for o in sorted({o for t in OS_BY_DEVICE.values() for o, _ in t})}
        segment = {s: weights(0.8) for s in SEGMENTS}
        self.hour = self._hours(rng)
        self.user_terms = [
            tuple(
                country[u.country][a]
                + device[u.device][a]
                + system[u.os][a]
                + sum(segment[s][a] for s in u.segments)
                for a in range(_N)
            )
            for u in users
        ]
        self.actions = {
            key: tuple(ACTIONS.index(a) for a in camp.advertiser.actions)
            for key, camp in world.campaigns.items()
        }

    @staticmethod
    def _hours(rng: random.Random) -> list[tuple[float, ...]]:
        """A daily cycle with its own peak per action, and a weekend shift."""
        amplitude = [rng.uniform(0.25, 0.6) for _ in ACTIONS]
        peak = [rng.uniform(0, 24) for _ in ACTIONS]
        weekend = [rng.gauss(0, 0.3) for _ in ACTIONS]
        table = []
        for how in range(168):
            day, hour = divmod(how, 24)
            table.append(
                tuple(
                    amplitude[a] * math.cos(2 * math.pi * (hour - peak[a]) / 24)
                    + (weekend[a] if day >= 5 else 0.0)
                    for a in range(_N)
                )
            )
        return table

    def probabilities(
        self,
        campaign: str,
        partner: str,
        user: User,
        ts_ms: int,
        *,
        placement: str | None,
        keyword: str | None,
    ) -> dict[str, float]:
        c = self.campaign[campaign]
        p = self.partner[partner]
        pl = self.placement.get(placement, _ZERO) if placement else _ZERO
        kw = self.keyword.get(keyword, _ZERO) if keyword else _ZERO
        u = self.user_terms[user.index]
        h = self.hour[hour_of_week(ts_ms)]
        base = self.base
        exp = math.exp
        return {
            ACTIONS[a]: 1.0 / (1.0 + exp(-(base[a] + c[a] + p[a] + pl[a] + kw[a] + u[a] + h[a])))
            for a in self.actions[campaign]
        }
