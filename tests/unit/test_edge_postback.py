"""Postback parameter mapping and authentication, without HTTP."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from clicktrail.processors.postback import (
    PostbackError,
    PostbackVerifier,
    canonical_query,
    conversion_fields,
    dedup_key,
    parse_status,
    sign,
)

SECRET = "s3cret-s3cret-s3cret"
NOW = 1_780_000_000.0


def verifier() -> PostbackVerifier:
    return PostbackVerifier({"acme": SECRET}, 300, clock=lambda: NOW)


class TestCanonicalQuery:
    def test_sorted_encoded_and_without_the_signature(self) -> None:
        pairs = [("txid", "a b"), ("sig", "x"), ("amount", "1.5"), ("adv", "acme/é")]
        assert canonical_query(pairs) == "adv=acme%2F%C3%A9&amount=1.5&txid=a%20b"

    def test_matches_a_plain_hmac_any_language_can_compute(self) -> None:
        pairs = [("ts", "1780000000"), ("txid", "o-1")]
        expected = hmac.new(SECRET.encode(), b"ts=1780000000&txid=o-1", hashlib.sha256)
        assert sign(SECRET, pairs) == expected.hexdigest()


class TestVerifier:
    def test_signed_and_key_modes(self) -> None:
        pairs = [("txid", "o-1"), ("ts", str(int(NOW)))]
        assert verifier().verify("acme", [*pairs, ("sig", sign(SECRET, pairs))]) == "signed"
        assert verifier().verify("acme", [("txid", "o-1"), ("key", SECRET)]) == "key"

    @pytest.mark.parametrize(
        ("pairs", "reason"),
        [
            ([("txid", "o")], "missing_signature"),
            ([("txid", "o"), ("key", "wrong-wrong-wrong")], "bad_signature"),
            ([("txid", "o"), ("sig", "ab")], "missing_param"),
            ([("ts", "soon"), ("sig", "ab")], "invalid_param"),
            ([("ts", "inf"), ("sig", "ab")], "invalid_param"),
            ([("ts", str(int(NOW - 301))), ("sig", "ab")], "stale_timestamp"),
            ([("ts", str(int(NOW))), ("sig", "ab")], "bad_signature"),
        ],
    )
    def test_refusals_carry_a_reason(self, pairs: list[tuple[str, str]], reason: str) -> None:
        with pytest.raises(PostbackError) as caught:
            verifier().verify("acme", pairs)
        assert caught.value.reason == reason

    def test_unknown_advertiser_and_weak_secrets(self) -> None:
        with pytest.raises(PostbackError, match="no advertiser"):
            verifier().verify("ghost", [])
        with pytest.raises(ValueError, match="shorter than 16"):
            PostbackVerifier({"a": "short"}, 300)


class TestFields:
    def test_tracker_macro_names_map_to_the_contract(self) -> None:
        fields = conversion_fields(
            {"subid": "k.1", "transaction_id": "t", "goal": "Purchase", "amount": "9.5",
             "commission": "1", "currency": "usd", "adv": "acme", "status": "1"},
            "lead",
        )  # fmt: skip
        assert fields == {
            "click_id": "k.1",
            "txid": "t",
            "action": "purchase",
            "revenue": "9.5",
            "payout": "1",
            "currency": "USD",
            "advertiser_id": "acme",
            "status": "approved",
        }
        assert conversion_fields({}, "lead") == {"action": "lead", "status": "pending"}

    @pytest.mark.parametrize(
        ("word", "status"),
        [
            ("approved", "approved"),
            ("hold", "pending"),
            ("declined", "rejected"),
            ("-1", "rejected"),
        ],
    )
    def test_status_words(self, word: str, status: str) -> None:
        assert parse_status(word) == status

    def test_dedup_key_needs_a_txid(self) -> None:
        assert dedup_key({"action": "lead"}) is None
        assert dedup_key({"txid": "t", "action": "lead", "status": "pending"}) == "|t|lead|pending"
