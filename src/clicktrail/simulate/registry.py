"""The simulated world as a clicktrail registry, so ``clicktrail replay --config`` understands it.

It holds the click-id signing key the simulator used, the postback secrets,
the brands with their official campaigns, who is authorized for what, and the
fraud settings naming the datacenter ranges and bot agents it planted.
"""

from __future__ import annotations

from typing import Any

import yaml

from clicktrail.simulate.timing import DAY_MS
from clicktrail.simulate.users import DATACENTER_CIDRS
from clicktrail.simulate.world import World

ACTIONS = {
    "lead": {"txid_policy": "update", "label_horizon_hours": 2},
    "signup": {"txid_policy": "ignore", "label_horizon_hours": 2},
    "add_to_cart": {"txid_policy": "new", "label_horizon_hours": 2},
    "purchase": {"txid_policy": "update", "label_horizon_hours": 6},
    "install": {"txid_policy": "ignore", "min_ctit_seconds": 10, "label_horizon_hours": 2},
}
"""Label horizons as measured best by ``python -m clicktrail.processors.models.offline``
(seed 9): a few conversions come later, but a model that waits less is fresher."""


def registry_data(world: World) -> dict[str, Any]:
    campaigns = world.campaigns.values()
    return {
        "advertisers": {
            a.key: {"name": a.name, "postback_secret": a.secret, "actions": list(a.actions)}
            for a in world.advertisers.values()
        },
        "brands": {
            a.key: {
                "advertiser": a.key,
                "terms": list(a.terms),
                "misspellings": list(a.misspellings),
                "official_domains": [a.domain],
                "official_campaigns": [
                    c.key for c in campaigns if c.official and c.advertiser == a
                ],
                "official_accounts": [a.account],
            }
            for a in world.advertisers.values()
        },
        "campaigns": {
            c.key: {
                "advertiser": c.advertiser.key,
                "brand": c.advertiser.key,
                "channel": c.channel,
                "landing_url": c.landing_url + "?cid={click_id}",
                "landing_domains": [f"www.{c.advertiser.domain}", c.advertiser.domain],
                "attribution": {
                    "model": "last_click",
                    "click_window_days": c.window_ms // DAY_MS,
                    "view_window_days": c.view_window_ms // DAY_MS,
                    "conversion_grace_seconds": 300,
                },
            }
            for c in campaigns
        },
        "partners": {
            p.key: {
                "name": p.name,
                "authorized": [
                    {"brand": g.brand, "channels": list(g.channels), "terms": list(g.terms)}
                    for g in p.grants
                ],
            }
            for p in world.partners.values()
        },
        "actions": ACTIONS,
        "privacy": {"ip_mode": "truncate"},
        "security": {"click_id_key": world.click_id_key, "postback_max_age_seconds": 300},
        "intake": {"max_event_bytes": 65536, "max_future_skew_seconds": 3600},
        "fraud": {
            "window_seconds": 3600,
            "max_clicks_per_ip": 30,
            "max_clicks_per_device": 20,
            "late_ctit_seconds": 86400,
            "late_ctit_share": 0.3,
            "datacenter_cidrs": list(DATACENTER_CIDRS),
            "partner_share_alert": 0.2,
        },
        "alerts": {
            "cooldown_seconds": 3600,
            "destinations": {"log": {"kind": "log"}},
            "routes": [{"destinations": ["log"]}],
        },
    }


def registry_yaml(world: World, seed: int) -> str:
    header = (
        f"# The world of 'clicktrail simulate --seed {seed}': advertisers, brands, campaigns,\n"
        "# partners and the click-id key its events are signed with. Use it with\n"
        "#   clicktrail replay --config registry.yaml events.jsonl\n"
    )
    body = yaml.safe_dump(registry_data(world), sort_keys=False, allow_unicode=True, width=100)
    return header + body
