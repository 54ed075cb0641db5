"""The sales reconciler, called with plain orders and conversions (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrail.contracts import Conversion
from clicktrail.contracts.sales import SaleOrder, TrackedConversion
from clicktrail.processors.reconciliation import Reconciler, import_id

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 5, tzinfo=UTC)


def order(order_id: str, **kw: Any) -> SaleOrder:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "ts": T0.isoformat(),
        "amount": 50.0,
        "currency": "EUR",
        "status": "paid",
    }
    return SaleOrder.model_validate({**fields, **kw})


def conversion(conversion_id: str, txid: str | None = None, **kw: Any) -> TrackedConversion:
    fields: dict[str, Any] = {
        "conversion_id": conversion_id,
        "txid": txid,
        "action": "purchase",
        "ts": T0,
        "latest_ts": T0,
        "advertiser_id": "acme",
        "credited_partner_id": "aff-1",
        "credited_campaign_id": "acme-aff",
        "click_id": f"clk-{conversion_id}",
        "currency": "EUR",
        "status": "pending",
        "revenue": 50.0,
        "payout": 5.0,
        "tracked_status": "pending",
        "tracked_revenue": 50.0,
    }
    return TrackedConversion.model_validate({**fields, **kw})


def reconcile(orders: list[SaleOrder], tracked: list[TrackedConversion]) -> Any:
    return Reconciler(updatable_actions=["purchase"])("acme", orders, tracked, NOW)


def outcomes(result: Any) -> dict[str, str]:
    return {r.pair_key: str(r.outcome) for r in result.records}


class TestStatusWords:
    """CRM words map onto the three conversion statuses."""

    @pytest.mark.parametrize(
        ("word", "status"),
        [
            ("Paid", "approved"),
            ("completed", "approved"),
            ("SHIPPED", "approved"),
            ("refunded", "rejected"),
            ("Cancelled", "rejected"),
            ("charge-back", "rejected"),
            ("chargeback", "rejected"),
            ("pending", "pending"),
            ("Processing", "pending"),
        ],
    )
    def test_word(self, word: str, status: str) -> None:
        assert order("1", status=word).status == status

    def test_unknown_word_is_refused(self) -> None:
        with pytest.raises(ValueError, match="teleported"):
            order("1", status="teleported")

    def test_a_bare_date_is_midnight_utc(self) -> None:
        assert order("1", ts="2026-03-02").ts == datetime(2026, 3, 2, tzinfo=UTC)


class TestMatching:
    """Each order and conversion gets one outcome."""

    def test_outcomes(self) -> None:
        result = reconcile(
            [
                order("T1"),
                order("T2", amount=55.0),
                order("T3", status="refunded"),
                order("T4", currency="USD"),
                order("NEW"),
            ],
            [
                conversion("c1", "T1"),
                conversion("c2", "T2"),
                conversion("c3", "T3"),
                conversion("c4", "T4"),
                conversion("c5", "T5"),
                conversion("old", "T0", ts=T0 - timedelta(days=3)),
            ],
        )
        assert outcomes(result) == {
            "c1": "matched",
            "c2": "amount_difference",
            "c3": "refunded",
            "c4": "currency_mismatch",
            "order:NEW": "sold_not_tracked",
            "c5": "tracked_not_sold",
        }
        by_key = {r.pair_key: r for r in result.records}
        assert by_key["c2"].amount_difference == pytest.approx(5.0)
        assert by_key["c4"].amount_difference == 0.0
        assert by_key["c5"].payout == 5.0 and by_key["c5"].partner_id == "aff-1"

    def test_user_and_time_when_there_is_no_txid(self) -> None:
        result = reconcile(
            [order("O1", user_id="u1"), order("O2", user_id="u2")],
            [
                conversion("near", user_id="u1", ts=T0 + timedelta(hours=1)),
                conversion("far", user_id="u1", ts=T0 + timedelta(hours=5)),
                conversion("late", user_id="u2", ts=T0 + timedelta(days=2)),
                conversion("txid", "X9", user_id="u1"),
            ],
        )
        by_key = {r.pair_key: r for r in result.records}
        assert by_key["near"].order_id == "O1" and by_key["near"].match == "user_time"
        assert by_key["far"].outcome == "tracked_not_sold"
        assert by_key["order:O2"].outcome == "sold_not_tracked"  # outside the window
        assert by_key["txid"].outcome == "tracked_not_sold"  # has a txid of its own

    def test_an_order_listed_twice_counts_in_its_latest_state(self) -> None:
        later = (T0 + timedelta(days=1)).isoformat()
        result = reconcile(
            [order("T1", ts=later, status="refunded"), order("T1")], [conversion("c1", "T1")]
        )
        assert outcomes(result) == {"c1": "refunded"}


class TestUpdates:
    """Matched orders become status postbacks, only when they change something."""

    def test_refund_rejects_without_touching_amounts(self) -> None:
        result = reconcile([order("T1", status="refunded")], [conversion("c1", "T1")])
        (update,) = result.updates
        event = Conversion.model_validate(update)
        assert (event.status, event.revenue, event.payout) == ("rejected", 0.0, 0.0)
        assert (event.txid, event.advertiser_id, event.click_id) == ("T1", "acme", "clk-c1")
        assert event.ts > T0
        assert event.event_id.startswith("sale-")

    def test_new_amount_keeps_the_payout(self) -> None:
        result = reconcile([order("T1", amount=60.0)], [conversion("c1", "T1")])
        event = Conversion.model_validate(result.updates[0])
        assert (event.status, event.revenue, event.payout) == ("approved", 60.0, 5.0)

    def test_nothing_to_change_sends_nothing(self) -> None:
        done = conversion("c1", "T1", status="approved")
        assert reconcile([order("T1")], [done]).updates == []
        pending = reconcile([order("T1", status="processing")], [conversion("c1", "T1")])
        assert pending.updates == []

    def test_other_currency_changes_status_only(self) -> None:
        result = reconcile([order("T1", currency="USD", amount=9.0)], [conversion("c1", "T1")])
        event = Conversion.model_validate(result.updates[0])
        assert (event.status, event.revenue, event.currency) == ("approved", 0.0, "EUR")

    def test_actions_without_the_update_policy_get_none(self) -> None:
        reconciler = Reconciler(updatable_actions=["lead"])
        result = reconciler("acme", [order("T1")], [conversion("c1", "T1")], NOW)
        assert result.updates == [] and not result.records[0].updated

    def test_a_conversion_without_txid_is_named_by_its_id(self) -> None:
        result = reconcile([order("O1", user_id="u1")], [conversion("c1", user_id="u1")])
        event = Conversion.model_validate(result.updates[0])
        assert (event.txid, event.conversion_id, event.user.user_id) == (None, "c1", "u1")

    def test_the_same_change_has_the_same_event_id(self) -> None:
        first = reconcile([order("T1")], [conversion("c1", "T1")]).updates
        later = conversion("c1", "T1", latest_ts=T0 + timedelta(hours=3))
        again = reconcile([order("T1")], [later]).updates
        assert first[0]["event_id"] == again[0]["event_id"]
        assert first[0]["ts"] != again[0]["ts"]

    def test_a_conversion_moved_since_gets_a_new_event(self) -> None:
        """A postback approved what an earlier import rejected: the refund is sent again."""
        first = reconcile([order("T1", status="refunded")], [conversion("c1", "T1")]).updates
        moved = conversion("c1", "T1", status="approved")
        again = reconcile([order("T1", status="refunded")], [moved]).updates
        assert again[0]["status"] == "rejected"
        assert again[0]["event_id"] != first[0]["event_id"]


IDS = [f"T{n}" for n in range(8)]
orders_strategy = st.lists(
    st.builds(
        lambda i, amount, status, hours, user: order(
            IDS[i],
            amount=amount,
            status=status,
            ts=(T0 + timedelta(hours=hours)).isoformat(),
            user_id=user,
        ),
        st.integers(0, len(IDS) - 1),
        st.sampled_from([10.0, 50.0, 55.0]),
        st.sampled_from(["paid", "refunded", "pending"]),
        st.integers(0, 30),
        st.sampled_from([None, "u1", "u2"]),
    ),
    min_size=1,
    max_size=10,
)
tracked_strategy = st.lists(
    st.builds(
        lambda n, txid, hours, user: conversion(
            f"c{n}", txid, ts=T0 + timedelta(hours=hours), user_id=user
        ),
        st.integers(0, 9),
        st.sampled_from([None, *IDS[:5]]),
        st.integers(0, 30),
        st.sampled_from([None, "u1", "u2"]),
    ),
    max_size=10,
    unique_by=lambda c: c.conversion_id,
)


@settings(max_examples=150, deadline=None)
@given(orders=orders_strategy, tracked=tracked_strategy, data=st.data())
def test_the_result_does_not_depend_on_the_order_of_rows(
    orders: list[SaleOrder], tracked: list[TrackedConversion], data: st.DataObject
) -> None:
    first = reconcile(orders, tracked)
    shuffled = reconcile(data.draw(st.permutations(orders)), data.draw(st.permutations(tracked)))
    assert shuffled.records == first.records
    assert shuffled.updates == first.updates
    assert import_id("acme", orders) == import_id("acme", list(reversed(orders)))
    keys = [r.pair_key for r in first.records]
    assert len(keys) == len(set(keys))
