"""The public event contract: what is accepted, what is refused, and how it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from clicktrail.contracts import EVENT_ADAPTER, AuctionInsight, Click, Conversion, Impression

CLICK = {
    "type": "click",
    "event_id": "evt-1",
    "ts": "2026-03-01T10:00:00+02:00",
    "click_id": "clk-1",
    "campaign_id": "cmp-1",
    "partner_id": "aff-1",
}


class TestEventTime:
    def test_rfc3339_with_offset_is_stored_in_utc(self) -> None:
        event = EVENT_ADAPTER.validate_python(CLICK)
        assert event.ts == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def test_integers_are_epoch_milliseconds(self) -> None:
        event = EVENT_ADAPTER.validate_python({**CLICK, "ts": 1_772_359_200_000})
        assert event.ts == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("ts", "fragment"),
        [
            ("2026-03-01T10:00:00", "needs a UTC offset"),
            (1_772_359_200, "milliseconds"),
            ("yesterday", "RFC 3339"),
            (True, "RFC 3339"),
        ],
    )
    def test_ambiguous_times_are_refused(self, ts: object, fragment: str) -> None:
        with pytest.raises(ValidationError, match=fragment):
            EVENT_ADAPTER.validate_python({**CLICK, "ts": ts})


class TestStrictness:
    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            EVENT_ADAPTER.validate_python({**CLICK, "colour": "red"})

    def test_ids_have_a_safe_alphabet(self) -> None:
        with pytest.raises(ValidationError, match="event_id"):
            EVENT_ADAPTER.validate_python({**CLICK, "event_id": "a b"})

    def test_negative_money_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="cost"):
            EVENT_ADAPTER.validate_python({**CLICK, "cost": -1})

    def test_unknown_schema_version_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="unsupported schema_version 2"):
            EVENT_ADAPTER.validate_python({**CLICK, "schema_version": 2})

    def test_the_type_selects_the_model(self) -> None:
        impression = EVENT_ADAPTER.validate_python(
            {
                "type": "impression",
                "event_id": "i",
                "ts": 1_772_359_200_000,
                "impression_id": "imp",
                "campaign_id": "c",
                "partner_id": "p",
            }
        )
        assert isinstance(impression, Impression)
        assert isinstance(EVENT_ADAPTER.validate_python(CLICK), Click)


class TestConversion:
    BASE = {"type": "conversion", "event_id": "cv-9", "ts": 1_772_359_200_000, "action": "purchase"}

    def test_conversion_id_defaults_to_event_id(self) -> None:
        conversion = EVENT_ADAPTER.validate_python(self.BASE)
        assert isinstance(conversion, Conversion)
        assert conversion.conversion_id == "cv-9"
        assert conversion.status == "pending"
        assert conversion.currency == "USD"

    def test_actions_are_lower_snake_case(self) -> None:
        with pytest.raises(ValidationError, match="action"):
            EVENT_ADAPTER.validate_python({**self.BASE, "action": "Purchase!"})

    def test_currency_is_iso_4217(self) -> None:
        with pytest.raises(ValidationError, match="currency"):
            EVENT_ADAPTER.validate_python({**self.BASE, "currency": "dollars"})

    def test_country_is_upper_cased(self) -> None:
        conversion = EVENT_ADAPTER.validate_python({**self.BASE, "user": {"country": "de"}})
        assert conversion.user.country == "DE"


class TestAuctionInsight:
    ROW = {
        "date": "2026-03-01",
        "account": "acme-google-ads",
        "campaign": "acme-brand-search",
        "keyword": "acme shoes",
        "display_domain": "Acme.example",
        "impression_share": 0.3,
    }

    def test_the_id_is_derived_from_the_row_identity(self) -> None:
        row = AuctionInsight.model_validate(self.ROW)
        same = AuctionInsight.model_validate({**self.ROW, "impression_share": 0.9})
        other_day = AuctionInsight.model_validate({**self.ROW, "date": "2026-03-02"})
        assert row.insight_id is not None and row.insight_id.startswith("ai-")
        assert same.insight_id == row.insight_id != other_day.insight_id
        assert row.display_domain == "acme.example"

    def test_a_given_id_must_be_the_derived_one(self) -> None:
        row = AuctionInsight.model_validate(self.ROW)
        assert AuctionInsight.model_validate({**self.ROW, "insight_id": row.insight_id}) == row
        with pytest.raises(ValidationError, match="insight_id does not match"):
            AuctionInsight.model_validate({**self.ROW, "insight_id": "ai-0"})

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"overlap_rate": 1.2}, "overlap_rate"),
            ({"keyword": "  "}, "keyword"),
            ({"display_domain": "https://acme.example/"}, "display_domain"),
            ({"date": "2026-03-01T10:00:00Z"}, "date"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_refuses_what_an_export_row_cannot_be(
        self, change: dict[str, object], field: str
    ) -> None:
        with pytest.raises(ValidationError, match=field):
            AuctionInsight.model_validate({**self.ROW, **change})

    def test_its_time_is_the_start_of_the_day_in_utc(self) -> None:
        row = AuctionInsight.model_validate(self.ROW)
        assert row.ts == datetime(2026, 3, 1, tzinfo=UTC)
