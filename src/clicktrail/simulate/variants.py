"""Variants: the parameters of every planted pattern, drawn per run from wide ranges.

Variant 0 is the reference world that the tests and the README's single-run table use.
Any other variant draws each parameter from the range documented beside it (the same
number always draws the same values), so ``clicktrail evaluate --matrix`` can judge the
detectors by their worst case over worlds nobody tuned them on. The ranges follow what
is reported from the field: floods spread thin over hundreds of addresses at human
per-minute rates, bots behind HTTP libraries and headless browsers as well as crawlers,
farms that are a small or a large share of a partner's traffic, injected clicks from
under a second to just under the install cut-off, and more or less disorderly delivery.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

from clicktrail.simulate.users import BOT_AGENTS

MORE_BOT_AGENTS = (
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Scrapy/2.11.2 (+https://scrapy.org)",
    "python-urllib3/2.2.1",
    "Python-urllib/3.11",
    "aiohttp/3.9.5",
    "Wget/1.21.4",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Java/17.0.10",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "axios/1.7.2",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Lighthouse",
)
"""Real agents of crawlers, scrapers, HTTP libraries and headless browsers beyond the
reference world's; a variant's bots use a draw from both lists."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One world's parameters; the defaults are the reference world (variant 0)."""

    index: int = 0
    flood_ips: int = 4
    """Addresses a flooder fires from: 1-500, log-uniform."""
    flood_networks: int = 2
    """/24 networks those addresses sit in: 1 up to the address count (at most 100)."""
    flood_agents: int = 2
    """User agents a flooder rotates: 1-50."""
    flood_clicks: tuple[int, int] = (8, 25)
    """Clicks per flood session, low and high: low 1-10, high low to low + 30."""
    flood_gap_ms: tuple[int, int] = (50, 4_000)
    """Time between a session's clicks: low 50 ms-2 min (log-uniform), high 2-30x low,
    at most 30 min; at the top a session is one click every few minutes."""
    bot_share: float = 0.7
    """Share of the bot publisher's audience that is machines: 0.2-0.9."""
    datacenter_share: float = 0.6
    """Share of the hosting publisher's audience from hosting ranges: 0.2-0.9."""
    bot_agents: tuple[str, ...] = BOT_AGENTS
    """Agents the bots use: 4-12 drawn from both lists."""
    incent_share: float = 0.4
    """Share of the incentive affiliate's clicks from its farm: 0.1-0.6."""
    inject_lead_ms: tuple[int, int] = (1_000, 8_000)
    """How long before the install an injected click fires: low 0.3-3 s, high up to 9.5 s."""
    carrier_nat_share: float = 0.0
    """Share of honest mobile users behind a carrier's NAT (0-0.6): they reach the tracker
    from a few shared /24 networks, as most mobile traffic does in the field, so counts per
    network see many devices that are all real."""
    carrier_networks: int = 0
    """/24 networks the carriers' NAT uses: 1-20 when ``carrier_nat_share`` is set."""
    automated_bids: bool = True
    """Whether the official search campaigns bid automatically (each auction's bid follows
    its price, so impressions show the inflation) or manually (one bid per keyword: only
    the clicks' costs show it): a coin per variant."""
    delayed: float | None = None
    """Share of lines delivered minutes late (None: the scenario's, 0.01): 0-0.05."""
    duplicates: float | None = None
    """Share of lines delivered twice (None: the scenario's, 0.004): 0-0.02."""

    @classmethod
    def draw(cls, index: int) -> Variant:
        """Variant ``index``: the reference world for 0, else a draw from the ranges."""
        if index == 0:
            return cls()
        rng = random.Random(f"variant:{index}")
        ips = round(math.exp(rng.uniform(0, math.log(500))))
        low = rng.randint(1, 10)
        gap = round(math.exp(rng.uniform(math.log(50), math.log(120_000))))
        lead = rng.randint(300, 3_000)
        agents = [*BOT_AGENTS, *MORE_BOT_AGENTS]
        return cls(
            index=index,
            flood_ips=ips,
            flood_networks=rng.randint(1, min(ips, 100)),
            flood_agents=rng.randint(1, 50),
            flood_clicks=(low, low + rng.randint(0, 30)),
            flood_gap_ms=(gap, min(1_800_000, round(gap * rng.uniform(2, 30)))),
            bot_share=rng.uniform(0.2, 0.9),
            datacenter_share=rng.uniform(0.2, 0.9),
            bot_agents=tuple(rng.sample(agents, rng.randint(4, 12))),
            incent_share=rng.uniform(0.1, 0.6),
            inject_lead_ms=(lead, rng.randint(lead + 200, 9_500)),
            delayed=rng.uniform(0, 0.05),
            duplicates=rng.uniform(0, 0.02),
            carrier_nat_share=rng.uniform(0, 0.6),
            carrier_networks=rng.randint(1, 20),
            automated_bids=rng.random() < 0.5,
        )

    def describe(self) -> dict[str, Any]:
        """The parameters as ``scenario.json`` records them."""
        values = asdict(self)
        values["bot_agents"] = len(self.bot_agents)
        return values
