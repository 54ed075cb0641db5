"""Geo and device mismatch between the credited click and the conversion.

A device farm clicks from one place and converts from another (or from a desktop
after a mobile click). Only known values are compared: a postback without a country
or device says nothing, so it never mismatches. A mismatch also convicts the click.
"""

from __future__ import annotations

from clicktrail.contracts import Conversion
from clicktrail.contracts.internal import Touch
from clicktrail.processors.fraud.hits import Hit


def mismatch_rule(conversion: Conversion, click: Touch) -> list[Hit]:
    user = conversion.user
    hits: list[Hit] = []
    if user.country and click.country and user.country.upper() != click.country.upper():
        hits.append(Hit("geo_mismatch"))
    if user.device_type and click.device_type and user.device_type != click.device_type:
        hits.append(Hit("device_mismatch"))
    for hit in list(hits):
        hits.append(Hit(hit.reason, click.touch_id, click.campaign_id, click.partner_id))
    return hits
