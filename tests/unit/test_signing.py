"""Signed click ids: minted ids verify, anything altered or made up does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.contracts import EVENT_ADAPTER
from clicktrail.processors.signing import ClickIdSigner

SIGNER = ClickIdSigner("k" * 32)


def test_minted_ids_verify_and_carry_their_time() -> None:
    click_id = SIGNER.mint(1_772_359_200_123)
    assert SIGNER.verify(click_id)
    assert ClickIdSigner.minted_at_ms(click_id) == 1_772_359_200_123


def test_minted_ids_fit_the_contract() -> None:
    click_id = SIGNER.mint(1_772_359_200_000)
    event = EVENT_ADAPTER.validate_python(
        {
            "type": "click",
            "event_id": "e",
            "ts": 1_772_359_200_000,
            "click_id": click_id,
            "campaign_id": "c",
            "partner_id": "p",
        }
    )
    assert event.click_id == click_id  # type: ignore[union-attr]


def test_another_key_does_not_verify() -> None:
    assert not ClickIdSigner("z" * 32).verify(SIGNER.mint(1))


@given(st.text(max_size=40))
def test_arbitrary_text_never_verifies(text: str) -> None:
    assert not SIGNER.verify(text)


@given(st.integers(min_value=0, max_value=32), st.sampled_from("AbZ09-_"))
def test_any_single_character_change_is_detected(position: int, replacement: str) -> None:
    click_id = SIGNER.mint(1_772_359_200_000)
    if click_id[position] == replacement or click_id[position] == ".":
        return
    forged = click_id[:position] + replacement + click_id[position + 1 :]
    assert not SIGNER.verify(forged)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        ClickIdSigner("short")


def test_the_owner_is_bound_by_the_signature() -> None:
    click_id = SIGNER.mint(1_772_359_200_000, "acme")
    assert SIGNER.verify(click_id)
    assert SIGNER.minted_for(click_id, "acme")
    assert not SIGNER.minted_for(click_id, "bolt")
    assert ClickIdSigner.minted_at_ms(click_id) == 1_772_359_200_000


def test_any_text_is_safe_to_verify() -> None:
    click_id = SIGNER.mint(1_772_359_200_000, "acme")
    non_ascii = click_id[:-1] + "é"
    assert not SIGNER.verify(non_ascii)
    assert not SIGNER.minted_for(non_ascii, "acme")
