"""Record serialization and key partitioning shared by the edge producer and the workers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.bus.codec import deserialize, serialize
from clicktrail.bus.kafka import KafkaSettings
from clicktrail.bus.partitioner import murmur2, partition_for
from clicktrail.bus.topics import AUCTION_INSIGHTS, CLICKS, CONVERSIONS, DEAD_LETTERS, insight_key
from clicktrail.contracts import AuctionInsight, Click, Conversion, DeadLetter


@given(st.binary(max_size=200))
def test_murmur2_matches_the_java_client(key: bytes) -> None:
    assert murmur2(key) == reference_murmur2(key) & 0xFFFFFFFF


def test_partition_matches_the_default_partitioner() -> None:
    from kafka.partitioner.default import murmur2 as kp_murmur2

    for key in (b"clk-1", b"AaIokzcAr0G15OnseSay.Aq_PRDORQaVm", b"u-9f2"):
        assert partition_for(key, [0, 1, 2, 3, 4, 5]) == (kp_murmur2(key) & 0x7FFFFFFF) % 6


def test_records_round_trip_through_json() -> None:
    click = Click(
        event_id="c1", ts="2026-03-01T10:00:05Z", click_id="k.1", campaign_id="c",
        partner_id="p", sub_ids={"sub1": "x"}, user={"ip": "203.0.113.0", "country": "de"},
    )  # fmt: skip
    conversion = Conversion(event_id="v1", ts=1772359800000, action="purchase", revenue=9.5)
    letter = DeadLetter(
        received_at=datetime(2026, 3, 1, tzinfo=UTC), source="edge:/i.gif", reason="r",
        message="m", payload="GET /i.gif",
    )  # fmt: skip
    insight = AuctionInsight(
        date="2026-03-01", account="a", campaign="c", keyword="Acme Shoes",
        display_domain="acme.example", impression_share=0.25,
    )  # fmt: skip
    for topic, record in (
        (CLICKS, click), (CONVERSIONS, conversion), (DEAD_LETTERS, letter),
        (AUCTION_INSIGHTS, insight),
    ):  # fmt: skip
        data = serialize(record)
        assert b'"type"' in data
        assert deserialize(topic, data) == record


@pytest.mark.parametrize(
    ("topic", "data", "message"),
    [
        (CLICKS, b"{oops", "not JSON"),
        (CLICKS, b'{"type":"refund"}', "no known record type"),
        (CLICKS, b'{"type":"conversion"}', "does not belong"),
        (AUCTION_INSIGHTS, b'{"type":"click"}', "does not belong"),
    ],
)
def test_bad_messages_raise_value_error(topic: str, data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        deserialize(topic, data)


def test_insight_rows_are_keyed_by_their_normalised_keyword() -> None:
    """Rows of one conflict (brand, domain, normalised keyword) meet on one partition."""
    row = {"date": "2026-03-01", "account": "a", "campaign": "c", "display_domain": "x.example"}
    keys = {
        insight_key(AuctionInsight.model_validate({**row, "keyword": keyword}))
        for keyword in ("Acme Shoes", "acme  shoes!", "ÁCME shoes")
    }
    assert keys == {"acme shoes"}
    assert insight_key(AuctionInsight.model_validate({**row, "keyword": "++"})) == "++"


def test_producer_settings_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        KafkaSettings(" ")
    with pytest.raises(ValueError, match="compression"):
        KafkaSettings("b:9092", compression="brotli")
