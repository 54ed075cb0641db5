"""Unknown ids: a click or conversion naming a partner or campaign the registry does not list.

With ``security.unknown_ids: accept_and_flag`` (the default) the intake accepts such
events, so nothing is lost while a new partner is being set up, and this rule marks them:
money must not flow to an id nobody configured (a typo, or a partner inventing itself a
second account) before someone looked. The weight is a suspicion, not a rejection: the
traffic may be honest. A registry that lists no partner (campaign) has nothing to compare
against, so the check starts once it lists one; with ``reject`` the intake refuses these
events and this rule never sees one.
"""

from __future__ import annotations

from clicktrail.config import Registry
from clicktrail.processors.fraud.hits import Hit


class UnknownIdRule:
    def __init__(self, registry: Registry) -> None:
        self.partners = frozenset(registry.partners) if registry.partners else None
        self.campaigns = frozenset(registry.campaigns) if registry.campaigns else None

    def __call__(self, partner_id: str | None, campaign_id: str | None) -> list[Hit]:
        hits = []
        if self.partners is not None and partner_id and partner_id not in self.partners:
            hits.append(Hit("unknown_partner"))
        if self.campaigns is not None and campaign_id and campaign_id not in self.campaigns:
            hits.append(Hit("unknown_campaign"))
        return hits
