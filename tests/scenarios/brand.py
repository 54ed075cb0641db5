"""A brand bidder in the official campaign's auctions, shared by the alerting tests.

``aff-jack`` may promote northwind only on affiliate and email channels, yet its
search ads meet the official campaign's on "northwind boots" in every other
auction. From round ``RAISES_AT`` on, the official CPC is 50% higher when they
meet, so over the run it is (10 x 1.0 + 20 x 1.5) / 30 = 4/3 of the CPC without
them. ``agency`` bids on the brand term with the advertiser's blessing.
Expected: one conflict, for aff-jack on that keyword, info -> warning at 10
offending impressions -> critical once the inflation shows; nothing about agency.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYWORD = "northwind boots"
ROUNDS = 60
OFFENDER_IMPRESSIONS = ROUNDS // 2
RAISES_AT = 20
INFLATION = 1 / 3
SECRET = "whsec-brand-test"


def campaign(channel: str) -> dict[str, Any]:
    """A northwind campaign on ``channel`` (official or not is the brand's say)."""
    return {
        "advertiser": "northwind",
        "brand": "northwind",
        "channel": channel,
        "landing_url": "https://www.northwind.example/?cid={click_id}",
    }


def registry(alerts: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "advertisers": {"northwind": {"postback_secret": "0123456789abcdef-secret"}},
        "brands": {
            "northwind": {
                "advertiser": "northwind",
                "terms": ["northwind"],
                "misspellings": ["nortwind"],
                "official_domains": ["northwind.example"],
                "official_campaigns": ["nw-search"],
                "official_accounts": ["nw-ads"],
            }
        },
        "campaigns": {"nw-search": campaign("search"), "nw-affiliates": campaign("affiliate")},
        "partners": {
            "nw-ads": {},
            "agency": {"authorized": [{"brand": "northwind", "channels": ["search"]}]},
            "aff-jack": {"authorized": [{"brand": "northwind", "channels": ["affiliate"]}]},
        },
        "security": {"click_id_key": "brand-scenario-click-key-0123456"},
    }
    if alerts is not None:
        data["alerts"] = alerts
    return data


def webhook_alerts(**urls: str) -> dict[str, Any]:
    """One signed webhook per name, all on one route from ``warning`` up."""
    return {
        "cooldown_seconds": 3600,
        "destinations": {
            name: {"kind": "webhook", "url": url, "secret": SECRET} for name, url in urls.items()
        },
        "routes": [{"min_severity": "warning", "destinations": list(urls)}],
    }


def _ts(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def events(rounds: int = ROUNDS) -> list[dict[str, Any]]:
    """Per round: the official ad, every other round aff-jack's, an authorized agency ad,
    and the official click with its cost (1.5x when aff-jack was in a later auction)."""
    out: list[dict[str, Any]] = []

    def impression(n: int, at: float, campaign: str, partner: str, domain: str) -> None:
        out.append(
            {
                "type": "impression",
                "event_id": f"i{n}-{partner}",
                "ts": _ts(at),
                "impression_id": f"imp{n}-{partner}",
                "campaign_id": campaign,
                "partner_id": partner,
                "channel": "search",
                "keyword": KEYWORD,
                "ad_domain": domain,
                "user": {"user_id": f"u{n}"},
            }
        )

    for n in range(rounds):
        at = n * 60.0
        impression(n, at, "nw-search", "nw-ads", "northwind.example")
        impression(n, at, "nw-search", "agency", "northwind.example")
        present = n % 2 == 0
        if present:
            impression(n, at, "nw-affiliates", "aff-jack", "deals.example")
        out.append(
            {
                "type": "click",
                "event_id": f"c{n}",
                "ts": _ts(at + 20),
                "click_id": f"clk{n}",
                "impression_id": f"imp{n}-nw-ads",
                "campaign_id": "nw-search",
                "partner_id": "nw-ads",
                "channel": "search",
                "keyword": KEYWORD,
                "cost": 1.5 if present and n >= RAISES_AT else 1.0,
                "user": {"user_id": f"u{n}"},
            }
        )
    return out
