"""The ground truth file: one JSON object per line, each with a ``kind``.

Written while the events are generated, so it streams like they do. Context
that events already carry (campaign, partner, user) is not repeated; the
truth adds only what no detector can see: labels, true probabilities, the
credited touch, offenders and their CPC inflation. Counters kept here feed
``scenario.json``, so the two files cannot disagree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from clicktrail.simulate.oracle import BinnedAuc
from clicktrail.simulate.world import ACTIONS

TRUTH_VERSION = 1
CLEAN = "clean"
_OPT = orjson.OPT_APPEND_NEWLINE


class Truth:
    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self.clicks: Counter[str] = Counter()
        self.conversions: Counter[str] = Counter()
        self.touches: Counter[str] = Counter()
        self.offending_impressions: Counter[str] = Counter()
        self.offending_clicks: Counter[str] = Counter()
        self.status_updates: Counter[str] = Counter()
        self.oracle = {action: BinnedAuc() for action in ACTIONS}

    def record(self, kind: str, **fields: Any) -> None:
        self._write(orjson.dumps({"kind": kind, **fields}, option=_OPT))

    def click(
        self,
        click_id: str,
        label: str,
        probabilities: dict[str, float] | None,
        outcomes: dict[str, int] | None,
        offense: dict[str, str] | None,
    ) -> None:
        self.clicks[label] += 1
        line: dict[str, Any] = {"kind": "click", "click_id": click_id, "label": label}
        if probabilities is not None and outcomes is not None:
            line["p"] = {a: round(p, 6) for a, p in probabilities.items()}
            line["y"] = outcomes
            oracle = self.oracle
            for action, p in probabilities.items():
                oracle[action].add(p, bool(outcomes[action]))
        if offense is not None:
            line["offense"] = offense
            self.offending_clicks[offense["offense"]] += 1
        self._write(orjson.dumps(line, option=_OPT))

    def conversion(
        self,
        event_id: str,
        *,
        txid: str,
        action: str,
        label: str,
        touch: str,
        credit: str | None,
        credit_label: str | None,
        cause: str | None,
        replay_of: str | None = None,
    ) -> None:
        self.conversions[label] += 1
        self.touches[touch] += 1
        line: dict[str, Any] = {
            "kind": "conversion",
            "event_id": event_id,
            "txid": txid,
            "action": action,
            "label": label,
            "touch": touch,
            "credit": credit,
            "credit_label": credit_label,
            "cause": cause,
        }
        if replay_of is not None:
            line["replay_of"] = replay_of
        self._write(orjson.dumps(line, option=_OPT))

    def status_update(self, event_id: str, *, of: str, txid: str, status: str) -> None:
        self.status_updates[status] += 1
        self.record("status_update", event_id=event_id, of=of, txid=txid, status=status)

    def impression(self, impression_id: str, *, brand: str, offender: str, offense: str) -> None:
        """Only offending impressions get a line; every other impression is clean."""
        self.offending_impressions[offense] += 1
        self.record(
            "impression",
            impression_id=impression_id,
            brand=brand,
            offender=offender,
            offense=offense,
        )

    def summary(self) -> dict[str, Any]:
        oracle = {}
        for action, binned in self.oracle.items():
            value = binned.value()
            if not math.isnan(value):  # the action had both classes
                oracle[action] = round(value, 4)
        return {
            "clicks": dict(sorted(self.clicks.items())),
            "conversions": dict(sorted(self.conversions.items())),
            "conversion_touch": dict(sorted(self.touches.items())),
            "status_updates": dict(sorted(self.status_updates.items())),
            "offending_impressions": dict(sorted(self.offending_impressions.items())),
            "offending_clicks": dict(sorted(self.offending_clicks.items())),
            "oracle_auc": oracle,
        }
