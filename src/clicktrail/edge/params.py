"""Query parameter names the pixel and click endpoints accept, and the event fields they fill.

Ad servers and affiliate networks spell the same thing differently; the first
non-empty spelling listed wins. Values stay text: the event contract converts
and validates them (a bad ``cost`` is an ``invalid_field`` 400 with the field).
"""

from __future__ import annotations

from collections.abc import Mapping

from clicktrail.contracts.events import PAID_CLICK_ID_PARAMS
from clicktrail.edge.errors import EdgeError
from clicktrail.processors.postback import first

CAMPAIGN = ("campaign_id", "cid", "campaign")
PARTNER = ("partner_id", "pid", "partner", "aff_id")
IMPRESSION = ("impression_id", "imp_id", "iid")

TOUCH_FIELDS: dict[str, tuple[str, ...]] = {
    "keyword": ("keyword", "kw", "term"),
    "ad_domain": ("ad_domain", "domain"),
    "placement": ("placement", "placement_id", "site"),
    "creative_id": ("creative_id", "crid", "creative"),
    "cost": ("cost",),
    "channel": ("channel",),
}
IMPRESSION_FIELDS: dict[str, tuple[str, ...]] = {
    **TOUCH_FIELDS,
    "landing_url": ("landing_url",),
    "cpc_bid": ("cpc_bid", "bid"),
    "position": ("position", "pos"),
}
CLICK_FIELDS = TOUCH_FIELDS
SUB_IDS = tuple(f"sub{i}" for i in range(1, 11))


def required(params: Mapping[str, str], names: tuple[str, ...]) -> str:
    value = first(params, names)
    if value is None:
        spelled = " / ".join(names)
        raise EdgeError(400, "missing_param", f"{names[0]} is required ({spelled})")
    return value


class FieldMap:
    """Copies query values into event fields; the first spelling listed wins over later ones.

    Walks the (few) parameters present instead of every spelling of every field.
    """

    def __init__(self, fields: Mapping[str, tuple[str, ...]]) -> None:
        self._by_name = {
            name: (field, rank)
            for field, names in fields.items()
            for rank, name in enumerate(names)
        }

    def copy(self, data: dict[str, object], params: Mapping[str, str]) -> None:
        ranks: dict[str, int] = {}
        by_name = self._by_name
        for name, value in params.items():
            hit = by_name.get(name)
            if hit is None or not value:
                continue
            field, rank = hit
            if rank < ranks.get(field, len(by_name)):
                ranks[field] = rank
                data[field] = value


def sub_ids(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params[name] for name in SUB_IDS if params.get(name)}


def paid_click_ids(*sources: Mapping[str, str]) -> dict[str, str]:
    """gclid, msclkid, fbclid... from the request first, then the landing URL."""
    found: dict[str, str] = {}
    for source in sources:
        for name in PAID_CLICK_ID_PARAMS:
            value = source.get(name)
            if value and name not in found:
                found[name] = value
    return found


IMPRESSION_MAP = FieldMap(IMPRESSION_FIELDS)
CLICK_MAP = FieldMap(CLICK_FIELDS)
