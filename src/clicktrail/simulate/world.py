"""The simulated business: its types, and the advertisers with their brands, campaigns and
search keywords.

The cast is fixed (so docs and evaluations can name it); the seed draws the
numbers. Partners and search bidders are in ``cast``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, cast

ACTIONS = ("lead", "signup", "add_to_cart", "purchase", "install")
KeywordKind = Literal["brand", "misspelled", "generic"]
BidderRole = Literal["official", "authorized", "rival", "offender"]
Offense = Literal["direct_term", "misspelled_term", "domain", "paid_click"]


@dataclass(frozen=True, slots=True)
class Advertiser:
    key: str
    index: int
    name: str
    currency: str
    domain: str
    account: str
    secret: str
    actions: tuple[str, ...]
    terms: tuple[str, ...]
    misspellings: tuple[str, ...]
    queries: dict[KeywordKind, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Keyword:
    text: str
    advertiser: str
    kind: KeywordKind
    base_cpc: float


@dataclass(frozen=True, slots=True)
class Campaign:
    key: str
    advertiser: Advertiser
    channel: str
    official: bool
    window_ms: int
    view_window_ms: int

    @property
    def landing_url(self) -> str:
        return f"https://www.{self.advertiser.domain}/{self.channel}"


@dataclass(frozen=True, slots=True)
class Grant:
    brand: str
    channels: tuple[str, ...]
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Partner:
    key: str
    name: str
    role: str
    site: str
    patterns: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True, slots=True)
class Bidder:
    """One party in a search auction; only those with a ``partner`` reach the tracker."""

    advertiser: str
    name: str
    role: BidderRole
    kind: KeywordKind
    domain: str
    presence: float
    strength: float
    inflation: float
    active_from: float = 0.0
    active_to: float = 1.0
    offense: Offense | None = None
    partner: str | None = None
    campaign: str | None = None
    impressions: bool = True


@dataclass(frozen=True, slots=True)
class World:
    advertisers: dict[str, Advertiser]
    campaigns: dict[str, Campaign]
    partners: dict[str, Partner]
    keywords: dict[str, Keyword]
    bidders: dict[tuple[str, KeywordKind], tuple[Bidder, ...]]
    click_id_key: str
    placements: dict[str, tuple[str, ...]] = field(default_factory=dict)


_CAST = (
    (
        "northwind",
        "Northwind Outfitters",
        "EUR",
        "northwind.example",
        ("signup", "add_to_cart", "purchase"),
        ("northwind", "northwind outfitters"),
        ("nortwind", "northwnd outfitters"),
        {
            "brand": ("northwind", "northwind outfitters", "northwind boots", "northwind sale"),
            "misspelled": ("nortwind", "northwnd outfitters", "nortwind boots"),
            "generic": ("hiking boots", "rain jacket", "trail running shoes", "camping tent"),
        },
        ("brand-search", "generic-search", "display", "social", "affiliates", "partner-search"),
    ),
    (
        "bluefin",
        "Bluefin Loans",
        "USD",
        "bluefin-loans.example",
        ("lead", "signup"),
        ("bluefin", "bluefin loans"),
        ("bluefinn", "blufin loans"),
        {
            "brand": ("bluefin", "bluefin loans", "bluefin loans login", "bluefin rates"),
            "misspelled": ("bluefinn", "blufin loans", "bluefinn rates"),
            "generic": ("personal loan", "loan calculator", "debt consolidation", "car loan rates"),
        },
        ("brand-search", "generic-search", "display", "affiliates"),
    ),
    (
        "quokka",
        "Quokka Quest",
        "USD",
        "quokkaquest.example",
        ("install", "purchase"),
        ("quokka quest", "quokka game"),
        ("quoka quest", "qokka quest"),
        {
            "brand": ("quokka quest", "quokka quest download", "quokka game", "quokka quest tips"),
            "misspelled": ("quoka quest", "qokka quest", "quoka quest app"),
            "generic": ("puzzle adventure game", "offline games", "free mobile games"),
        },
        ("brand-search", "generic-search", "social", "affiliates", "app-ua", "partner-search"),
    ),
)
_CHANNEL = {
    "brand-search": "search",
    "generic-search": "search",
    "partner-search": "search",
    "display": "display",
    "social": "social",
    "affiliates": "affiliate",
    "app-ua": "display",
}
PLACEMENTS = {
    "display": ("article-top", "article-inline", "sidebar", "homepage-hero", "in-app-banner"),
    "social": ("feed", "stories", "reels", "right-column"),
    "affiliate": ("coupon-list", "review-article", "cashback-portal", "comparison-table"),
    "email": ("newsletter", "deal-alert"),
    "app": ("rewarded-video", "interstitial", "playable", "banner"),
}


def advertisers(rng: random.Random) -> dict[str, Advertiser]:
    result = {}
    for index, (key, name, currency, domain, actions, terms, miss, queries, _) in enumerate(_CAST):
        result[key] = Advertiser(
            key=key,
            index=index,
            name=name,
            currency=currency,
            domain=domain,
            account=f"{key}-ads",
            secret=f"{key}-{rng.getrandbits(96):024x}",
            actions=actions,
            terms=terms,
            misspellings=miss,
            queries=cast(dict[KeywordKind, tuple[str, ...]], queries),
        )
    return result


def campaigns(advertisers: dict[str, Advertiser]) -> dict[str, Campaign]:
    result = {}
    for key, *_, kinds in _CAST:
        adv = advertisers[key]
        for kind in kinds:
            days = 7 if kind == "app-ua" else 30
            result[f"{key}-{kind}"] = Campaign(
                key=f"{key}-{kind}",
                advertiser=adv,
                channel=_CHANNEL[kind],
                official=kind in ("brand-search", "generic-search"),
                window_ms=days * 86_400_000,
                view_window_ms=86_400_000,
            )
    return result


def keywords(rng: random.Random, advertisers: dict[str, Advertiser]) -> dict[str, Keyword]:
    ranges = {"brand": (0.22, 0.45), "misspelled": (0.18, 0.35), "generic": (0.8, 2.6)}
    result = {}
    for adv in advertisers.values():
        for kind, queries in adv.queries.items():
            low, high = ranges[kind]
            for text in queries:
                cpc = round(rng.uniform(low, high), 2)
                result[text] = Keyword(text, adv.key, kind, cpc)
    return result
