"""Turn one impression or click into brand-conflict hits: who used which brand, and how.

Pure and stateless: the same event always gives the same hits, so the rules can be tested
and measured apart from the aggregation. Precedence per brand is term, misspelled term,
domain, paid click id, search referrer: one hit per (event, brand), the strongest reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from clicktrail.config.registry import Registry
from clicktrail.contracts import Click, Impression
from clicktrail.processors.brand.authorization import Authority
from clicktrail.processors.brand.matching import BrandMatcher, domain_of, normalize

PAID_SEARCH_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid", "yclid"})
PAID_CLICK_CHANNELS = frozenset({"affiliate", "email", "other"})
"""Channels where a paid-search click id means someone else's search ad: display and video
clicks carry gclid legitimately (Google's display network auto-tags them too)."""
SEARCH_ENGINES = {"google": "q", "bing": "q", "yahoo": "p", "duckduckgo": "q"}
OFFENSE_OF_SIGNAL = {
    "term": "direct_term",
    "misspelled_term": "misspelled_term",
    "domain": "domain",
    "paid_click_id": "paid_click",
    "serp_referrer": "paid_click",
    "auction_insights": "domain",
}


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence: an event (or report row) that used a brand without the right."""

    brand: str
    offender_kind: str
    offender_id: str
    signal: str
    keyword: str
    subject_type: str
    subject_id: str
    ts: datetime
    channel: str | None = None
    offender_domain: str | None = None
    campaign_id: str | None = None


def serp_query(referrer: str | None) -> str | None:
    """The search query of a results-page referrer (google/bing/yahoo/duckduckgo), if any."""
    if not referrer:
        return None
    parts = urlsplit(referrer)
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    for engine, param in SEARCH_ENGINES.items():
        if engine in labels:
            values = parse_qs(parts.query).get(param)
            return values[0] if values and values[0].strip() else None
    return None


class SignalRules:
    """Classify events against the registry's brands; built once, called per event."""

    def __init__(self, registry: Registry, generic_words: tuple[str, ...] = ()) -> None:
        self.matcher = BrandMatcher(registry.brands, generic_words)
        self.authority = Authority(registry.brands, registry.partners)
        self._campaign_brand = {k: c.brand for k, c in registry.campaigns.items() if c.brand}
        self._official_brand = {
            campaign: key
            for key, brand in registry.brands.items()
            for campaign in brand.official_campaigns
        }

    def route(self, event: Impression | Click) -> str | None:
        """The brand whose detector state this event needs (a repartition key), or ``None``
        when it cannot matter to any brand: no keyword, no brand domain, no search origin."""
        channel = str(event.channel)
        if channel == "search" or event.keyword is not None:
            brands = {m.brand for m in self.matcher.match_keyword(event.keyword)}
            for domain in (event.ad_domain, domain_of(event.landing_url)):
                found = self.matcher.domain_brand(domain_of(domain))
                if found is not None and (not found[1] or domain == event.ad_domain):
                    brands.add(found[0])
            if event.campaign_id in self._official_brand:
                brands.add(self._official_brand[event.campaign_id])
            return min(brands) if brands else None
        if isinstance(event, Click) and channel in PAID_CLICK_CHANNELS:
            matches = self.matcher.match_keyword(serp_query(event.referrer))
            if matches:
                return matches[0].brand
            if PAID_SEARCH_IDS & set(event.paid_click_ids):
                return self._campaign_brand.get(event.campaign_id)
        return None

    def __call__(self, event: Impression | Click) -> list[Hit]:
        channel = str(event.channel)
        is_search = channel == "search" or event.keyword is not None
        hits: dict[str, Hit] = {}
        if is_search:
            for match in self.matcher.match_keyword(event.keyword):
                if not self._allowed(event, match.brand, channel, event.keyword):
                    hits[match.brand] = self._hit(event, match.brand, match.kind, event.keyword)
            for domain in (event.ad_domain, domain_of(event.landing_url)):
                found = self.matcher.domain_brand(domain_of(domain))
                if found is None or found[0] in hits:
                    continue
                brand, official = found
                own_ad = not official or domain == event.ad_domain
                if own_ad and not self._allowed(event, brand, channel, None):
                    hits[brand] = self._hit(event, brand, "domain", event.keyword)
        elif isinstance(event, Click) and channel in PAID_CLICK_CHANNELS:
            hit = self._paid_click(event)
            if hit is not None:
                hits[hit.brand] = hit
        return list(hits.values())

    def _paid_click(self, click: Click) -> Hit | None:
        query = serp_query(click.referrer)
        matches = self.matcher.match_keyword(query)
        brand = matches[0].brand if matches else self._campaign_brand.get(click.campaign_id)
        if brand is None:
            return None
        if matches:
            signal = "serp_referrer"
        elif PAID_SEARCH_IDS & set(click.paid_click_ids):
            signal = "paid_click_id"
        else:
            return None
        if self._allowed(click, brand, "search", query):
            return None
        return self._hit(click, brand, signal, query)

    def _allowed(
        self, event: Impression | Click, brand: str, channel: str, keyword: str | None
    ) -> bool:
        return self.authority.may_use(brand, event.campaign_id, event.partner_id, channel, keyword)

    @staticmethod
    def _hit(event: Impression | Click, brand: str, signal: str, keyword: str | None) -> Hit:
        if isinstance(event, Click):
            subject_type, subject_id = "click", event.click_id
        else:
            subject_type, subject_id = "impression", event.impression_id
        return Hit(
            brand=brand,
            offender_kind="partner",
            offender_id=event.partner_id,
            signal=signal,
            keyword=normalize(keyword or ""),
            subject_type=subject_type,
            subject_id=subject_id,
            ts=event.ts,
            channel=str(event.channel),
            offender_domain=domain_of(event.ad_domain),
            campaign_id=event.campaign_id,
        )
