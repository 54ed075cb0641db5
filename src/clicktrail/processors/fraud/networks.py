"""Click flooding spread thin: many devices from one network that works for one partner.

A flood run from hundreds of addresses at human per-minute rates never crosses the
per-network click limits (``flooding``). What still gives it away is who the network
serves: a flooder's addresses click for the flooder, so nearly all of that network's
clicks go to one partner, and within an hour they come from several different device
ids (harvested or invented), where one household clicks from one or two. Honest users
behind a carrier's NAT also share a network and bring many devices, but they click for
every partner the way all traffic does. So a click is judged ``click_flood_network``
when, for its partner and its IP network:

* at least ``fraud.flood_network_devices`` different devices clicked within
  ``fraud.window_seconds`` (this one included), and
* over the last ``fraud.flood_network_hours``, at least ``fraud.flood_network_share``
  of the network's clicks went to that partner, and so many that its share of all clicks
  would send that many to this network with probability under ``fraud.flood_network_pvalue``
  (a one-sided binomial test, scipy's): the few first clicks of a shared network can
  favour one partner by chance, a big partner's share of a network is big anyway, and an
  advertiser with one partner sees every network serve that partner alone.

The click that meets both convicts the window's earlier clicks of that partner and
network with it, as the other flood rules do. A network with too few clicks in the long
window to have a share (under ``flood_network_devices``) is not judged.

State: ``fraud_network`` (per network, and all clicks under :data:`ALL`: clicks per hour
and partner, the last ``flood_network_hours`` buckets) and ``fraud_network_devices`` (per
partner and network: the window's clicks with their device, bounded). Counts are per
partition, as the other windows' (see :mod:`clicktrail.processors.fraud.windows`).
"""

from __future__ import annotations

from typing import Any

from scipy.stats import binom

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click, StateStore
from clicktrail.processors.fraud.hits import Hit

ALL = "\x00all"
"""The ``fraud_network`` key holding every click's partner counts (the partners' shares)."""
HOUR = 3600.0
PRIOR_CLICKS = 10
"""Clicks each partner seen is credited with before its share of all clicks is taken
(additive smoothing): in a tracker's first minutes a flood is a large share of everything,
and its raw share would excuse it."""
KEEP_CLICKS = 64
"""Clicks a (partner, network) key keeps for its device count: more than any limit."""


class DedicatedNetworkRule:
    def __init__(self, networks: StateStore, devices: StateStore, settings: FraudSettings):
        self.networks = networks
        self.devices = devices
        self.window = settings.window_seconds
        self.hours = settings.flood_network_hours
        self.min_devices = settings.flood_network_devices
        self.min_share = settings.flood_network_share
        self.pvalue = settings.flood_network_pvalue

    def __call__(self, click: Click) -> list[Hit]:
        network, device = click.user.ip, click.user.user_id
        if not network:
            return []
        ts = click.ts.timestamp()
        partner = click.partner_id
        here = self._count(network, partner, ts)
        overall = self._count(ALL, partner, ts)
        if not device:
            return []
        key = f"{partner}|{network}"
        held: list[list[Any]] = self.devices.get(key) or []
        near = [h for h in held if abs(ts - h[0]) < self.window]
        far = [h for h in held if abs(ts - h[0]) >= self.window]
        devices = {h[1] for h in near} | {device}
        if len(devices) >= self.min_devices and self._dedicated(here, overall):
            hits = [Hit("click_flood_network")]
            hits += [Hit("click_flood_network", h[2], h[3], partner) for h in near if not h[4]]
            near = [[*h[:4], True] for h in near]
            convicted = True
        else:
            hits, convicted = [], False
        kept = sorted([*far, *near, [ts, device, click.click_id, click.campaign_id, convicted]])
        self.devices[key] = kept[-KEEP_CLICKS:]
        return hits

    def _dedicated(self, here: tuple[int, int, int], overall: tuple[int, int, int]) -> bool:
        """Does the network serve the partner far beyond the partner's share of all clicks?"""
        mine, clicks, _ = here
        if clicks < self.min_devices or mine < self.min_share * clicks:
            return False
        share = (overall[0] + PRIOR_CLICKS) / (overall[1] + PRIOR_CLICKS * overall[2])
        return bool(binom.sf(mine - 1, clicks, share) < self.pvalue)

    def _count(self, key: str, partner: str, ts: float) -> tuple[int, int, int]:
        """Add one click of ``partner`` at ``ts`` to ``key``'s hourly buckets; returns the
        partner's clicks, all clicks of the key and the partners among them, within
        ``hours`` of ``ts``."""
        entry: dict[str, dict[str, int]] = self.networks.get(key) or {}
        hour = str(int(ts // HOUR))
        bucket = dict(entry.get(hour) or {})
        bucket[partner] = bucket.get(partner, 0) + 1
        entry = {**entry, hour: bucket}
        now = int(hour)
        kept = {h: b for h, b in entry.items() if int(h) > now - 2 * self.hours}
        self.networks[key] = kept
        near = [b for h, b in kept.items() if abs(int(h) - now) < self.hours]
        partners = {name for b in near for name in b}
        return (
            sum(b.get(partner, 0) for b in near),
            sum(sum(b.values()) for b in near),
            len(partners),
        )

    def expire(self, watermark: float) -> int:
        """Forget networks and windows the watermark has left behind."""
        gone = 0
        oldest = int((watermark - self.hours * HOUR) // HOUR)
        for key, entry in list(self.networks.items()):
            kept = {h: b for h, b in entry.items() if int(h) >= oldest}
            if not kept:
                del self.networks[key]
                gone += 1
            elif len(kept) < len(entry):
                self.networks[key] = kept
        for key, held in list(self.devices.items()):
            recent = [h for h in held if h[0] >= watermark - self.window]
            if not recent:
                del self.devices[key]
                gone += 1
            elif len(recent) < len(held):
                self.devices[key] = recent
        return gone
