"""The CPC ledger: auctions found by placement, keyword and time, priced by bids or clicks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrail.contracts import StateStore
from clicktrail.processors.brand.inflation import CpcLedger

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BRAND, KEYWORD = "northwind", "northwind boots"


@dataclass(frozen=True)
class Ad:
    """One search impression (``cost`` set: the official click on it instead)."""

    at: float
    offender: str | None
    impression_id: str
    bid: float | None = None
    cost: float | None = None

    def feed(self, ledger: CpcLedger) -> None:
        ts = T0 + timedelta(seconds=self.at)
        if self.cost is not None:
            ledger.paid(impression_id=self.impression_id, cost=self.cost, ts=ts)
            return
        ledger.saw(
            brand=BRAND,
            keyword=KEYWORD,
            placement="google-search",
            ts=ts,
            official=self.offender is None,
            offenders=[] if self.offender is None else [(BRAND, self.offender)],
            impression_id=self.impression_id,
            bid=self.bid,
        )


def market(
    rounds: int,
    raises: dict[str, float],
    *,
    seed: int = 1,
    bids: bool = True,
    click_every: int = 0,
    together: tuple[str, str] | None = None,
) -> list[Ad]:
    """Auctions a minute apart: each offender shows in about half of them and multiplies
    the official price by ``1 + raise``; the official bid follows the price unless
    ``bids`` is off (one manual bid); every ``click_every``-th auction the official ad is
    clicked. With ``together``, the second offender only ever shows with the first."""
    rng = random.Random(seed)
    ads: list[Ad] = []
    for n in range(rounds):
        at = n * 60.0
        present = [o for o in raises if rng.random() < 0.5]
        if together and together[0] not in present and together[1] in present:
            present.remove(together[1])
        price = 1.0 * (0.95 + 0.1 * rng.random())
        for offender in present:
            price *= 1 + raises[offender]
        official = f"imp{n}"
        ads.append(Ad(at, None, official, bid=round(price * 1.2, 4) if bids else 2.0))
        ads.extend(Ad(at + 0.2, o, f"imp{n}-{o}") for o in present)
        if click_every and n % click_every == 0:
            ads.append(Ad(at + 15, None, official, cost=round(price, 4)))
    return ads


def run(ads: list[Ad], min_samples: int = 5) -> tuple[CpcLedger, dict[str, StateStore]]:
    state: dict[str, StateStore] = {"auctions": {}, "cpc": {}}
    ledger = CpcLedger(state["auctions"], state["cpc"], min_samples=min_samples)
    for ad in ads:
        ad.feed(ledger)
    return ledger, state


def test_an_offender_whose_auctions_nobody_clicks_still_shows_its_raise() -> None:
    """The official bids follow the auctions' prices: no click is needed to see the raise,
    and the offender is head-to-head although its ads carry no user id of the official's."""
    ledger, _ = run(market(300, {"aff-typo": 0.4}))
    estimate = ledger.estimate(BRAND, KEYWORD, "aff-typo")
    assert estimate.clicks_with == 0 and estimate.head_to_head > 100
    assert estimate.inflation == pytest.approx(0.4, abs=0.03)


def test_manual_bids_say_nothing_and_the_clicks_answer() -> None:
    """One bid for every auction carries no signal: the click costs give the estimate."""
    ledger, _ = run(market(600, {"aff-typo": 0.3}, bids=False, click_every=2))
    estimate = ledger.estimate(BRAND, KEYWORD, "aff-typo")
    assert estimate.clicks_with > 50
    assert estimate.inflation == pytest.approx(0.3, abs=0.05)
    assert estimate.cost_with == pytest.approx(estimate.clicks_with * 1.3, rel=0.1)
    silent, _ = run(market(600, {"aff-typo": 0.3}, bids=False))
    assert silent.estimate(BRAND, KEYWORD, "aff-typo").inflation is None


def test_an_offender_that_only_comes_with_another_takes_no_credit_for_it() -> None:
    """aff-b shows only beside aff-a: compared with auctions without it, aff-b would look
    like it raised the price by both; the joint fit gives each its own raise."""
    ledger, _ = run(market(2_000, {"aff-a": 0.5, "aff-b": 0.1}, together=("aff-a", "aff-b")))
    assert ledger.estimate(BRAND, KEYWORD, "aff-a").inflation == pytest.approx(0.5, abs=0.05)
    assert ledger.estimate(BRAND, KEYWORD, "aff-b").inflation == pytest.approx(0.1, abs=0.05)


def test_too_few_auctions_without_the_offender_give_no_estimate() -> None:
    ads = market(40, {"aff-typo": 0.4})
    ledger, _ = run(ads, min_samples=40)
    assert ledger.estimate(BRAND, KEYWORD, "aff-typo").inflation is None
    assert ledger.estimate(BRAND, "other words", "aff-typo").inflation is None


def test_auctions_are_told_apart_by_time_not_by_user() -> None:
    """An offender's ad a minute after an official one met it in no auction."""
    ledger, _ = run([Ad(0, None, "imp1", bid=1.0), Ad(61, "aff-typo", "imp2")])
    assert ledger.estimate(BRAND, KEYWORD, "aff-typo").head_to_head == 0
    ledger, _ = run([Ad(0, None, "imp1", bid=1.0), Ad(0.5, "aff-typo", "imp2")])
    assert ledger.estimate(BRAND, KEYWORD, "aff-typo").head_to_head == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_the_sums_do_not_depend_on_delivery_order(seed: int) -> None:
    """Clicks before their ads, offenders before the official ad: the same sums."""
    ads = market(60, {"aff-a": 0.3, "aff-b": 0.2}, click_every=3)
    shuffled = list(ads)
    random.Random(seed).shuffle(shuffled)
    (_, ordered), (_, other) = run(ads), run(shuffled)
    assert other["cpc"] == ordered["cpc"]


def test_forgotten_auctions_keep_their_share_and_late_clicks_are_ignored() -> None:
    ads = market(30, {"aff-a": 0.3}, click_every=1)
    ledger, state = run([ad for ad in ads if ad.cost is None])
    before = ledger.estimate(BRAND, KEYWORD, "aff-a")
    assert ledger.forget(T0 + timedelta(hours=3)) == 30
    assert state["auctions"] == {}
    for ad in ads:
        if ad.cost is not None:
            ad.feed(ledger)  # their auctions are gone: each waits, and is forgotten in turn
    assert ledger.estimate(BRAND, KEYWORD, "aff-a") == before
