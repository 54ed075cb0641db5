"""Who is calling a write endpoint, and what that caller may touch.

The edge is reachable by anyone who can reach its port, so every path that can move money
(batch intake, auction-insights import, postbacks) proves who sent it and is held to what
that sender owns:

* ``advertisers.<id>.api_keys``: the advertiser's servers. Impressions, clicks and
  conversions of that advertiser's campaigns, and clicks minted for them; its own
  auction-insights exports.
* ``sources.<id>.api_keys``: a partner's or an ad network's server-to-server feed.
  Impressions and clicks of its own partner (and listed campaigns), never a conversion.
* the operator token (``security.operator_token`` or ``$CLICKTRAIL_OPERATOR_TOKEN``): the
  people who run clicktrail, who may send anything, as ``clicktrail replay`` may (e.g.
  ``clicktrail simulate --send``, or a backfill through a running service).

A key is sent as ``Authorization: Bearer <key>`` (or ``X-Api-Key: <key>``). Keys are
looked up by their SHA-256 digest, so the lookup neither keeps nor compares the secret
itself byte by byte. Several keys per owner make rotation a two-step change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from clicktrail.config.registry import ClickIds, Registry
from clicktrail.contracts import AnyEvent, AuctionInsight, Click, Conversion
from clicktrail.edge.errors import EdgeError
from clicktrail.processors.intake import Rejection
from clicktrail.processors.signing import ClickIdSigner

NOT_OWNED = "not_owned"
BEARER = b"bearer "
OPERATOR_TOKEN_ENV = "CLICKTRAIL_OPERATOR_TOKEN"
QUERY_TOKEN_ENV = "CLICKTRAIL_QUERY_TOKEN"
"""Deprecated alias of :data:`OPERATOR_TOKEN_ENV`, still read."""


def operator_token(configured: str = "") -> str | None:
    """The operator token: the environment first, then the registry's
    ``security.operator_token``, then the deprecated ``$CLICKTRAIL_QUERY_TOKEN``."""
    for value in (os.environ.get(OPERATOR_TOKEN_ENV), configured, os.environ.get(QUERY_TOKEN_ENV)):
        if value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """The owner of a key: an advertiser, or a source reporting for one partner."""

    name: str
    advertiser: str | None = None
    partner: str | None = None
    campaigns: frozenset[str] = frozenset()
    click_ids: ClickIds = "signed"
    operator: bool = False


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


def presented_key(headers: Mapping[bytes, bytes]) -> bytes | None:
    """The key a request carries, from ``Authorization: Bearer`` or ``X-Api-Key``."""
    auth = headers.get(b"authorization")
    if auth is not None and auth[:7].lower() == BEARER:
        return auth[7:].strip() or None
    key = headers.get(b"x-api-key")
    return key.strip() or None if key is not None else None


class KeyRing:
    """Every API key of the registry, by digest; built once when the edge starts."""

    def __init__(self, registry: Registry, operator: str | None = None) -> None:
        self._owners: dict[bytes, Principal] = {}
        if operator:
            self._owners[_digest(operator)] = Principal("operator", operator=True)
        for name, advertiser in registry.advertisers.items():
            owner = Principal(f"advertiser:{name}", advertiser=name)
            for key in advertiser.api_keys:
                self._owners[_digest(key)] = owner
        for name, source in registry.sources.items():
            owner = Principal(
                f"source:{name}",
                partner=source.partner,
                campaigns=frozenset(source.campaigns),
                click_ids=registry.partners[source.partner].click_ids,
            )
            for key in source.api_keys:
                self._owners[_digest(key)] = owner

    def __len__(self) -> int:
        return len(self._owners)

    def authenticate(self, headers: Mapping[bytes, bytes]) -> Principal:
        """The caller, or a 401/403 that says what is missing."""
        key = presented_key(headers)
        if key is None:
            raise EdgeError(
                401,
                "missing_api_key",
                "send the advertiser's or source's API key as 'Authorization: Bearer <key>'",
            )
        owner = self._owners.get(_digest(key))
        if owner is None:
            raise EdgeError(403, "bad_api_key", "this API key is not in the registry")
        return owner


class Scope:
    """What a principal may write: pure checks against the registry and the click signer."""

    def __init__(self, registry: Registry, signer: ClickIdSigner) -> None:
        self.registry = registry
        self.signer = signer
        self._insight_owners = {key: c.advertiser for key, c in registry.campaigns.items()}
        for brand in registry.brands.values():
            for name in (*brand.official_campaigns, *brand.official_accounts):
                self._insight_owners.setdefault(name, brand.advertiser)

    def admit(self, principal: Principal, event: AnyEvent) -> AnyEvent | Rejection:
        """The event as it may be accepted (its advertiser filled in), or why not."""
        if principal.operator:
            return event
        if principal.advertiser is not None:
            return self._for_advertiser(principal.advertiser, event)
        return self._for_source(principal, event)

    def _refuse(self, event: AnyEvent, message: str, reason: str = NOT_OWNED) -> Rejection:
        return Rejection(reason, message, event.type, event.event_id)

    def _for_advertiser(self, advertiser: str, event: AnyEvent) -> AnyEvent | Rejection:
        if event.advertiser_id not in (None, advertiser):
            return self._refuse(event, f"this key belongs to advertiser {advertiser!r}")
        campaign_id = event.campaign_id
        if campaign_id is not None or not isinstance(event, Conversion):
            campaign = self.registry.campaigns.get(campaign_id or "")
            if campaign is None or campaign.advertiser != advertiser:
                return self._refuse(
                    event, f"campaign {campaign_id!r} is not a campaign of {advertiser!r}"
                )
        click_id = event.click_id if isinstance(event, Click | Conversion) else None
        if (
            click_id is not None
            and self.signer.verify(click_id)
            and not self.signer.minted_for(click_id, advertiser)
        ):
            return self._refuse(event, f"click {click_id!r} was not minted for {advertiser!r}")
        if event.advertiser_id is None:
            return event.model_copy(update={"advertiser_id": advertiser})
        return event

    def _for_source(self, principal: Principal, event: AnyEvent) -> AnyEvent | Rejection:
        if isinstance(event, Conversion):
            return self._refuse(
                event,
                f"{principal.name} reports impressions and clicks; conversions come from the "
                "advertiser",
                "conversion_not_allowed",
            )
        if event.partner_id != principal.partner:
            return self._refuse(event, f"this key reports for partner {principal.partner!r}")
        campaign = self.registry.campaigns.get(event.campaign_id)
        allowed = not principal.campaigns or event.campaign_id in principal.campaigns
        if campaign is None or not allowed:
            return self._refuse(event, f"campaign {event.campaign_id!r} is not open to this key")
        if event.advertiser_id not in (None, campaign.advertiser):
            return self._refuse(event, f"campaign {event.campaign_id!r} is not that advertiser's")
        if (
            isinstance(event, Click)
            and principal.click_ids == "signed"
            and not self.signer.minted_for(event.click_id, campaign.advertiser)
        ):
            return self._refuse(
                event,
                "click ids must be minted by this tracker (partners.*.click_ids: signed)",
                "unsigned_click_id",
            )
        if event.advertiser_id is None:
            return event.model_copy(update={"advertiser_id": campaign.advertiser})
        return event

    def admit_insights(self, principal: Principal, rows: list[AuctionInsight]) -> None:
        """An export may only speak for the advertiser's own campaigns and ad accounts: a row
        that names another advertiser's campaign or account refuses the whole export (rows
        naming neither are kept; the brand stage matches nothing to them)."""
        advertiser = principal.advertiser
        if principal.operator:
            return
        if advertiser is None:
            raise EdgeError(
                403, NOT_OWNED, "auction-insights exports come from an advertiser's key"
            )
        for number, row in enumerate(rows, start=2):
            owner = self._insight_owners.get(row.campaign) or self._insight_owners.get(row.account)
            if owner not in (None, advertiser):
                raise EdgeError(
                    403,
                    NOT_OWNED,
                    f"row {number}: campaign {row.campaign!r} / account {row.account!r} belongs "
                    "to another advertiser",
                    details={"row": number},
                )
