"""Who is who: partners (honest, fraudulent, brand bidders) and the bidders of each auction.

Every planted pattern belongs to a named partner, so a detector's finding can
be checked against one line of ``truth.jsonl``.
"""

from __future__ import annotations

import random

from clicktrail.simulate.world import (
    PLACEMENTS,
    Advertiser,
    Bidder,
    Grant,
    KeywordKind,
    Offense,
    Partner,
    World,
    advertisers,
    campaigns,
    keywords,
)

RIVALS = {
    "northwind": "summitgear.example",
    "bluefin": "loanly.example",
    "quokka": "puzzleplanet.example",
}
AUTHORIZED_SEARCH = "agency-searchpro"


def _affiliate(
    key: str,
    name: str,
    site: str,
    brands: tuple[str, ...],
    *,
    role: str = "affiliate",
    patterns: tuple[str, ...] = (),
) -> Partner:
    grants = tuple(Grant(b, ("affiliate", "email")) for b in brands)
    return Partner(key, name, role, site, patterns, grants)


def partners(advs: dict[str, Advertiser]) -> dict[str, Partner]:
    all3 = tuple(advs)
    result = [
        *(
            Partner(
                a.account,
                f"{a.name} own search account",
                "official",
                a.domain,
                grants=(Grant(a.key, ("search",), a.terms + a.misspellings),),
            )
            for a in advs.values()
        ),
        Partner(
            AUTHORIZED_SEARCH,
            "SearchPro agency, authorized to bid on brand terms",
            "authorized_search",
            "searchpro.example",
            grants=tuple(Grant(k, ("search",), advs[k].terms) for k in ("northwind", "quokka")),
        ),
        Partner("pub-newsdaily", "News Daily (display)", "publisher", "newsdaily.example"),
        Partner(
            "pub-weatherapp", "Weather app (in-app display)", "publisher", "weatherapp.example"
        ),
        Partner("social-feed", "Social network ads", "social", "social-feed.example"),
        _affiliate("aff-coupons", "Coupon site", "coupons-hub.example", all3),
        _affiliate("aff-cashback", "Cashback portal", "cashback-club.example", all3[:2]),
        _affiliate("aff-reviews", "Review blog", "honest-reviews.example", all3),
        _affiliate(
            "mail-partners", "Newsletter network", "mailnet.example", all3[:2], role="email"
        ),
        Partner("net-adnet", "Mobile ad network", "app_network", "adnet.example"),
        Partner(
            "net-flood", "Mobile network", "app_network", "flood-media.example", ("click_flooding",)
        ),
        Partner(
            "net-inject",
            "Mobile network",
            "app_network",
            "inject-ads.example",
            ("click_injection",),
        ),
        Partner("pub-botfarm", "Display publisher", "publisher", "viral-clicks.example", ("bot",)),
        Partner(
            "pub-cloudhost", "Display publisher", "publisher", "cloud-ads.example", ("datacenter",)
        ),
        _affiliate(
            "aff-incent",
            "Incentive affiliate",
            "rewards-now.example",
            ("bluefin", "quokka"),
            patterns=("geo_mismatch", "device_mismatch"),
        ),
        _affiliate(
            "aff-turncoat",
            "Content affiliate that turns bad mid-stream",
            "daily-picks.example",
            all3[:2],
            patterns=("click_flooding",),
        ),
        _affiliate(
            "aff-shadow",
            "Affiliate sending forged postbacks",
            "shadow-offers.example",
            all3[:2],
            patterns=("forged_click_id",),
        ),
        _affiliate(
            "aff-brandjack", "Deals affiliate", "topdeals-hub.example", ("northwind", "quokka")
        ),
        _affiliate("aff-typo", "Comparison affiliate", "compare-now.example", all3[:2]),
        _affiliate("aff-lookalike", "Outlet affiliate", "outlet-finds.example", all3[:2]),
        _affiliate("aff-gclid", "Cashback affiliate", "smart-cashback.example", all3[:2]),
    ]
    return {p.key: p for p in result}


def _own(adv: Advertiser, kind: KeywordKind, presence: float, strength: float) -> Bidder:
    campaign = f"{adv.key}-{'generic' if kind == 'generic' else 'brand'}-search"
    return Bidder(
        adv.key,
        campaign,
        "official",
        kind,
        adv.domain,
        presence,
        strength,
        0.0,
        partner=adv.account,
        campaign=campaign,
    )


# advertiser, partner, keyword kind, offense, display domain ("" = the brand's own), active
# from / to (fractions of the time range), and whether its impressions reach the tracker.
_OFFENDERS: tuple[tuple[str, str, KeywordKind, Offense, str, float, float, bool], ...] = (
    ("northwind", "aff-brandjack", "brand", "direct_term", "topdeals-hub.example", 0.15, 1, True),
    ("quokka", "aff-brandjack", "brand", "direct_term", "topdeals-hub.example", 0.4, 1, True),
    ("bluefin", "aff-typo", "misspelled", "misspelled_term", "compare-now.example", 0, 1, True),
    ("northwind", "aff-typo", "misspelled", "misspelled_term", "compare-now.example", 0.5, 1, True),
    ("northwind", "aff-lookalike", "generic", "domain", "", 0.3, 1, True),
    ("bluefin", "aff-lookalike", "generic", "domain", "bluefin-loans-online.example", 0, 1, True),
    ("northwind", "aff-gclid", "brand", "paid_click", "", 0, 0.8, False),
    ("bluefin", "aff-gclid", "brand", "paid_click", "", 0.2, 1, False),
)


def _offenders(rng: random.Random, advs: dict[str, Advertiser]) -> list[Bidder]:
    return [
        Bidder(
            adv,
            partner,
            "offender",
            kind,
            domain or advs[adv].domain,
            presence=round(rng.uniform(0.3, 0.5), 3),
            strength=round(rng.uniform(0.9, 1.1), 3),
            inflation=round(rng.uniform(0.2, 0.6), 3),
            active_from=start,
            active_to=end,
            offense=offense,
            partner=partner,
            campaign=f"{adv}-affiliates",
            impressions=shown,
        )
        for adv, partner, kind, offense, domain, start, end, shown in _OFFENDERS
    ]


def bidders(
    rng: random.Random, advs: dict[str, Advertiser]
) -> dict[tuple[str, KeywordKind], tuple[Bidder, ...]]:
    table: dict[tuple[str, KeywordKind], list[Bidder]] = {}
    for adv in advs.values():
        table[(adv.key, "brand")] = [_own(adv, "brand", 0.95, 1.3)]
        table[(adv.key, "misspelled")] = [_own(adv, "misspelled", 0.75, 1.1)]
        table[(adv.key, "generic")] = [_own(adv, "generic", 0.85, 0.9)]
        rivals: tuple[tuple[KeywordKind, float], ...] = (("brand", 0.3), ("generic", 0.5))
        for kind, presence in rivals:
            table[(adv.key, kind)].append(
                Bidder(
                    adv.key,
                    RIVALS[adv.key],
                    "rival",
                    kind,
                    RIVALS[adv.key],
                    presence=presence,
                    strength=round(rng.uniform(0.7, 0.9), 3),
                    inflation=round(rng.uniform(0.05, 0.2), 3),
                    impressions=False,
                )
            )
        if adv.key in ("northwind", "quokka"):
            table[(adv.key, "brand")].append(
                Bidder(
                    adv.key,
                    AUTHORIZED_SEARCH,
                    "authorized",
                    "brand",
                    "searchpro.example",
                    presence=round(rng.uniform(0.4, 0.6), 3),
                    strength=0.85,
                    inflation=round(rng.uniform(0.1, 0.25), 3),
                    partner=AUTHORIZED_SEARCH,
                    campaign=f"{adv.key}-partner-search",
                )
            )
    for bidder in _offenders(rng, advs):
        table[(bidder.advertiser, bidder.kind)].append(bidder)
    return {key: tuple(value) for key, value in table.items()}


def build_world(seed: int) -> World:
    """The same seed always builds the same world."""
    rng = random.Random(f"world:{seed}")
    advs = advertisers(rng)
    return World(
        advertisers=advs,
        campaigns=campaigns(advs),
        partners=partners(advs),
        keywords=keywords(rng, advs),
        bidders=bidders(rng, advs),
        click_id_key=f"sim-{rng.getrandbits(160):040x}",
        placements=PLACEMENTS,
    )
