"""The simulation state and its event primitives: impression, click, delivery.

Everything waits in one heap keyed by delivery time, so events leave in time
order except where delivery is deliberately late or duplicated, as it is in
production: a small share arrives minutes late, a few clicks arrive after
their conversion, a few lines are delivered twice with the same ``event_id``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from clicktrail.processors.signing import ClickIdSigner
from clicktrail.simulate import conversions, encode
from clicktrail.simulate.auction import AuctionInsights
from clicktrail.simulate.ledger import Ledger
from clicktrail.simulate.model import TrueModel
from clicktrail.simulate.rand import between
from clicktrail.simulate.scenarios import Options
from clicktrail.simulate.truth import CLEAN, Truth
from clicktrail.simulate.users import UserPool, Visitor, pool_size
from clicktrail.simulate.world import Advertiser, Campaign, World

LATE_CLICK_CTIT_MS = 200_000
"""Only clicks converting faster than this are delivered after their conversion (within grace)."""


Write = Callable[[bytes], Any]


class Simulation:
    def __init__(self, options: Options, world: World, write_truth: Write) -> None:
        seed = options.seed
        self.options = options
        self.start_ms = options.start_ms
        self.span_ms = options.end_ms - options.start_ms
        self.scenario = options.spec
        self.variant = options.params
        self.world = world
        self.rng = random.Random(f"traffic:{seed}")
        ids = random.Random(f"ids:{seed}")
        self.signer = ClickIdSigner(world.click_id_key, ids.randbytes)
        self.tag = f"{ids.getrandbits(24):06x}"
        nat = (
            random.Random(f"nat:{seed}"),
            self.variant.carrier_nat_share,
            self.variant.carrier_networks,
        )
        self.pool = UserPool(random.Random(f"users:{seed}"), pool_size(options.events), nat)
        self.model = TrueModel(seed, world, self.pool.users)
        self.ledger = Ledger()
        self.truth = Truth(write_truth)
        self.insights = AuctionInsights()
        self.recent_clicks: deque[str] = deque(maxlen=512)
        self.lines = 0
        self.first_ts = self.last_ts = 0
        delayed, duplicates = self.variant.delayed, self.variant.duplicates
        self._delayed = self.scenario.delayed if delayed is None else delayed
        self._noisy = self._delayed + (
            self.scenario.duplicates if duplicates is None else duplicates
        )
        self.events: Counter[str] = Counter()
        self.delivery: Counter[str] = Counter()
        self._heap: list[tuple[int, int, bytes | conversions.Pending]] = []
        self._order = itertools.count()
        self._n = 0
        self._tx = 0

    # identifiers -----------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self._n += 1
        return f"{self.tag}-{prefix}{self._n:x}"

    def next_txid(self, advertiser: Advertiser) -> str:
        self._tx += 1
        return f"{advertiser.key[:2].upper()}{100_000 + self._tx}"

    # delivery --------------------------------------------------------------------------

    def _push(self, at: int, item: bytes | conversions.Pending) -> None:
        heapq.heappush(self._heap, (at, next(self._order), item))

    def _noise(self, ts: int, roll: float) -> tuple[int, int]:
        """Delivery time, and the delay of a second delivery (0: none)."""
        if roll < self._delayed:
            self.delivery["delayed"] += 1
            return ts + between(self.rng, 5_000, 240_000), 0
        self.delivery["duplicates"] += 1
        self.lines += 1
        return ts, between(self.rng, 1_000, 120_000)

    def deliver(self, kind: str, ts: int, line: bytes, at: int | None = None) -> None:
        self.last_ts = max(self.last_ts, ts)
        self.lines += 1
        self.events[kind] += 1
        roll = self.rng.random()
        if roll >= self._noisy:  # most lines: delivered once, on time
            heapq.heappush(self._heap, (ts if at is None else at, next(self._order), line))
            return
        deliver_at, again = self._noise(ts, roll)
        if at is not None:
            deliver_at = at
        self._push(deliver_at, line)
        if again:
            self._push(deliver_at + again, line)

    def schedule(self, pending: conversions.Pending) -> None:
        """A conversion or status update: serialized when due, once its credit is known."""
        self.last_ts = max(self.last_ts, pending.ts)
        self.lines += 1
        self.events["conversion"] += 1
        roll = self.rng.random()
        deliver_at, pending.duplicate_after = pending.ts, 0
        if roll < self._noisy:
            deliver_at, pending.duplicate_after = self._noise(pending.ts, roll)
        self._push(deliver_at, pending)

    def due(self, until: int, write: Write) -> int:
        """Write every line delivered before ``until``; returns how many."""
        heap = self._heap
        written = 0
        while heap and heap[0][0] < until:
            at, _, item = heapq.heappop(heap)
            if isinstance(item, bytes):
                write(item)
            else:
                line = conversions.emit(self, item)
                write(line)
                if item.duplicate_after:
                    self._push(at + item.duplicate_after, line)
            written += 1
        return written

    # events ----------------------------------------------------------------------------

    def impression(
        self,
        ts: int,
        campaign: Campaign,
        partner: str,
        visitor: Visitor,
        *,
        channel: str | None = None,
        offense: dict[str, str] | None = None,
        **fields: Any,
    ) -> str:
        self._n += 1
        event_id = f"{self.tag}-i{self._n:x}"
        impression_id = f"{self.tag}-imp{self._n:x}"
        adv = campaign.advertiser
        line = encode.impression(
            event_id=event_id,
            ts=ts,
            impression_id=impression_id,
            campaign=campaign,
            partner=partner,
            channel=channel or campaign.channel,
            fields=fields,
            user=visitor.context,
        )
        self.deliver("impression", ts, line)
        if visitor.user is not None:
            key = (visitor.user.index, adv.index)
            self.ledger.add_view(key, ts, impression_id, campaign.view_window_ms)
        if offense is not None:
            self.truth.impression(impression_id, brand=adv.key, **offense)
        return impression_id

    def click(
        self,
        ts: int,
        campaign: Campaign,
        partner: str,
        visitor: Visitor,
        *,
        label: str = CLEAN,
        channel: str | None = None,
        offense: dict[str, str] | None = None,
        **fields: Any,
    ) -> str:
        """Mint a signed click id, plan the click's true outcomes, then deliver it."""
        adv = campaign.advertiser
        click_id = self.signer.mint(ts, adv.key)
        user = visitor.user
        probabilities = outcomes = None
        at = None
        if label == CLEAN and user is not None:
            probabilities = self.model.probabilities(
                campaign.key,
                partner,
                user,
                ts,
                placement=fields.get("placement"),
                keyword=fields.get("keyword"),
            )
            outcomes, first = conversions.convert(
                self,
                ts=ts,
                click_id=click_id,
                campaign=campaign,
                partner=partner,
                user=user,
                probabilities=probabilities,
            )
            late = self.scenario.late_clicks
            if first is not None and first - ts < LATE_CLICK_CTIT_MS and self.rng.random() < late:
                at = first + between(self.rng, 1_000, 60_000)
                self.delivery["late_clicks"] += 1
        line = encode.click(
            event_id=self.next_id("c"),
            ts=ts,
            click_id=click_id,
            campaign=campaign,
            partner=partner,
            channel=channel or campaign.channel,
            fields=fields,
            user=visitor.context,
        )
        self.deliver("click", ts, line, at)
        if user is not None:
            self.ledger.add_click((user.index, adv.index), ts, click_id, label, campaign.window_ms)
        brand_offense = {"brand": adv.key, **offense} if offense else None
        self.truth.click(click_id, label, probabilities, outcomes, brand_offense)
        self.recent_clicks.append(click_id)
        return click_id
