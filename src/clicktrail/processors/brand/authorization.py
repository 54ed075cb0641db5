"""Who may use a brand: its official campaigns and accounts, and partners authorized by grant.

Checked per brand, channel and (for keywords) term, because a partner can be welcome on a
brand's affiliate channel and still be an offender when it bids on that brand in search.
"""

from __future__ import annotations

from collections.abc import Mapping

from clicktrail.config.registry import Brand, Partner
from clicktrail.processors.brand.matching import contains, tokens

Grants = dict[tuple[str, str, str], tuple[tuple[str, ...], ...]]


class Authority:
    """Answers "may this campaign/partner use this brand here?" from tables built once."""

    def __init__(self, brands: Mapping[str, Brand], partners: Mapping[str, Partner]) -> None:
        self._official_campaigns = {
            key: frozenset(brand.official_campaigns) for key, brand in brands.items()
        }
        self._official_accounts = {
            key: frozenset(brand.official_accounts) for key, brand in brands.items()
        }
        grants: dict[tuple[str, str, str], list[tuple[str, ...]]] = {}
        for partner_id, partner in partners.items():
            for grant in partner.authorized:
                for channel in grant.channels:
                    terms = grants.setdefault((partner_id, grant.brand, str(channel)), [])
                    terms.extend(t for t in (tokens(term) for term in grant.terms) if t)
        self._grants: Grants = {key: tuple(terms) for key, terms in grants.items()}

    def is_official(self, brand: str, campaign_id: str | None, partner_id: str | None) -> bool:
        return campaign_id in self._official_campaigns.get(
            brand, frozenset()
        ) or partner_id in self._official_accounts.get(brand, frozenset())

    def may_use(
        self,
        brand: str,
        campaign_id: str | None,
        partner_id: str | None,
        channel: str,
        keyword: str | None = None,
    ) -> bool:
        """Official, or granted this brand on this channel (and, with a keyword, one of the
        granted terms appears in it)."""
        if self.is_official(brand, campaign_id, partner_id):
            return True
        if partner_id is None:
            return False
        terms = self._grants.get((partner_id, brand, channel))
        if terms is None:
            return False
        if keyword is None:
            return True
        words = tokens(keyword)
        return any(contains(words, term) for term in terms)
