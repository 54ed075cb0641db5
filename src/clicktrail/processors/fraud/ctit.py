"""Click injection: a conversion too soon after the click it credits.

CTIT (conversion ts - click ts) below the action's ``min_ctit_seconds`` from the
registry means the click was fired by something that already knew the conversion was
happening (an app on the device listening for installs). An action that sets none gets
``fraud.min_ctit_seconds`` when it is one of ``fraud.injection_actions`` (app installs, by
default) and no cut-off otherwise: a purchase nine seconds after a click is a decided
buyer, not injection. A negative CTIT is clock skew or a click reported after the fact:
it is not evidence of injection by itself, so it is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from clicktrail.config.registry import Action, FraudSettings
from clicktrail.contracts import Conversion
from clicktrail.contracts.internal import Touch
from clicktrail.processors.fraud.hits import Hit


def ctit_seconds(conversion: Conversion, click: Touch) -> float:
    return (conversion.ts - click.ts).total_seconds()


class InjectionRule:
    def __init__(self, actions: Mapping[str, Action], settings: FraudSettings) -> None:
        self.minimum = {name: settings.min_ctit_seconds for name in settings.injection_actions}
        self.minimum |= {
            name: action.min_ctit_seconds
            for name, action in actions.items()
            if action.min_ctit_seconds is not None
        }

    def __call__(self, conversion: Conversion, click: Touch) -> list[Hit]:
        ctit = ctit_seconds(conversion, click)
        if 0 <= ctit < self.minimum.get(conversion.action, 0.0):
            return [
                Hit("ctit_too_short"),
                Hit("ctit_too_short", click.touch_id, click.campaign_id, click.partner_id),
            ]
        return []
